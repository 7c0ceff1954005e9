// Operator views: every tenant with plan, spend, revenue and margin; fleet health.

import { api, seg } from '../api.js';
import { h, replace, card, usd, emptyState, errorBox, badge, uid, timeEl } from '../dom.js';
import { providersTable, incidentsTable } from './health.js';

function thisMonth() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}`;
}

export async function operatorPage(ctx) {
  const { signal, query } = ctx;
  const month = /^\d{4}-\d{2}$/.test(query.get('month') || '') ? query.get('month') : thisMonth();
  const [report, providers, ready, fleet] = await Promise.all([
    api(`report?month=${month}`, { signal }),
    api('providers', { signal }).then((v) => ({ v }), (e) => ({ e })),
    fetch('/readyz', { signal }).then((r) => r.ok, () => false),
    api('health', { signal }).then((v) => ({ v }), (e) => ({ e })),
  ]);
  const snap = (fleet.v && fleet.v.snapshot) || {};
  const nodes = snap.nodes || [];
  const queues = snap.queues || [];
  const totals = report.tenants.reduce((a, t) => ({
    revenue: a.revenue + Number(t.revenue_usd), cost: a.cost + Number(t.ai_cost_usd) + Number(t.fuel_cost_usd), margin: a.margin + Number(t.margin_usd),
  }), { revenue: 0, cost: 0, margin: 0 });
  const open = (id) => `/app/?tenant=${encodeURIComponent(id)}`;

  const idIn = h('input', { id: 'nt-id', name: 'id', required: true, pattern: '[a-z0-9]([a-z0-9\\-]{0,61}[a-z0-9])?', autocomplete: 'off', 'aria-describedby': 'nt-id-hint' });
  const nameIn = h('input', { id: 'nt-name', name: 'name', required: true, maxlength: '100', autocomplete: 'off' });
  const msg = h('div', { role: 'status' });
  const create = h('form', { class: 'filters', 'aria-label': 'Create a tenant', onsubmit: async (e) => {
    e.preventDefault();
    replace(msg);
    if (!create.reportValidity()) return;
    try {
      const t = await api('tenants', { method: 'POST', body: { id: idIn.value.trim(), name: nameIn.value.trim() } });
      replace(msg, h('div', { class: 'alert alert-ok' }, `Tenant ${t.id} created. `, h('a', { href: `/app/templates?tenant=${encodeURIComponent(t.id)}` }, 'Install a template into it')));
      ctx.announce(`Tenant ${t.id} created.`);
    } catch (err) {
      replace(msg, errorBox(err.message, 'The tenant could not be created:'));
    }
  } },
  h('div', { class: 'field' }, h('label', { for: 'nt-id' }, 'Tenant id'), idIn, h('p', { class: 'hint', id: 'nt-id-hint' }, 'Lower-case letters, digits and dashes.')),
  h('div', { class: 'field field-grow' }, h('label', { for: 'nt-name' }, 'Display name'), nameIn),
  h('div', { class: 'field field-actions' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create tenant')));

  replace(ctx.main,
    h('div', { class: 'page-head' }, h('h1', null, 'Operator'), h('p', { class: 'muted' }, `The whole fleet for ${report.month}: tenants, plans, revenue, cost and margin.`)),
    h('div', { class: 'grid' },
      card('Revenue', h('p', { class: 'big' }, usd(totals.revenue)), h('p', { class: 'muted' }, `${report.tenants.length} tenants`)),
      card('Cost (AI and compute)', h('p', { class: 'big' }, usd(totals.cost))),
      card('Margin', h('p', { class: ['big', totals.margin < 0 ? 'negative' : ''] }, usd(totals.margin))),
      card('Fleet', h('p', null, ready ? badge('This node is ready', 'ok', '✓') : badge('This node is not ready', 'bad', '✕')),
        fleet.e ? errorBox(fleet.e.message)
          : fleet.v.snapshot_at ? [
            h('p', null, `${nodes.filter((n) => n.alive).length} of ${nodes.length} nodes alive; `,
              `${queues.reduce((a, q) => a + q.available, 0)} runs waiting, ${queues.reduce((a, q) => a + q.running, 0)} running.`),
            h('p', { class: 'muted' }, 'Checked by node ', snap.node || fleet.v.snapshot_node, ' ', timeEl(fleet.v.snapshot_at), `; the database answered in ${Math.round(snap.db_latency_ms || 0)} ms.`)]
            : h('p', { class: 'muted' }, 'The monitor has not reported yet (it looks every few seconds).'))),
    h('section', { class: 'card card-wide' }, h('h2', { class: 'card-title' }, 'Tenants'),
      report.tenants.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'tenants-table' },
        h('caption', { class: 'sr-only' }, `Tenants with revenue, cost and margin for ${report.month}`),
        h('thead', null, h('tr', null, ...['Tenant', 'Plan', 'Revenue', 'AI cost', 'Compute cost', 'Margin', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, report.tenants.map((t) => h('tr', null,
          h('th', { scope: 'row' }, t.name, h('span', { class: 'muted' }, ` (${t.tenant})`)),
          h('td', null, t.plan), h('td', null, usd(t.revenue_usd)), h('td', null, usd(t.ai_cost_usd)), h('td', null, usd(t.fuel_cost_usd)),
          h('td', { class: Number(t.margin_usd) < 0 ? 'negative' : '' }, usd(t.margin_usd), Number(t.margin_usd) < 0 ? ' (loss)' : ''),
          h('td', null, h('a', { href: open(t.tenant), 'aria-label': `Open ${t.name}` }, 'Open'))))))) : emptyState('No tenants yet.')),
    h('section', { class: 'card card-wide' }, h('h2', { class: 'card-title' }, 'New tenant'), create, msg),
    h('section', { class: 'card card-wide' }, h('h2', { class: 'card-title' }, 'Incidents across the fleet'),
      fleet.e ? errorBox(fleet.e.message) : fleet.v.recent_incidents.length
        ? incidentsTable(fleet.v.recent_incidents.slice(0, 30), 'Incidents across the fleet') : emptyState('No incidents.')),
    h('section', { class: 'card card-wide' }, h('h2', { class: 'card-title' }, 'AI providers on this node'),
      providers.e ? errorBox(providers.e.message) : providersTable(providers.v)));
}
