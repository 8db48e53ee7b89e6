// Boot, sign-in state and hash routing: #/jobs?filters and #/jobs/<id>.

import { api, forgetKey, getKey, itemsOf, onUnauthorized } from './api.js';
import { h, icon, replace } from './dom.js';
import { errorBanner, refreshTimes, spinner, toast } from './components.js';
import { normalizeJobId } from './format.js';
import { createStatsBar, kindsIn } from './stats.js';
import { logo, renderLogin } from './views/login.js';
import { createJobsView, filtersHash } from './views/jobs.js';
import { createJobView } from './views/job.js';

const app = document.getElementById('app');
const TIME_REFRESH_MS = 5000;

let shell = null;
let view = null;
let signedOut = false;
const users = new Map();
let reportedKinds = [];
let registeredKinds = [];
let lastJobsHash = '#/jobs';

function parseRoute() {
  const raw = location.hash.replace(/^#/, '') || '/jobs';
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'jobs' && parts.length >= 2) return { name: 'job', id: decodeURIComponent(parts[1]) };
  if (parts[0] === 'jobs' || parts.length === 0) return { name: 'jobs', params: new URLSearchParams(query) };
  return { name: 'unknown' };
}

function userName(id) {
  return users.get(Number(id)) ?? null;
}

async function loadUsers() {
  try {
    const payload = await api('/v1/users', { query: { limit: 100 } });
    users.clear();
    for (const user of itemsOf(payload)) {
      if (user && user.id !== undefined) users.set(Number(user.id), String(user.name ?? ''));
    }
    if (shell) {
      replace(shell.userOptions, [...users].map(([id, name]) => h('option', { value: String(id) }, name)));
      view?.usersChanged?.();
    }
  } catch {
    // Names are a convenience; ids are shown without them.
  }
}

function signOut(notice) {
  if (signedOut) return;
  signedOut = true;
  view?.dispose();
  view = null;
  shell?.stats.stop();
  shell = null;
  forgetKey();
  users.clear();
  document.title = 'jobrelay · Dashboard';
  renderLogin(app, { notice, onSignedIn: (me) => startApp(me) });
}

function buildShell(me) {
  const searchInput = h('input', {
    class: 'input search-input', type: 'search', placeholder: 'Jump to a job id…',
    'aria-label': 'Search by job id', testid: 'search-input', spellcheck: 'false', autocomplete: 'off',
  });
  const searchForm = h('form', {
    class: 'search', role: 'search', testid: 'search-form',
    onSubmit: (event) => {
      event.preventDefault();
      const id = normalizeJobId(searchInput.value);
      if (!id) {
        toast('That is not a job id: paste the full id (a UUID).', 'error');
        searchInput.select();
        return;
      }
      searchInput.value = '';
      searchInput.blur();
      location.hash = `#/jobs/${id}`;
    },
  }, icon('search'), searchInput, h('kbd', { class: 'search-kbd', 'aria-hidden': 'true' }, '/'));

  const stats = createStatsBar({
    onStatusClick: (status) => {
      const params = new URLSearchParams(lastJobsHash.split('?')[1] ?? '');
      if (status) params.set('status', status);
      else params.delete('status');
      const query = params.toString();
      location.hash = query ? `#/jobs?${query}` : '#/jobs';
    },
    onStats: (payload) => {
      reportedKinds = [...new Set([...registeredKinds, ...kindsIn(payload)])].sort();
      view?.kindsChanged?.();
    },
  });
  // Every kind the service runs (GET /v1/kinds), so the filter offers kinds with no jobs yet.
  api('/v1/kinds').then((payload) => {
    registeredKinds = itemsOf(payload).map((item) => item.name).filter(Boolean);
    reportedKinds = [...new Set([...registeredKinds, ...reportedKinds])].sort();
    view?.kindsChanged?.();
  }).catch(() => {});

  const outlet = h('main', { class: 'outlet', id: 'main' });
  const userOptions = h('datalist', { id: 'user-options' });
  const header = h('header', { class: 'topbar', testid: 'app-header' },
    h('div', { class: 'topbar-inner' },
      h('a', { class: 'brand', href: '#/jobs', 'aria-label': 'jobrelay, all jobs' }, logo(), h('span', { class: 'brand-name' }, 'jobrelay'), h('span', { class: 'brand-tag' }, 'Dashboard')),
      searchForm,
      h('div', { class: 'account' },
        h('span', { class: 'account-name', testid: 'account-name', title: `Signed in as ${me?.name ?? 'admin'} (user #${me?.id ?? '?'})` },
          h('span', { class: 'avatar', 'aria-hidden': 'true' }, String(me?.name ?? 'A').slice(0, 1).toUpperCase()),
          h('span', { class: 'account-text' }, me?.name ?? 'admin'),
          h('span', { class: 'role' }, 'admin'),
        ),
        h('button', { class: 'btn btn-ghost btn-sm', type: 'button', testid: 'sign-out', onClick: () => signOut({ text: 'Signed out.', kind: 'info' }) }, icon('logout'), h('span', { class: 'hide-sm' }, 'Sign out')),
      ),
    ),
  );
  replace(app, header, h('div', { class: 'page' }, stats.el, outlet), userOptions);
  stats.start();
  return { outlet, stats, userOptions, searchInput };
}

