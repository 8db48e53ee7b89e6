// The dashboard's only way to the service: the public HTTP API, signed with the admin's key.

const KEY_STORAGE = 'jobrelay.dashboard.apiKey';
const API_BASE = document.querySelector('meta[name="jobrelay-api-base"]')?.content ?? '';

/** An API failure, carrying the service's own error code and message. */
export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

let unauthorizedHandler = () => {};

/** Called when a stored key stops working (revoked, deleted user): back to sign-in. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

export function getKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || '';
  } catch {
    return '';
  }
}

export function storeKey(key) {
  try {
    localStorage.setItem(KEY_STORAGE, key);
  } catch {
    // Private browsing may refuse storage; the key then lasts for this page only.
  }
  sessionKey = key;
}

export function forgetKey() {
  try {
    localStorage.removeItem(KEY_STORAGE);
  } catch {
    // Nothing stored, nothing to remove.
  }
  sessionKey = '';
}

let sessionKey = getKey();

function buildUrl(path, query) {
  const url = new URL(API_BASE + path, location.origin);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, String(value));
  }
  return url.toString();
}

async function errorFrom(response) {
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    // Not JSON (a proxy's error page): fall back to the status line.
  }
  const error = payload && typeof payload === 'object' ? payload.error : null;
  if (error && typeof error === 'object') {
    return new ApiError(
      response.status,
      String(error.code ?? 'error'),
      String(error.message ?? `Request failed (${response.status})`),
      Array.isArray(error.details) ? error.details : [],
    );
  }
  const text = response.statusText ? ` ${response.statusText}` : '';
  return new ApiError(response.status, 'http_error', `Request failed: HTTP ${response.status}${text}`);
}

function networkError(cause) {
  if (cause?.name === 'AbortError') return cause;
  return new ApiError(0, 'network_error', 'Could not reach the jobrelay API. Is the service running?');
}

/**
 * Call the API and return the parsed JSON body.
 * `key` overrides the stored key (used to check a key before keeping it); a 401 with the stored
 * key signs the admin out.
 */
export async function api(path, { method = 'GET', query, body, signal, key } = {}) {
  const usedKey = key ?? sessionKey;
  const headers = { Accept: 'application/json' };
  if (usedKey) headers.Authorization = `Bearer ${usedKey}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(buildUrl(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (cause) {
    throw networkError(cause);
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401 && key === undefined) unauthorizedHandler(error);
    throw error;
  }
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/**
 * Follow a job's event stream with fetch (EventSource cannot send the Authorization header).
 * Calls onEvent(event, id) for each event; resolves when the server ends the stream.
 */
export async function streamJobEvents(jobId, { lastEventId, signal, onEvent, onOpen }) {
  const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${sessionKey}` };
  if (lastEventId !== undefined && lastEventId !== null) headers['Last-Event-ID'] = String(lastEventId);
  let response;
  try {
    response = await fetch(buildUrl(`/v1/jobs/${encodeURIComponent(jobId)}/events`), {
      headers,
      signal,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (cause) {
    throw networkError(cause);
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401) unauthorizedHandler(error);
    throw error;
  }
  const type = response.headers.get('content-type') ?? '';
  if (!type.includes('text/event-stream') || !response.body) {
    throw new ApiError(response.status, 'not_a_stream', 'The server did not answer with an event stream.');
  }
  onOpen?.();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new EventStreamParser(onEvent);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(value);
    }
    parser.end();
  } finally {
    reader.releaseLock();
  }
}

/** The text/event-stream format: `id:` and `data:` lines, a blank line ends an event. */
export class EventStreamParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.data = [];
    this.id = null;
  }

  feed(chunk) {
    let text = this.buffer + chunk;
    // A chunk ending in "\r" may be the first half of "\r\n": hold it for the next chunk.
    const heldCr = text.endsWith('\r');
    if (heldCr) text = text.slice(0, -1);
    const lines = text.split(/\r\n|\r|\n/);
    this.buffer = (lines.pop() ?? '') + (heldCr ? '\r' : '');
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.id = value;
  }

  dispatch() {
    if (this.data.length === 0) return;
    const text = this.data.join('\n');
    this.data = [];
    let event;
    try {
      event = JSON.parse(text);
    } catch {
      return;
    }
    this.onEvent(event, this.id);
  }

  /** At the end of the stream an unfinished event is dropped, as the format requires. */
  end() {
    this.buffer = '';
    this.data = [];
  }
}

/** Lists come as {"items": [...]}; tolerate a bare list too. */
export function itemsOf(payload) {
  if (Array.isArray(payload)) return payload;
  if (payload && Array.isArray(payload.items)) return payload.items;
  return [];
}
