// Registries: the tenant's typed tables. Browse, search with filters, add and edit rows; the
// API's validation messages are shown next to the form and the field they name.

import { api, seg, tpath, ApiError } from '../api.js';
import { h, replace, emptyState, timeEl, errorBox, card, uid } from '../dom.js';

const TYPE_WORDS = { string: 'text', integer: 'whole number', number: 'number', boolean: 'yes / no', date: 'date', datetime: 'date and time' };
const OPS = [['contains', 'contains'], ['eq', 'is'], ['ne', 'is not'], ['gt', 'is more than'], ['ge', 'is at least'], ['lt', 'is less than'], ['le', 'is at most']];

export async function registriesPage(ctx) {
  const { tenant, signal, link } = ctx;
  const regs = await api(tpath(tenant, '/registries'), { signal });
  replace(ctx.main,
    h('div', { class: 'page-head' }, h('h1', null, 'Registries'), h('p', { class: 'muted' }, 'The structured data your agents work from and write to. Open one to browse, search and edit its rows.')),
    regs.length ? h('div', { class: 'grid' }, regs.map((r) => h('article', { class: 'card' },
      h('h2', { class: 'card-title' }, h('a', { href: link(`registries/${seg(r.name)}`) }, r.name)),
      h('ul', { class: 'chips', 'aria-label': `Fields of ${r.name}` }, r.fields.map((f) => h('li', { class: 'chip' }, f.name, h('span', { class: 'muted' }, ` · ${TYPE_WORDS[f.type] || f.type}${f.required ? ', required' : ''}${f.unique ? ', unique' : ''}`)))),
      h('a', { href: link(`registries/${seg(r.name)}`), class: 'card-link' }, `Open ${r.name}`))))
      : emptyState('No registries yet.', 'Templates bring the registries their agents need.', h('a', { href: link('templates'), class: 'btn' }, 'Browse templates')));
}

