// One job: header with live progress, the live output while it is written, input, result,
// events timeline, callbacks, deliveries, and the cancel and retry actions.

import { ApiError, api, itemsOf, streamJobEvents } from '../api.js';
import { h, icon, replace, setAttr, setText } from '../dom.js';
import {
  confirmDialog, copyButton, emptyState, errorBanner, jsonView, poller, progressBar, spinner,
  statusBadge, timeAgo, toast, updateProgressBar, updateStatusBadge, updateTimeAgo,
} from '../components.js';
import { TERMINAL, formatDuration, jobElapsed, shortId } from '../format.js';
import {
  callbacksTable, deliveriesTable, eventItem, failureView, resultView, urlText,
} from './job-sections.js';

const POLL_MS = 2000;
const SIDE_TABLES_MS = 5000;
const STREAM_FAILURES_BEFORE_POLLING = 3;

function section(title, testid, { subtitle, actions } = {}) {
  const body = h('div', { class: 'section-body' });
  const subtitleEl = h('span', { class: 'section-subtitle' }, subtitle ?? '');
  const el = h('section', { class: 'card section', testid, 'aria-label': title },
    h('div', { class: 'section-header' },
      h('h2', { class: 'section-title' }, title),
      subtitleEl,
      actions ? h('div', { class: 'section-actions' }, actions) : null,
    ),
    body,
  );
  return { el, body, subtitle: subtitleEl };
}

