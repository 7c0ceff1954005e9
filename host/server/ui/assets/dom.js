// Small DOM helpers. Everything is built with createElement and text nodes, so data from the
// API is never parsed as HTML (and no inline style or handler attribute is ever written: the
// page's Content-Security-Policy forbids them).

/** Creates an element: h('a', {href, class, onclick}, 'text', child, [more children]). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Creates an SVG element (charts). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === 'class') {
      el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'value') {
      el.value = v;
    } else if (k === 'checked' || k === 'disabled' || k === 'selected' || k === 'required' || k === 'hidden' || k === 'open' || k === 'readOnly' || k === 'multiple') {
      el[k] = Boolean(v);
    } else if (k === 'style') {
      throw new Error('inline styles are not allowed: set el.style properties instead');
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let ids = 0;
/** A fresh id for label/aria wiring. */
export function uid(prefix = 'f') {
  ids += 1;
  return `${prefix}-${ids}`;
}

// ---- formatting ----

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });

export function fmtDate(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return `Today ${timeOnly.format(d)}`;
  return dateTime.format(d);
}

/** "in 5 min", "3 h ago". */
export function relative(iso) {
  if (!iso) return '';
  const ms = new Date(iso).getTime() - Date.now();
  if (Number.isNaN(ms)) return '';
  const abs = Math.abs(ms);
  let text;
  if (abs < 45_000) return ms >= 0 ? 'in a few seconds' : 'just now';
  if (abs < 3_600_000) text = `${Math.round(abs / 60_000)} min`;
  else if (abs < 86_400_000) text = `${Math.round(abs / 3_600_000)} h`;
  else text = `${Math.round(abs / 86_400_000)} d`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/** A <time> element with a readable date and the ISO value. */
export function timeEl(iso, { rel = false } = {}) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const t = h('time', { datetime: iso, title: new Date(iso).toISOString() }, fmtDate(iso));
  if (rel) return h('span', null, t, ' ', h('span', { class: 'muted' }, `(${relative(iso)})`));
  return t;
}

export function duration(start, end) {
  if (!start || !end) return '—';
  const ms = new Date(end) - new Date(start);
  if (!(ms >= 0)) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Dollars from a decimal string: two decimals, more when it is a tiny amount. */
export function usd(value) {
  if (value === null || value === undefined || value === '') return '—';
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  if (n === 0) return '$0.00';
  const abs = Math.abs(n);
  if (abs >= 0.01) return `${n < 0 ? '−' : ''}$${abs.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  return `${n < 0 ? '−' : ''}$${abs.toFixed(6).replace(/0+$/, '')}`;
}

export function num(n) {
  if (n === null || n === undefined) return '—';
  return Number(n).toLocaleString();
}

export function json(v) {
  return JSON.stringify(v, null, 2);
}

// ---- run states ----

const STATES = {
  scheduled: ['Scheduled', 'neutral', '◷'],
  available: ['Queued', 'neutral', '◷'],
  running: ['Running', 'info', '●'],
  succeeded: ['Succeeded', 'ok', '✓'],
  dead: ['Failed', 'bad', '✕'],
  failed: ['Failed, retrying', 'warn', '!'],
  cancelled: ['Cancelled', 'neutral', '⊘'],
  awaiting_approval: ['Awaiting approval', 'warn', '⏸'],
  rejected: ['Rejected', 'neutral', '⊘'],
};

export const FINAL_STATES = new Set(['succeeded', 'dead', 'cancelled', 'rejected']);

export function stateLabel(state) {
  return (STATES[state] || [state])[0];
}

/** A status badge: the words always say it, colour only repeats it. */
export function badge(text, tone = 'neutral', icon = '') {
  return h('span', { class: `badge badge-${tone}` }, icon ? h('span', { 'aria-hidden': 'true', class: 'badge-icon' }, icon) : null, text);
}

export function stateBadge(state) {
  const [label, tone, icon] = STATES[state] || [state, 'neutral', ''];
  const b = badge(label, tone, icon);
  b.dataset.state = state;
  return b;
}

// ---- page furniture ----

export function emptyState(title, text, action) {
  return h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, title), text ? h('p', null, text) : null, action || null);
}

export function card(title, ...body) {
  return h('section', { class: 'card' }, title ? h('h2', { class: 'card-title' }, title) : null, ...body);
}

/** An error box: role=alert so screen readers hear it at once. */
export function errorBox(message, title = 'Something went wrong') {
  return h('div', { class: 'alert alert-error', role: 'alert' }, h('strong', null, title), ' ', h('span', { class: 'alert-message' }, message));
}

export function okBox(message) {
  return h('div', { class: 'alert alert-ok', role: 'status' }, message);
}

export function pre(value) {
  return h('pre', { class: 'code', tabindex: '0' }, typeof value === 'string' ? value : json(value));
}

/** A <dl> from [term, description] pairs. */
export function facts(pairs, extra = '') {
  return h('dl', { class: ['facts', extra] }, pairs.filter(Boolean).map(([t, d]) => h('div', { class: 'fact' }, h('dt', null, t), h('dd', null, d))));
}

export function loading(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, text);
}
