// Mission Control dashboard: session, layout and client-side routing on real /app/ paths.

import { api, ApiError, setCsrf, setUnauthorizedHandler, tpath } from './api.js';
import { h, replace, errorBox, emptyState } from './dom.js';
import { applyBranding, resolveBranding, DEFAULT_BRANDING } from './branding.js';
import { signInPage } from './pages/signin.js';
import { overviewPage } from './pages/overview.js';
import { teamPage, agentPage } from './pages/team.js';
import { automationsPage } from './pages/automations.js';
import { runsPage, runPage } from './pages/runs.js';
import { costsPage } from './pages/costs.js';
import { approvalsPage } from './pages/approvals.js';
import { registriesPage, registryPage } from './pages/registries.js';
import { templatesPage, templatePage } from './pages/templates.js';
import { healthPage } from './pages/health.js';
import { operatorPage } from './pages/operator.js';

const BASE = '/app/';

const NAV = [
  ['', 'Overview'],
  ['team', 'Team'],
  ['automations', 'Automations'],
  ['runs', 'Runs'],
  ['approvals', 'Approvals'],
  ['costs', 'Costs'],
  ['registries', 'Registries'],
  ['templates', 'Templates'],
  ['health', 'Health'],
];

const ROUTES = [
  [/^$/, overviewPage, 'Overview', ''],
  [/^team$/, teamPage, 'Team', 'team'],
  [/^agents\/([^/]+)$/, agentPage, 'Agent', 'team'],
  [/^automations$/, automationsPage, 'Automations', 'automations'],
  [/^runs$/, runsPage, 'Runs', 'runs'],
  [/^runs\/([^/]+)$/, runPage, 'Run', 'runs'],
  [/^costs$/, costsPage, 'Costs', 'costs'],
  [/^approvals$/, approvalsPage, 'Approvals', 'approvals'],
  [/^registries$/, registriesPage, 'Registries', 'registries'],
  [/^registries\/([^/]+)$/, registryPage, 'Registry', 'registries'],
  [/^templates$/, templatesPage, 'Templates', 'templates'],
  [/^templates\/([^/]+)$/, templatePage, 'Template', 'templates'],
  [/^health$/, healthPage, 'Health', 'health'],
  [/^operator$/, operatorPage, 'Operator', 'operator'],
];

const state = {
  session: null, // { whoami, csrf, expires_at }
  tenants: [],
  tenant: null, // id
  tenantInfo: null,
  cleanups: [],
  firstRender: true,
  approvalsBadge: null,
};

const appRoot = document.getElementById('app');
const live = document.getElementById('live');

/** Says something to screen-reader users (and shows it in the page's status line). */
export function announce(message) {
  live.textContent = '';
  // A fresh text node each time, so the same message twice is read twice.
  window.setTimeout(() => {
    live.textContent = message;
  }, 30);
  const toast = document.getElementById('toast');
  if (toast) {
    replace(toast, message);
    toast.hidden = false;
    window.clearTimeout(toast.timer);
    toast.timer = window.setTimeout(() => {
      toast.hidden = true;
    }, 5000);
  }
}

function role() {
  return state.session ? state.session.whoami.role : null;
}

function canSwitch() {
  return role() === 'operator' || role() === 'partner';
}

/** The path under /app/ ("runs/4"), without query. */
function currentPath() {
  let p = location.pathname;
  if (p.startsWith(BASE)) p = p.slice(BASE.length);
  else if (p === '/app') p = '';
  return p.replace(/\/+$/, '');
}

/** An /app/ href that keeps the operator's tenant. */
export function link(path, query = {}) {
  const q = new URLSearchParams();
  // Only keys that see several tenants carry one in the URL; a tenant key's links lead home.
  if (state.tenant && canSwitch()) q.set('tenant', state.tenant);
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const qs = q.toString();
  return `${BASE}${path}${qs ? `?${qs}` : ''}`;
}

export function navigate(href, { replace: rep = false } = {}) {
  if (rep) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  render();
}

// Links inside the app are real <a href>; plain left clicks are routed here without a reload.
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(BASE) || url.pathname.startsWith(`${BASE}assets/`)) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  e.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
});
window.addEventListener('popstate', () => render());

setUnauthorizedHandler(() => {
  if (!state.session) return;
  state.session = null;
  setCsrf(null);
  showSignIn('Your session has ended (signed out, expired, or its key was revoked). Sign in again.');
});

function runCleanups() {
  for (const fn of state.cleanups.splice(0)) {
    try {
      fn();
    } catch {
      /* keep going */
    }
  }
}

function showSignIn(message) {
  runCleanups();
  state.branding = DEFAULT_BRANDING;
  applyBranding(resolveBranding(null));
  document.title = 'Sign in · Mission Control';
  const main = h('main', { id: 'main', tabindex: '-1', class: 'signin-main' });
  replace(appRoot, main);
  signInPage(main, { message, onSignedIn: afterSignIn, announce });
}

async function afterSignIn(session) {
  await adopt(session);
  if (currentPath() === 'signin') history.replaceState(null, '', BASE);
  announce(`Signed in as ${describeWho(session.whoami)}`);
  render();
}

