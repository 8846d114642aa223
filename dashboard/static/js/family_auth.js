// Signing in on the family page and calling the API as the signed-in person.
//
// Tokens live in sessionStorage: they survive a reload of this tab but not
// closing it, and no other tab or site can read them. The access token is
// short-lived (15 minutes); on a 401 the page spends its refresh token once
// at /api/v1/auth/refresh (each is good for one use) and retries the call.
// If that fails too, the person is signed out and sees the form again.

const KEY = 'xingbei.family.tokens';
const TIMEOUT_MS = 15000;

export class SignedOut extends Error {
  constructor(reason) {
    super(reason);
    this.reason = reason; // 'expired' | 'none'
  }
}

function load() {
  try {
    return JSON.parse(window.sessionStorage.getItem(KEY) || 'null');
  } catch (_) {
    return null;
  }
}

function save(pair) {
  window.sessionStorage.setItem(
    KEY,
    JSON.stringify({ access: pair.access_token, refresh: pair.refresh_token }),
  );
}

export function hasSession() {
  return Boolean(load()?.access);
}

export function forget() {
  window.sessionStorage.removeItem(KEY);
}

async function timed(path, init) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
  try {
    return await fetch(path, { cache: 'no-store', ...init, signal: ctrl.signal });
  } finally {
    clearTimeout(timer);
  }
}

async function body(res) {
  try {
    return await res.json();
  } catch (_) {
    return null;
  }
}

// Resolves to {status, body, retryAfter}; rejects only when there is no answer.
export async function signIn(username, password) {
  const form = new URLSearchParams({ username, password });
  const res = await timed('/api/v1/auth/login', { method: 'POST', body: form });
  const out = { status: res.status, body: await body(res), retryAfter: res.headers.get('Retry-After') };
  if (res.ok) save(out.body);
  return out;
}

// One refresh at a time: two calls failing together must not spend the
// refresh token twice (the second use would end the session).
let refreshing = null;
async function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const tokens = load();
      if (!tokens?.refresh) return false;
      const res = await timed('/api/v1/auth/refresh', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: tokens.refresh }),
      });
      if (!res.ok) return false;
      save(await res.json());
      return true;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

function withAuth(init = {}) {
  const tokens = load();
  if (!tokens?.access) throw new SignedOut('none');
  const headers = { Accept: 'application/json', ...(init.headers || {}) };
  headers.Authorization = `Bearer ${tokens.access}`;
  return { ...init, headers };
}

// Call the API as the signed-in person: {status, body}. A 401 is retried once
// after a refresh; still 401 → SignedOut (thrown), tokens forgotten.
export async function call(path, { method = 'GET', json } = {}) {
  const init = { method };
  if (json !== undefined) {
    init.headers = { 'Content-Type': 'application/json' };
    init.body = JSON.stringify(json);
  }
  let res = await timed(path, withAuth(init));
  if (res.status === 401 && (await refresh())) res = await timed(path, withAuth(init));
  if (res.status === 401) {
    forget();
    throw new SignedOut('expired');
  }
  return { status: res.status, body: await body(res) };
}

export async function signOut() {
  try {
    await call('/api/v1/auth/logout', { method: 'POST' });
  } catch (_) {
    // Signed out locally whatever the server said.
  }
  forget();
}
