// Approvals inbox: each held output, or text an agent asked about, editable in place, approved or
// rejected. An output is JSON; a request's text is plain text and its answer goes back to the agent.

import { api, tpath, seg } from '../api.js';
import { h, replace, timeEl, emptyState, json, uid } from '../dom.js';

export async function approvalsPage(ctx) {
  const { tenant, signal, link } = ctx;
  const pending = await api(tpath(tenant, '/approvals'), { signal });
  const list = h('div', { class: 'stack' });
  const empty = emptyState('Nothing waiting for approval.', 'When an automation’s output needs a person, it waits here until you approve, edit or reject it.');
  const sync = () => {
    empty.hidden = list.childElementCount > 0;
  };

  const item = (p) => {
    const taId = uid('out');
    const reasonId = uid('reason');
    const errId = uid('err');
    const isRequest = p.kind === 'request';
    const original = isRequest ? String(p.output ?? '') : json(p.output);
    const textarea = h('textarea', { id: taId, class: 'code-input', rows: String(Math.min(18, Math.max(6, original.split('\n').length + 1))), spellcheck: 'false', 'aria-describedby': `${taId}-help ${errId}`, readOnly: !ctx.canWrite }, original);
    textarea.value = original;
    const reason = h('input', { id: reasonId, type: 'text', maxlength: '500', autocomplete: 'off', disabled: !ctx.canWrite });
    const error = h('div', { id: errId, class: 'form-error', role: 'alert' });
    const buttons = [];
    const done = (text) => {
      ctx.announce(text);
      art.remove();
      sync();
      ctx.refreshApprovals();
    };
    const approve = h('button', { type: 'button', class: 'btn btn-primary', disabled: !ctx.canWrite, onclick: async () => {
      replace(error);
      let body = {};
      if (isRequest && textarea.value !== original) {
        body = { output: textarea.value };
      } else if (!isRequest && textarea.value.trim() !== original.trim()) {
        let parsed;
        try {
          parsed = JSON.parse(textarea.value);
        } catch (e) {
          textarea.setAttribute('aria-invalid', 'true');
          replace(error, `The edited output is not valid JSON: ${e.message}`);
          textarea.focus();
          return;
        }
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
          textarea.setAttribute('aria-invalid', 'true');
          replace(error, 'The output must be a JSON object ({ … }).');
          textarea.focus();
          return;
        }
        body = { output: parsed };
      }
      textarea.removeAttribute('aria-invalid');
      buttons.forEach((b) => { b.disabled = true; });
      try {
        await api(tpath(tenant, `/runs/${p.run_id}/approve`), { method: 'POST', body });
        done(`Run #${p.run_id} approved${body.output ? ' with your edits' : ''}.`);
      } catch (e) {
        replace(error, e.message);
        buttons.forEach((b) => { b.disabled = false; });
      }
    } }, 'Approve');
    const reject = h('button', { type: 'button', class: 'btn btn-danger', disabled: !ctx.canWrite, onclick: async () => {
      replace(error);
      buttons.forEach((b) => { b.disabled = true; });
      try {
        await api(tpath(tenant, `/runs/${p.run_id}/reject`), { method: 'POST', body: { reason: reason.value.trim() || null } });
        done(`Run #${p.run_id} rejected.`);
      } catch (e) {
        replace(error, e.message);
        buttons.forEach((b) => { b.disabled = false; });
      }
    } }, 'Reject');
    const reset = h('button', { type: 'button', class: 'btn btn-ghost', disabled: !ctx.canWrite, onclick: () => {
      textarea.value = original;
      textarea.removeAttribute('aria-invalid');
      replace(error);
    } }, 'Undo edits');
    buttons.push(approve, reject, reset);
    const art = h('article', { class: 'card approval', dataset: { run: String(p.run_id) }, 'aria-labelledby': `appr-${p.run_id}` },
      h('div', { class: 'automation-head' },
        h('div', null,
          isRequest
            ? h('h2', { id: `appr-${p.run_id}`, class: 'card-title' }, `${p.title || 'Request'}: asked by `, h('a', { href: link(`runs/${p.run_id}`) }, `run #${p.run_id}`))
            : h('h2', { id: `appr-${p.run_id}`, class: 'card-title' }, `${p.automation || 'Run'}: output of `, h('a', { href: link(`runs/${p.run_id}`) }, `run #${p.run_id}`)),
          h('p', { class: 'muted' }, 'By ', h('a', { href: link(`agents/${seg(p.agent)}`) }, p.agent), isRequest ? ', asked ' : ', finished ', timeEl(p.finished_at),
            isRequest ? '. The agent waits for your answer and goes on with it.'
              : p.deliver_to ? ['. Once approved it is added to the ', h('a', { href: link(`registries/${seg(p.deliver_to)}`) }, p.deliver_to), ' registry.'] : '.'))),
      h('div', { class: 'field' },
        h('label', { for: taId }, isRequest ? 'Text to approve' : 'Output (JSON)'),
        h('p', { id: `${taId}-help`, class: 'hint' }, ctx.canWrite ? 'Edit it here before approving if something should change; the agent’s version is kept on record.' : 'Your key can read only.'),
        textarea),
      h('div', { class: 'field' }, h('label', { for: reasonId }, 'Reason for rejecting (optional)'), reason),
      error,
      h('div', { class: 'actions' }, approve, reject, reset));
    return art;
  };
  for (const p of pending) list.append(item(p));
  sync();
  replace(ctx.main,
    h('div', { class: 'page-head' }, h('h1', null, 'Approvals'), h('p', { class: 'muted' }, 'Outputs that wait for a person before anything is done with them, and questions agents asked. Oldest first.')),
    empty, list);
}
