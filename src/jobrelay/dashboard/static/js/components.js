// Small reusable pieces: badges, progress bars, times, toasts, dialogs, JSON, pollers.

import { h, icon, setAttr, setText } from './dom.js';
import {
  STATUS_LABELS, clampProgress, formatAbsolute, formatRelative,
} from './format.js';

export function statusBadge(status) {
  const badge = h('span', { class: 'badge', testid: 'status-badge' });
  updateStatusBadge(badge, status);
  return badge;
}

export function updateStatusBadge(badge, status) {
  const value = String(status ?? 'unknown');
  setAttr(badge, 'class', `badge badge-${STATUS_LABELS[value] ? value : 'unknown'}`);
  setAttr(badge, 'data-status', value);
  setText(badge, STATUS_LABELS[value] ?? value);
}

/** A progress bar that animates between values; striped while the job is processing. */
export function progressBar(progress, status, { large = false } = {}) {
  const fill = h('span', { class: 'progress-fill' });
  const bar = h('span', {
    class: large ? 'progress progress-lg' : 'progress',
    role: 'progressbar',
    'aria-valuemin': '0',
    'aria-valuemax': '100',
    'aria-label': 'Progress',
    testid: 'progress-bar',
  }, fill);
  updateProgressBar(bar, progress, status);
  return bar;
}

export function updateProgressBar(bar, progress, status) {
  const value = clampProgress(progress);
  setAttr(bar, 'aria-valuenow', value);
  setAttr(bar, 'data-status', status ?? '');
  const fill = bar.firstElementChild;
  const width = `${value}%`;
  if (fill.style.width !== width) fill.style.width = width;
}

/** A relative time that keeps itself current (see refreshTimes) and shows the exact time on hover. */
export function timeAgo(iso, { prefix = '' } = {}) {
  const el = h('time', { class: 'time-ago' });
  updateTimeAgo(el, iso, prefix);
  return el;
}

export function updateTimeAgo(el, iso, prefix = '') {
  if (!iso) {
    setText(el, '—');
    setAttr(el, 'datetime', null);
    setAttr(el, 'title', null);
    delete el.dataset.time;
    return;
  }
  el.dataset.time = iso;
  el.dataset.prefix = prefix;
  setAttr(el, 'datetime', iso);
  setAttr(el, 'title', formatAbsolute(iso));
  setText(el, prefix + formatRelative(iso));
}

/** Bring every relative time under root up to date. */
export function refreshTimes(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll('time.time-ago[data-time]')) {
    setText(el, (el.dataset.prefix ?? '') + formatRelative(el.dataset.time, now));
  }
}

export function spinner(label = 'Loading') {
  return h('span', { class: 'spinner', role: 'status', 'aria-label': label });
}

export function emptyState({ title, body, action, iconName = 'inbox', testid }) {
  return h('div', { class: 'empty', testid },
    h('div', { class: 'empty-icon' }, icon(iconName)),
    h('p', { class: 'empty-title' }, title),
    body ? h('p', { class: 'empty-body' }, body) : null,
    action ?? null,
  );
}

export function errorBanner(error, { onRetry, testid = 'error-banner' } = {}) {
  const message = error?.message ?? String(error);
  const code = error?.code && error.code !== 'network_error' && error.code !== 'http_error' ? error.code : null;
  return h('div', { class: 'banner banner-error', role: 'alert', testid },
    icon('alert'),
    h('div', { class: 'banner-text' },
      h('span', { class: 'banner-message' }, message),
      code ? h('code', { class: 'banner-code' }, code) : null,
    ),
    onRetry ? h('button', { class: 'btn btn-ghost btn-sm', type: 'button', onClick: onRetry }, 'Try again') : null,
  );
}

/** A short notice in the corner; kind is "success", "error" or "info". */
export function toast(message, kind = 'info', { timeout = 4000 } = {}) {
  const region = document.getElementById('toasts');
  if (!region) return;
  const item = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', testid: 'toast' },
    h('span', { class: 'toast-dot', 'aria-hidden': 'true' }),
    h('span', { class: 'toast-text' }, message),
  );
  region.appendChild(item);
  setTimeout(() => {
    item.classList.add('toast-leaving');
    setTimeout(() => item.remove(), 250);
  }, timeout);
}

