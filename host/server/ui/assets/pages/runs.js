// Runs: the live list with filters, and one run's page (status, input, output, logs, delegation
// tree with costs, retry and cancel), updated live over server-sent events.

import { api, seg, tpath, runEvents, ApiError } from '../api.js';
import { h, replace, timeEl, relative, stateBadge, stateLabel, emptyState, errorBox, facts, pre, duration, usd, num, card, badge, FINAL_STATES } from '../dom.js';

const STATE_OPTIONS = [
  ['', 'Any status'], ['running', 'Running'], ['available', 'Queued'], ['scheduled', 'Scheduled'], ['succeeded', 'Succeeded'],
  ['dead', 'Failed'], ['failed', 'Failed, retrying'], ['cancelled', 'Cancelled'], ['awaiting_approval', 'Awaiting approval'], ['rejected', 'Rejected'],
];

function liveBadge() {
  const el = h('span', { class: 'live-indicator', dataset: { live: 'connecting' } }, h('span', { class: 'live-dot', 'aria-hidden': 'true' }), h('span', { class: 'live-text' }, 'Connecting…'));
  const set = (s) => {
    el.dataset.live = s;
    el.querySelector('.live-text').textContent = s === 'live' ? 'Live' : s === 'reconnecting' ? 'Reconnecting…' : 'Offline: reload to update';
  };
  return [el, set];
}

function runRow(r, link) {
  return h('tr', { dataset: { run: String(r.id), state: r.state } },
    h('td', null, h('a', { href: link(`runs/${r.id}`) }, `#${r.id}`)),
    h('td', null, stateBadge(r.state)),
    h('td', null, r.automation || h('span', { class: 'muted' }, '—')),
    h('td', null, h('a', { href: link(`agents/${seg(r.agent)}`) }, r.agent)),
    h('td', null, r.trigger),
    h('td', null, timeEl(r.created_at)),
    h('td', null, r.finished_at ? duration(r.started_at, r.finished_at) : r.started_at ? 'running…' : '—'));
}

export async function runsPage(ctx) {
  const { tenant, signal, link, query } = ctx;
  const filter = { state: query.get('state') || '', automation: query.get('automation') || '', agent: query.get('agent') || '' };
  const matches = (r) => (!filter.state || r.state === filter.state) && (!filter.automation || r.automation === filter.automation) && (!filter.agent || r.agent === filter.agent);

  const tbody = h('tbody');
  const rows = new Map();
  const [live, setLive] = liveBadge();
  const upsert = (r, { top = false } = {}) => {
    const old = rows.get(r.id);
    if (!matches(r)) {
      // A run that left the filter (e.g. "running" → "succeeded") stays, updated.
      if (!old) return;
    }
    const tr = runRow(r, link);
    if (old) old.replaceWith(tr);
    else if (top) {
      // Keep newest first.
      let before = null;
      for (const row of tbody.children) if (Number(row.dataset.run) < r.id) { before = row; break; }
      tbody.insertBefore(tr, before);
    } else tbody.append(tr);
    rows.set(r.id, tr);
    if (old && old.dataset.state !== r.state) ctx.announce(`Run #${r.id} is now ${stateLabel(r.state)}.`);
    empty.hidden = rows.size > 0;
    table.hidden = rows.size === 0;
  };
  const empty = emptyState('No runs match.', filter.state || filter.automation || filter.agent ? 'Try other filters, or clear them.' : 'Runs show up here live as automations fire.');
  const table = h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'runs-table' },
    h('caption', { class: 'sr-only' }, 'Runs, newest first, updated live'),
    h('thead', null, h('tr', null, ...['Run', 'Status', 'Automation', 'Agent', 'Trigger', 'Created', 'Took'].map((c) => h('th', { scope: 'col' }, c)))),
    tbody));

  // Open the stream first, then load the list: nothing is missed.
  const close = runEvents(tenant, (r) => upsert(r, { top: true }), setLive);
  ctx.onCleanup(close);

  const [automations, agents] = await Promise.all([
    api(tpath(tenant, '/automations'), { signal }).catch(() => []),
    api(tpath(tenant, '/agents'), { signal }).catch(() => []),
  ]);

  let cursor = null;
  const more = h('button', { type: 'button', class: 'btn', hidden: true, onclick: () => load() }, 'Load older runs');
  const loadError = h('div');
  async function load() {
    more.disabled = true;
    try {
      const q = new URLSearchParams({ limit: '50' });
      for (const [k, v] of Object.entries(filter)) if (v) q.set(k, v);
      if (cursor) q.set('cursor', cursor);
      const page = await api(tpath(tenant, `/runs?${q}`), { signal });
      for (const r of page.items) if (!rows.has(r.id)) upsert(r);
      cursor = page.next_cursor || null;
      more.hidden = !cursor;
      replace(loadError);
    } catch (e) {
      if (e.name !== 'AbortError') replace(loadError, errorBox(e.message));
    } finally {
      more.disabled = false;
      empty.hidden = rows.size > 0;
      table.hidden = rows.size === 0;
    }
  }

  const select = (name, label, options, value) => h('div', { class: 'field' },
    h('label', { for: `filter-${name}` }, label),
    h('select', { id: `filter-${name}`, name }, options.map(([v, l]) => h('option', { value: v, selected: v === value }, l))));
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter runs', onsubmit: (e) => {
    e.preventDefault();
    const data = new FormData(form);
    ctx.navigate(link('runs', { state: data.get('state'), automation: data.get('automation'), agent: data.get('agent') }));
  } },
  select('state', 'Status', STATE_OPTIONS, filter.state),
  select('automation', 'Automation', [['', 'Any automation'], ...automations.map((a) => [a.name, a.name])], filter.automation),
  select('agent', 'Agent', [['', 'Any agent'], ...agents.map((a) => [a.name, a.name])], filter.agent),
  h('div', { class: 'field field-actions' }, h('button', { type: 'submit', class: 'btn' }, 'Apply filters'),
    filter.state || filter.automation || filter.agent ? h('a', { href: link('runs'), class: 'btn btn-ghost' }, 'Clear') : null));
  // Changing a select applies at once too.
  form.addEventListener('change', () => form.requestSubmit());

  replace(ctx.main,
    h('div', { class: 'page-head page-head-row' }, h('div', null, h('h1', null, 'Runs'), h('p', { class: 'muted' }, 'Every run of your team, newest first. The list updates by itself.')), live),
    form, loadError, empty, table, h('div', { class: 'actions' }, more));
  await load();
}

