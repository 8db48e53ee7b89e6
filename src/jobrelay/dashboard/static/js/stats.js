// The header strip: jobs by status, p50/p95 durations and queue depth, from GET /v1/stats.

import { api } from './api.js';
import { h, replace, setAttr, setText } from './dom.js';
import { poller } from './components.js';
import {
  STATUSES, STATUS_LABELS, formatCompact, formatCount, formatDuration,
} from './format.js';

const REFRESH_MS = 5000;

function numberOr(value, fallback = null) {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

/** Counts per status, from "by_status" or, failing that, summed over "jobs" by kind. */
export function countsByStatus(stats) {
  const counts = {};
  if (stats?.by_status && typeof stats.by_status === 'object') {
    for (const status of STATUSES) counts[status] = numberOr(stats.by_status[status], 0);
    return counts;
  }
  if (stats?.jobs && typeof stats.jobs === 'object') {
    for (const status of STATUSES) counts[status] = 0;
    for (const perStatus of Object.values(stats.jobs)) {
      for (const status of STATUSES) counts[status] += numberOr(perStatus?.[status], 0);
    }
    return counts;
  }
  return null;
}

/** Kinds the service reports, for the kind filter. */
export function kindsIn(stats) {
  const kinds = new Set();
  for (const source of [stats?.jobs, stats?.durations]) {
    if (source && typeof source === 'object') for (const kind of Object.keys(source)) kinds.add(kind);
  }
  return [...kinds];
}

function durationTitle(stats) {
  const durations = stats?.durations;
  const samples = numberOr(stats?.overall?.samples);
  const heading = samples === null
    ? 'Run time of completed jobs'
    : `Run time of the latest ${formatCount(samples)} completed jobs`;
  if (!durations || typeof durations !== 'object') return heading;
  const lines = Object.entries(durations).map(([kind, value]) => (
    `${kind}: p50 ${formatDuration(numberOr(value?.p50))} · p95 ${formatDuration(numberOr(value?.p95))}`
  ));
  return [heading, ...lines].join('\n');
}

export function createStatsBar({ onStatusClick, onStats }) {
  const statusCards = new Map();
  const cards = STATUSES.map((status) => {
    const value = h('span', { class: 'stat-value' }, '—');
    const card = h('button', {
      class: `stat stat-${status}`, type: 'button', testid: `stat-${status}`,
      'aria-pressed': 'false', title: `Show ${STATUS_LABELS[status].toLowerCase()} jobs`,
      onClick: () => onStatusClick(card.getAttribute('aria-pressed') === 'true' ? '' : status),
    },
      h('span', { class: 'stat-label' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), STATUS_LABELS[status]),
      value,
    );
    statusCards.set(status, { card, value });
    return card;
  });

  const p50 = h('span', { class: 'stat-value', testid: 'stat-p50' }, '—');
  const p95 = h('span', { class: 'stat-value', testid: 'stat-p95' }, '—');
  const durationCard = h('div', { class: 'stat stat-plain stat-duration' },
    h('span', { class: 'stat-label' }, 'Duration'),
    h('span', { class: 'stat-pair' },
      h('span', { class: 'stat-sub' }, h('small', null, 'p50'), p50),
      h('span', { class: 'stat-sub' }, h('small', null, 'p95'), p95),
    ),
  );
  const depth = h('span', { class: 'stat-value', testid: 'stat-queue-depth' }, '—');
  const perQueue = h('span', { class: 'stat-queues', testid: 'stat-queues' });
  const depthCard = h('div', { class: 'stat stat-plain', title: 'Jobs waiting in the queue' },
    h('span', { class: 'stat-label' }, 'Queue depth'), depth, perQueue,
  );
  const status = h('span', { class: 'stats-status', role: 'status' });
  const el = h('section', { class: 'stats', testid: 'stats-header', 'aria-label': 'Job statistics' },
    h('div', { class: 'stats-grid' }, cards, durationCard, depthCard),
    status,
  );

  const render = (stats) => {
    const counts = countsByStatus(stats);
    for (const [name, { card, value }] of statusCards) {
      const count = counts ? counts[name] : null;
      setText(value, formatCompact(count));
      setAttr(card, 'title', `${formatCount(count)} ${STATUS_LABELS[name].toLowerCase()} — click to filter`);
      setAttr(card, 'data-count', count ?? '');
    }
    setText(p50, formatDuration(numberOr(stats?.overall?.p50)));
    setText(p95, formatDuration(numberOr(stats?.overall?.p95)));
    setAttr(durationCard, 'title', durationTitle(stats));
    const queueDepth = numberOr(stats?.queue_depth);
    setText(depth, formatCompact(queueDepth));
    const queues = Object.entries(stats?.queues ?? {}).sort(([a], [b]) => a.localeCompare(b));
    replace(perQueue, queues.length > 1
      ? queues.map(([name, count]) => h('small', { testid: `stat-queue-${name}` }, `${name} ${formatCompact(numberOr(count, 0))}`))
      : []);
    const byQueue = queues.map(([name, count]) => `${name}: ${formatCount(numberOr(count, 0))}`).join(', ');
    setAttr(depthCard, 'title', `${formatCount(queueDepth)} jobs waiting in the queue${byQueue ? ` (${byQueue})` : ''}`);
  };

  let task = null;
  const refresh = async () => {
    try {
      const stats = await api('/v1/stats');
      el.classList.remove('stats-stale');
      setText(status, '');
      render(stats ?? {});
      onStats?.(stats ?? {});
    } catch (error) {
      el.classList.add('stats-stale');
      setText(status, `Statistics unavailable: ${error?.message ?? error}`);
    }
  };

  return {
    el,
    start() {
      task ??= poller(refresh, REFRESH_MS);
    },
    refresh: () => task?.now(),
    stop() {
      task?.stop();
      task = null;
    },
    setActiveStatus(active) {
      for (const [name, { card }] of statusCards) setAttr(card, 'aria-pressed', String(name === active));
    },
  };
}
