// The few HTTP calls the dashboard makes. URLs are relative to the page's own
// origin: the dashboard is served by the API it talks to.

export async function getJSON(path, { timeoutMs = 15000, headers = {} } = {}) {
  // A hung request must not freeze catch-up after a reconnect forever.
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  try {
    const res = await fetch(path, { headers: { Accept: 'application/json', ...headers }, signal: ctrl.signal, cache: 'no-store' });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return await res.json();
  } finally {
    clearTimeout(timer);
  }
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
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  try {
    const res = await fetch(path, {
      method: 'POST',
      headers: { Accept: 'application/json', 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(payload),
      signal: ctrl.signal,
      cache: 'no-store',
    });
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      // An empty or non-JSON error page; the status says enough.
    }
    return { status: res.status, body };
  } finally {
    clearTimeout(timer);
  }
}
