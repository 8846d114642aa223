// The family page (/family/): a daughter on her phone signs in and sees her
// mother — safe or alert, where (roughly, or exactly during an emergency),
// today's vital signs, recent alerts and how they ended — and can ask for a
// 六助 service and say how she wants to be told. Everything comes from
// /api/v1/family/*, which shows her only the elders she is linked to; the page
// re-reads every 30 seconds while it is open.
//
// Tests wait on the read-only hook window.xingbeiFamily.

import { call, forget, hasSession, signIn, signOut, SignedOut } from './family_auth.js';
import { sparkline } from './family_charts.js';
import { loadPrefs, setUpForms } from './family_forms.js';
import { applyFamilyStatic, ft } from './family_i18n.js';
import { FamilyMap } from './family_map.js';
import { formatAgo, formatClock, kindLabel, lang, onLangChange, outcomeLabel, setLang, severityLabel } from './i18n.js';

const REFRESH_MS = 30000;
const FLASH_MS = 6000;
const VITALS = [
  { key: 'hr', label: 'vitals.hr', unit: { zh: '次/分', en: 'bpm' }, digits: 0 },
  { key: 'spo2', label: 'vitals.spo2', unit: { zh: '%', en: '%' }, digits: 0 },
  { key: 'sbp', label: 'vitals.bp', unit: { zh: 'mmHg', en: 'mmHg' }, digits: 0, pair: 'dbp' },
  { key: 'temp', label: 'vitals.temp', unit: { zh: '°C', en: '°C' }, digits: 1 },
];

const state = {
  me: null,
  elders: [],
  current: null,
  now: null,
  alerts: [],
  loads: 0,
  signedIn: false,
};
let map = null;
let config = null;
let timer = null;

const byId = (id) => document.getElementById(id);

function flash(text, kind = 'ok') {
  const f = byId('fm-flash');
  f.textContent = text;
  f.className = `flash flash-${kind}`;
  f.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => {
    f.hidden = true;
  }, FLASH_MS);
}

function problemText(body) {
  const d = body?.detail;
  if (Array.isArray(d)) return d.map((e) => e.msg || JSON.stringify(e)).join('; ');
  return d ? String(d) : '';
}

function showProblem(id, text) {
  const p = byId(id);
  p.textContent = text || '';
  p.hidden = !text;
}

// --- signing in -------------------------------------------------------------------

function showLogin(reason) {
  clearInterval(timer);
  state.signedIn = false;
  byId('fm-login').hidden = false;
  byId('fm-main').hidden = true;
  byId('fm-signout').hidden = true;
  byId('fm-who').textContent = '';
  showProblem('login-problem', reason ? ft(reason) : '');
  document.body.dataset.ready = '1';
}

async function onLogin(ev) {
  ev.preventDefault();
  const name = byId('login-name').value.trim();
  const password = byId('login-password').value;
  let res;
  try {
    res = await signIn(name, password);
  } catch (_) {
    showProblem('login-problem', ft('net.down'));
    return;
  }
  if (res.status === 200) {
    byId('login-password').value = '';
    await start();
  } else if (res.status === 429) {
    showProblem('login-problem', ft('login.limited', { s: res.retryAfter || '60' }));
  } else {
    showProblem('login-problem', ft('login.bad'));
  }
}

// Any call may find the session gone: back to the form, saying why.
async function guarded(work) {
  try {
    return await work();
  } catch (err) {
    if (err instanceof SignedOut) {
      showLogin(err.reason === 'expired' ? 'login.expired' : null);
    } else {
      flash(ft('net.down'), 'bad');
    }
    return null;
  }
}

async function start() {
  const me = await guarded(() => call('/api/v1/auth/me'));
  if (!me) return;
  if (me.status !== 200 || !['family', 'admin'].includes(me.body.role)) {
    forget();
    showLogin('login.not_family');
    return;
  }
  state.me = me.body;
  state.signedIn = true;
  byId('fm-login').hidden = true;
  byId('fm-main').hidden = false;
  byId('fm-signout').hidden = false;
  byId('fm-who').textContent = state.me.display_name;
  if (!config) {
    // The same tiles as the big screen; without them the marker shows on a plain map.
    const c = await guarded(() => call('/api/v1/config'));
    config = c && c.status === 200 ? c.body : {};
  }
  await loadElders();
  await loadPrefs(forms);
  clearInterval(timer);
  timer = setInterval(() => refreshElder(), REFRESH_MS);
  document.body.dataset.ready = '1';
}