function treeNode(n, link, current) {
  return h('li', { class: 'tree-node' },
    h('div', { class: ['tree-item', n.id === current ? 'tree-current' : ''] },
      h('a', { href: link(`runs/${n.id}`), 'aria-current': n.id === current ? 'page' : false }, `#${n.id}`), ' ',
      h('strong', null, n.agent), ' ', stateBadge(n.state),
      h('span', { class: 'tree-cost' }, `cost ${usd(n.cost)}`, n.children.length ? ` · with its delegates ${usd(n.tree_cost)}` : '', ` · fuel ${num(n.fuel)}`),
      n.error ? h('div', { class: 'tree-error' }, n.error) : null),
    n.children.length ? h('ul', { class: 'tree' }, n.children.map((c) => treeNode(c, link, current))) : null);
}

function findNode(n, id) {
  if (n.id === id) return n;
  for (const c of n.children) {
    const f = findNode(c, id);
    if (f) return f;
  }
  return null;
}

export async function runPage(ctx) {
  const { tenant, signal, link, params } = ctx;
  const id = Number(params[0]);
  if (!Number.isInteger(id) || id <= 0) return ctx.notYours(null, `Run “${params[0]}”`);
  const [live, setLive] = liveBadge();
  const body = h('div');
  let lastState = null;
  let busy = false;
  const treeIds = new Set();

  async function load() {
    const [run, logs, tree, decision, charges] = await Promise.all([
      api(tpath(tenant, `/runs/${id}`), { signal }),
      api(tpath(tenant, `/runs/${id}/logs`), { signal }).catch(() => ({ lines: [] })),
      api(tpath(tenant, `/runs/${id}/tree`), { signal }).catch(() => null),
      api(tpath(tenant, `/runs/${id}/decision`), { signal }).catch(() => null),
      api(tpath(tenant, `/runs/${id}/charges`), { signal }).catch(() => null),
    ]);
    lastState = run.state;
    treeIds.clear();
    if (tree) (function walk(n) { treeIds.add(n.id); n.children.forEach(walk); }(tree));
    draw(run, logs, tree, decision, charges);
    return run;
  }

  const msg = h('div', { class: 'form-error', role: 'alert' });
  function draw(run, logs, tree, decision, charges) {
    const calls = (charges || []).filter((c) => c.kind === 'ai');
    const self = tree ? findNode(tree, id) : null;
    const actions = [];
    if (ctx.canWrite && ['scheduled', 'available', 'running', 'failed'].includes(run.state)) {
      actions.push(h('button', { type: 'button', class: 'btn btn-danger', onclick: (e) => act(e.target, 'cancel', 'Cancel requested.') }, 'Cancel run'));
    }
    if (ctx.canWrite && ['dead', 'cancelled'].includes(run.state)) {
      actions.push(h('button', { type: 'button', class: 'btn btn-primary', onclick: (e) => act(e.target, 'retry', 'Retry queued.') }, 'Retry run'));
    }
    if (run.state === 'awaiting_approval') actions.push(h('a', { href: link('approvals'), class: 'btn btn-primary' }, 'Review in the approvals inbox'));

    replace(body,
      h('div', { class: 'run-status' }, h('span', { id: 'run-state' }, stateBadge(run.state)), actions.length ? h('div', { class: 'actions' }, actions) : null),
      msg,
      run.error ? errorBox(run.error, run.error_kind ? `Failed (${run.error_kind}):` : 'Failed:') : null,
      h('div', { class: 'grid' },
        h('section', { class: 'card card-wide' }, h('h2', { class: 'card-title' }, 'Details'), facts([
          ['Agent', h('a', { href: link(`agents/${seg(run.agent)}`) }, run.agent)],
          ['Automation', run.automation || '—'],
          ['Started by', run.trigger],
          ['Attempt', `${run.attempt} of ${run.max_attempts}`],
          ['Created', timeEl(run.created_at)],
          ['Started', timeEl(run.started_at)],
          ['Finished', timeEl(run.finished_at)],
          ['Took', duration(run.started_at, run.finished_at)],
          self ? ['Cost', usd(self.cost)] : null,
          self && self.children.length ? ['Cost with delegates', usd(self.tree_cost)] : null,
          self ? ['Fuel burnt', num(self.fuel)] : null,
        ], 'facts-row')),
        decision ? h('section', { class: 'card card-wide' }, h('h2', { class: 'card-title' }, 'Decision'), facts([
          ['Decision', decision.decision === 'approved' ? badge('Approved', 'ok', '✓') : badge('Rejected', 'neutral', '⊘')],
          ['By key', decision.decided_by],
          ['At', timeEl(decision.decided_at)],
          decision.reason ? ['Reason', decision.reason] : null,
          decision.original_output ? ['Edited', 'yes: the output below is the edited one'] : null,
        ], 'facts-row')) : null,
        h('section', { class: 'card card-wide' }, h('h2', { class: 'card-title' }, 'Input'), pre(run.input)),
        h('section', { class: 'card card-wide' }, h('h2', { class: 'card-title' }, 'Output'),
          run.output ? pre(run.output) : emptyState(FINAL_STATES.has(run.state) ? 'No output.' : 'No output yet.', FINAL_STATES.has(run.state) ? null : 'It appears here when the run finishes.')),
        h('section', { class: 'card card-wide' }, h('h2', { class: 'card-title' }, 'Log'),
          logs.lines.length ? h('ol', { class: 'log' }, logs.lines.map((l) => h('li', { class: `log-${l.level}` },
            h('span', { class: 'log-at' }, `+${(l.at_ms / 1000).toFixed(2)}s`), h('span', { class: `log-level` }, l.level), h('span', { class: 'log-msg' }, l.message))))
            : emptyState('No log lines.', FINAL_STATES.has(run.state) ? 'This run wrote nothing to its log.' : 'Log lines are recorded when an attempt ends.')),
        h('section', { class: 'card card-wide' }, h('h2', { class: 'card-title' }, 'Delegation tree'),
          tree && (tree.children.length || tree.id !== id)
            ? h('ul', { class: 'tree tree-root run-tree' }, treeNode(tree, link, id))
            : emptyState('No delegation.', 'This run did not hand work to other agents.')),
        h('section', { class: 'card card-wide' }, h('h2', { class: 'card-title' }, 'AI calls'),
          calls.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'ai-calls' },
            h('caption', { class: 'sr-only' }, 'The AI calls this run made, with tokens and cost'),
            h('thead', null, h('tr', null, ...['When', 'Attempt', 'Model', 'Input tokens', 'Output tokens', 'Cached tokens', 'Cost'].map((c) => h('th', { scope: 'col' }, c)))),
            h('tbody', null, calls.map((c) => h('tr', null,
              h('td', null, timeEl(c.at)), h('td', null, String(c.attempt)), h('td', null, `${c.model || '—'} (${c.provider || '—'})`),
              h('td', null, num(c.input_tokens), c.usage_estimated ? ' (estimated)' : ''), h('td', null, num(c.output_tokens)),
              h('td', null, num(c.cache_read_tokens + c.cache_write_tokens)), h('td', null, usd(c.cost_usd)))))))
            : emptyState('No AI calls.', FINAL_STATES.has(run.state) ? 'This run did not ask a model anything.' : 'Calls appear here as the run makes them.'))));
  }

  async function act(button, what, done) {
    button.disabled = true;
    replace(msg);
    try {
      await api(tpath(tenant, `/runs/${id}/${what}`), { method: 'POST' });
      ctx.announce(done);
      await load();
    } catch (e) {
      replace(msg, e.message);
      button.disabled = false;
    }
  }

  let pending = false;
  async function refresh() {
    if (busy) {
      pending = true;
      return;
    }
    busy = true;
    try {
      do {
        pending = false;
        await load();
      } while (pending);
    } catch { /* shown on the next load */ } finally {
      busy = false;
    }
  }
  const close = runEvents(tenant, (r) => {
    if (r.id === id && r.state !== lastState) {
      ctx.announce(`Run #${id} is now ${stateLabel(r.state)}.`);
      refresh();
    } else if (r.id !== id && treeIds.has(r.id)) refresh();
  }, setLive);
  ctx.onCleanup(close);

  try {
    await load();
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return ctx.notYours(e, `Run #${id}`);
    throw e;
  }
  replace(ctx.main,
    h('p', { class: 'crumbs' }, h('a', { href: link('runs') }, 'Runs'), ' / ', `#${id}`),
    h('div', { class: 'page-head page-head-row' }, h('h1', null, `Run #${id}`), live),
    body);
}
