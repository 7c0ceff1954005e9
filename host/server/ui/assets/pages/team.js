// The team as a tree, an agent's page, and a chat with the agent (streamed replies).

import { api, seg, tpath, readEventStream, ApiError } from '../api.js';
import { h, replace, card, usd, timeEl, stateBadge, badge, emptyState, errorBox, facts, pre, relative, uid } from '../dom.js';
import { triggerToWords } from '../cron.js';

/** The badge of an agent's status (the team endpoint derives it from its latest run). */
function agentStatus(status) {
  switch (status) {
    case 'never_run': return badge('Idle, never run', 'neutral', '○');
    case 'working': return badge('Working', 'info', '●');
    case 'queued': return badge('Queued', 'neutral', '◷');
    case 'failing': return badge('Last run failed', 'bad', '✕');
    case 'awaiting_approval': return badge('Waiting for approval', 'warn', '⏸');
    default: return badge('Idle', 'ok', '✓');
  }
}

export async function teamPage(ctx) {
  const { tenant, signal, link } = ctx;
  // One call: each member comes with its status, latest run and cost this month.
  const team = await api(tpath(tenant, '/team'), { signal });

  const member = (m, depth) => {
    const last = m.last_run;
    return h('li', { class: 'tree-node' },
      h('article', { class: ['agent-card', depth === 0 ? 'agent-lead' : ''], 'aria-labelledby': `agent-${m.name}` },
        h('div', { class: 'agent-head' },
          h('h2', { id: `agent-${m.name}`, class: 'agent-name' }, h('a', { href: link(`agents/${seg(m.name)}`) }, m.name)),
          agentStatus(m.status)),
        h('p', { class: 'agent-role' }, m.role),
        facts([
          ['Model', m.model || 'default (offline)'],
          ['Last run', last ? h('span', null, h('a', { href: link(`runs/${last.id}`) }, `#${last.id}`), ' ', stateBadge(last.state), ' ', h('span', { class: 'muted' }, relative(last.created_at))) : 'never'],
          ['Cost this month', usd(m.cost_this_month_usd)],
          m.delegates.length ? ['Hands work to', m.delegates.join(', ')] : null,
        ])),
      m.reports.length ? h('ul', { class: 'tree' }, m.reports.map((r) => member(r, depth + 1))) : null);
  };

  replace(ctx.main,
    h('div', { class: 'page-head' }, h('h1', null, 'Team'), h('p', { class: 'muted' }, 'Who does what: the director hands work to the specialists. Open an agent to see its runs or chat with it.')),
    team.length ? h('ul', { class: 'tree tree-root', 'aria-label': 'Team tree' }, team.map((m) => member(m, 0)))
      : emptyState('No agents yet.', 'Install a template to get a ready-made team.', h('a', { href: link('templates'), class: 'btn' }, 'Browse templates')));
}

export async function agentPage(ctx) {
  const { tenant, signal, link, params } = ctx;
  const name = params[0];
  let agent;
  try {
    agent = await api(tpath(tenant, `/agents/${seg(name)}`), { signal });
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return ctx.notYours(e, `Agent “${name}”`);
    throw e;
  }
  const [runs, automations] = await Promise.all([
    api(tpath(tenant, `/runs?agent=${seg(name)}&limit=20`), { signal }),
    api(tpath(tenant, '/automations'), { signal }).catch(() => []),
  ]);
  const mine = automations.filter((a) => a.agent === name);

  const runsTable = runs.items.length
    ? h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
      h('caption', { class: 'sr-only' }, `Latest runs of ${name}`),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Run'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Automation'), h('th', { scope: 'col' }, 'Started'))),
      h('tbody', null, runs.items.map((r) => h('tr', null,
        h('td', null, h('a', { href: link(`runs/${r.id}`) }, `#${r.id}`)),
        h('td', null, stateBadge(r.state)),
        h('td', null, r.automation || h('span', { class: 'muted' }, r.trigger)),
        h('td', null, timeEl(r.created_at)))))))
    : emptyState('No runs yet.', 'This agent has not run.');

  const chat = h('section', { class: 'card card-wide', 'aria-labelledby': 'chat-title' });
  replace(ctx.main,
    h('p', { class: 'crumbs' }, h('a', { href: link('team') }, 'Team'), ' / ', name),
    h('div', { class: 'page-head' }, h('h1', null, name), h('p', { class: 'muted' }, agent.role)),
    h('div', { class: 'grid grid-2' },
      card('About',
        facts([
          ['Model', agent.model || 'default (offline)'],
          agent.fallbacks.length ? ['Fallback models', agent.fallbacks.join(', ')] : null,
          ['Reports to', agent.reports_to ? h('a', { href: link(`agents/${seg(agent.reports_to)}`) }, agent.reports_to) : 'nobody (top of the team)'],
          ['Plugin', agent.plugin],
          ['Monthly budget', agent.monthly_budget ? usd(agent.monthly_budget) : 'none of its own'],
          ['Outside hosts', agent.hosts.length ? agent.hosts.join(', ') : 'none'],
          ['Registries', Object.keys(agent.registries).length ? Object.entries(agent.registries).map(([r, m]) => `${r} (${m})`).join(', ') : 'none'],
        ]),
        agent.instructions ? h('div', null, h('h3', { class: 'sub' }, 'Instructions'), h('p', { class: 'prose' }, agent.instructions)) : null),
      card('Automations',
        mine.length ? h('ul', { class: 'rows' }, mine.map((a) => h('li', { class: 'row-item' }, h('strong', null, a.name), h('span', { class: 'muted' }, triggerToWords(a.trigger, a.schedule)), a.enabled ? badge('On', 'ok', '✓') : badge('Off', 'neutral', '○'))))
          : emptyState('No automation uses this agent.', 'It still works when another agent delegates to it, or when you chat with it.'),
        h('a', { href: link('automations'), class: 'card-link' }, 'Manage automations')),
      chat,
      h('section', { class: 'card card-wide', 'aria-labelledby': 'runs-title' }, h('h2', { id: 'runs-title', class: 'card-title' }, 'Latest runs'), runsTable,
        h('a', { href: link('runs', { agent: name }), class: 'card-link' }, 'All runs of this agent'))));
  await chatPanel(ctx, chat, name);
}