function display(value, type) {
  if (value === null || value === undefined) return h('span', { class: 'muted' }, '—');
  if (type === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function inputFor(field, id) {
  const common = { id, name: field.name, required: !!field.required, 'aria-describedby': `${id}-err` };
  switch (field.type) {
    case 'boolean':
      return h('select', common, h('option', { value: '' }, field.required ? 'Choose…' : '—'), h('option', { value: 'true' }, 'yes'), h('option', { value: 'false' }, 'no'));
    case 'date':
      return h('input', { ...common, type: 'date' });
    case 'integer':
      return h('input', { ...common, type: 'number', step: '1', inputmode: 'numeric' });
    case 'number':
      return h('input', { ...common, type: 'number', step: 'any', inputmode: 'decimal' });
    case 'datetime':
      return h('input', { ...common, type: 'text', placeholder: '2026-12-01T09:00:00Z', autocomplete: 'off' });
    default:
      return h('input', { ...common, type: 'text', autocomplete: 'off' });
  }
}

function readValue(field, raw) {
  if (raw === '') return undefined;
  if (field.type === 'boolean') return raw === 'true';
  if (field.type === 'integer' || field.type === 'number') {
    const n = Number(raw);
    return Number.isFinite(n) ? n : raw;
  }
  return raw;
}

function writeValue(field, value) {
  if (value === null || value === undefined) return '';
  if (field.type === 'boolean') return value ? 'true' : 'false';
  return String(value);
}

export async function registryPage(ctx) {
  const { tenant, signal, link, params, query } = ctx;
  const name = params[0];
  const regs = await api(tpath(tenant, '/registries'), { signal });
  const reg = regs.find((r) => r.name === name);
  if (!reg) return ctx.notYours(new ApiError(404, 'not_found', `no registry \`${name}\``), `Registry “${name}”`);
  const fields = reg.fields;
  const where = query.get('where') || '';

  // ---- rows ----
  const tbody = h('tbody');
  const listError = h('div');
  let cursor = null;
  const more = h('button', { type: 'button', class: 'btn', hidden: true, onclick: () => load() }, 'Load more rows');
  const count = h('p', { class: 'muted', role: 'status' });
  let shown = 0;
  const rowEl = (row) => h('tr', { dataset: { row: String(row.id) } },
    h('td', null, String(row.id)),
    fields.map((f) => h('td', null, display(row.data[f.name], f.type))),
    h('td', null, timeEl(row.updated_at)),
    h('td', { class: 'cell-actions' },
      ctx.canWrite ? h('button', { type: 'button', class: 'btn btn-small', onclick: () => edit(row), 'aria-label': `Edit row ${row.id}` }, 'Edit') : null,
      ctx.canWrite ? h('button', { type: 'button', class: 'btn btn-small btn-ghost', onclick: () => remove(row), 'aria-label': `Delete row ${row.id}` }, 'Delete') : null));
  async function load(reset = false) {
    if (reset) {
      cursor = null;
      shown = 0;
      tbody.replaceChildren();
    }
    try {
      const q = new URLSearchParams({ limit: '50' });
      if (where) q.set('where', where);
      if (cursor) q.set('cursor', cursor);
      const page = await api(tpath(tenant, `/registries/${seg(name)}/rows?${q}`), { signal });
      for (const row of page.items) tbody.append(rowEl(row));
      shown += page.items.length;
      cursor = page.next_cursor || null;
      more.hidden = !cursor;
      replace(count, shown ? `${shown} row${shown > 1 ? 's' : ''} shown${cursor ? ', more available' : ''}.` : '');
      empty.hidden = shown > 0;
      table.hidden = shown === 0;
      replace(listError);
    } catch (e) {
      if (e.name !== 'AbortError') replace(listError, errorBox(e.message, 'The rows could not be loaded:'));
    }
  }
  const empty = emptyState(where ? 'No rows match this search.' : 'This registry is empty.', where ? 'Try another value, or clear the search.' : 'Add the first row with the form below.');
  const table = h('div', { class: 'table-wrap' }, h('table', { class: 'table table-compact' },
    h('caption', { class: 'sr-only' }, `Rows of ${name}`),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Id'), fields.map((f) => h('th', { scope: 'col' }, f.name)), h('th', { scope: 'col' }, 'Updated'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
    tbody));

  // ---- search ----
  const [wf, wo, ...wv] = where.split(':');
  const search = h('form', { class: 'filters', role: 'search', 'aria-label': `Search ${name}`, onsubmit: (e) => {
    e.preventDefault();
    const d = new FormData(search);
    const value = String(d.get('value') || '').trim();
    ctx.navigate(link(`registries/${seg(name)}`, value ? { where: `${d.get('field')}:${d.get('op')}:${value}` } : {}));
  } },
  h('div', { class: 'field' }, h('label', { for: 'q-field' }, 'Field'), h('select', { id: 'q-field', name: 'field' }, fields.map((f) => h('option', { value: f.name, selected: f.name === wf }, f.name)))),
  h('div', { class: 'field' }, h('label', { for: 'q-op' }, 'Condition'), h('select', { id: 'q-op', name: 'op' }, OPS.map(([v, l]) => h('option', { value: v, selected: v === (wo || 'contains') }, l)))),
  h('div', { class: 'field field-grow' }, h('label', { for: 'q-value' }, 'Value'), h('input', { id: 'q-value', name: 'value', type: 'search', value: wv.join(':'), autocomplete: 'off' })),
  h('div', { class: 'field field-actions' }, h('button', { type: 'submit', class: 'btn' }, 'Search'), where ? h('a', { href: link(`registries/${seg(name)}`), class: 'btn btn-ghost' }, 'Clear') : null));

  // ---- add / edit form ----
  const formTitle = h('h2', { class: 'card-title', id: 'row-form-title' }, 'Add a row');
  const formError = h('div', { class: 'form-error', role: 'alert', id: 'row-form-error' });
  const inputs = new Map();
  const errs = new Map();
  let editing = null;
  const fieldEls = fields.map((f) => {
    const id = uid('row');
    const input = inputFor(f, id);
    const err = h('p', { class: 'field-error', id: `${id}-err` });
    inputs.set(f.name, input);
    errs.set(f.name, err);
    return h('div', { class: 'field' },
      h('label', { for: id }, f.name, f.required ? h('span', { class: 'req' }, ' (required)') : null),
      h('p', { class: 'hint' }, `${TYPE_WORDS[f.type] || f.type}${f.unique ? ', must be unique' : ''}`),
      input, err);
  });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Add row');
  const cancel = h('button', { type: 'button', class: 'btn btn-ghost', hidden: true, onclick: () => reset() }, 'Cancel editing');
  const clearErrors = () => {
    replace(formError);
    for (const [n, e] of errs) {
      replace(e);
      inputs.get(n).removeAttribute('aria-invalid');
    }
  };
  const reset = () => {
    editing = null;
    form.reset();
    clearErrors();
    replace(formTitle, 'Add a row');
    replace(submit, 'Add row');
    cancel.hidden = true;
  };
  const edit = (row) => {
    editing = row;
    clearErrors();
    for (const f of fields) inputs.get(f.name).value = writeValue(f, row.data[f.name]);
    replace(formTitle, `Edit row ${row.id}`);
    replace(submit, 'Save changes');
    cancel.hidden = false;
    formCard.scrollIntoView({ block: 'start' });
    inputs.get(fields[0].name).focus();
  };
  const remove = async (row) => {
    if (!window.confirm(`Delete row ${row.id}? This cannot be undone.`)) return;
    try {
      await api(tpath(tenant, `/registries/${seg(name)}/rows/${row.id}`), { method: 'DELETE' });
      ctx.announce(`Row ${row.id} deleted.`);
      tbody.querySelector(`tr[data-row="${row.id}"]`)?.remove();
    } catch (e) {
      replace(listError, errorBox(e.message, 'The row could not be deleted:'));
    }
  };
  const form = h('form', { class: 'row-form', novalidate: true, 'aria-labelledby': 'row-form-title', onsubmit: async (e) => {
    e.preventDefault();
    clearErrors();
    const data = {};
    let missing = null;
    for (const f of fields) {
      const v = readValue(f, inputs.get(f.name).value.trim());
      if (v === undefined) {
        if (f.required && !editing) missing = missing || f;
        if (editing && editing.data[f.name] !== undefined && editing.data[f.name] !== null) data[f.name] = null;
      } else data[f.name] = v;
    }
    if (missing) {
      showFieldError(missing.name, `${missing.name} is required.`);
      replace(formError, `Fill in ${missing.name}: it is required.`);
      inputs.get(missing.name).focus();
      return;
    }
    submit.disabled = true;
    try {
      if (editing) {
        await api(tpath(tenant, `/registries/${seg(name)}/rows/${editing.id}`), { method: 'PATCH', body: data });
        ctx.announce(`Row ${editing.id} saved.`);
      } else {
        const row = await api(tpath(tenant, `/registries/${seg(name)}/rows`), { method: 'POST', body: data });
        ctx.announce(`Row ${row && row.id ? row.id : ''} added.`);
      }
      reset();
      await load(true);
    } catch (err) {
      if (err.name === 'AbortError') return;
      replace(formError, err.message);
      const m = /field `([^`]+)`/.exec(err.message);
      if (m && inputs.has(m[1])) {
        showFieldError(m[1], err.message);
        inputs.get(m[1]).focus();
      }
    } finally {
      submit.disabled = false;
    }
  } }, h('div', { class: 'form-grid' }, fieldEls), formError, h('div', { class: 'actions' }, submit, cancel));
  function showFieldError(fname, text) {
    replace(errs.get(fname), text);
    inputs.get(fname).setAttribute('aria-invalid', 'true');
  }
  const formCard = h('section', { class: 'card card-wide', 'aria-labelledby': 'row-form-title' }, formTitle, form);

  replace(ctx.main,
    h('p', { class: 'crumbs' }, h('a', { href: link('registries') }, 'Registries'), ' / ', name),
    h('div', { class: 'page-head' }, h('h1', null, name), h('p', { class: 'muted' }, `${fields.length} fields: ${fields.map((f) => f.name).join(', ')}.`)),
    search, listError, count, empty, table, h('div', { class: 'actions' }, more),
    ctx.canWrite ? formCard : card(null, h('p', { class: 'muted' }, 'Your key can read only, so rows cannot be added or changed.')));
  await load(true);
}
