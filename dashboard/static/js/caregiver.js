// The caregiver's page (/caregiver/): today's orders on a phone, one tap per
// step, live. The caregiver signs in (/login/) and the page is theirs: which
// caregiver comes from /api/v1/auth/me, never from the URL, and the server
// decides what this caregiver may do (allowed_actions); the page shows exactly
// those buttons.
//
// Live: /ws/live pushes {"type": "order"}; for an order that is (or was) ours
// the page re-reads today's list, because a push carries no per-caregiver
// allowed actions. The same list is re-read on every (re)connect. An order
// that appears newly offered rings the phone (vibration, and a chime once
// audio is unlocked by a tap), three times for 助急.

import { getJSON, postJSON } from './api.js';
import { requireSession, signOut } from './session.js';
import { Chime } from './chime.js';
import { CaregiverView } from './caregiver_view.js';
import { Geo, PositionReporter } from './caregiver_geo.js';
import { applyStatic, formatClock, lang, onLangChange, setLang, t } from './i18n.js';
import { LiveConnection } from './live.js';
import { actionText, kindText, reasonOf, stateText } from './orders.js';

// Who: set at boot from the signed-in account (a caregiver's has a caregiver_id).
let caregiverId = null;
let valid = false;
let TODAY = null;
const FLASH_MS = 6000;
const FRESH_MS = 30000;
const ME_REFRESH_MS = 60000;
// The server refuses a check-in further than this from the elder.
const CHECKIN_RADIUS_M = 150;

const orders = new Map();
const messages = new Map(); // order id → {text, kind}: why the last step did not work
const busy = new Set();
const fresh = new Map(); // order id → until (ms)
const notifications = [];
let loaded = false;
let me = null;
let live = null;
let reloadTimer = null;
let connState = 'connecting';

const chime = new Chime({ onChange: () => renderStatus() });
const geo = new Geo({
  onFix: () => {
    reporter?.fixArrived();
    renderStatus();
  },
  onError: () => renderStatus(),
});
let reporter = null;
const view = new CaregiverView({ onAction: (id, action) => act(id, action) });

function byId(id) {
  return document.getElementById(id);
}

function flash(text, kind = 'ok') {
  const f = byId('cg-flash');
  f.textContent = text;
  f.className = `flash flash-${kind}`;
  f.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => {
    f.hidden = true;
  }, FLASH_MS);
}

// Whether a highlight ran out (then the list is redrawn, and only then: a
// redraw replaces the buttons, and a tap must not land between two of them).
function pruneFresh() {
  const now = Date.now();
  let changed = false;
  for (const [id, until] of fresh) {
    if (until < now) {
      fresh.delete(id);
      changed = true;
    }
  }
  return changed;
}

function render() {
  pruneFresh();
  view.render([...orders.values()], { messages, busy, fresh: new Set(fresh.keys()) });
}

function renderStatus() {
  const conn = byId('conn');
  conn.className = `conn conn-${connState}`;
  conn.dataset.state = connState;
  conn.title = t(`conn.${connState}`);
  byId('cg-who').textContent = me ? t('cg.who', { name: me.name ?? `#${caregiverId}` }) : '';
  const shift = byId('cg-shift');
  shift.textContent = me ? t(me.on_shift ? 'cg.on_shift' : 'cg.off_shift') : '';
  shift.className = `shift${me && me.on_shift ? ' on' : ''}`;
  const pos = byId('cg-pos');
  if (geo.error === 'denied' || geo.error === 'unavailable') pos.textContent = t('cg.pos_off');
  else if (reporter && reporter.lastSentMs != null) pos.textContent = t('cg.pos_sent', { time: formatClock(reporter.lastSentMs) });
  else if (me && me.on_shift) pos.textContent = t('cg.pos_waiting');
  else pos.textContent = '';
  byId('cg-sound').hidden = !chime.blocked();
}

// Today's list as the server says (the snapshot on (re)connect, or a re-read).
function setOrders(list) {
  const items = Array.isArray(list) ? list : list.items || [];
  const before = new Set(orders.keys());
  orders.clear();
  for (const o of items) orders.set(o.id, o);
  if (loaded) {
    for (const o of items) if (!before.has(o.id) && o.state === 'assigned') announce(o);
  }
  loaded = true;
  byId('cg-problem').hidden = true;
  render();
  document.body.dataset.ready = '1';
}

