// Automations: trigger in words, next run, last result, on/off, run now, tick history.

import { api, seg, tpath, runEvents } from '../api.js';
import { h, replace, timeEl, relative, stateBadge, badge, emptyState, errorBox, uid } from '../dom.js';
import { triggerToWords } from '../cron.js';

const OUTCOMES = { fired: ['Fired', 'ok', '✓'], skipped: ['Skipped', 'warn', '↷'], missed: ['Missed', 'bad', '!'] };

async function ticksTable(ctx, name, el) {
  replace(el, h('p', { class: 'loading', role: 'status' }, 'Loading history…'));
  try {
    const ticks = await api(tpath(ctx.tenant, `/automations/${seg(name)}/ticks`), { signal: ctx.signal });
    if (!ticks.length) {
      replace(el, emptyState('No ticks recorded yet.', 'Each time the trigger is due, the result is recorded here: fired (with its run), skipped or missed (with the reason).'));
      return;
    }
    replace(el, h('div', { class: 'table-wrap' }, h('table', { class: 'table table-compact' },
      h('caption', { class: 'sr-only' }, `Trigger history of ${name}`),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Due at'), h('th', { scope: 'col' }, 'Outcome'), h('th', { scope: 'col' }, 'Run or reason'))),
      h('tbody', null, ticks.slice(0, 50).map((t) => {
        const [label, tone, icon] = OUTCOMES[t.outcome] || [t.outcome, 'neutral', ''];
        return h('tr', null, h('td', null, timeEl(t.tick)), h('td', null, badge(label, tone, icon)),
          h('td', null, t.run ? h('a', { href: ctx.link(`runs/${t.run}`) }, `Run #${t.run}`) : (t.reason || '—')));
      })))));
  } catch (e) {
    if (e.name !== 'AbortError') replace(el, errorBox(e.message));
  }
}

