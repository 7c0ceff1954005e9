// White-label branding: a partner's name, logo and colours on its tenants' dashboards. The
// server validates brands (colours #rrggbb readable on white, logos data:image or https URLs),
// and GET /tenants/{t}/branding says which applies; this module applies it. Colours go in as CSS
// custom properties through CSSOM (style.setProperty), which the strict CSP allows (it forbids
// only style attributes and inline <style>).

export const DEFAULT_BRANDING = Object.freeze({
  partner: null,
  name: 'Mission Control',
  logo: '/app/assets/logo.svg',
  primary_color: null,
  accent_color: null,
});

const HEX = /^#[0-9a-f]{6}$/i;

function validLogo(url) {
  return typeof url === 'string' && (url.startsWith('https://') || url.startsWith('data:image/'));
}

/** The branding to show from the API's answer (`{ partner, brand }`), or the default. */
export function resolveBranding(answer) {
  const b = answer && answer.brand;
  if (!b || typeof b !== 'object') return DEFAULT_BRANDING;
  return {
    partner: answer.partner || null,
    name: typeof b.name === 'string' && b.name.trim() ? b.name.trim() : DEFAULT_BRANDING.name,
    logo: validLogo(b.logo) ? b.logo : DEFAULT_BRANDING.logo,
    primary_color: typeof b.primary_color === 'string' && HEX.test(b.primary_color) ? b.primary_color : null,
    accent_color: typeof b.accent_color === 'string' && HEX.test(b.accent_color) ? b.accent_color : null,
  };
}

/** Mixes a #rrggbb colour with black (`f` > 0) or white (`f` < 0) by |f| (0..1). */
function mix(hex, f) {
  const n = parseInt(hex.slice(1), 16);
  const toward = f > 0 ? 0 : 255;
  const k = Math.abs(f);
  const ch = (v) => Math.max(0, Math.min(255, Math.round(v + (toward - v) * k)));
  const r = ch((n >> 16) & 255);
  const g = ch((n >> 8) & 255);
  const b = ch(n & 255);
  return `#${((1 << 24) + (r << 16) + (g << 8) + b).toString(16).slice(1)}`;
}

const PROPERTIES = ['--brand', '--brand-strong', '--brand-soft', '--accent'];

/** Applies branding to the page: CSS variables, and the name and logo in the header. */
export function applyBranding(branding) {
  const b = branding || DEFAULT_BRANDING;
  const root = document.documentElement;
  for (const p of PROPERTIES) root.style.removeProperty(p);
  if (b.primary_color) {
    root.style.setProperty('--brand', b.primary_color);
    root.style.setProperty('--brand-strong', mix(b.primary_color, 0.18));
    root.style.setProperty('--brand-soft', mix(b.primary_color, -0.9));
    root.style.setProperty('--accent', b.accent_color || b.primary_color);
  }
  root.dataset.brandName = b.name;
  if (b.partner) root.dataset.brandPartner = b.partner;
  else delete root.dataset.brandPartner;
  paintHeader(b);
}

/** Sets the name and logo of the header now in the document. */
export function paintHeader(branding) {
  const b = branding || DEFAULT_BRANDING;
  for (const el of document.querySelectorAll('.brand-name')) el.textContent = b.name;
  for (const img of document.querySelectorAll('.brand-logo')) {
    if (img.getAttribute('src') !== b.logo) img.src = b.logo;
  }
}