async function adopt(session) {
  state.session = session;
  state.brandings = new Map();
  setCsrf(session.csrf);
  try {
    state.tenants = await api('tenants');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) throw e;
    state.tenants = [];
  }
}

function describeWho(w) {
  if (w.role === 'operator') return 'operator';
  if (w.role === 'partner') return `partner ${w.partner || ''}`.trim();
  return `${w.role} of ${w.tenant}`;
}

async function signOut() {
  try {
    await api('/ui/session', { method: 'DELETE', quiet401: true });
  } catch {
    /* signed out either way */
  }
  state.session = null;
  setCsrf(null);
  history.pushState(null, '', BASE);
  showSignIn(null);
  announce('You are signed out.');
}

/** The tenant's branding (its partner's brand, or Mission Control's), asked once per tenant and
 * session. */
async function brandingOf(tenant) {
  if (!tenant) return DEFAULT_BRANDING;
  if (!state.brandings) state.brandings = new Map();
  if (state.brandings.has(tenant)) return state.brandings.get(tenant);
  let branding = DEFAULT_BRANDING;
  try {
    branding = resolveBranding(await api(tpath(tenant, '/branding')));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) throw e;
    // Unknown or unreachable: the default look; the page itself shows the error.
    return DEFAULT_BRANDING;
  }
  state.brandings.set(tenant, branding);
  return branding;
}

function pickTenant() {
  const q = new URLSearchParams(location.search).get('tenant');
  if (q) return q;
  const w = state.session.whoami;
  if (w.tenant) return w.tenant;
  if (state.tenant && state.tenants.some((t) => t.id === state.tenant)) return state.tenant;
  return state.tenants.length ? state.tenants[0].id : null;
}

function header(activeNav) {
  const w = state.session.whoami;
  const b = state.branding || DEFAULT_BRANDING;
  const brand = h('a', { href: link(''), class: 'brand' },
    h('img', { src: b.logo, alt: '', class: 'brand-logo', width: '28', height: '28' }),
    h('span', { class: 'brand-name' }, b.name));

  let tenantControl;
  if (canSwitch() && state.tenants.length) {
    const select = h('select', { id: 'tenant-switch', class: 'tenant-select', onchange: (e) => {
      state.tenant = e.target.value;
      const path = currentPath();
      const keep = /^(|team|automations|runs|costs|approvals|registries|templates|health|operator)$/.test(path) ? path : '';
      navigate(`${BASE}${keep}?tenant=${encodeURIComponent(state.tenant)}`);
      announce(`Now showing tenant ${state.tenant}`);
    } }, state.tenants.map((t) => h('option', { value: t.id, selected: t.id === state.tenant }, `${t.name} (${t.id})`)));
    if (!state.tenants.some((t) => t.id === state.tenant)) select.prepend(h('option', { value: state.tenant, selected: true }, state.tenant || '—'));
    tenantControl = h('div', { class: 'tenant-switch' }, h('label', { for: 'tenant-switch' }, 'Tenant'), select);
  } else {
    tenantControl = h('div', { class: 'tenant-name' }, h('span', { class: 'muted' }, 'Tenant '), h('strong', null, state.tenantInfo ? state.tenantInfo.name : state.tenant || '—'));
  }
  const who = h('span', { class: 'who' }, h('span', { class: `badge badge-role` }, w.role), ' ', h('span', { class: 'who-key' }, `key ${w.key_id}`));
  const out = h('button', { type: 'button', class: 'btn btn-ghost', id: 'sign-out', onclick: signOut }, 'Sign out');

  const items = NAV.slice();
  if (role() === 'operator') items.push(['operator', 'Operator']);
  const nav = h('nav', { class: 'nav', 'aria-label': 'Main' }, h('ul', null, items.map(([path, label]) => {
    const a = h('a', { href: link(path), class: 'nav-link' }, label);
    if (path === activeNav) a.setAttribute('aria-current', 'page');
    if (path === 'approvals') {
      state.approvalsBadge = h('span', { class: 'nav-count', hidden: true });
      a.append(state.approvalsBadge);
    }
    return h('li', null, a);
  })));

  return [
    h('header', { class: 'topbar' }, h('div', { class: 'topbar-inner' }, brand, tenantControl, h('div', { class: 'topbar-right' }, who, out))),
    nav,
  ];
}

async function refreshApprovalsCount() {
  if (!state.tenant || !state.approvalsBadge) return;
  try {
    const list = await api(tpath(state.tenant, '/approvals'));
    const badge = state.approvalsBadge;
    if (list.length) {
      replace(badge, String(list.length));
      badge.setAttribute('aria-label', `${list.length} waiting`);
      badge.hidden = false;
    } else badge.hidden = true;
  } catch {
    /* the page shows errors */
  }
}

function notFoundPage(main) {
  replace(main,
    h('h1', null, 'Page not found'),
    emptyState('There is no page at this address.', `“${location.pathname}” is not part of the dashboard. Check the address, or go back to the overview.`,
      h('a', { href: link(''), class: 'btn' }, 'Go to the overview')));
}

