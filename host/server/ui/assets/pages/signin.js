// The sign-in page: trade a key for a session cookie.

import { api } from '../api.js';
import { h, replace } from '../dom.js';

export function signInPage(main, { message, onSignedIn, announce }) {
  const error = h('div', { id: 'signin-error', class: 'form-error', role: 'alert' });
  const input = h('input', {
    id: 'signin-key', name: 'key', type: 'password', autocomplete: 'off', spellcheck: 'false',
    required: true, placeholder: 'mc_…', 'aria-describedby': 'signin-help signin-error',
  });
  const button = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Sign in');
  const show = (text) => {
    replace(error, text ? h('p', null, text) : null);
    input.setAttribute('aria-invalid', text ? 'true' : 'false');
  };
  const form = h('form', { class: 'signin-form', novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!key) {
      show('Enter your key: it starts with “mc_”.');
      input.focus();
      return;
    }
    button.disabled = true;
    replace(button, 'Signing in…');
    try {
      const session = await api('/ui/session', { method: 'POST', body: { key }, quiet401: true });
      input.value = '';
      await onSignedIn(session);
    } catch (err) {
      show(err.message || 'Signing in failed.');
      announce('Signing in failed.');
      input.focus();
      input.select();
    } finally {
      button.disabled = false;
      replace(button, 'Sign in');
    }
  } },
  h('label', { for: 'signin-key' }, 'Your access key'),
  input,
  h('p', { id: 'signin-help', class: 'hint' }, 'The key you were given, starting with “mc_”. It is exchanged for a session and not stored in this browser.'),
  error,
  button);

  replace(main,
    h('div', { class: 'signin-card' },
      h('div', { class: 'signin-brand' },
        h('img', { src: '/app/assets/logo.svg', alt: '', class: 'brand-logo', width: '40', height: '40' }),
        h('span', { class: 'brand-name' }, 'Mission Control')),
      h('h1', null, 'Sign in'),
      h('p', { class: 'muted' }, 'Watch your AI team at work: runs, approvals, costs and health.'),
      form));
  if (message) show(message);
  input.focus();
}
