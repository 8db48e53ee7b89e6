// The parts of a job page that only display data: result, events, callbacks, deliveries.

import { h, icon } from '../dom.js';
import { emptyState, jsonView, statusBadge, timeAgo } from '../components.js';
import { formatCount, formatDuration, parseTime } from '../format.js';

const QUESTIONS_SHOWN = 5;
const GOOD_OUTCOMES = new Set(['ok', 'success', 'succeeded', 'delivered', 'applied', 'accepted', 'saved', 'processed']);
const NEUTRAL_OUTCOMES = new Set(['duplicate', 'replayed', 'ignored', 'pending', 'sending', 'retrying', 'scheduled', 'skipped', 'gone']);

/** Green for success, red for failure, grey otherwise; by outcome word and HTTP status. */
export function outcomeTone(outcome, statusCode) {
  const word = String(outcome ?? '').toLowerCase();
  if (GOOD_OUTCOMES.has(word)) return 'good';
  if (NEUTRAL_OUTCOMES.has(word)) return 'neutral';
  if (typeof statusCode === 'number') {
    if (statusCode >= 200 && statusCode < 300) return word ? 'neutral' : 'good';
    if (statusCode >= 400) return 'bad';
  }
  return word ? 'bad' : 'neutral';
}

export function outcomePill(outcome, statusCode) {
  return h('span', { class: `pill pill-${outcomeTone(outcome, statusCode)}` }, outcome || '—');
}

function httpCode(statusCode) {
  if (typeof statusCode !== 'number') return h('span', { class: 'muted' }, '—');
  const tone = statusCode < 300 ? 'good' : statusCode < 500 ? 'warn' : 'bad';
  return h('span', { class: `http-code http-${tone}` }, String(statusCode));
}

function isSafeHttpUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

/** A URL as text; never a link, since a webhook URL is whatever a client submitted. */
export function urlText(value) {
  if (!value) return h('span', { class: 'muted' }, '—');
  return h('span', { class: `url mono${isSafeHttpUrl(value) ? '' : ' url-odd'}`, title: value }, value);
}

function tile(label, value, tone = '') {
  return h('div', { class: `tile ${tone ? `tile-${tone}` : ''}` },
    h('span', { class: 'tile-label' }, label),
    h('span', { class: 'tile-value' }, value),
  );
}

function promptResult(result) {
  return h('div', { class: 'result-prompt' },
    h('div', { class: 'tiles' },
      tile('Model', result.model ?? '—'),
      tile('Tokens used', formatCount(result.tokens_used)),
      tile('Fallback', result.fallback ? 'Yes' : 'No', result.fallback ? 'warn' : ''),
    ),
    h('blockquote', { class: 'prompt-text', testid: 'result-prompt' }, String(result.prompt ?? '')),
  );
}

function questionItem(question, index) {
  const options = question?.options && typeof question.options === 'object' ? question.options : {};
  return h('li', { class: 'question' },
    h('p', { class: 'question-sentence' }, h('span', { class: 'question-number' }, `${index + 1}.`), String(question?.sentence ?? '')),
    h('ul', { class: 'options' }, ['A', 'B', 'C', 'D'].map((letter) => h('li', {
      class: `option${question?.correct_answer === letter ? ' option-correct' : ''}`,
    }, h('span', { class: 'option-letter' }, letter), String(options[letter] ?? '')))),
    question?.explanation ? h('p', { class: 'question-explanation' }, String(question.explanation)) : null,
    h('div', { class: 'question-tags' },
      [question?.type, question?.difficulty].filter(Boolean).map((tag) => h('span', { class: 'tag' }, String(tag))),
      typeof question?.score === 'number' ? h('span', { class: 'tag' }, `score ${question.score}`) : null,
    ),
  );
}

function quizResult(result) {
  const questions = Array.isArray(result.questions) ? result.questions : [];
  const list = h('ol', { class: 'questions' }, questions.slice(0, QUESTIONS_SHOWN).map(questionItem));
  const more = questions.length > QUESTIONS_SHOWN
    ? h('button', {
      class: 'btn btn-ghost btn-sm', type: 'button',
      onClick: (event) => {
        questions.slice(QUESTIONS_SHOWN).forEach((question, index) => list.appendChild(questionItem(question, index + QUESTIONS_SHOWN)));
        event.currentTarget.remove();
      },
    }, `Show all ${questions.length} questions`)
    : null;
  return h('div', { class: 'result-quiz' },
    h('div', { class: 'tiles' }, tile('Questions created', formatCount(result.questions_created ?? questions.length))),
    questions.length ? list : h('p', { class: 'muted' }, 'No questions in the result.'),
    more,
  );
}

function ingestResult(result) {
  const errors = Array.isArray(result.errors) ? result.errors : [];
  return h('div', { class: 'result-ingest' },
    h('div', { class: 'tiles' },
      tile('Records', formatCount(result.total_records)),
      tile('Processed', formatCount(result.processed_records), 'good'),
      tile('Failed', formatCount(result.failed_records), result.failed_records ? 'bad' : ''),
      tile('Took', formatDuration(typeof result.duration === 'number' ? result.duration : null)),
    ),
    errors.length ? h('div', { class: 'table-scroll' }, h('table', { class: 'table table-compact' },
      h('thead', null, h('tr', null, h('th', null, 'Row'), h('th', null, 'Student'), h('th', null, 'Problems'))),
      h('tbody', null, errors.slice(0, 200).map((item) => h('tr', null,
        h('td', { class: 'mono' }, String(item?.index ?? '')),
        h('td', { class: 'mono' }, String(item?.student_id ?? '—')),
        h('td', null, (Array.isArray(item?.errors) ? item.errors : [item?.errors]).filter(Boolean).map((problem) => h('div', null, typeof problem === 'string' ? problem : JSON.stringify(problem)))),
      ))),
    )) : null,
    errors.length > 200 ? h('p', { class: 'muted' }, `Showing 200 of ${formatCount(errors.length)} invalid records; the raw result has them all.`) : null,
  );
}