function announce(o) {
  const urgent = o.kind === 'emergency';
  const { vibrated, played } = chime.ring({ urgent });
  fresh.set(o.id, Date.now() + FRESH_MS);
  notifications.push({ order_id: o.id, kind: o.kind, urgent, vibrated, played, at: Date.now() });
  flash(t('cg.new_order', { kind: kindText(o.kind), name: o.elder_name ?? `#${o.elder_id}` }), urgent ? 'error' : 'ok');
}

async function reload() {
  try {
    setOrders(await getJSON(TODAY));
  } catch (err) {
    console.warn('today: reload failed', err);
    if (!loaded) showProblem(t('cg.load_failed'));
  }
}

function scheduleReload() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(reload, 150);
}

async function loadMe() {
  try {
    me = await getJSON(`/api/v1/caregivers/${caregiverId}`);
    reporter.setOnShift(Boolean(me.on_shift));
  } catch (err) {
    console.warn('caregiver: not loaded', err);
    if (/HTTP 404/.test(String(err && err.message))) {
      showProblem(t('cg.unknown', { id: caregiverId }));
      document.body.dataset.ready = '1';
    }
  }
  renderStatus();
}

function showProblem(text) {
  const p = byId('cg-problem');
  p.textContent = text;
  p.hidden = false;
}

// ---- steps ----

function ask(dialogId, read) {
  const dialog = byId(dialogId);
  return new Promise((resolve) => {
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok' ? read() : null), { once: true });
    dialog.showModal();
  });
}

function what(o) {
  return `${kindText(o.kind)} · ${o.elder_name ?? `#${o.elder_id}`}`;
}

async function act(id, action) {
  const o = orders.get(id);
  if (!o || busy.has(id)) return;
  if (action === 'reject') {
    const form = byId('reject-dialog').querySelector('form');
    form.reset();
    byId('reject-what').textContent = what(o);
    const note = await ask('reject-dialog', () => {
      const data = new FormData(form);
      const reason = String(data.get('reason') || 'other');
      const text = String(data.get('text') || '').trim();
      const label = reason === 'other' ? '' : t(`cg.reason.${reason}`);
      return [label, text].filter(Boolean).join('：') || t('cg.reason_other');
    });
    if (note != null) await step(o, 'reject', { note });
  } else if (action === 'complete') {
    byId('complete-dialog').querySelector('form').reset();
    byId('complete-what').textContent = what(o);
    const note = await ask('complete-dialog', () => byId('complete-note').value.trim());
    if (note != null) await step(o, 'complete', note ? { note } : {});
  } else if (action === 'arrive') {
    messages.set(id, { text: t('cg.locating'), kind: 'info' });
    busy.add(id);
    render();
    let fix;
    try {
      fix = await geo.current();
    } catch (err) {
      busy.delete(id);
      const text = err.kind === 'denied' ? t('cg.geo_denied') : t('cg.geo_failed', { reason: err.kind });
      messages.set(id, { text, kind: 'error' });
      render();
      renderStatus();
      return;
    }
    busy.delete(id);
    // No ts: the fix is at most a few seconds old (Geo.current), and a phone's
    // clock can be minutes off, which the server would take for a stale fix.
    await step(o, 'arrive', { lat: fix.lat, lon: fix.lon, acc: fix.acc });
  } else {
    await step(o, action, {});
  }
}