async function chatPanel(ctx, el, agent) {
  const { tenant, signal } = ctx;
  const log = h('div', { class: 'chat-log', role: 'log', 'aria-live': 'polite', 'aria-label': `Conversation with ${agent}`, tabindex: '0' });
  const inputId = uid('chat');
  const input = h('textarea', { id: inputId, name: 'message', rows: '2', required: true, placeholder: `Ask ${agent} something…`, disabled: !ctx.canWrite });
  const send = h('button', { type: 'submit', class: 'btn btn-primary', disabled: !ctx.canWrite }, 'Send');
  const error = h('div', { class: 'form-error', role: 'alert' });
  let thread = null;

  const bubble = (role, text) => {
    const body = h('div', { class: 'bubble-text' }, text);
    const b = h('div', { class: `bubble bubble-${role}` }, h('span', { class: 'bubble-who' }, role === 'user' ? 'You' : agent), body);
    log.append(b);
    log.scrollTop = log.scrollHeight;
    return body;
  };

  try {
    const threads = await api(tpath(tenant, `/agents/${seg(agent)}/chats`), { signal });
    if (threads.length) {
      thread = threads[0];
      const lines = await api(tpath(tenant, `/chats/${thread.id}`), { signal });
      for (const l of lines) bubble(l.role === 'user' ? 'user' : 'assistant', l.content);
    }
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    replace(error, e.message);
  }
  if (!log.childElementCount) log.append(h('p', { class: 'muted chat-empty' }, `No messages yet. Say hello to ${agent}.`));

  const newThread = h('button', { type: 'button', class: 'btn btn-ghost', disabled: !ctx.canWrite, onclick: () => {
    thread = null;
    replace(log, h('p', { class: 'muted chat-empty' }, 'A new conversation starts with your next message.'));
    input.focus();
  } }, 'New conversation');

  const form = h('form', { class: 'chat-form', onsubmit: async (e) => {
    e.preventDefault();
    const content = input.value.trim();
    if (!content) {
      replace(error, 'Write a message first.');
      input.focus();
      return;
    }
    replace(error);
    send.disabled = true;
    input.disabled = true;
    try {
      if (!thread) thread = await api(tpath(tenant, `/agents/${seg(agent)}/chats`), { method: 'POST' });
      const empty = log.querySelector('.chat-empty');
      if (empty) empty.remove();
      bubble('user', content);
      input.value = '';
      const reply = bubble('assistant', '');
      reply.parentElement.classList.add('streaming');
      reply.parentElement.setAttribute('aria-busy', 'true');
      const res = await api(tpath(tenant, `/chats/${thread.id}/messages`), { method: 'POST', body: { content }, raw: true, accept: 'text/event-stream' });
      let failed = null;
      await readEventStream(res, (name, data) => {
        if (name === 'delta') {
          reply.textContent += data && data.text ? data.text : '';
          log.scrollTop = log.scrollHeight;
        } else if (name === 'done') {
          if (data && typeof data.content === 'string') reply.textContent = data.content;
        } else if (name === 'error') {
          failed = data && data.message ? data.message : 'The agent could not answer.';
        }
      });
      reply.parentElement.classList.remove('streaming');
      reply.parentElement.removeAttribute('aria-busy');
      reply.parentElement.dataset.done = 'true';
      if (failed) {
        reply.parentElement.classList.add('bubble-error');
        reply.textContent = `No answer: ${failed}`;
        replace(error, failed);
      } else ctx.announce(`${agent} answered.`);
    } catch (err) {
      if (err.name === 'AbortError') return;
      replace(error, err.message);
    } finally {
      send.disabled = !ctx.canWrite;
      input.disabled = !ctx.canWrite;
      input.focus();
    }
  } },
  h('label', { for: inputId }, `Message to ${agent}`),
  input,
  error,
  h('div', { class: 'actions' }, send, newThread));
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
  replace(el, h('h2', { id: 'chat-title', class: 'card-title' }, `Chat with ${agent}`),
    h('p', { class: 'muted' }, 'Replies stream in as the agent writes them. Ctrl+Enter sends.'),
    ctx.canWrite ? null : h('p', { class: 'muted' }, 'Your key can read only, so it cannot chat.'),
    log, form);
}
