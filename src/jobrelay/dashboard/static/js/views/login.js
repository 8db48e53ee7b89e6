// Sign-in: an admin API key, checked against GET /v1/me before it is kept.

import { ApiError, api, storeKey } from '../api.js';
import { h, icon, replace } from '../dom.js';
import { spinner } from '../components.js';

/** Render the sign-in card; onSignedIn(me) runs once an admin key is accepted. */
export function renderLogin(root, { notice, onSignedIn }) {
  const input = h('input', {
    id: 'api-key', name: 'api-key', type: 'password', class: 'input input-lg',
    autocomplete: 'current-password', spellcheck: 'false', autocapitalize: 'off',
    placeholder: 'Paste your admin API key', required: true, testid: 'api-key-input',
  });
  const message = h('div', { class: 'login-message', role: 'alert', testid: 'login-error', hidden: true });
  const submit = h('button', { class: 'btn btn-primary btn-block btn-lg', type: 'submit', testid: 'login-submit' }, 'Sign in');

  const showMessage = (text, kind = 'error') => {
    message.hidden = false;
    message.className = `login-message login-message-${kind}`;
    replace(message, icon(kind === 'error' ? 'alert' : 'key'), h('span', null, text));
  };

  const form = h('form', {
    class: 'login-form', testid: 'login-form', novalidate: true,
    onSubmit: async (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) {
        showMessage('Enter an API key.');
        input.focus();
        return;
      }
      submit.disabled = true;
      replace(submit, spinner('Signing in'), 'Checking key…');
      try {
        const me = await api('/v1/me', { key });
        if (me?.role !== 'admin') {
          const who = me?.name ? `“${me.name}”` : 'This key';
          showMessage(`${who} is a regular user. The dashboard is for admins: sign in with an admin key.`);
          input.select();
          return;
        }
        storeKey(key);
        onSignedIn(me);
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) {
          showMessage('That key was not accepted. Check it and try again.');
        } else showMessage(error?.message ?? 'Sign-in failed.');
        input.select();
      } finally {
        submit.disabled = false;
        replace(submit, 'Sign in');
      }
    },
  },
    h('input', { type: 'text', name: 'username', autocomplete: 'username', value: 'jobrelay-admin', hidden: true, 'aria-hidden': 'true', tabindex: '-1' }),
    h('label', { class: 'label', for: 'api-key' }, 'API key'),
    input,
    h('p', { class: 'hint' }, 'Kept in this browser only. Create one with ', h('code', null, 'jobrelay users create NAME --admin'), '.'),
    message,
    submit,
  );

  replace(root,
    h('main', { class: 'login-page' },
      h('div', { class: 'login-card' },
        h('div', { class: 'login-brand' }, logo(), h('span', { class: 'brand-name' }, 'jobrelay')),
        h('h1', { class: 'login-title' }, 'Sign in to the dashboard'),
        h('p', { class: 'login-subtitle' }, 'Watch, search and manage every job across all users.'),
        form,
      ),
      h('p', { class: 'login-footer' }, 'jobrelay · self-hosted jobs for slow work'),
    ),
  );
  if (notice) showMessage(notice.text, notice.kind ?? 'error');
  input.focus();
}

export function logo() {
  return h('span', { class: 'logo', 'aria-hidden': 'true' },
    h('span', { class: 'logo-bar logo-bar-1' }),
    h('span', { class: 'logo-bar logo-bar-2' }),
    h('span', { class: 'logo-bar logo-bar-3' }),
  );
}