async function step(o, action, extra) {
  busy.add(o.id);
  render();
  const body = { action, ...extra };
  if (o.version != null) body.version = o.version;
  let res;
  try {
    res = await postJSON(`/api/v1/orders/${o.id}/steps`, body);
  } catch (err) {
    res = null;
    messages.set(o.id, { text: t('cg.failed', { reason: err.name === 'AbortError' ? 'timeout' : err.message }), kind: 'error' });
  }
  busy.delete(o.id);
  if (res && res.status === 200) {
    messages.delete(o.id);
    orders.set(o.id, res.body);
    flash(t('cg.done', { action: actionText(action), kind: kindText(o.kind), name: o.elder_name ?? `#${o.elder_id}` }));
  } else if (res && res.status === 409 && res.body && res.body.distance_m != null) {
    // The check-in was refused: say how far, and why, on the card itself.
    const d = Math.round(Number(res.body.distance_m));
    const verdict = res.body.verdict;
    let text;
    if (verdict === 'too_far' || (verdict == null && d > CHECKIN_RADIUS_M)) text = t('cg.too_far', { d });
    else if (verdict === 'coarse_fix' || verdict === 'stale_fix') text = t(`cg.verdict.${verdict}`, { acc: Math.round(extra.acc ?? 0) });
    else text = t('cg.refused', { reason: reasonOf(res) });
    messages.set(o.id, { text, kind: 'error', distance_m: d, detail: reasonOf(res) });
    flash(text, 'error');
  } else if (res && res.status === 409) {
    const text = t('cg.conflict', { state: stateText(res.body?.state ?? '?') });
    messages.set(o.id, { text, kind: 'warn' });
    flash(text, 'warn');
    await reload();
  } else if (res && res.status === 403) {
    const text = t('cg.forbidden', { reason: reasonOf(res) });
    messages.set(o.id, { text, kind: 'error' });
    flash(text, 'error');
    await reload();
  } else if (res) {
    const text = t('cg.failed', { reason: reasonOf(res) });
    messages.set(o.id, { text, kind: 'error' });
    flash(text, 'error');
    if (res.status === 404) await reload();
  }
  render();
}

// ---- boot ----

async function whoAmI() {
  await requireSession();
  const me = await getJSON('/api/v1/auth/me');
  if (me.role === 'caregiver' && Number.isInteger(me.caregiver_id)) {
    caregiverId = me.caregiver_id;
    valid = true;
    TODAY = `/api/v1/caregivers/${caregiverId}/today`;
    reporter = new PositionReporter(caregiverId, geo, { onSent: () => renderStatus() });
  }
}

async function boot() {
  applyStatic(document);
  byId('lang-toggle').addEventListener('click', () => setLang(lang() === 'zh' ? 'en' : 'zh'));
  byId('cg-sound').addEventListener('click', () => chime.unlock());
  byId('sign-out').addEventListener('click', () => signOut());
  onLangChange(() => {
    render();
    renderStatus();
  });
  try {
    await whoAmI();
  } catch (err) {
    console.warn('caregiver: who am I failed', err);
  }
  if (!valid) {
    showProblem(t('cg.no_id'));
    document.body.dataset.ready = '1';
    return;
  }
  renderStatus();
  loadMe();
  setInterval(loadMe, ME_REFRESH_MS);
  geo.watch();
  setInterval(() => {
    view.tick(orders);
    if (pruneFresh()) render();
  }, 1000);
  live = new LiveConnection(
    {
      onSnapshot: (list) => setOrders(list),
      onUpdate: () => {}, // the elders' live values are for the big screen
      onOrder: (o) => {
        if (o.caregiver_id === caregiverId || orders.has(o.id)) scheduleReload();
      },
      onCaregiver: (c) => {
        if (c.id === caregiverId && me && c.on_shift != null && c.on_shift !== me.on_shift) loadMe();
      },
      onStatus: ({ state }) => {
        connState = state;
        renderStatus();
      },
    },
    { latestPath: TODAY },
  );
  live.start();
}

// Read-only hook for tests and support.
window.xingbeiCaregiver = Object.freeze({
  id: () => (valid ? caregiverId : null),
  orders: () => [...orders.values()].map((o) => ({
    id: o.id, elder_id: o.elder_id, kind: o.kind, state: o.state, allowed_actions: [...(o.allowed_actions || [])], version: o.version ?? null,
  })),
  message: (id) => (messages.has(id) ? { ...messages.get(id) } : null),
  notifications: () => notifications.map((n) => ({ ...n })),
  position: () => ({
    on_shift: Boolean(me && me.on_shift),
    sent: reporter ? reporter.sent : 0,
    last_sent_ms: reporter ? reporter.lastSentMs : null,
    last_sent: reporter && reporter.lastSentFix ? { ...reporter.lastSentFix } : null,
    geo_error: geo.error,
  }),
  connected: () => (live ? live.connected() : false),
  sound: () => ({ enabled: chime.enabled(), blocked: chime.blocked(), rung: chime.rung, vibrated: chime.vibrated }),
  lang: () => lang(),
});

boot();