// --- the elders ---------------------------------------------------------------------

async function loadElders() {
  const r = await guarded(() => call('/api/v1/family/elders'));
  if (!r || r.status !== 200) return;
  state.elders = r.body.data;
  const nav = byId('fm-elders');
  nav.replaceChildren();
  byId('fm-none').hidden = state.elders.length > 0;
  byId('fm-elder').hidden = state.elders.length === 0;
  nav.hidden = state.elders.length < 2;
  for (const e of state.elders) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'elder-tab';
    b.dataset.elderId = String(e.elder_id);
    b.textContent = e.relation ? `${e.name}（${e.relation}）` : e.name;
    b.addEventListener('click', () => selectElder(e.elder_id));
    nav.appendChild(b);
  }
  const wanted = Number(new URLSearchParams(window.location.search).get('elder'));
  const first = state.elders.find((e) => e.elder_id === wanted) || state.elders[0];
  if (first) await selectElder(first.elder_id);
}

async function selectElder(id) {
  state.current = id;
  byId('fm-elders')
    .querySelectorAll('.elder-tab')
    .forEach((b) => b.classList.toggle('active', Number(b.dataset.elderId) === id));
  await refreshElder();
}

async function refreshElder() {
  const id = state.current;
  if (id == null) return;
  const [now, alerts] = await Promise.all([
    guarded(() => call(`/api/v1/family/elders/${id}/now`)),
    guarded(() => call(`/api/v1/family/elders/${id}/alerts`)),
  ]);
  if (id !== state.current) return; // another elder was chosen meanwhile
  if (now?.status === 200) state.now = now.body;
  if (alerts?.status === 200) state.alerts = alerts.body.data;
  state.loads += 1;
  render();
}

// --- drawing ----------------------------------------------------------------------------

function serverNow() {
  return state.now ? Date.parse(state.now.server_time) : Date.now();
}

function when(iso) {
  return iso ? formatClock(Date.parse(iso), { nowMs: serverNow() }) : ft('value.none');
}

function render() {
  const n = state.now;
  if (!n) return;
  const box = byId('fm-status');
  box.dataset.status = n.status;
  byId('fm-status-word').textContent = ft(`status.${n.status}`);
  byId('fm-elder-name').textContent = `${n.name} · ${ft(`status.${n.status}_hint`)}`;
  const open = byId('fm-open-alerts');
  open.replaceChildren(
    ...n.open_alerts.map((a) => {
      const li = document.createElement('li');
      li.dataset.severity = a.severity;
      li.textContent = `${kindLabel(a.kind)} · ${severityLabel(a.severity)} · ${when(a.opened_at)}`;
      return li;
    }),
  );
  byId('fm-last-seen').textContent = n.last_seen
    ? `${formatAgo(Date.parse(n.last_seen), serverNow())}（${when(n.last_seen)}）`
    : ft('value.none');
  byId('fm-battery').textContent = n.battery == null ? ft('value.none') : `${Math.round(n.battery)}%`;
  byId('fm-worn').textContent = n.worn == null ? ft('value.none') : ft(n.worn ? 'value.worn' : 'value.not_worn');
  byId('fm-online').textContent = n.online == null ? ft('value.none') : ft(n.online ? 'value.online' : 'value.offline');
  renderMap(n.location);
  renderVitals(n);
  renderAlerts();
}

function renderMap(loc) {
  const mapBox = byId('fm-map');
  if (!map) map = new FamilyMap(mapBox, config);
  map.resize();
  map.show(loc);
  const where = byId('fm-where');
  if (!loc) {
    where.textContent = ft('map.none');
    return;
  }
  const line =
    loc.precision === 'precise'
      ? ft('map.precise')
      : ft('map.coarse', { m: Math.round(loc.acc_m || 500), area: loc.area || '' });
  where.textContent = loc.ts ? `${line} · ${ft('map.at', { t: when(loc.ts) })}` : line;
  where.dataset.precision = loc.precision;
}

function fmtValue(v, digits) {
  return v == null ? ft('value.none') : Number(v).toFixed(digits);
}

