// Formatting for people: counts, durations, relative and absolute times, short ids.

const numberFormat = new Intl.NumberFormat();
const compactFormat = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
const absoluteFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric',
  hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
});
const dateFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const yearDateFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });

export const STATUSES = ['queued', 'processing', 'completed', 'failed', 'canceled'];
export const TERMINAL = new Set(['completed', 'failed', 'canceled']);

export const STATUS_LABELS = {
  queued: 'Queued',
  processing: 'Processing',
  completed: 'Completed',
  failed: 'Failed',
  canceled: 'Canceled',
};

export function formatCount(value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '—';
  return numberFormat.format(value);
}

/** 1234567 → "1.2M", for tight spaces; the exact number goes in a title. */
export function formatCompact(value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '—';
  return value < 10000 ? numberFormat.format(value) : compactFormat.format(value);
}

/** Seconds → "850 ms", "4.2 s", "3 min 12 s", "2 h 5 min". */
export function formatDuration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '—';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const total = Math.round(seconds);
  if (total < 3600) {
    const minutes = Math.floor(total / 60);
    const rest = total % 60;
    return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
  }
  if (total < 86400) {
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    return minutes ? `${hours} h ${minutes} min` : `${hours} h`;
  }
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  return hours ? `${days} d ${hours} h` : `${days} d`;
}

export function parseTime(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "just now", "12 s ago", "5 min ago", "3 h ago", "2 d ago", then a date; "in 30 s" ahead. */
export function formatRelative(iso, now = Date.now()) {
  const date = parseTime(iso);
  if (!date) return '—';
  const seconds = Math.round((now - date.getTime()) / 1000);
  if (seconds <= -5) return `in ${formatDuration(-seconds)}`;
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.floor(hours / 24);
  if (days < 7) return `${days} d ago`;
  return (date.getFullYear() === new Date(now).getFullYear() ? dateFormat : yearDateFormat).format(date);
}

/** The exact moment, for a hover title: local time and the ISO form. */
export function formatAbsolute(iso) {
  const date = parseTime(iso);
  if (!date) return '';
  return `${absoluteFormat.format(date)} · ${date.toISOString()}`;
}

/** Seconds a job has taken so far, or took. */
export function jobElapsed(job, now = Date.now()) {
  if (typeof job.duration_seconds === 'number') return job.duration_seconds;
  const started = parseTime(job.started_at);
  if (!started) return null;
  const ended = parseTime(job.completed_at);
  return Math.max(0, ((ended ? ended.getTime() : now) - started.getTime()) / 1000);
}

export function shortId(id) {
  return String(id ?? '').slice(0, 8);
}

export function clampProgress(value) {
  const number = Number(value);
  if (!Number.isFinite(number)) return 0;
  return Math.min(100, Math.max(0, Math.round(number)));
}

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** A pasted job id, tidied; null when it cannot be one. */
export function normalizeJobId(text) {
  const value = String(text ?? '').trim().replace(/^#\/jobs\//, '').split(/[?#\s]/)[0];
  const tail = value.includes('/') ? value.slice(value.lastIndexOf('/') + 1) : value;
  if (!UUID_RE.test(tail)) return null;
  const hex = tail.replaceAll('-', '').toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Plural-aware label: plural(3, 'job') → "3 jobs". */
export function plural(count, noun) {
  return `${formatCount(count)} ${noun}${count === 1 ? '' : 's'}`;
}