/** Ask before doing something that cannot be undone; resolves true when confirmed. */
export function confirmDialog({ title, body, confirmLabel = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'dialog', testid: 'confirm-dialog', 'aria-labelledby': 'confirm-title' });
    const finish = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    dialog.append(
      h('form', { method: 'dialog', class: 'dialog-body', onSubmit: (event) => { event.preventDefault(); finish(true); } },
        h('h2', { class: 'dialog-title', id: 'confirm-title' }, title),
        body ? h('p', { class: 'dialog-text' }, body) : null,
        h('div', { class: 'dialog-actions' },
          h('button', { class: 'btn btn-ghost', type: 'button', testid: 'confirm-cancel', onClick: () => finish(false) }, 'Keep it'),
          h('button', { class: danger ? 'btn btn-danger' : 'btn btn-primary', type: 'submit', testid: 'confirm-ok' }, confirmLabel),
        ),
      ),
    );
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      finish(false);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    dialog.querySelector('[data-testid="confirm-ok"]').focus();
  });
}

export function copyButton(text, label = 'Copy') {
  const button = h('button', {
    class: 'btn-icon', type: 'button', title: label, 'aria-label': label,
    onClick: async (event) => {
      event.stopPropagation();
      try {
        await navigator.clipboard.writeText(text);
        toast('Copied to clipboard', 'success', { timeout: 1500 });
      } catch {
        toast('The browser did not allow copying here', 'error');
      }
    },
  }, icon('copy'));
  return button;
}

const JSON_TOKEN = /("(?:\\.|[^"\\])*"(?=\s*:))|("(?:\\.|[^"\\])*")|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(true|false)|(null)/g;
const MAX_HIGHLIGHT_CHARS = 200_000;
const PREVIEW_LINES = 200;

function highlightInto(pre, text) {
  if (text.length > MAX_HIGHLIGHT_CHARS) {
    pre.textContent = text;
    return;
  }
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(JSON_TOKEN)) {
    if (match.index > last) fragment.appendChild(document.createTextNode(text.slice(last, match.index)));
    const kind = match[1] ? 'key' : match[2] ? 'string' : match[3] ? 'number' : match[4] ? 'boolean' : 'null';
    fragment.appendChild(h('span', { class: `json-${kind}` }, match[0]));
    last = match.index + match[0].length;
  }
  if (last < text.length) fragment.appendChild(document.createTextNode(text.slice(last)));
  pre.replaceChildren(fragment);
}

/** Pretty JSON, coloured, long documents shortened with a "show all" button. */
export function jsonView(value, { testid } = {}) {
  const text = JSON.stringify(value, null, 2) ?? 'null';
  const lines = text.split('\n');
  const pre = h('pre', { class: 'json', testid });
  const wrap = h('div', { class: 'json-wrap' }, pre, copyButton(text, 'Copy JSON'));
  if (lines.length > PREVIEW_LINES) {
    highlightInto(pre, lines.slice(0, PREVIEW_LINES).join('\n'));
    const more = h('button', {
      class: 'btn btn-ghost btn-sm json-more', type: 'button',
      onClick: () => {
        highlightInto(pre, text);
        more.remove();
      },
    }, `Show all ${lines.length.toLocaleString()} lines`);
    wrap.appendChild(more);
  } else highlightInto(pre, text);
  return wrap;
}

/**
 * Run task now and then every intervalMs after it finishes, only while the page is visible;
 * coming back to the tab runs it at once. Returns {stop, now}.
 */
export function poller(task, intervalMs) {
  let timer = null;
  let running = false;
  let stopped = false;
  const schedule = () => {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(run, intervalMs);
  };
  const run = async () => {
    if (stopped) return;
    if (document.hidden) {
      schedule();
      return;
    }
    if (running) return;
    running = true;
    try {
      await task();
    } catch {
      // The task shows its own errors; keep polling.
    } finally {
      running = false;
      schedule();
    }
  };
  const onVisible = () => {
    if (!document.hidden) run();
  };
  document.addEventListener('visibilitychange', onVisible);
  run();
  return {
    now: run,
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisible);
    },
  };
}
