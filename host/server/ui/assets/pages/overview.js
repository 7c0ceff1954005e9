// Overview: today's runs, spend against budget, next runs, approvals waiting, health.

import { api, tpath, runEvents } from '../api.js';
import { h, replace, card, usd, timeEl, relative, stateBadge, badge, emptyState } from '../dom.js';
import { triggerToWords } from '../cron.js';

function startOfToday() {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d;
}

/** The overview's numbers in one call: counted in the database since local midnight. */
function loadOverview(tenant, signal) {
  const q = new URLSearchParams({ since: startOfToday().toISOString() });
  return api(tpath(tenant, `/overview?${q}`), { signal });
}

/** How soon after a run changes the counts are fetched again: one call for a burst of changes. */
const REFRESH_AFTER_MS = 400;

function stat(label, value, extra, tone) {
  return h('div', { class: ['stat', tone ? `stat-${tone}` : ''] }, h('span', { class: 'stat-value' }, value), h('span', { class: 'stat-label' }, label), extra || null);
}

export async function overviewPage(ctx) {
  const { tenant, signal, link } = ctx;
  const todayCard = h('section', { class: 'card', 'aria-labelledby': 'ov-today' });
  const recentCard = h('section', { class: 'card', 'aria-labelledby': 'ov-recent' });
  const drawRuns = (ov) => {
    const c = ov.runs;
    replace(todayCard,
      h('h2', { id: 'ov-today', class: 'card-title' }, 'Runs today'),
      h('div', { class: 'stats' },
        stat('started', String(c.started)),
        stat('succeeded', String(c.succeeded), null, 'ok'),
        stat('failed', String(c.failed), null, c.failed ? 'bad' : null),
        stat('in progress', String(c.in_progress), null, 'info')),
      h('a', { href: link('runs'), class: 'card-link' }, 'See all runs'));
    const recent = ov.latest_runs;
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
  // Open the event stream first, then load: a change meanwhile triggers a fresh count.
  let timer = null;
  let loaded = false;
  const close = runEvents(tenant, () => {
    if (!loaded || timer) return;
    timer = setTimeout(async () => {
      timer = null;
      try {
        drawRuns(await loadOverview(tenant, signal));
      } catch { /* the next change tries again */ }
    }, REFRESH_AFTER_MS);
  });
  ctx.onCleanup(() => {
    close();
    if (timer) clearTimeout(timer);
  });

  const ov = await loadOverview(tenant, signal);
  loaded = true;
  drawRuns(ov);

  // Spend this month against the budget.
  const b = ov.budget;
  const spent = Number(b.spent_usd);
  const limit = b.monthly_budget_usd ? Number(b.monthly_budget_usd) : null;
  const pct = limit ? Math.min(100, (spent / limit) * 100) : null;
  const bar = h('div', { class: 'meter', role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': String(limit || 0), 'aria-valuenow': String(spent), 'aria-label': 'Spend against monthly budget' }, h('span', { class: 'meter-fill' }));
  if (pct !== null) bar.firstChild.style.width = `${Math.max(pct, spent > 0 ? 1 : 0)}%`;
  const spendCard = card('Spend this month',
    h('p', { class: 'big' }, usd(b.spent_usd), h('span', { class: 'muted' }, limit ? ` of ${usd(b.monthly_budget_usd)} budget` : ' (no monthly budget set)')),
    limit ? bar : null,
    limit ? h('p', { class: 'muted' }, `${pct.toFixed(pct < 10 ? 1 : 0)}% used in ${b.month}`) : h('p', { class: 'muted' }, `Plan: ${b.plan}. Month ${b.month}.`),
    b.alerts && b.alerts.length ? h('p', null, badge(`${b.alerts.length} budget alert${b.alerts.length > 1 ? 's' : ''}`, 'warn', '!')) : null,
    h('a', { href: link('costs'), class: 'card-link' }, 'See costs'));

  // Next scheduled runs (the server sorts and trims them).
  const upcoming = ov.next_runs;
  const off = ov.automations_off;
  const nextCard = card('Next scheduled runs',
    upcoming.length
      ? h('ul', { class: 'rows' }, upcoming.map((a) => h('li', { class: 'row-item' },
        h('strong', null, a.name),
        h('span', { class: 'muted' }, triggerToWords(a.trigger, a.schedule)),
        h('span', null, timeEl(a.next_run), ' ', h('span', { class: 'muted' }, `(${relative(a.next_run)})`)))))
      : emptyState('Nothing scheduled.', 'No enabled automation has a time trigger.'),
    off ? h('p', { class: 'muted' }, `${off} automation${off > 1 ? 's are' : ' is'} switched off.`) : null,
    h('a', { href: link('automations'), class: 'card-link' }, 'Manage automations'));

  // Approvals waiting.
  const n = ov.approvals_waiting;
  const approvalsCard = card('Waiting for approval',
    h('p', { class: 'big' }, String(n), h('span', { class: 'muted' }, n === 1 ? ' output to review' : ' outputs to review')),
    n ? badge('Needs your decision', 'warn', '⏸') : h('p', { class: 'muted' }, 'All caught up.'),
    h('a', { href: link('approvals'), class: 'card-link' }, 'Open the inbox'));

  // Health: the answer itself says the database is up.
  const hl = ov.health;
  const degraded = hl.providers_degraded;
  const healthCard = card('Health',
    h('p', null, degraded.length || hl.open_incidents ? badge('Degraded', 'warn', '!') : badge('Operational', 'ok', '✓')),
    h('p', { class: 'muted' }, degraded.length ? `${degraded.length} AI provider${degraded.length > 1 ? 's' : ''} degraded: ${degraded.join(', ')}` : `All ${hl.providers} AI providers answering.`),
    hl.open_incidents ? h('p', { class: 'muted' }, `${hl.open_incidents} open incident${hl.open_incidents > 1 ? 's' : ''}.`) : null,
    h('a', { href: link('health'), class: 'card-link' }, 'See health'));

  replace(ctx.main,
    h('div', { class: 'page-head' },
      h('h1', null, 'Overview'),
      h('p', { class: 'muted' }, ctx.tenantInfo ? `${ctx.tenantInfo.name} — everything at a glance, live.` : 'Everything at a glance, live.')),
    h('div', { class: 'grid grid-4' }, todayCard, spendCard, approvalsCard, healthCard),
    h('div', { class: 'grid grid-2' }, nextCard, recentCard));
}