function metaItem(label, value, testid) {
  const valueEl = h('dd', { testid }, value);
  return { el: h('div', { class: 'meta-item' }, h('dt', null, label), valueEl), value: valueEl };
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

export function createJobView({ jobId, backHref, userName }) {
  const lifetime = new AbortController();
  const signal = lifetime.signal;
  let job = null;
  let lastEventId = null;
  const eventIds = new Set();
  let following = false;
  let fallbackPoller = null;
  let resultShownFor = null;

  const el = h('div', { class: 'job-page', testid: 'job-page', dataset: { jobId } },
    h('a', { class: 'back-link', href: backHref, testid: 'back-link' }, icon('back'), 'All jobs'),
  );
  const loading = h('div', { class: 'card page-loading' }, spinner(), 'Loading job…');
  el.appendChild(loading);

  // Header.
  const title = h('h1', { class: 'job-title' });
  const badge = statusBadge('queued');
  const bar = progressBar(0, 'queued', { large: true });
  const percent = h('span', { class: 'progress-big-text', testid: 'job-progress-text' });
  const message = h('p', { class: 'job-message-big', testid: 'job-message' });
  const liveState = h('span', { class: 'live', testid: 'job-live' },
    h('span', { class: 'live-dot', 'aria-hidden': 'true' }), h('span', { class: 'live-text' }));
  const cancelButton = h('button', { class: 'btn btn-danger-outline', type: 'button', testid: 'cancel-button', onClick: () => cancelJob() }, icon('x'), 'Cancel job');
  const retryButton = h('button', { class: 'btn btn-primary', type: 'button', testid: 'retry-button', onClick: () => retryJob() }, icon('retry'), 'Retry');
  const idText = h('code', { class: 'job-full-id', testid: 'job-id' }, jobId);

  const meta = {
    user: metaItem('User', '—', 'meta-user'),
    attempts: metaItem('Attempts', '—', 'meta-attempts'),
    created: metaItem('Created', timeAgo(null), 'meta-created'),
    started: metaItem('Started', timeAgo(null), 'meta-started'),
    completed: metaItem('Finished', timeAgo(null), 'meta-completed'),
    duration: metaItem('Duration', '—', 'meta-duration'),
    external: metaItem('External id', '—', 'meta-external-id'),
    webhook: metaItem('Webhook', '—', 'meta-webhook'),
  };

  const header = h('section', { class: 'card job-header', testid: 'job-header' },
    h('div', { class: 'job-header-top' },
      h('div', { class: 'job-heading' },
        h('div', { class: 'job-title-row' }, title, badge, liveState),
        h('div', { class: 'job-id-row' }, idText, copyButton(jobId, 'Copy job id')),
      ),
      h('div', { class: 'job-actions' }, retryButton, cancelButton),
    ),
    h('div', { class: 'job-progress' }, bar, percent),
    message,
    h('dl', { class: 'meta-grid', testid: 'job-meta' }, Object.values(meta).map((item) => item.el)),
  );

  const inputSection = section('Input', 'job-input');
  const metadataSection = section('Metadata', 'job-metadata');
  const resultSection = section('Result', 'job-result');
  const outputText = h('pre', { class: 'output-text', testid: 'output-text', 'aria-live': 'polite' });
  const outputSection = section('Output', 'job-output', { subtitle: 'As the job writes it' });
  outputSection.body.appendChild(outputText);
  outputSection.el.hidden = true;
  let output = '';
  const eventsList = h('ol', { class: 'timeline', testid: 'events-list' });
  const eventsSection = section('Events', 'job-events');
  const callbacksSection = section('Callbacks received', 'job-callbacks', { subtitle: 'From the external generator' });
  const deliveriesSection = section('Webhook deliveries', 'job-deliveries', { subtitle: 'Signed POSTs to the job’s webhook' });
  eventsSection.body.appendChild(eventsList);

  const body = h('div', { class: 'job-grid' },
    h('div', { class: 'job-main' }, outputSection.el, resultSection.el, inputSection.el, metadataSection.el),
    h('div', { class: 'job-side' }, eventsSection.el),
  );
  const lower = h('div', { class: 'job-lower' }, callbacksSection.el, deliveriesSection.el);

  function setLive(state, text) {
    setAttr(liveState, 'data-state', state);
    setText(liveState.lastElementChild, text);
    liveState.hidden = state === 'off';
  }

  function renderHeader() {
    document.title = `${job.kind} ${shortId(job.id)} · jobrelay`;
    setText(title, job.kind);
    updateStatusBadge(badge, job.status);
    updateProgressBar(bar, job.progress, job.status);
    setText(percent, `${Math.round(Number(job.progress) || 0)}%`);
    setText(message, job.status === 'failed' && job.error?.message ? job.error.message : (job.message || ''));
    message.classList.toggle('is-error', job.status === 'failed');
    const name = userName(job.user_id);
    setText(meta.user.value, name ? `${name} (#${job.user_id})` : `#${job.user_id}`);
    setText(meta.attempts.value, String(job.attempts ?? 0));
    updateTimeAgo(meta.created.value.firstChild, job.created_at);
    updateTimeAgo(meta.started.value.firstChild, job.started_at);
    updateTimeAgo(meta.completed.value.firstChild, job.completed_at);
    renderDuration();
    setText(meta.external.value, job.external_id ?? '—');
    meta.external.value.classList.toggle('mono', Boolean(job.external_id));
    const events = Array.isArray(job.webhook_events_filter) ? job.webhook_events_filter.join(', ') : '';
    replace(meta.webhook.value, job.webhook ? urlText(job.webhook) : '—',
      job.webhook && events ? h('span', { class: 'muted webhook-events' }, ` on ${events}`) : null);
    cancelButton.hidden = TERMINAL.has(job.status);
    retryButton.hidden = !(job.status === 'failed' || job.status === 'canceled');
  }

  function renderDuration() {
    if (!job) return;
    const seconds = jobElapsed(job);
    setText(meta.duration.value, seconds === null ? '—' : formatDuration(seconds));
    meta.duration.value.classList.toggle('is-running', job.status === 'processing');
  }

  function renderStatic() {
    replace(inputSection.body, jsonView(job.input ?? {}, { testid: 'input-json' }));
    const hasMetadata = job.metadata && typeof job.metadata === 'object' && Object.keys(job.metadata).length > 0;
    metadataSection.el.hidden = !hasMetadata;
    if (hasMetadata) replace(metadataSection.body, jsonView(job.metadata));
  }

  async function renderResult() {
    const key = `${job.status}:${job.attempts}`;
    if (resultShownFor === key) return;
    resultShownFor = key;
    if (job.status === 'completed') {
      replace(resultSection.body, h('div', { class: 'section-loading' }, spinner(), 'Loading result…'));
      try {
        const result = await api(`/v1/jobs/${encodeURIComponent(job.id)}/result`, { signal });
        replace(resultSection.body, resultView(job.kind, result));
      } catch (error) {
        if (error?.name === 'AbortError') return;
        resultShownFor = null;
        replace(resultSection.body, errorBanner(error, { onRetry: () => renderResult() }));
      }
    } else if (job.status === 'failed') {
      replace(resultSection.body, failureView(job.error));
    } else if (job.status === 'canceled') {
      replace(resultSection.body, emptyState({ title: 'Canceled', body: 'This job was canceled before it finished. Retry runs it again.', iconName: 'x' }));
    } else {
      replace(resultSection.body, emptyState({
        title: job.status === 'queued' ? 'Waiting to start' : 'Working on it',
        body: 'The result appears here when the job completes.',
        iconName: 'clock',
      }));
    }
  }

  function addEvent(event) {
    const id = Number(event?.id);
    if (Number.isFinite(id)) {
      if (eventIds.has(id)) return false;
      eventIds.add(id);
      if (lastEventId === null || id > lastEventId) lastEventId = id;
    }
    const nearBottom = eventsList.scrollHeight - eventsList.scrollTop - eventsList.clientHeight < 40;
    eventsList.querySelector('[data-testid="events-empty"]')?.remove();
    eventsList.appendChild(eventItem(event));
    if (nearBottom) eventsList.scrollTop = eventsList.scrollHeight;
    setText(eventsSection.subtitle, `${eventIds.size} event${eventIds.size === 1 ? '' : 's'}`);
    return true;
  }

  async function loadEvents() {
    const payload = await api(`/v1/jobs/${encodeURIComponent(jobId)}/events`, { signal });
    const items = itemsOf(payload);
    for (const event of items) addEvent(event);
    if (!eventIds.size && !eventsList.firstChild) {
      eventsList.appendChild(h('li', { class: 'timeline-empty', testid: 'events-empty' }, 'No events yet.'));
    }
  }

  async function loadSideTable(path, target, render) {
    try {
      const payload = await api(`/v1/jobs/${encodeURIComponent(jobId)}/${path}`, { signal });
      const items = itemsOf(payload);
      replace(target.body, render(items));
      setText(target.subtitle, items.length ? `${items.length} recorded` : '');
    } catch (error) {
      if (error?.name === 'AbortError') return;
      replace(target.body, errorBanner(error, { onRetry: () => loadSideTable(path, target, render) }));
    }
  }

  const refreshSideTables = () => Promise.all([
    loadSideTable('callbacks', callbacksSection, callbacksTable),
    loadSideTable('deliveries', deliveriesSection, deliveriesTable),
  ]);

  function applyJob(next) {
    const wasTerminal = job ? TERMINAL.has(job.status) : true;
    job = next;
    renderHeader();
    renderResult();
    if (wasTerminal && !TERMINAL.has(job.status)) follow();
  }

  async function refreshJob() {
    const next = await api(`/v1/jobs/${encodeURIComponent(jobId)}`, { signal });
    applyJob(next);
    return next;
  }

  /** Live output: each piece goes at its offset (0 starts over: a late join or a retry). */
  function applyOutput(data) {
    const offset = Number(data?.offset) || 0;
    const piece = typeof data?.text === 'string' ? data.text : '';
    const nearBottom = outputText.scrollHeight - outputText.scrollTop - outputText.clientHeight < 40;
    const next = output.slice(0, offset) + piece;
    if (next.startsWith(output)) outputText.append(next.slice(output.length));
    else outputText.textContent = next;
    output = next;
    outputSection.el.hidden = output.length === 0;
    setText(outputSection.subtitle, `${output.length} characters`);
    if (nearBottom) outputText.scrollTop = outputText.scrollHeight;
  }

  /** Apply a streamed event to the header at once; the full job is fetched when the status moves. */
  function onStreamEvent(event) {
    if (event?.type === 'output') {
      applyOutput(event.data);
      return;
    }
    if (!addEvent(event) || !job) return;
    const statusChanged = event.status && event.status !== job.status;
    job = {
      ...job,
      status: event.status ?? job.status,
      progress: typeof event.progress === 'number' ? event.progress : job.progress,
      message: event.message ?? job.message,
    };
    renderHeader();
    if (statusChanged) refreshJob().catch(() => {});
    if (event.type === 'callback' || event.type === 'webhook') refreshSideTables();
  }

  /** Follow the event stream; after repeated failures fall back to polling. */
  async function follow() {
    if (following || signal.aborted) return;
    following = true;
    let failures = 0;
    try {
      while (!signal.aborted && job && !TERMINAL.has(job.status)) {
        setLive('connecting', 'Connecting…');
        try {
          await streamJobEvents(jobId, {
            lastEventId, signal, onEvent: onStreamEvent,
            onOpen: () => setLive('live', 'Live'),
          });
          await refreshJob();
          failures = 0;
          // The stream ended before the job did (a restart, a proxy timeout): resume shortly.
          if (job && !TERMINAL.has(job.status)) await sleep(1000, signal);
        } catch (error) {
          if (signal.aborted) return;
          if (error instanceof ApiError && (error.status === 401 || error.status === 404)) return;
          failures += 1;
          if (failures >= STREAM_FAILURES_BEFORE_POLLING) {
            startPolling();
            return;
          }
          setLive('connecting', 'Reconnecting…');
          await sleep(500 * 2 ** failures, signal);
        }
      }
      if (job && TERMINAL.has(job.status)) finished();
    } finally {
      following = false;
    }
  }

  function startPolling() {
    if (fallbackPoller) return;
    setLive('polling', `Live (every ${POLL_MS / 1000} s)`);
    fallbackPoller = poller(async () => {
      await loadEvents();
      const next = await refreshJob();
      if (TERMINAL.has(next.status)) {
        fallbackPoller?.stop();
        fallbackPoller = null;
        finished();
      }
    }, POLL_MS);
  }

  function finished() {
    setLive('off', '');
    refreshSideTables();
  }

  async function cancelJob() {
    const confirmed = await confirmDialog({
      title: 'Cancel this job?',
      body: `${job.kind} ${shortId(job.id)} stops now; work in progress is aborted. You can retry it later.`,
      confirmLabel: 'Cancel job',
      danger: true,
    });
    if (!confirmed) return;
    await act('cancel', 'Job canceled');
  }

  async function retryJob() {
    await act('retry', 'Job queued again');
  }

  async function act(action, doneMessage) {
    const button = action === 'cancel' ? cancelButton : retryButton;
    button.disabled = true;
    try {
      const next = await api(`/v1/jobs/${encodeURIComponent(jobId)}/${action}`, { method: 'POST', signal });
      toast(doneMessage, 'success');
      if (next && typeof next === 'object' && next.id) applyJob(next);
      else await refreshJob();
      await loadEvents();
    } catch (error) {
      if (error?.name === 'AbortError') return;
      toast(error?.message ?? `Could not ${action} the job`, 'error', { timeout: 6000 });
      refreshJob().catch(() => {});
    } finally {
      button.disabled = false;
    }
  }

  async function start() {
    try {
      const [first] = await Promise.all([
        api(`/v1/jobs/${encodeURIComponent(jobId)}`, { signal }),
        loadEvents(),
      ]);
      loading.remove();
      el.append(header, body, lower);
      eventsList.scrollTop = eventsList.scrollHeight;
      applyJob(first);
      renderStatic();
      if (TERMINAL.has(first.status)) setLive('off', '');
    } catch (error) {
      if (signal.aborted) return;
      loading.remove();
      if (error instanceof ApiError && (error.status === 404 || error.status === 422)) {
        el.appendChild(h('div', { class: 'card' }, emptyState({
          title: 'Job not found',
          body: `No job has the id ${jobId}. It may have been purged after the retention period.`,
          iconName: 'alert',
          testid: 'job-not-found',
          action: h('a', { class: 'btn btn-secondary btn-sm', href: backHref }, 'Back to jobs'),
        })));
      } else {
        el.appendChild(errorBanner(error, { onRetry: () => location.reload(), testid: 'job-error-banner' }));
      }
      return;
    }
    sideTables = poller(refreshSideTables, SIDE_TABLES_MS);
    ticker = setInterval(renderDuration, 1000);
  }

  let sideTables = null;
  let ticker = null;
  start();

  return {
    el,
    dispose() {
      lifetime.abort();
      fallbackPoller?.stop();
      sideTables?.stop();
      clearInterval(ticker);
    },
  };
}
