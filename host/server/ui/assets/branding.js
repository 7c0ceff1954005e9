// White-label branding: a partner's {name, logo_url, primary_color} applied through CSS custom
// properties. The API does not expose partner branding yet, so resolveBranding() looks for a
// `branding` object on the session's whoami or on the tenant and falls back to the default.

export const DEFAULT_BRANDING = Object.freeze({
  name: 'Mission Control',
  logo_url: '/app/assets/logo.svg',
  primary_color: null,
});

const HEX = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i;

function validLogo(url) {
  if (typeof url !== 'string') return false;
  return url.startsWith('https://') || url.startsWith('/app/assets/') || url.startsWith('data:image/');
}

/** The branding to show for this session and tenant. */
export function resolveBranding(whoami, tenant) {
  const b = (tenant && tenant.branding) || (whoami && whoami.branding) || null;
  if (!b || typeof b !== 'object') return DEFAULT_BRANDING;
  return {
    name: typeof b.name === 'string' && b.name.trim() ? b.name.trim().slice(0, 60) : DEFAULT_BRANDING.name,
    logo_url: validLogo(b.logo_url) ? b.logo_url : DEFAULT_BRANDING.logo_url,
    primary_color: typeof b.primary_color === 'string' && HEX.test(b.primary_color) ? b.primary_color : null,
  };
}

/** Darkens a #rrggbb colour by `f` (0..1), for hover states. */
function shade(hex, f) {
  let x = hex.slice(1);
  if (x.length === 3) x = x.split('').map((c) => c + c).join('');
  const n = parseInt(x, 16);
  const ch = (v) => Math.max(0, Math.min(255, Math.round(v * (1 - f))));
  const r = ch((n >> 16) & 255);
  const g = ch((n >> 8) & 255);
  const b = ch(n & 255);
  return `#${((1 << 24) + (r << 16) + (g << 8) + b).toString(16).slice(1)}`;
}

/** Applies branding to the page: CSS variables, the name and the logo in the header. */
export function applyBranding(branding) {
  const b = branding || DEFAULT_BRANDING;
  const root = document.documentElement;
  if (b.primary_color) {
    root.style.setProperty('--brand', b.primary_color);
    root.style.setProperty('--brand-strong', shade(b.primary_color, 0.18));
  } else {
    root.style.removeProperty('--brand');
    root.style.removeProperty('--brand-strong');
  }
  root.dataset.brandName = b.name;
  // The header is rebuilt on each page; patch it after it is in the document.
  queueMicrotask(() => {
    for (const el of document.querySelectorAll('.brand-name')) el.textContent = b.name;
    for (const img of document.querySelectorAll('.brand-logo')) img.src = b.logo_url;
  });
}
