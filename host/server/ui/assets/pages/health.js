// Health: what the server reports (readiness, the monitor's incidents, AI providers' circuit
// breakers); what the API does not measure yet is labelled so, never invented.

import { api, tpath } from '../api.js';
import { h, replace, card, badge, emptyState, errorBox, num, timeEl } from '../dom.js';

async function probe(path, signal) {
  try {
    const res = await fetch(path, { signal, credentials: 'same-origin' });
    return { ok: res.ok, status: res.status, text: (await res.text()).trim() };
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    return { ok: false, status: 0, text: 'unreachable' };
  }
}

const BREAKER = {
  closed: ['Working', 'ok', '✓'],
  'half-open': ['Recovering (testing)', 'warn', '!'],
  open: ['Paused after failures', 'bad', '✕'],
};

export function providersTable(providers) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
    h('caption', { class: 'sr-only' }, 'AI providers and their circuit breakers'),
    h('thead', null, h('tr', null, ...['Provider', 'Status', 'Calls answered', 'Failures', 'Failures in a row', 'Since'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, providers.map((p) => {
      const [label, tone, icon] = BREAKER[p.state] || [p.state, 'neutral', ''];
      return h('tr', null, h('th', { scope: 'row' }, p.provider), h('td', null, badge(label, tone, icon),
        p.retry_in_ms ? h('span', { class: 'muted' }, ` retry in ${Math.ceil(p.retry_in_ms / 1000)} s`) : null),
      h('td', null, num(p.total_successes)), h('td', null, num(p.total_failures)), h('td', null, num(p.consecutive_failures)), h('td', null, p.opened_at ? timeEl(p.opened_at) : '—'));
    }))));
}

const SEVERITY = { info: 'neutral', warning: 'warn', critical: 'bad' };

export function incidentsTable(incidents, caption) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'incidents-table' },
    h('caption', { class: 'sr-only' }, caption),
    h('thead', null, h('tr', null, ...['What happened', 'What was done', 'Status', 'Opened'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, incidents.map((i) => h('tr', null,
      h('td', null, i.summary),
      h('td', null, i.action || '—'),
      h('td', null, i.state === 'open' ? badge('Open', SEVERITY[i.severity] || 'warn', '!') : badge('Resolved', 'ok', '✓'),
        i.resolved_at ? h('span', { class: 'muted' }, ' ', timeEl(i.resolved_at)) : null),
      h('td', null, timeEl(i.opened_at)))))));
}

function slaCard(sla) {
  if (sla.e) return [errorBox(sla.e.message)];
  const s = sla.v;
  if (s.availability === null) {
    return [emptyState('Nothing scheduled yet this month.', 'Uptime counts your scheduled runs: those that started on time and did not fail because of the platform.')];
  }
  const pct = `${s.availability.toFixed(s.availability >= 99.95 || s.availability === 0 ? 1 : 2)}%`;
  return [
    h('p', { class: 'big' }, pct),
    h('p', null, s.met ? badge(`Meets the ${s.target}% promise`, 'ok', '✓') : badge(`Below the ${s.target}% promise`, 'bad', '✕')),
    h('p', { class: 'muted' }, `${num(s.available)} of ${num(s.scheduled)} scheduled runs started on time and ran.`,
      s.missed ? ` ${num(s.missed)} missed while the platform was down.` : '',
      s.late ? ` ${num(s.late)} started late.` : '',
      s.platform_failures ? ` ${num(s.platform_failures)} failed because of the platform.` : ''),
  ];
}

export async function healthPage(ctx) {
  const { signal, tenant } = ctx;
  const [ready, alive, providers, incidents, sla] = await Promise.all([
    probe('/readyz', signal),
    probe('/healthz', signal),
    api('providers', { signal }).then((v) => ({ v }), (e) => ({ e })),
    api(tpath(tenant, '/incidents'), { signal }).then((v) => ({ v }), (e) => ({ e })),
    api(tpath(tenant, '/sla'), { signal }).then((v) => ({ v }), (e) => ({ e })),
  ]);
  replace(ctx.main,
    h('div', { class: 'page-head' }, h('h1', null, 'Health'), h('p', { class: 'muted' }, 'Is the platform running your team right now?')),
    h('div', { class: 'grid' },
      card('Service',
        h('p', null, ready.ok ? badge('Ready: accepting and running work', 'ok', '✓') : badge(`Not ready: ${ready.text || ready.status}`, 'bad', '✕')),
        h('p', null, alive.ok ? badge('Server process alive', 'ok', '✓') : badge('Server process not answering', 'bad', '✕')),
        h('p', { class: 'muted' }, 'Checked just now.')),
      card(`Uptime this month (SLA ${sla.v ? sla.v.target : 99.5}%)`, ...slaCard(sla)),
      h('section', { class: 'card card-wide' }, h('h2', { class: 'card-title' }, 'Recent incidents'),
        incidents.e ? errorBox(incidents.e.message)
          : incidents.v.length ? incidentsTable(incidents.v.slice(0, 20), 'Recent incidents: what happened, what was done, and whether it is over')
            : emptyState('No incidents.', 'The platform checks your queue and automations every few seconds. If an automation keeps failing it is switched off and listed here, with what to do.')),
      h('section', { class: 'card card-wide' }, h('h2', { class: 'card-title' }, 'AI providers'),
        providers.e ? errorBox(providers.e.message) : providers.v.length ? providersTable(providers.v) : emptyState('No AI providers configured.'),
        h('p', { class: 'muted' }, 'When a provider keeps failing, calls to it pause for a while and fall back to other models; it is tried again automatically.'))));
}
