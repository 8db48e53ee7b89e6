// The job table: filters, keyset pagination, live refresh of the page on screen.

import { api, itemsOf } from '../api.js';
import { h, icon, replace, setAttr, setText } from '../dom.js';
import {
  emptyState, errorBanner, poller, progressBar, statusBadge, timeAgo,
  updateProgressBar, updateStatusBadge, updateTimeAgo,
} from '../components.js';
import {
  STATUSES, STATUS_LABELS, formatDuration, jobElapsed, shortId,
} from '../format.js';

const REFRESH_MS = 2000;
const PAGE_SIZES = [20, 50, 100];
const COLUMNS = ['Job', 'Kind', 'Status', 'Progress', 'User', 'Created', 'Duration'];

// Paging survives a visit to a job page, so "back" returns to the same page of the same filter.
let savedPaging = { filterKey: '', cursors: [null] };

/** Filters as they appear in the URL hash: #/jobs?status=&kind=&user_id=&limit= */
export function filtersFrom(params) {
  const status = params.get('status') ?? '';
  const limit = Number(params.get('limit'));
  const userId = (params.get('user_id') ?? '').trim();
  return {
    status: STATUSES.includes(status) ? status : '',
    kind: (params.get('kind') ?? '').trim(),
    user_id: /^\d+$/.test(userId) ? userId : '',
    limit: PAGE_SIZES.includes(limit) ? limit : PAGE_SIZES[0],
  };
}

export function filtersHash(filters) {
  const params = new URLSearchParams();
  for (const name of ['status', 'kind', 'user_id']) if (filters[name]) params.set(name, filters[name]);
  if (filters.limit !== PAGE_SIZES[0]) params.set('limit', String(filters.limit));
  const query = params.toString();
  return query ? `#/jobs?${query}` : '#/jobs';
}

function filterKeyOf(filters) {
  return `${filters.status}|${filters.kind}|${filters.user_id}|${filters.limit}`;
}

function select(testid, label, options, value, onChange) {
  const el = h('select', { class: 'select', testid, 'aria-label': label, onChange: () => onChange(el.value) },
    options.map(([optionValue, text]) => h('option', { value: optionValue }, text)),
  );
  el.value = value;
  return el;
}

function durationText(job) {
  const seconds = jobElapsed(job);
  if (seconds === null) return '—';
  return formatDuration(seconds);
}

function messageOf(job) {
  if (job.status === 'failed' && job.error?.message) return job.error.message;
  return job.message ?? '';
}

/**
 * The table view. `userName(id)` names users when the list of users is known;
 * `onFiltersChanged(filters)` lets the page mark the matching status card.
 */
