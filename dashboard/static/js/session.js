// The signed-in session of this browser tab: tokens in sessionStorage (gone when
// the tab closes, never shared with other tabs or sent anywhere but our API),
// refreshed a minute before the access token expires, and a trip to /login/
// when the server says the session is over.
//
// Refresh tokens rotate: each is good for one use. Two refreshes at once would
// spend the same token twice and the server would end the session (it reads
// that as a stolen token), so there is only ever one refresh in flight.

const KEY = 'xingbei.session';
const EARLY_MS = 60000; // refresh this long before the access token runs out
const LOGIN_PATH = '/login/';

let refreshing = null;
let timer = null;

function load() {
  try {
    return JSON.parse(window.sessionStorage.getItem(KEY) || 'null');
  } catch (_) {
    return null;
  }
}

function save(pair) {
  const s = {
    access_token: pair.access_token,
    refresh_token: pair.refresh_token,
    expires_at: Date.now() + pair.expires_in * 1000,
  };
  window.sessionStorage.setItem(KEY, JSON.stringify(s));
  schedule(s);
  return s;
}

function schedule(s) {
  clearTimeout(timer);
  if (!s) return;
  const wait = Math.max(5000, s.expires_at - Date.now() - EARLY_MS);
  timer = setTimeout(() => refresh().catch(() => toLogin()), wait);
}

export function accessToken() {
  const s = load();
  return s ? s.access_token : null;
}

export function authHeaders() {
  const token = accessToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export function signedIn() {
  return Boolean(load());
}

// Sign in with the login form; resolves to the token pair, rejects with {status, detail}.
export async function signIn(login, password) {
  const body = new URLSearchParams({ username: login, password });
  const res = await fetch('/api/v1/auth/login', {
    method: 'POST',
    headers: { Accept: 'application/json' },
    body,
    cache: 'no-store',
  });
  let data = null;
  try {
    data = await res.json();
  } catch (_) {
    // no body: the status says enough
  }
  if (!res.ok) throw { status: res.status, detail: data && data.detail, retryAfter: res.headers.get('Retry-After') };
  return save(data);
}

// Trade the refresh token for a new pair (one at a time); rejects when the session is over.
export function refresh() {
  if (refreshing) return refreshing;
  const s = load();
  if (!s) return Promise.reject(new Error('not signed in'));
  refreshing = (async () => {
    try {
      const res = await fetch('/api/v1/auth/refresh', {
        method: 'POST',
        headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: s.refresh_token }),
        cache: 'no-store',
      });
      if (!res.ok) {
        if (res.status === 401) clear();
        throw new Error(`refresh: HTTP ${res.status}`);
      }
      return save(await res.json());
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export function clear() {
  clearTimeout(timer);
  window.sessionStorage.removeItem(KEY);
}

// Go to the login page, coming back here afterwards.
export function toLogin() {
  clear();
  const here = window.location.pathname + window.location.search;
  window.location.assign(`${LOGIN_PATH}?next=${encodeURIComponent(here)}`);
}

// The page needs a signed-in user: without a session, off to /login/ (and never resolve).
export function requireSession() {
  const s = load();
  if (!s) {
    toLogin();
    return new Promise(() => {});
  }
  schedule(s);
  return Promise.resolve(s);
}

export async function signOut() {
  const headers = authHeaders();
  try {
    await fetch('/api/v1/auth/logout', { method: 'POST', headers, cache: 'no-store' });
  } catch (_) {
    // Signed out here regardless; the access token expires on its own.
  }
  clear();
  window.location.assign(LOGIN_PATH);
}
