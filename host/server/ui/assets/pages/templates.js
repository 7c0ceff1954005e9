// Template gallery: cards per template, and a parameter form generated from its typed
// parameters (prompt, default, pattern); install with one click.

import { api, seg, tpath, ApiError } from '../api.js';
import { h, replace, emptyState, errorBox, card, badge } from '../dom.js';
import { cronToWords, intervalToWords } from '../cron.js';

/** "weekly: cron \"0 9 * * 1\" Europe/Berlin" → ["weekly", "every Monday at 09:00 Europe/Berlin"]. */
function automationWords(line) {
  const m = /^([^:]+):\s*(.*)$/.exec(line);
  if (!m) return [line, ''];
  const [, name, rest] = m;
  const c = /^cron "([^"]+)"\s*(.*)$/.exec(rest);
  if (c) {
    const w = cronToWords(c[1]);
    return [name, w ? `${w} ${c[2] || 'UTC'}`.trim() : rest];
  }
  const i = /^every (.+)$/.exec(rest);
  if (i) return [name, intervalToWords(i[1])];
  if (rest === 'webhook') return [name, 'when a webhook delivery arrives'];
  if (rest === 'manual') return [name, 'only when run by hand'];
  return [name, rest];
}

/**
 * Browsers compile the pattern attribute with the `v` flag, which wants some characters escaped
 * inside classes (`[A-Z_+-]` is an error there). Returns a `v`-safe version of a pattern, or
 * null when it cannot be made one.
 */
export function htmlPattern(p) {
  const ok = (x) => {
    try {
      new RegExp(`^(?:${x})$`, 'v');
      return true;
    } catch {
      return false;
    }
  };
  if (ok(p)) return p;
  let out = '';
  let inClass = false;
  for (let i = 0; i < p.length; i += 1) {
    const c = p[i];
    if (c === '\\') {
      out += c + (p[i + 1] || '');
      i += 1;
    } else if (!inClass && c === '[') {
      inClass = true;
      out += c;
      if (p[i + 1] === '^') {
        out += '^';
        i += 1;
      }
    } else if (inClass && c === ']') {
      inClass = false;
      out += c;
    } else if (inClass && c === '-') {
      const prev = out[out.length - 1];
      const next = p[i + 1];
      const range = prev && prev !== '[' && prev !== '^' && next && next !== ']';
      out += range ? '-' : '\\-';
    } else if (inClass && '(){}/|'.includes(c)) {
      out += `\\${c}`;
    } else out += c;
  }
  return ok(out) ? out : null;
}

function matches(pattern, value) {
  try {
    return new RegExp(`^(?:${pattern})$`, 'u').test(value);
  } catch {
    return true; // the server checks it anyway
  }
}

function capabilities(t) {
  return h('div', { class: 'caps' },
    h('h3', { class: 'sub' }, 'What it asks for'),
    h('ul', { class: 'caps-list' },
      h('li', null, h('strong', null, 'AI models: '), t.models.length ? t.models.join(', ') : 'none'),
      h('li', null, h('strong', null, 'Outside hosts it may reach: '), t.hosts.length ? t.hosts.join(', ') : 'none (it never leaves the platform)'),
      h('li', null, h('strong', null, 'Registries: '), t.registries.length ? t.registries.join(', ') : 'none')));
}

export async function templatesPage(ctx) {
  const { signal, link } = ctx;
  const templates = await api('templates', { signal });
  replace(ctx.main,
    h('div', { class: 'page-head' }, h('h1', null, 'Templates'), h('p', { class: 'muted' }, 'Ready-made teams for a kind of business. Pick one, answer a few questions, and it is installed into your account.')),
    templates.length ? h('div', { class: 'grid grid-cards' }, templates.map((t) => h('article', { class: 'card template-card', 'aria-labelledby': `tpl-${t.id}` },
      h('h2', { id: `tpl-${t.id}`, class: 'card-title' }, t.name),
      h('p', { class: 'lead' }, t.summary),
      h('p', { class: 'muted' }, `${t.agents.length} agents · ${t.automations.length} automations`),
      capabilities(t),
      h('a', { href: link(`templates/${seg(t.id)}`), class: 'btn btn-primary', 'aria-label': `Set up ${t.name}` }, 'Set up'))))
      : emptyState('No templates available.', 'The operator has not installed any template bundles on this server.'));
}