function renderVitals(n) {
  const box = byId('fm-vitals');
  const day = n.today;
  byId('fm-day').textContent = day.day;
  box.replaceChildren();
  if (!day.hours.length) {
    const p = document.createElement('p');
    p.className = 'hint';
    p.textContent = ft('vitals.none');
    box.appendChild(p);
    return;
  }
  const dayStart = Date.parse(day.start);
  for (const m of VITALS) {
    const pts = day.hours.map((h) => ({ t: Date.parse(h.hour) + 1800000, v: h[m.key], lo: h[`${m.key}_min`], hi: h[`${m.key}_max`] }));
    const seen = pts.filter((p) => p.v != null);
    if (!seen.length) continue;
    const lastHour = day.hours[day.hours.length - 1];
    const lastOf = (k) => n.last_vitals[k] ?? lastHour[k];
    const row = document.createElement('div');
    row.className = 'vital';
    row.dataset.metric = m.key;
    const head = document.createElement('div');
    head.className = 'vital-head';
    const label = document.createElement('span');
    label.className = 'vital-label';
    label.textContent = ft(m.label);
    const value = document.createElement('span');
    value.className = 'vital-value';
    const unit = m.unit[lang()] || m.unit.zh;
    value.textContent = m.pair
      ? `${fmtValue(lastOf(m.key), 0)}/${fmtValue(lastOf(m.pair), 0)} ${unit}`
      : `${fmtValue(lastOf(m.key), m.digits)} ${unit}`;
    head.append(label, value);
    const lo = Math.min(...seen.map((p) => p.lo ?? p.v));
    const hi = Math.max(...seen.map((p) => p.hi ?? p.v));
    const range = document.createElement('span');
    range.className = 'vital-range';
    range.textContent = ft('vitals.range', { min: fmtValue(lo, m.digits), max: fmtValue(hi, m.digits) });
    const chart = document.createElement('div');
    chart.className = 'vital-chart';
    chart.innerHTML = sparkline(pts, dayStart); // numbers only (family_charts.js)
    row.append(head, range, chart);
    box.appendChild(row);
  }
}

function renderAlerts() {
  const list = byId('fm-alerts');
  list.replaceChildren(
    ...state.alerts.map((a) => {
      const li = document.createElement('li');
      li.className = 'alert';
      li.dataset.alertId = String(a.id);
      li.dataset.state = a.state;
      li.dataset.severity = a.severity;
      const title = document.createElement('div');
      title.className = 'alert-title';
      title.textContent = `${kindLabel(a.kind)} · ${severityLabel(a.severity)}`;
      const meta = document.createElement('div');
      meta.className = 'alert-meta';
      const ended = a.state === 'resolved' ? ft('alerts.ended', { outcome: outcomeLabel(a.outcome) }) : ft('alerts.ongoing');
      meta.textContent = `${when(a.opened_at)} · ${ended}`;
      li.append(title, meta);
      return li;
    }),
  );
  byId('fm-alerts-empty').hidden = state.alerts.length > 0;
}

// What the forms (family_forms.js) need from the page.
const forms = {
  guarded: (work) => guarded(work),
  showProblem: (id, text) => showProblem(id, text),
  flash: (text, kind) => flash(text, kind),
  problemText: (body) => problemText(body),
  elderId: () => state.current,
};

// --- start ---------------------------------------------------------------------------------

function init() {
  setUpForms(forms);
  applyFamilyStatic(document);
  byId('lang-toggle').addEventListener('click', () => setLang(lang() === 'zh' ? 'en' : 'zh'));
  onLangChange(() => render());
  byId('login-form').addEventListener('submit', onLogin);
  byId('fm-signout').addEventListener('click', async () => {
    await signOut();
    showLogin(null);
  });
  window.xingbeiFamily = Object.freeze({
    signedIn: () => state.signedIn,
    elders: () => state.elders.map((e) => ({ ...e })),
    current: () => state.current,
    now: () => (state.now ? JSON.parse(JSON.stringify(state.now)) : null),
    alerts: () => state.alerts.map((a) => ({ ...a })),
    loads: () => state.loads,
    refresh: () => refreshElder(),
  });
  if (hasSession()) start();
  else showLogin(null);
}

init();