function route() {
  if (!shell) return;
  const current = parseRoute();
  if (current.name === 'unknown') {
    location.replace('#/jobs');
    return;
  }
  if (current.name === 'jobs' && view?.kind === 'jobs') {
    view.update(current.params);
    lastJobsHash = location.hash || '#/jobs';
    return;
  }
  view?.dispose();
  window.scrollTo(0, 0);
  if (current.name === 'jobs') {
    lastJobsHash = location.hash || '#/jobs';
    document.title = 'Jobs · jobrelay';
    view = createJobsView({
      params: current.params,
      userName,
      knownKinds: () => reportedKinds,
      onFiltersChanged: (filters) => {
        shell?.stats.setActiveStatus(filters.status);
        lastJobsHash = filtersHash(filters);
      },
    });
    view.kind = 'jobs';
  } else {
    shell.stats.setActiveStatus(null);
    view = createJobView({ jobId: current.id, backHref: lastJobsHash, userName });
    view.kind = 'job';
  }
  replace(shell.outlet, view.el);
}

function startApp(me) {
  signedOut = false;
  shell = buildShell(me);
  if (!location.hash || location.hash === '#' || location.hash === '#/') history.replaceState(null, '', '#/jobs');
  route();
  loadUsers();
}

async function boot() {
  onUnauthorized(() => signOut({ text: 'Your API key is no longer accepted. Sign in again.' }));
  window.addEventListener('hashchange', route);
  document.addEventListener('keydown', (event) => {
    const typing = event.target.closest?.('input, textarea, select, dialog');
    if (event.key === '/' && !typing && shell) {
      event.preventDefault();
      shell.searchInput.focus();
    }
  });
  setInterval(() => refreshTimes(app), TIME_REFRESH_MS);
  if (!getKey()) {
    signedOut = true;
    renderLogin(app, { onSignedIn: (me) => startApp(me) });
    return;
  }
  replace(app, h('div', { class: 'boot' }, spinner(), 'Signing in…'));
  try {
    const me = await api('/v1/me');
    if (me?.role !== 'admin') {
      signOut({ text: 'The dashboard is for admins: sign in with an admin API key.' });
      return;
    }
    startApp(me);
  } catch (error) {
    if (signedOut) return;
    replace(app, h('div', { class: 'boot boot-error' },
      errorBanner(error, { onRetry: () => location.reload(), testid: 'boot-error' }),
      h('button', { class: 'btn btn-ghost btn-sm', type: 'button', onClick: () => signOut() }, 'Use another key'),
    ));
  }
}

boot();