export async function templatePage(ctx) {
  const { tenant, signal, link, params } = ctx;
  let t;
  try {
    t = await api(`templates/${seg(params[0])}`, { signal });
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return ctx.notYours(e, `Template “${params[0]}”`);
    throw e;
  }
  const result = h('div', { id: 'install-result' });
  const inputs = [];
  const fields = t.parameters.map((p) => {
    const id = `param-${p.name}`;
    const required = p.default === undefined || p.default === null;
    const pattern = p.pattern ? htmlPattern(p.pattern) : null;
    const input = h('input', {
      id, name: p.name, type: 'text', value: p.default ?? '', required, autocomplete: 'off',
      pattern: pattern || undefined, 'aria-describedby': `${id}-hint ${id}-err`, disabled: !ctx.canWrite,
    });
    const err = h('p', { class: 'field-error', id: `${id}-err` });
    inputs.push({ p, input, err, required });
    return h('div', { class: 'field' },
      h('label', { for: id }, p.prompt || p.name, required ? h('span', { class: 'req' }, ' (required)') : null),
      h('p', { class: 'hint', id: `${id}-hint` }, `Parameter “${p.name}”${p.default ? `; default: ${p.default}` : ''}.`),
      input, err);
  });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', disabled: !ctx.canWrite }, `Install into ${ctx.tenantInfo ? ctx.tenantInfo.name : tenant}`);
  const form = h('form', { class: 'install-form', novalidate: true, 'aria-labelledby': 'install-title', onsubmit: async (e) => {
    e.preventDefault();
    replace(result);
    let firstBad = null;
    const values = {};
    for (const { p, input, err, required } of inputs) {
      const v = input.value.trim();
      replace(err);
      input.removeAttribute('aria-invalid');
      let problem = null;
      if (!v && required) problem = `“${p.name}” is required: ${p.prompt || 'enter a value'}.`;
      else if (v && p.pattern && !matches(p.pattern, v)) problem = `“${p.name}” does not have the expected form (pattern ${p.pattern}).`;
      if (problem) {
        replace(err, problem);
        input.setAttribute('aria-invalid', 'true');
        firstBad = firstBad || { input, problem };
      }
      if (v) values[p.name] = v;
    }
    if (firstBad) {
      replace(result, errorBox(firstBad.problem, 'Check the form:'));
      firstBad.input.focus();
      return;
    }
    submit.disabled = true;
    replace(submit, 'Installing…');
    try {
      const res = await api(tpath(tenant, `/templates/${seg(t.id)}/install`), { method: 'POST', body: { parameters: values } });
      const made = res.changes.filter((c) => c.kind !== 'unchanged');
      const words = (kind, object) => made.filter((c) => c.kind === kind && c.object === object).length;
      replace(result, h('div', { class: 'alert alert-ok', role: 'status' },
        h('strong', null, `${t.name} is installed.`), ' ',
        res.changed ? `${words('created', 'agent')} agents and ${words('created', 'automation')} automations created, ${made.filter((c) => c.kind === 'updated').length} updated (configuration version ${res.version}).` : 'Nothing changed: it was already installed with these answers.',
        ' ', h('a', { href: link('team') }, 'See your team'), ' · ', h('a', { href: link('automations') }, 'See the automations')));
      ctx.announce(`${t.name} installed.`);
      result.querySelector('a').focus();
    } catch (err) {
      if (err.name === 'AbortError') return;
      const m = /parameter `([^`]+)`/.exec(err.message);
      const hit = m && inputs.find((i) => i.p.name === m[1]);
      if (hit) {
        replace(hit.err, err.message);
        hit.input.setAttribute('aria-invalid', 'true');
      }
      const title = /plan/i.test(err.message) ? 'Your plan does not allow this:' : 'The template could not be installed:';
      replace(result, errorBox(err.message, title));
      (hit ? hit.input : result).focus?.();
    } finally {
      submit.disabled = !ctx.canWrite;
      replace(submit, `Install into ${ctx.tenantInfo ? ctx.tenantInfo.name : tenant}`);
    }
  } }, fields, h('div', { class: 'actions' }, submit), result);

  replace(ctx.main,
    h('p', { class: 'crumbs' }, h('a', { href: link('templates') }, 'Templates'), ' / ', t.name),
    h('div', { class: 'page-head' }, h('h1', null, t.name), h('p', { class: 'lead' }, t.summary)),
    h('div', { class: 'grid grid-2' },
      card('What it does', h('p', { class: 'prose' }, t.description), capabilities(t)),
      card('The team',
        h('ul', { class: 'rows' }, t.agents.map((a) => h('li', { class: 'row-item' }, h('strong', null, a.name), h('span', { class: 'muted' }, a.role), a.reports_to ? h('span', { class: 'muted' }, `reports to ${a.reports_to}`) : badge('Leads', 'info')))),
        h('h3', { class: 'sub' }, 'Automations'),
        h('ul', { class: 'plain-list' }, t.automations.map((a) => {
          const [n, w] = automationWords(a);
          return h('li', null, h('strong', null, n), w ? `: ${w}` : '');
        }))),
      h('section', { class: 'card card-wide', 'aria-labelledby': 'install-title' },
        h('h2', { id: 'install-title', class: 'card-title' }, 'Set it up'),
        ctx.canWrite ? h('p', { class: 'muted' }, 'Installing adds these agents and automations to your account (or updates them if the template is already installed). Your plan’s limits are checked first.')
          : h('p', { class: 'muted' }, 'Your key can read only, so it cannot install templates.'),
        form)));
}