/** A completed job's result, shown the way it reads best (a prompt, a quiz's questions, an
 * ingestion's counts, known by their shape), with the raw JSON underneath. */
export function resultView(kind, result) {
  let summary = null;
  if (result && typeof result === 'object') {
    if ('prompt' in result && 'fallback' in result) summary = promptResult(result);
    else if (Array.isArray(result.questions)) summary = quizResult(result);
    else if ('total_records' in result && 'processed_records' in result) summary = ingestResult(result);
  }
  if (!summary) return jsonView(result, { testid: 'result-json' });
  return h('div', { class: 'result' },
    summary,
    h('details', { class: 'raw' }, h('summary', null, 'Raw JSON'), jsonView(result, { testid: 'result-json' })),
  );
}

export function failureView(error) {
  return h('div', { class: 'callout callout-bad', testid: 'job-error' },
    icon('alert'),
    h('div', null,
      h('p', { class: 'callout-title' }, error?.message ?? 'The job failed.'),
      error?.code ? h('code', null, error.code) : null,
    ),
  );
}

export function eventItem(event) {
  const data = event?.data && typeof event.data === 'object' && Object.keys(event.data).length ? event.data : null;
  const progress = typeof event?.progress === 'number' ? `${event.progress}%` : '';
  return h('li', { class: `event event-${event?.type ?? 'status'}`, testid: 'event-item', dataset: { eventId: String(event?.id ?? '') } },
    h('span', { class: `event-dot dot-${event?.status ?? 'unknown'}`, 'aria-hidden': 'true' }),
    h('div', { class: 'event-body' },
      h('div', { class: 'event-head' },
        h('span', { class: 'event-type' }, event?.type ?? 'event'),
        statusBadge(event?.status),
        progress ? h('span', { class: 'event-percent' }, progress) : null,
        h('span', { class: 'event-time' }, timeAgo(event?.at)),
      ),
      event?.message ? h('p', { class: 'event-message' }, String(event.message)) : null,
      data ? h('details', { class: 'event-data' }, h('summary', null, 'Data'), jsonView(data)) : null,
    ),
  );
}

export function callbacksTable(items) {
  if (!items.length) {
    return emptyState({ title: 'No callbacks received', body: 'Calls from an external generator to this job appear here.', testid: 'callbacks-empty' });
  }
  return h('div', { class: 'table-scroll' }, h('table', { class: 'table table-compact', testid: 'callbacks-table' },
    h('thead', null, h('tr', null, ['Received', 'Route', 'Kind', 'Outcome', 'Status', 'Webhook id', 'Body'].map((name) => h('th', { scope: 'col' }, name)))),
    h('tbody', null, items.map((item) => h('tr', { testid: 'callback-row' },
      h('td', null, timeAgo(item.received_at)),
      h('td', { class: 'mono' }, String(item.route ?? '—')),
      h('td', null, String(item.kind || '—')),
      h('td', null, outcomePill(item.outcome, item.status_code)),
      h('td', null, httpCode(item.status_code)),
      h('td', { class: 'mono truncate', title: item.webhook_id ?? '' }, item.webhook_id ?? '—'),
      h('td', null, bodyDetails(item.body)),
    ))),
  ));
}

function bodyDetails(body) {
  if (body === null || body === undefined || body === '') return h('span', { class: 'muted' }, '—');
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return h('details', { class: 'raw raw-inline' }, h('summary', null, `${formatCount(body.length)} chars`), h('pre', { class: 'json' }, body));
    }
  }
  const size = typeof body === 'string' ? body.length : JSON.stringify(body).length;
  return h('details', { class: 'raw raw-inline' }, h('summary', null, `${formatCount(size)} chars`), jsonView(value));
}

/** "next try in 12 s" under a delivery that will be attempted again. */
function nextTry(iso) {
  const due = parseTime(iso);
  if (!due || due.getTime() < Date.now()) return null;
  return h('span', { class: 'next-try' }, timeAgo(iso, { prefix: 'next try ' }));
}

export function deliveriesTable(items) {
  if (!items.length) {
    return emptyState({ title: 'No webhook deliveries', body: 'Jobs submitted with a webhook URL get a signed POST for each chosen event.', testid: 'deliveries-empty' });
  }
  return h('div', { class: 'table-scroll' }, h('table', { class: 'table table-compact', testid: 'deliveries-table' },
    h('thead', null, h('tr', null, ['Attempted', 'Event', 'Attempt', 'Response', 'Outcome', 'Took', 'URL', 'Error'].map((name) => h('th', { scope: 'col' }, name)))),
    h('tbody', null, items.map((item) => h('tr', { testid: 'delivery-row' },
      h('td', null, item.attempted_at ? timeAgo(item.attempted_at) : h('span', { class: 'muted' }, 'not yet')),
      h('td', null, h('span', { class: 'tag' }, String(item.event_type ?? '—'))),
      h('td', { class: 'num' }, `#${item.attempt ?? '?'}`),
      h('td', null, httpCode(item.status_code)),
      h('td', null, outcomePill(item.outcome, item.status_code), nextTry(item.next_attempt_at)),
      h('td', { class: 'num' }, typeof item.duration_ms === 'number' ? formatDuration(item.duration_ms / 1000) : '—'),
      h('td', { class: 'td-url' }, urlText(item.url)),
      h('td', { class: 'td-error', title: item.error ?? '' }, item.error ? String(item.error) : h('span', { class: 'muted' }, '—')),
    ))),
  ));
}