export async function automationsPage(ctx) {
  const { tenant, signal, link } = ctx;
  const automations = await api(tpath(tenant, '/automations'), { signal });
  const last = new Map(await Promise.all(automations.map(async (a) => {
    try {
      const r = await api(tpath(tenant, `/runs?automation=${seg(a.name)}&limit=1`), { signal });
      return [a.name, r.items[0] || null];
    } catch {
      return [a.name, null];
    }
  })));
  const lastCells = new Map();

  const lastResult = (run) => (run
    ? h('span', { class: 'inline' }, stateBadge(run.state), ' ', h('a', { href: link(`runs/${run.id}`) }, `Run #${run.id}`), ' ', h('span', { class: 'muted' }, relative(run.finished_at || run.created_at)))
    : h('span', { class: 'muted' }, 'Not run yet'));

  const row = (a) => {
    const msg = h('div', { class: 'form-error', role: 'alert' });
    const lastCell = h('dd', { dataset: { lastFor: a.name } }, lastResult(last.get(a.name)));
    lastCells.set(a.name, lastCell);
    const nextCell = h('dd', null, a.enabled && a.next_run ? h('span', null, timeEl(a.next_run), ' ', h('span', { class: 'muted' }, `(${relative(a.next_run)})`)) : h('span', { class: 'muted' }, a.enabled ? 'No fixed time' : 'Switched off'));
    const switchId = uid('sw');
    const sw = h('button', {
      type: 'button', role: 'switch', id: switchId, class: 'switch', 'aria-checked': String(a.enabled),
      'aria-label': `${a.name} enabled`, disabled: !ctx.canWrite,
      onclick: async () => {
        const on = sw.getAttribute('aria-checked') !== 'true';
        sw.disabled = true;
        replace(msg);
        try {
          await api(tpath(tenant, `/automations/${seg(a.name)}/${on ? 'enable' : 'disable'}`), { method: 'POST' });
          sw.setAttribute('aria-checked', String(on));
          replace(switchText, on ? 'On' : 'Off');
          ctx.announce(`${a.name} switched ${on ? 'on' : 'off'}.`);
          try {
            const fresh = await api(tpath(tenant, `/automations/${seg(a.name)}`), { signal });
            replace(nextCell, fresh.enabled && fresh.next_run ? h('span', null, timeEl(fresh.next_run), ' ', h('span', { class: 'muted' }, `(${relative(fresh.next_run)})`)) : h('span', { class: 'muted' }, fresh.enabled ? 'No fixed time' : 'Switched off'));
          } catch { /* keep the old value */ }
        } catch (e) {
          replace(msg, e.message);
        } finally {
          sw.disabled = !ctx.canWrite;
        }
      },
    }, h('span', { class: 'switch-knob', 'aria-hidden': 'true' }));
    const switchText = h('span', { class: 'switch-text', 'aria-hidden': 'true' }, a.enabled ? 'On' : 'Off');
    const runNow = ctx.canWrite ? h('button', { type: 'button', class: 'btn btn-primary', dataset: { runNow: a.name }, onclick: async () => {
      runNow.disabled = true;
      replace(msg);
      try {
        const res = await api(tpath(tenant, `/automations/${seg(a.name)}/run`), { method: 'POST', body: {} });
        replace(lastCell, h('span', { class: 'inline' }, stateBadge('available'), ' ', h('a', { href: link(`runs/${res.run}`) }, `Run #${res.run}`), ' ', h('span', { class: 'muted' }, 'just now')));
        lastCell.dataset.run = String(res.run);
        ctx.announce(`${a.name}: run #${res.run} queued.`);
      } catch (e) {
        replace(msg, e.message);
      } finally {
        runNow.disabled = false;
      }
    } }, 'Run now') : null;
    const history = h('div', { class: 'ticks' });
    const details = h('details', { class: 'disclosure', ontoggle: () => {
      if (details.open && !history.dataset.loaded) {
        history.dataset.loaded = '1';
        ticksTable(ctx, a.name, history);
      }
    } }, h('summary', null, 'Trigger history (fired, skipped, missed)'), history);

    return h('article', { class: 'card automation', dataset: { automation: a.name }, 'aria-labelledby': `auto-${a.name}` },
      h('div', { class: 'automation-head' },
        h('div', null,
          h('h2', { id: `auto-${a.name}`, class: 'card-title' }, a.name),
          h('p', { class: 'trigger-words' }, triggerToWords(a.trigger, a.schedule))),
        h('div', { class: 'automation-controls' },
          h('div', { class: 'switch-wrap' }, sw, switchText),
          runNow)),
      h('dl', { class: 'facts facts-row' },
        h('div', { class: 'fact' }, h('dt', null, 'Agent'), h('dd', null, h('a', { href: link(`agents/${seg(a.agent)}`) }, a.agent))),
        h('div', { class: 'fact' }, h('dt', null, 'Next run'), nextCell),
        h('div', { class: 'fact' }, h('dt', null, 'Last result'), lastCell),
        a.approval ? h('div', { class: 'fact' }, h('dt', null, 'Approval'), h('dd', null, badge('Output waits for approval', 'warn', '⏸'))) : null,
        h('div', { class: 'fact' }, h('dt', null, 'If still running'), h('dd', null, { skip: 'skip the new run', queue: 'queue it', allow: 'run both' }[a.overlap] || a.overlap))),
      msg,
      details);
  };

  // Live: last results follow the run events.
  const close = runEvents(tenant, (run) => {
    if (!run.automation || !lastCells.has(run.automation)) return;
    const cell = lastCells.get(run.automation);
    const shown = Number(cell.dataset.run || (last.get(run.automation) || {}).id || 0);
    if (run.id >= shown) {
      cell.dataset.run = String(run.id);
      replace(cell, lastResult(run));
    }
  });
  ctx.onCleanup(close);

  replace(ctx.main,
    h('div', { class: 'page-head' }, h('h1', null, 'Automations'),
      h('p', { class: 'muted' }, 'Each automation is an agent with a trigger. Switch one off to pause it, or run it now.'),
      ctx.canWrite ? null : h('p', { class: 'muted' }, 'Your key can read only: switches and buttons are disabled.')),
    automations.length ? h('div', { class: 'stack' }, automations.map(row))
      : emptyState('No automations yet.', 'Install a template to get a team with ready-made automations.', h('a', { href: link('templates'), class: 'btn' }, 'Browse templates')));
}
