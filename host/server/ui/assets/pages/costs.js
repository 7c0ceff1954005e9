// Costs: spend by day and by agent for a month, the budget line, and CSV downloads.

import { api, tpath, seg } from '../api.js';
import { h, replace, usd, num, emptyState, card, errorBox } from '../dom.js';
import { columnChart, barChart } from '../charts.js';

function thisMonth() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}`;
}

function daysOf(month) {
  const [y, m] = month.split('-').map(Number);
  const n = new Date(y, m, 0).getDate();
  return Array.from({ length: n }, (_, i) => `${month}-${String(i + 1).padStart(2, '0')}`);
}

function usageTable(caption, keyLabel, lines, total) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table table-compact' },
    h('caption', null, caption),
    h('thead', null, h('tr', null, ...[keyLabel, 'AI calls', 'Input tokens', 'Output tokens', 'Cached tokens', 'Fuel', 'AI cost', 'Fuel cost', 'Total'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, lines.map((l) => h('tr', null,
      h('th', { scope: 'row' }, l.key), h('td', null, num(l.ai_calls)), h('td', null, num(l.input_tokens)), h('td', null, num(l.output_tokens)),
      h('td', null, num(l.cache_read_tokens + l.cache_write_tokens)), h('td', null, num(l.fuel)),
      h('td', null, usd(l.ai_cost_micros / 1e6)), h('td', null, usd(l.fuel_cost_micros / 1e6)), h('td', null, usd(l.cost_usd))))),
    total ? h('tfoot', null, h('tr', null, h('th', { scope: 'row' }, 'Total'), h('td', null, num(total.ai_calls)), h('td', null, num(total.input_tokens)), h('td', null, num(total.output_tokens)),
      h('td', null, num(total.cache_read_tokens + total.cache_write_tokens)), h('td', null, num(total.fuel)),
      h('td', null, usd(total.ai_cost_micros / 1e6)), h('td', null, usd(total.fuel_cost_micros / 1e6)), h('td', null, usd(total.cost_usd)))) : null));
}

export async function costsPage(ctx) {
  const { tenant, signal, link, query } = ctx;
  const month = /^\d{4}-\d{2}$/.test(query.get('month') || '') ? query.get('month') : thisMonth();
  const [byDay, byAgent, budget] = await Promise.all([
    api(tpath(tenant, `/usage?month=${month}&by=day`), { signal }),
    api(tpath(tenant, `/usage?month=${month}&by=agent`), { signal }),
    api(tpath(tenant, '/budget'), { signal }).catch(() => null),
  ]);
  const budgetUsd = budget && budget.month === month && budget.monthly_budget_usd ? Number(budget.monthly_budget_usd) : null;

  const perDay = new Map(byDay.lines.map((l) => [l.key, l.cost_micros / 1e6]));
  const days = daysOf(month);
  let running = 0;
  const today = new Date();
  const todayKey = `${today.getFullYear()}-${String(today.getMonth() + 1).padStart(2, '0')}-${String(today.getDate()).padStart(2, '0')}`;
  const cumulative = days.map((d) => {
    if (d > todayKey) return { label: String(Number(d.slice(8))), value: null };
    running += perDay.get(d) || 0;
    return { label: String(Number(d.slice(8))), value: running, title: `${d}: ${usd(running)} so far` };
  });
  const daily = days.map((d) => ({ label: String(Number(d.slice(8))), value: perDay.get(d) || 0, title: `${d}: ${usd(perDay.get(d) || 0)}` }));
  const total = byDay.total ? byDay.total.cost_micros / 1e6 : 0;

  const csv = (by) => `/api/v1/${tpath(tenant, `/usage?month=${month}&by=${by}&format=csv`)}`;
  const monthInput = h('input', { type: 'month', id: 'cost-month', name: 'month', value: month, required: true });
  const form = h('form', { class: 'filters', 'aria-label': 'Choose the month', onsubmit: (e) => {
    e.preventDefault();
    if (monthInput.value) ctx.navigate(link('costs', { month: monthInput.value }));
  } }, h('div', { class: 'field' }, h('label', { for: 'cost-month' }, 'Month'), monthInput),
  h('div', { class: 'field field-actions' }, h('button', { type: 'submit', class: 'btn' }, 'Show')));

  const hasData = byDay.lines.length > 0 || byAgent.lines.length > 0;
  replace(ctx.main,
    h('div', { class: 'page-head' }, h('h1', null, 'Costs'), h('p', { class: 'muted' }, `AI and compute spend for ${month}, by day and by agent.`)),
    form,
    h('div', { class: 'grid' },
      card('Total this month',
        h('p', { class: 'big' }, usd(total), budgetUsd ? h('span', { class: 'muted' }, ` of ${usd(budgetUsd)} budget`) : null),
        h('p', { class: 'muted' }, budgetUsd ? `${((total / budgetUsd) * 100).toFixed(1)}% of the monthly budget used.` : 'No monthly budget is set for this tenant.'),
        byDay.total ? h('p', { class: 'muted' }, `${num(byDay.total.ai_calls)} AI calls, ${num(byDay.total.input_tokens + byDay.total.output_tokens)} tokens.`) : null),
      card('Download',
        h('p', { class: 'muted' }, 'The usage report as a spreadsheet (CSV).'),
        h('ul', { class: 'link-list' },
          h('li', null, h('a', { href: csv('agent'), download: `usage-${tenant}-${month}-by-agent.csv`, id: 'csv-agent', class: 'btn' }, 'CSV by agent')),
          h('li', null, h('a', { href: csv('day'), download: `usage-${tenant}-${month}-by-day.csv`, class: 'btn' }, 'CSV by day')),
          h('li', null, h('a', { href: csv('model'), download: `usage-${tenant}-${month}-by-model.csv`, class: 'btn' }, 'CSV by model'))))),
    hasData ? null : emptyState('No spend recorded this month.', 'Costs appear once agents run.'),
    h('section', { class: 'card card-wide' },
      h('h2', { class: 'card-title' }, 'Spend by day'),
      columnChart(daily, { summary: `Spend per day in ${month}; total ${usd(total)}`, tickEvery: days.length > 20 ? 3 : 1 })),
    h('section', { class: 'card card-wide' },
      h('h2', { class: 'card-title' }, 'Month to date against the budget'),
      columnChart(cumulative, { summary: `Cumulative spend in ${month}: ${usd(total)}${budgetUsd ? ` against a budget of ${usd(budgetUsd)}` : ''}`, line: budgetUsd ? { value: budgetUsd, label: 'Budget' } : null, tickEvery: days.length > 20 ? 3 : 1 }),
      budgetUsd ? null : h('p', { class: 'muted' }, 'No budget line: this tenant has no monthly budget.')),
    h('section', { class: 'card card-wide' },
      h('h2', { class: 'card-title' }, 'Spend by agent'),
      byAgent.lines.length ? barChart(byAgent.lines.map((l) => ({ label: l.key, value: l.cost_micros / 1e6 })), { summary: `Spend per agent in ${month}` })
        : emptyState('No agent has spent anything this month.'),
      byAgent.lines.length ? usageTable(`Usage by agent, ${month}`, 'Agent', byAgent.lines, byAgent.total) : null),
    byDay.lines.length ? h('section', { class: 'card card-wide' }, h('details', { class: 'disclosure' }, h('summary', null, 'Usage by day as a table'), usageTable(`Usage by day, ${month}`, 'Day', byDay.lines, byDay.total))) : null);
}
