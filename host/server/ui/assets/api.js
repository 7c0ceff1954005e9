// The dashboard's only door to the server: the same /api/v1 everyone uses, authenticated by the
// session cookie, with the session's CSRF token on every change.

let csrf = null;
let onUnauthorized = () => {};

export function setCsrf(token) {
  csrf = token;
}

export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** An API refusal: `status`, `code` and the server's `message` (shown to people as is). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  get notFound() {
    return this.status === 404;
  }
}

async function toError(res) {
  let code = `http_${res.status}`;
  let message = `The server answered ${res.status} ${res.statusText || ''}`.trim();
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch {
    /* not JSON */
  }
  return new ApiError(res.status, code, message);
}

/**
 * Calls the API. `path` is relative to /api/v1/ unless it starts with '/'.
 * Returns the parsed JSON (null for 204); throws ApiError.
 */
export async function api(path, { method = 'GET', body, signal, raw = false, quiet401 = false, accept = 'application/json' } = {}) {
  const url = path.startsWith('/') ? path : `/api/v1/${path}`;
  const headers = { Accept: accept };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['X-CSRF-Token'] = csrf;
  let res;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
      credentials: 'same-origin',
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'The server could not be reached. Check your connection and try again.');
  }
  if (!res.ok) {
    const err = await toError(res);
    if (res.status === 401 && !quiet401) onUnauthorized(err);
    throw err;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Path segment escaping. */
export const seg = encodeURIComponent;

/** /tenants/<t>/... */
export function tpath(tenant, rest = '') {
  return `tenants/${seg(tenant)}${rest}`;
}

/**
 * Reads a text/event-stream response body and calls onEvent(name, data) for each event
 * (data parsed as JSON when it is JSON). Resolves when the stream ends.
 */
export async function readEventStream(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const dispatch = (block) => {
    let name = 'message';
    const data = [];
    for (const line of block.split(/\r\n|\r|\n/)) {
      if (!line || line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? '' : line.slice(i + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
    }
    if (!data.length) return;
    const text = data.join('\n');
    let parsed = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* plain text */
    }
    onEvent(name, parsed);
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    for (;;) {
      const m = /\r\n\r\n|\n\n|\r\r/.exec(buffer);
      if (!m) break;
      dispatch(buffer.slice(0, m.index));
      buffer = buffer.slice(m.index + m[0].length);
    }
  }
  buffer += decoder.decode();
  if (buffer.trim()) dispatch(buffer);
}

/**
 * Subscribes to the tenant's run events (EventSource sends the cookie). Returns a function that
 * closes it. onStatus(text) hears about connection trouble.
 */
export function runEvents(tenant, onRun, onStatus = () => {}) {
  const es = new EventSource(`/api/v1/${tpath(tenant, '/runs/events')}`);
  es.addEventListener('run', (e) => {
    try {
      onRun(JSON.parse(e.data));
    } catch {
      /* ignore a malformed event */
    }
  });
  es.addEventListener('open', () => onStatus('live'));
  es.addEventListener('error', () => onStatus(es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting'));
  return () => es.close();
}
