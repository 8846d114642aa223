// The few HTTP calls the dashboard makes. URLs are relative to the page's own
// origin: the dashboard is served by the API it talks to. Every call carries the
// signed-in user's access token; a 401 is answered by one refresh and a retry,
// and when that fails too the session is over: back to the login page.

import { authHeaders, refresh, toLogin } from './session.js';

async function authorized(path, init, timeoutMs) {
  for (let attempt = 0; ; attempt += 1) {
    // A hung request must not freeze catch-up after a reconnect forever.
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), timeoutMs);
    let res;
    try {
      res = await fetch(path, {
        ...init,
        headers: { ...init.headers, ...authHeaders() },
        signal: ctrl.signal,
        cache: 'no-store',
      });
    } finally {
      clearTimeout(timer);
    }
    if (res.status !== 401) return res;
    if (attempt === 0) {
      try {
        await refresh();
        continue;
      } catch (_) {
        // fall through: signed out
      }
    }
    toLogin();
    throw new Error(`${path}: HTTP 401 (signed out)`);
  }
}

export async function getJSON(path, { timeoutMs = 15000, headers = {} } = {}) {
  const res = await authorized(path, { headers: { Accept: 'application/json', ...headers } }, timeoutMs);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return await res.json();
}

// Retry until it works, with capped backoff: at start-up there is nothing to
// show without the config, and the API may still be starting.
export async function getJSONRetrying(path, onError) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await getJSON(path);
    } catch (err) {
      onError?.(err);
      await sleep(Math.min(10000, 500 * 2 ** attempt));
    }
  }
}

export function liveSocketUrl() {
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${window.location.host}/ws/live`;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// POST a JSON body. Resolves to { status, body } for any HTTP answer (the
// caller decides what a 409 means); rejects only when there is no answer.
export async function postJSON(path, payload, { timeoutMs = 15000, headers = {} } = {}) {
  const res = await authorized(
    path,
    {
      method: 'POST',
      headers: { Accept: 'application/json', 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(payload),
    },
    timeoutMs,
  );
  let body = null;
  try {
    body = await res.json();
  } catch (_) {
    // An empty or non-JSON error page; the status says enough.
  }
  return { status: res.status, body };
}
