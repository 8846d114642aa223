// The sign-in page (/login/): login and password, then back to the page that
// sent us here (?next=), else the right page for the role: the caregiver's
// phone page, the family page, or the dashboard.

import { applyStatic, lang, setLang, t } from './i18n.js';
import { authHeaders, signIn } from './session.js';

const HOME = { caregiver: '/caregiver/', family: '/family/' };

function byId(id) {
  return document.getElementById(id);
}

// Only paths on this site: ?next= must not send a user elsewhere after sign-in.
function nextPath() {
  const next = new URLSearchParams(window.location.search).get('next');
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login') ? next : null;
}

function showError(text) {
  const e = byId('login-error');
  e.textContent = text;
  e.hidden = !text;
}

function reason(err) {
  if (err && err.status === 401) return t('login.wrong');
  if (err && err.status === 403) return t('login.disabled');
  if (err && err.status === 429) return t('login.too_many', { s: err.retryAfter || '60' });
  return t('login.failed');
}

async function submit(ev) {
  ev.preventDefault();
  const name = byId('login-name').value.trim();
  const password = byId('login-password').value;
  if (!name || !password) {
    showError(t('login.wrong'));
    return;
  }
  const button = byId('login-submit');
  button.disabled = true;
  button.textContent = t('login.busy');
  showError('');
  try {
    await signIn(name, password);
    let target = nextPath();
    if (!target) {
      const me = await fetch('/api/v1/auth/me', { headers: { Accept: 'application/json', ...authHeaders() } });
      const role = me.ok ? (await me.json()).role : null;
      target = HOME[role] || '/';
    }
    window.location.assign(target);
  } catch (err) {
    showError(reason(err));
    button.disabled = false;
    button.textContent = t('login.submit');
  }
}

applyStatic(document);
byId('lang-toggle').addEventListener('click', () => setLang(lang() === 'zh' ? 'en' : 'zh'));
byId('login-form').addEventListener('submit', submit);
document.body.dataset.ready = '1';