/** The friendly message for an API 404: missing, or belonging to someone else. */
export function notYours(main, err, what = 'This page') {
  replace(main,
    h('h1', null, 'Not found, or not yours'),
    h('div', { class: 'empty', role: 'alert' },
      h('p', { class: 'empty-title' }, `${what} does not exist, or it belongs to another account.`),
      h('p', null, 'You can only see what your key gives you access to. If you followed a link someone shared, ask them to check it.'),
      err && err.message ? h('p', { class: 'muted' }, `The server said: ${err.message}`) : null,
      h('a', { href: link(''), class: 'btn' }, 'Go to the overview')));
}

async function render() {
  runCleanups();
  if (!state.session) return;
  const path = currentPath();
  if (path === 'signin') {
    history.replaceState(null, '', BASE);
    return render();
  }
  const seq = (state.seq = (state.seq || 0) + 1);
  const asked = new URLSearchParams(location.search).get('tenant');
  if (asked && canSwitch() && !state.tenants.some((t) => t.id === asked)) {
    // A tenant created since signing in.
    try {
      state.tenants = await api('tenants');
    } catch { /* keep the old list */ }
    if (seq !== state.seq) return;
  }
  state.tenant = pickTenant();
  state.tenantInfo = state.tenants.find((t) => t.id === state.tenant) || null;
  const branding = await brandingOf(state.tenant);
  if (seq !== state.seq) return;
  state.branding = branding;
  applyBranding(branding);

  let route = null;
  let params = [];
  for (const r of ROUTES) {
    const m = r[0].exec(path);
    if (m) {
      route = r;
      params = m.slice(1).map(decodeURIComponent);
      break;
    }
  }
  if (route && route[3] === 'operator' && role() !== 'operator') route = null;

  const main = h('main', { id: 'main', tabindex: '-1' });
  const toast = h('div', { id: 'toast', class: 'toast', hidden: true, 'aria-hidden': 'true' });
  replace(appRoot, ...header(route ? route[3] : null), h('div', { class: 'layout' }, main), toast);

  const controller = new AbortController();
  state.cleanups.push(() => controller.abort());
  const ctx = {
    main,
    params,
    query: new URLSearchParams(location.search),
    tenant: state.tenant,
    tenantInfo: state.tenantInfo,
    tenants: state.tenants,
    whoami: state.session.whoami,
    canWrite: role() !== 'viewer',
    isOperator: role() === 'operator',
    signal: controller.signal,
    link,
    navigate,
    announce,
    notYours: (err, what) => notYours(main, err, what),
    onCleanup: (fn) => state.cleanups.push(fn),
    refreshApprovals: refreshApprovalsCount,
  };

  const wasFirst = state.firstRender;
  state.firstRender = false;
  if (!route) {
    document.title = 'Page not found · Mission Control';
    notFoundPage(main);
  } else if (!state.tenant && route[3] !== 'operator') {
    document.title = `${route[2]} · Mission Control`;
    replace(main, h('h1', null, route[2]), emptyState('No tenant yet.', 'This key does not see any tenant. An operator can create one on the Operator page.',
      role() === 'operator' ? h('a', { href: link('operator'), class: 'btn' }, 'Open the Operator page') : null));
  } else {
    document.title = `${route[2]} · ${brandName()}`;
    replace(main, h('p', { class: 'loading', role: 'status' }, 'Loading…'));
    try {
      await route[1](ctx);
    } catch (err) {
      if (err && err.name === 'AbortError') return;
      if (err instanceof ApiError && err.status === 401) return;
      if (err instanceof ApiError && err.status === 404) notYours(main, err);
      else replace(main, h('h1', null, route[2]), errorBox(err && err.message ? err.message : String(err)));
    }
  }
  const h1 = main.querySelector('h1');
  if (h1 && h1.textContent) document.title = `${h1.textContent} · ${brandName()}`;
  if (!wasFirst) {
    (h1 || main).setAttribute('tabindex', '-1');
    (h1 || main).focus({ preventScroll: false });
  }
  refreshApprovalsCount();
}

function brandName() {
  return document.documentElement.dataset.brandName || 'Mission Control';
}

async function boot() {
  const hash = location.hash;
  if (hash.startsWith('#key=')) {
    const key = decodeURIComponent(hash.slice(5));
    // The key must not stay in the address bar (or in the history).
    history.replaceState(null, '', location.pathname + location.search);
    try {
      const session = await api('/ui/session', { method: 'POST', body: { key }, quiet401: true });
      await adopt(session);
      announce(`Signed in as ${describeWho(session.whoami)}`);
      return render();
    } catch (e) {
      return showSignIn(e.message || 'That key could not be used to sign in.');
    }
  }
  try {
    const session = await api('/ui/session', { quiet401: true });
    await adopt(session);
    render();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) showSignIn(null);
    else {
      const main = h('main', { id: 'main', tabindex: '-1' });
      replace(appRoot, main);
      replace(main, h('h1', null, 'Mission Control'), errorBox(e.message, 'The dashboard could not start'),
        h('button', { class: 'btn', type: 'button', onclick: () => location.reload() }, 'Try again'));
    }
  }
}

boot();
