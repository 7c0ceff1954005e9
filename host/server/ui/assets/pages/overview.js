// Overview: today's runs, spend against budget, next runs, approvals waiting, health.

import { api, tpath, runEvents } from '../api.js';
import { h, replace, card, usd, timeEl, relative, stateBadge, badge, emptyState, errorBox } from '../dom.js';
import { triggerToWords } from '../cron.js';

function startOfToday() {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d;
}

/** Runs created today (local time), newest first; at most 1,000. */
async function todaysRuns(tenant, signal) {
  const since = startOfToday();
  const out = [];
  let cursor = null;
  for (let page = 0; page < 5; page += 1) {
    const q = new URLSearchParams({ limit: '200' });
    if (cursor) q.set('cursor', cursor);
    const res = await api(tpath(tenant, `/runs?${q}`), { signal });
    let older = false;
    for (const r of res.items) {
      if (new Date(r.created_at) >= since) out.push(r);
      else older = true;
    }
    if (older || !res.next_cursor) return { runs: out, capped: false };
    cursor = res.next_cursor;
  }
  return { runs: out, capped: true };
}

async function health(signal) {
  try {
    const res = await fetch('/readyz', { signal, credentials: 'same-origin' });
    const text = (await res.text()).trim();
    return { ok: res.ok, text };
  } catch {
    return { ok: false, text: 'unreachable' };
  }
}

function stat(label, value, extra, tone) {
  return h('div', { class: ['stat', tone ? `stat-${tone}` : ''] }, h('span', { class: 'stat-value' }, value), h('span', { class: 'stat-label' }, label), extra || null);
}