export function createJobsView({ params, userName, knownKinds, onFiltersChanged }) {
  let filters = filtersFrom(params);
  let cursors = savedPaging.filterKey === filterKeyOf(filters) ? savedPaging.cursors : [null];
  let nextCursor = null;
  let requestSeq = 0;
  let controller = null;
  let loadedOnce = false;
  const rows = new Map();

  const statusFilter = select('filter-status', 'Status',
    [['', 'All statuses'], ...STATUSES.map((status) => [status, STATUS_LABELS[status]])],
    filters.status, (value) => setFilters({ status: value }));

  const kindFilter = h('select', {
    class: 'select', testid: 'filter-kind', 'aria-label': 'Kind',
    onChange: () => setFilters({ kind: kindFilter.value }),
  });
  const setKindOptions = (kinds) => {
    const all = [...new Set([...kinds, filters.kind].filter(Boolean))].sort();
    const current = [...kindFilter.options].map((option) => option.value).join(',');
    if (current === ['', ...all].join(',')) return;
    replace(kindFilter, h('option', { value: '' }, 'All kinds'), all.map((kind) => h('option', { value: kind }, kind)));
    kindFilter.value = filters.kind;
  };
  setKindOptions(knownKinds());

  const userFilter = h('input', {
    class: 'input input-user', type: 'text', inputmode: 'numeric', pattern: '[0-9]*',
    placeholder: 'User id', 'aria-label': 'User id', testid: 'filter-user', list: 'user-options',
    value: filters.user_id,
  });
  const applyUser = () => {
    const value = userFilter.value.trim();
    if (value === filters.user_id) return;
    if (value && !/^\d+$/.test(value)) {
      userFilter.setCustomValidity('A user id is a number');
      userFilter.reportValidity();
      return;
    }
    userFilter.setCustomValidity('');
    setFilters({ user_id: value });
  };
  userFilter.addEventListener('change', applyUser);
  userFilter.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') applyUser();
  });

  const limitFilter = select('filter-limit', 'Rows per page',
    PAGE_SIZES.map((size) => [String(size), `${size} per page`]),
    String(filters.limit), (value) => setFilters({ limit: Number(value) }));

  const clearButton = h('button', {
    class: 'btn btn-ghost btn-sm', type: 'button', testid: 'filter-clear',
    onClick: () => setFilters({ status: '', kind: '', user_id: '' }),
  }, icon('x'), 'Clear');

  const liveDot = h('span', { class: 'live-dot', 'aria-hidden': 'true' });
  const liveText = h('span', { class: 'live-text' }, 'Connecting…');
  const live = h('span', { class: 'live', testid: 'live-indicator' }, liveDot, liveText);

  const tbody = h('tbody', { testid: 'jobs-tbody' });
  const table = h('table', { class: 'table jobs-table', testid: 'jobs-table' },
    h('colgroup', null,
      h('col', { class: 'col-job' }), h('col', { class: 'col-kind' }), h('col', { class: 'col-status' }),
      h('col', { class: 'col-progress' }), h('col', { class: 'col-user' }), h('col', { class: 'col-created' }),
      h('col', { class: 'col-duration' }),
    ),
    h('thead', null, h('tr', null, COLUMNS.map((name) => h('th', { scope: 'col', class: `th-${name.toLowerCase()}` }, name)))),
    tbody,
  );
  const stateArea = h('div', { class: 'table-state' });
  const banner = h('div', { class: 'table-banner' });

  const prevButton = h('button', {
    class: 'btn btn-secondary btn-sm', type: 'button', testid: 'page-prev',
    onClick: () => goPage(-1),
  }, icon('left'), 'Previous');
  const nextButton = h('button', {
    class: 'btn btn-secondary btn-sm', type: 'button', testid: 'page-next',
    onClick: () => goPage(1),
  }, 'Next', icon('right'));
  const pageIndicator = h('span', { class: 'page-indicator', testid: 'page-indicator' });

  const el = h('section', { class: 'card jobs-card', testid: 'jobs-view', 'aria-labelledby': 'jobs-title' },
    h('div', { class: 'card-header' },
      h('div', { class: 'card-title-row' },
        h('h1', { class: 'card-title', id: 'jobs-title' }, 'Jobs'),
        live,
      ),
      h('div', { class: 'filters', role: 'group', 'aria-label': 'Filters', testid: 'filters' },
        icon('filter'), statusFilter, kindFilter, userFilter, limitFilter, clearButton,
      ),
    ),
    banner,
    h('div', { class: 'table-scroll' }, table),
    stateArea,
    h('div', { class: 'card-footer pagination', testid: 'pagination' },
      pageIndicator,
      h('div', { class: 'pagination-buttons' }, prevButton, nextButton),
    ),
  );

  function hasFilters() {
    return Boolean(filters.status || filters.kind || filters.user_id);
  }

  function syncControls() {
    statusFilter.value = filters.status;
    setKindOptions(knownKinds());
    kindFilter.value = filters.kind;
    if (document.activeElement !== userFilter) userFilter.value = filters.user_id;
    limitFilter.value = String(filters.limit);
    clearButton.hidden = !hasFilters();
    for (const [control, active] of [[statusFilter, filters.status], [kindFilter, filters.kind], [userFilter, filters.user_id]]) {
      control.classList.toggle('is-active', Boolean(active));
    }
    onFiltersChanged?.(filters);
  }

  function setFilters(change) {
    filters = { ...filters, ...change };
    history.replaceState(null, '', filtersHash(filters));
    cursors = [null];
    reload();
  }

  function goPage(step) {
    if (step > 0 && nextCursor) cursors = [...cursors, nextCursor];
    else if (step < 0 && cursors.length > 1) cursors = cursors.slice(0, -1);
    else return;
    reload();
    table.scrollIntoView({ block: 'nearest' });
  }

  function reload() {
    savedPaging = { filterKey: filterKeyOf(filters), cursors };
    syncControls();
    table.classList.add('is-loading');
    load();
  }

  function makeRow(job) {
    const href = `#/jobs/${encodeURIComponent(job.id)}`;
    const idLink = h('a', { class: 'job-id mono', href, title: job.id }, shortId(job.id));
    const message = h('span', { class: 'job-message' });
    const kind = h('span', { class: 'kind' });
    const badge = statusBadge(job.status);
    const bar = progressBar(job.progress, job.status);
    const percent = h('span', { class: 'progress-text' });
    const user = h('span', { class: 'user' });
    const created = timeAgo(job.created_at);
    const duration = h('span', { class: 'duration' });
    const tr = h('tr', {
      class: 'job-row', testid: 'job-row', dataset: { jobId: job.id },
      onClick: (event) => {
        if (event.target.closest('a, button') || window.getSelection()?.toString()) return;
        location.hash = href;
      },
    },
      h('td', { class: 'td-job' }, idLink, message),
      h('td', { class: 'td-kind' }, kind),
      h('td', { class: 'td-status' }, badge),
      h('td', { class: 'td-progress' }, h('span', { class: 'progress-cell' }, bar, percent)),
      h('td', { class: 'td-user' }, user),
      h('td', { class: 'td-created' }, created),
      h('td', { class: 'td-duration' }, duration),
    );
    const row = { tr, message, kind, badge, bar, percent, user, created, duration };
    updateRow(row, job);
    return row;
  }

  function updateRow(row, job) {
    row.job = job;
    setAttr(row.tr, 'data-status', job.status);
    setText(row.message, messageOf(job));
    setAttr(row.message, 'title', messageOf(job) || null);
    setText(row.kind, job.kind);
    updateStatusBadge(row.badge, job.status);
    updateProgressBar(row.bar, job.progress, job.status);
    setText(row.percent, `${Math.round(Number(job.progress) || 0)}%`);
    const name = userName(job.user_id);
    setText(row.user, name ? `${name} · #${job.user_id}` : `#${job.user_id}`);
    setAttr(row.user, 'title', `User ${job.user_id}${name ? ` (${name})` : ''}`);
    updateTimeAgo(row.created, job.created_at);
    setText(row.duration, durationText(job));
    row.duration.classList.toggle('is-running', job.status === 'processing');
  }

  function renderRows(items) {
    for (const placeholder of tbody.querySelectorAll('.skeleton-row')) placeholder.remove();
    const seen = new Set();
    let cursor = tbody.firstElementChild;
    for (const job of items) {
      seen.add(job.id);
      let row = rows.get(job.id);
      if (row) updateRow(row, job);
      else {
        row = makeRow(job);
        rows.set(job.id, row);
      }
      // Move a row only when it is out of place, so running progress animations are not restarted.
      if (row.tr === cursor) cursor = cursor.nextElementSibling;
      else tbody.insertBefore(row.tr, cursor);
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        rows.delete(id);
      }
    }
  }

  function renderSkeleton() {
    tbody.replaceChildren();
    rows.clear();
    for (let index = 0; index < 6; index += 1) {
      tbody.appendChild(h('tr', { class: 'skeleton-row', testid: 'jobs-loading', 'aria-hidden': 'true' },
        COLUMNS.map(() => h('td', null, h('span', { class: 'skeleton' })))));
    }
  }

  function renderState(itemCount) {
    const pageNumber = cursors.length;
    setText(pageIndicator, itemCount
      ? `Page ${pageNumber} · ${itemCount} job${itemCount === 1 ? '' : 's'}`
      : `Page ${pageNumber}`);
    prevButton.disabled = cursors.length <= 1;
    nextButton.disabled = !nextCursor;
    if (itemCount > 0) {
      stateArea.replaceChildren();
      return;
    }
    if (cursors.length > 1) {
      replace(stateArea, emptyState({
        title: 'No more jobs on this page',
        body: 'The jobs that were here have moved on. Go back to the first page.',
        testid: 'jobs-empty',
        action: h('button', { class: 'btn btn-secondary btn-sm', type: 'button', onClick: () => { cursors = [null]; reload(); } }, 'First page'),
      }));
    } else if (hasFilters()) {
      replace(stateArea, emptyState({
        title: 'No jobs match these filters',
        body: 'Try another status, kind or user.',
        testid: 'jobs-empty',
        action: h('button', { class: 'btn btn-secondary btn-sm', type: 'button', onClick: () => setFilters({ status: '', kind: '', user_id: '' }) }, 'Clear filters'),
      }));
    } else {
      replace(stateArea, emptyState({
        title: 'No jobs yet',
        body: 'Submitted jobs show up here the moment they are queued.',
        testid: 'jobs-empty',
      }));
    }
  }

  async function load() {
    const seq = ++requestSeq;
    controller?.abort();
    controller = new AbortController();
    const query = {
      status: filters.status, kind: filters.kind, user_id: filters.user_id,
      limit: filters.limit, cursor: cursors[cursors.length - 1],
    };
    try {
      const page = await api('/v1/jobs', { query, signal: controller.signal });
      if (seq !== requestSeq) return;
      nextCursor = page?.next_cursor ?? null;
      renderRows(itemsOf(page));
      renderState(rows.size);
      banner.replaceChildren();
      loadedOnce = true;
      live.classList.remove('is-stale');
      setText(liveText, 'Live');
      setAttr(live, 'title', `Refreshed every ${REFRESH_MS / 1000} s while this tab is visible. Last update ${new Date().toLocaleTimeString()}`);
    } catch (error) {
      if (error?.name === 'AbortError' || seq !== requestSeq) return;
      live.classList.add('is-stale');
      setText(liveText, 'Paused');
      replace(banner, errorBanner(error, { onRetry: () => reload(), testid: 'jobs-error' }));
      if (!loadedOnce) {
        tbody.replaceChildren();
        rows.clear();
        stateArea.replaceChildren();
      }
    } finally {
      if (seq === requestSeq) table.classList.remove('is-loading');
    }
  }

  syncControls();
  renderSkeleton();
  renderState(0);
  stateArea.replaceChildren();
  const task = poller(load, REFRESH_MS);

  return {
    el,
    /** The hash changed while this view is on screen (back/forward, a status card). */
    update(newParams) {
      const next = filtersFrom(newParams);
      if (filterKeyOf(next) === filterKeyOf(filters)) return;
      filters = next;
      cursors = [null];
      reload();
    },
    usersChanged() {
      for (const row of rows.values()) updateRow(row, row.job);
    },
    kindsChanged() {
      setKindOptions(knownKinds());
    },
    dispose() {
      task.stop();
      controller?.abort();
    },
  };
}