export async function overviewPage(ctx) {
  const { tenant, signal, link } = ctx;
  const runs = new Map();
  const settled = (p) => p.then((v) => ({ v }), (e) => ({ e }));
  // Open the event stream first, then load: nothing is missed.
  const todayCard = h('section', { class: 'card', 'aria-labelledby': 'ov-today' });
  const recentCard = h('section', { class: 'card', 'aria-labelledby': 'ov-recent' });
  let capped = false;
  const redraw = () => {
    const list = [...runs.values()].sort((a, b) => b.id - a.id);
    const since = startOfToday();
    const today = list.filter((r) => new Date(r.created_at) >= since);
    const count = (...s) => today.filter((r) => s.includes(r.state)).length;
    replace(todayCard,
      h('h2', { id: 'ov-today', class: 'card-title' }, 'Runs today'),
      h('div', { class: 'stats' },
        stat('started', `${today.length}${capped ? '+' : ''}`),
        stat('succeeded', String(count('succeeded')), null, 'ok'),
        stat('failed', String(count('dead', 'failed')), null, count('dead', 'failed') ? 'bad' : null),
        stat('in progress', String(count('running', 'available', 'scheduled')), null, 'info')),
      h('a', { href: link('runs'), class: 'card-link' }, 'See all runs'));
    const recent = list.slice(0, 6);
    replace(recentCard,
      h('h2', { id: 'ov-recent', class: 'card-title' }, 'Latest runs'),
      recent.length
        ? h('ul', { class: 'rows' }, recent.map((r) => h('li', { class: 'row-item', dataset: { run: String(r.id) } },
          h('a', { href: link(`runs/${r.id}`) }, `Run #${r.id}`),
          h('span', null, r.automation ? `${r.automation} · ${r.agent}` : r.agent),
          stateBadge(r.state),
          h('span', { class: 'muted' }, relative(r.created_at)))))
        : emptyState('No runs yet.', 'Runs appear here as soon as an automation fires.'),
      h('a', { href: link('runs'), class: 'card-link' }, 'Open the live run list'));
  };
  const close = runEvents(tenant, (run) => {
    runs.set(run.id, run);
    redraw();
  });
  ctx.onCleanup(close);

  const [today, budget, automations, approvals, ready, providers] = await Promise.all([
    settled(todaysRuns(tenant, signal)),
    settled(api(tpath(tenant, '/budget'), { signal })),
    settled(api(tpath(tenant, '/automations'), { signal })),
    settled(api(tpath(tenant, '/approvals'), { signal })),
    health(signal),
    settled(api('providers', { signal })),
  ]);
  if (today.e) throw today.e;
  for (const r of today.v.runs) if (!runs.has(r.id)) runs.set(r.id, r);
  capped = today.v.capped;
  if (!runs.size) {
    // Nothing today: still show the latest few.
    try {
      const res = await api(tpath(tenant, '/runs?limit=6'), { signal });
      for (const r of res.items) runs.set(r.id, r);
    } catch { /* shown as empty */ }
  }
  redraw();

  // Spend this month against the budget.
  let spendCard;
  if (budget.e) spendCard = card('Spend this month', errorBox(budget.e.message));
  else {
    const b = budget.v;
    const spent = Number(b.spent_usd);
    const limit = b.monthly_budget_usd ? Number(b.monthly_budget_usd) : null;
    const pct = limit ? Math.min(100, (spent / limit) * 100) : null;
    const bar = h('div', { class: 'meter', role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': String(limit || 0), 'aria-valuenow': String(spent), 'aria-label': 'Spend against monthly budget' }, h('span', { class: 'meter-fill' }));
    if (pct !== null) bar.firstChild.style.width = `${Math.max(pct, spent > 0 ? 1 : 0)}%`;
    spendCard = card('Spend this month',
      h('p', { class: 'big' }, usd(b.spent_usd), h('span', { class: 'muted' }, limit ? ` of ${usd(b.monthly_budget_usd)} budget` : ' (no monthly budget set)')),
      limit ? bar : null,
      limit ? h('p', { class: 'muted' }, `${pct.toFixed(pct < 10 ? 1 : 0)}% used in ${b.month}`) : h('p', { class: 'muted' }, `Plan: ${b.plan}. Month ${b.month}.`),
      b.alerts && b.alerts.length ? h('p', null, badge(`${b.alerts.length} budget alert${b.alerts.length > 1 ? 's' : ''}`, 'warn', '!')) : null,
      h('a', { href: link('costs'), class: 'card-link' }, 'See costs'));
  }

  // Next scheduled runs.
  let nextCard;
  if (automations.e) nextCard = card('Next scheduled runs', errorBox(automations.e.message));
  else {
    const upcoming = automations.v.filter((a) => a.enabled && a.next_run).sort((a, b) => new Date(a.next_run) - new Date(b.next_run)).slice(0, 5);
    const off = automations.v.filter((a) => !a.enabled).length;
    nextCard = card('Next scheduled runs',
      upcoming.length
        ? h('ul', { class: 'rows' }, upcoming.map((a) => h('li', { class: 'row-item' },
          h('strong', null, a.name),
          h('span', { class: 'muted' }, triggerToWords(a.trigger, a.schedule)),
          h('span', null, timeEl(a.next_run), ' ', h('span', { class: 'muted' }, `(${relative(a.next_run)})`)))))
        : emptyState('Nothing scheduled.', 'No enabled automation has a time trigger.'),
      off ? h('p', { class: 'muted' }, `${off} automation${off > 1 ? 's are' : ' is'} switched off.`) : null,
      h('a', { href: link('automations'), class: 'card-link' }, 'Manage automations'));
  }

  // Approvals waiting.
  let approvalsCard;
  if (approvals.e) approvalsCard = card('Waiting for approval', errorBox(approvals.e.message));
  else {
    const n = approvals.v.length;
    approvalsCard = card('Waiting for approval',
      h('p', { class: 'big' }, String(n), h('span', { class: 'muted' }, n === 1 ? ' output to review' : ' outputs to review')),
      n ? badge('Needs your decision', 'warn', '⏸') : h('p', { class: 'muted' }, 'All caught up.'),
      h('a', { href: link('approvals'), class: 'card-link' }, 'Open the inbox'));
  }

  // Health.
  const breakers = providers.v || [];
  const open = breakers.filter((p) => p.state !== 'closed');
  const healthCard = card('Health',
    h('p', null, ready.ok ? badge('Operational', 'ok', '✓') : badge(`Not ready: ${ready.text}`, 'bad', '✕')),
    providers.e ? h('p', { class: 'muted' }, 'Provider status unavailable.')
      : h('p', { class: 'muted' }, open.length ? `${open.length} AI provider${open.length > 1 ? 's' : ''} degraded: ${open.map((p) => p.provider).join(', ')}` : `All ${breakers.length} AI providers answering.`),
    h('a', { href: link('health'), class: 'card-link' }, 'See health'));

  replace(ctx.main,
    h('div', { class: 'page-head' },
      h('h1', null, 'Overview'),
      h('p', { class: 'muted' }, ctx.tenantInfo ? `${ctx.tenantInfo.name} — everything at a glance, live.` : 'Everything at a glance, live.')),
    h('div', { class: 'grid grid-4' }, todayCard, spendCard, approvalsCard, healthCard),
    h('div', { class: 'grid grid-2' }, nextCard, recentCard));
}
