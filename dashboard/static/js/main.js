// Boot: config → map and community → live data. Also the frame loop and the
// read-only `window.xingbei` hook for tests and ops debugging.

import { AlertActions } from './alert_actions.js';
import { AlertDetail } from './alert_detail.js';
import { AlertPanel } from './alert_panel.js';
import { StatsView } from './alert_stats.js';
import { AlertStore } from './alerts.js';
import { getJSON, getJSONRetrying } from './api.js';
import { CaregiverLayer } from './caregiver_layer.js';
import { CaregiverStore } from './caregiver_store.js';
import { Controls } from './controls.js';
import { ElderOrders } from './elder_orders.js';
import { displayProjection } from './coords.js';
import { applyStatic, lang, onLangChange, setLang, t } from './i18n.js';
import { LiveConnection } from './live.js';
import { LiveMap } from './map.js';
import { OrderActions } from './order_actions.js';
import { OrderBoard } from './order_board.js';
import { OrderStore } from './order_store.js';
import { isBreached, isOpen } from './orders.js';
import { Panel } from './panel.js';
import { requireSession, signOut } from './session.js';
import { AlarmSound } from './sound.js';
import { ElderStore } from './store.js';

const store = new ElderStore();
let liveMap = null;
let panel = null;
let live = null;
let haveSnapshot = false;

// Alerts. A change redraws in the next frame (with the dots it recolours)
// and re-arms the alarm at once: sound must not wait for a frame that a
// hidden tab may never paint.
let alertPanel = null;
let detail = null;
let controls = null;
const sound = new AlarmSound({ onChange: () => controls?.render() });
const alerts = new AlertStore(store, {
  onChange: () => {
    sound.setDue(alerts.unacknowledgedCritical().map((a) => a.id));
    detail?.onAlertsChanged();
    requestFrame();
  },
  onLoadError: (err) => {
    if (err) alertPanel?.flash(t('alerts.load_failed'), 'error');
  },
});
const actions = new AlertActions(alerts, {
  notify: (text, kind) => alertPanel?.flash(text, kind),
  onChange: () => {
    alertPanel?.render(true);
    detail?.onAlertsChanged();
    controls?.render();
  },
});

// 六助 orders and the caregivers who serve them. Orders are few: the board
// and the elder's card are redrawn in the next frame after a change.
let board = null;
let elderOrders = null;
let caregiverLayer = null;
const orders = new OrderStore({
  onChange: () => requestFrame(),
  onLoadError: (err) => {
    if (err) alertPanel?.flash(t('board.load_failed'), 'error');
  },
});
const caregivers = new CaregiverStore({ onChange: (c) => caregiverLayer?.apply(c) });
// Order notices go where alert notices go: above every tab, so an order made
// from an elder's card is confirmed whichever tab is open.
const orderActions = new OrderActions(orders, caregivers, { notify: (text, kind) => alertPanel?.flash(text, kind) });

// Frame loop. WebSocket messages only merge data into the store and ask for
// a frame; the map and panel are brought up to date once per animation frame,
// however many messages came in. Durations are kept for the hook so a
// benchmark can read what the page itself spent.
let frameRequested = false;
let ordersRendered = -1;
const frameLog = []; // per flush: elders applied, ms spent on map and panel

function requestFrame() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(flush);
}

function flush() {
  frameRequested = false;
  if (!liveMap) return; // an alert before the map exists; the first snapshot paints all
  const t0 = performance.now();
  const { changed, removed } = store.takeChanges();
  for (const id of removed) liveMap.remove(id);
  for (const id of changed) {
    const e = store.byId.get(id);
    if (e) liveMap.apply(e, store.classOf(e));
  }
  liveMap.endBatch();
  const t1 = performance.now();
  if (panel.selectedId != null && !store.byId.has(panel.selectedId)) select(null);
  panel.render(changed);
  alertPanel.render(); // nothing to do unless the alerts changed
  board?.render(); // nothing to do unless the orders changed
  if (elderOrders && ordersRendered !== orders.version) {
    ordersRendered = orders.version;
    elderOrders.render();
  }
  const t2 = performance.now();
  frameLog.push({ n: changed.length, map: t1 - t0, panel: t2 - t1 });
  if (frameLog.length > 600) frameLog.shift();
  if (haveSnapshot && document.body.dataset.ready !== '1') document.body.dataset.ready = '1';
}

function select(id, { fromList = false } = {}) {
  const e = id != null ? store.byId.get(id) : null;
  const sel = e ? id : null;
  // The details drawer belongs to the selected elder's alert.
  if (detail?.isOpen()) {
    const a = alerts.get(detail.alertId);
    if (id == null || (a && a.elder_id !== id)) closeAlert();
  }
  panel.select(sel);
  elderOrders?.show(sel);
  liveMap.select(sel, e);
  if (sel != null && fromList) liveMap.reveal(sel, { coverBottom: detail?.height() ?? 0 });
}

// An alert clicked in the list: its details below the map, its elder
// selected and brought into the part of the map left visible.
function openAlert(alert) {
  alertPanel.select(alert.id);
  detail.open(alert.id);
  select(alert.elder_id, { fromList: true });
}

function closeAlert() {
  detail.close();
  alertPanel.select(null);
}

function showError(on) {
  document.getElementById('load-error').hidden = !on;
}

async function boot() {
  applyStatic(document);
  await requireSession(); // signed out: off to /login/, and this page goes no further
  document.getElementById('lang-toggle').addEventListener('click', () => setLang(lang() === 'zh' ? 'en' : 'zh'));
  document.getElementById('sign-out').addEventListener('click', () => signOut());
  getJSON('/api/v1/auth/me')
    .then((me) => {
      const role = lang() === 'zh' ? me.role_zh : me.role;
      document.getElementById('session-user').textContent = t('session.user', { name: me.display_name, role });
    })
    .catch((err) => console.warn('who am I: not loaded', err));

  const config = await getJSONRetrying('/api/v1/config', () => showError(true));
  showError(false);

  liveMap = new LiveMap(document.getElementById('map'), config, displayProjection(config.tile_crs), {
    onSelect: (id) => select(id),
  });
  panel = new Panel(store, { onSelect: select });
  const now = () => store.now();
  const stats = new StatsView(document.getElementById('stats-view'));
  alertPanel = new AlertPanel(alerts, actions, stats, { onOpen: openAlert, now });
  detail = new AlertDetail(alerts, actions, { onClose: () => alertPanel.select(null), now });
  board = new OrderBoard(orders, orderActions, caregivers, { onSelectElder: (id) => select(id, { fromList: true }) });
  elderOrders = new ElderOrders(orders, orderActions, caregivers, { elderOf: (id) => store.byId.get(id) || null });
  caregiverLayer = new CaregiverLayer(liveMap);
  for (const c of caregivers.all()) caregiverLayer.apply(c);
  controls = new Controls(sound, actions);
  controls.render();
  alertPanel.render(true);
  onLangChange(() => {
    panel.renderAll();
    alertPanel.renderAll();
    detail.renderAll();
    stats.render();
    controls.render();
    board.renderAll();
    elderOrders.render();
    caregiverLayer.renderAll();
  });
  panel.tick();
  setInterval(() => {
    panel.tick();
    alertPanel.tick();
    board.tick();
  }, 1000);

  // The community is context, not data: without it the dots still work.
  getJSON('/api/v1/community')
    .then((fc) => liveMap.setCommunity(fc))
    .catch((err) => console.warn('community outline not loaded', err));

  live = new LiveConnection({
    onSnapshot: (snapshot) => {
      if (store.replaceAll(snapshot)) {
        haveSnapshot = true;
        liveMap.fitDensity(store.byId.size);
        requestFrame();
      }
    },
    onUpdate: (msg) => {
      store.merge(msg.elders, msg.server_time);
      requestFrame();
    },
    onAlert: (alert) => alerts.apply(alert),
    onOrder: (order) => orders.apply(order),
    onCaregiver: (c) => caregivers.apply(c),
    onStatus: (status) => {
      panel.setConnection(status);
      alerts.connectionChanged(status.state);
      orders.connectionChanged(status.state);
      caregivers.connectionChanged(status.state);
    },
  });
  live.start();
}

function median(xs) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function frameStats() {
  const total = frameLog.map((f) => f.map + f.panel);
  return {
    count: frameLog.length,
    median: median(total),
    max: total.length ? Math.max(...total) : null,
    medianMap: median(frameLog.map((f) => f.map)),
    medianPanel: median(frameLog.map((f) => f.panel)),
    last: frameLog.length ? { ...frameLog[frameLog.length - 1] } : null,
  };
}

// Read-only hook. Positions are the API's WGS-84 values, not the display
// (possibly GCJ-02) ones. Returned objects are copies.
window.xingbei = Object.freeze({
  markers: () => (liveMap ? liveMap.markerList() : []),
  connected: () => (live ? live.connected() : false),
  elder: (id) => {
    const e = store.byId.get(id);
    return e ? JSON.parse(JSON.stringify(e)) : null;
  },
  counts: () => store.counts(),
  selected: () => (panel ? panel.selectedId : null),
  screenPoint: (id) => (liveMap ? liveMap.screenPoint(id) : null),
  lang: () => lang(),
  text: (key, params) => t(key, params),
  // Time the page spent applying batches of updates (ms, last 600 batches).
  // Leaflet repaints the canvas in the following animation frame.
  frameStats,
  // Active alerts as listed (most severe first): [{id, elder_id, kind, severity, state}].
  alerts: () => alerts.active().map(({ id, elder_id, kind, severity, state }) => ({ id, elder_id, kind, severity, state })),
  // One alert as the page holds it (active or recently resolved), a copy.
  alert: (id) => {
    const a = alerts.get(id);
    return a ? JSON.parse(JSON.stringify(a)) : null;
  },
  // {due, dueCount, muted, enabled, context, ringing, blocked, beeps, lastBeepAt, error}:
  // `due` = an unacknowledged critical alert exists; `blocked` = it should
  // ring but the browser still waits for a click ("启用声音").
  soundState: () => sound.state(),
  // The order board as listed: [{id, elder_id, kind, state, caregiver_id, breached, version}].
  orders: () => {
    const now = Date.now();
    return orders.list(now).map((o) => ({
      id: o.id, elder_id: o.elder_id, kind: o.kind, state: o.state, caregiver_id: o.caregiver_id ?? null,
      breached: isOpen(o) && isBreached(o, now), version: o.version ?? null,
    }));
  },
  ordersLoaded: () => orders.loaded,
  // Caregivers drawn on the map: [{id, name, lat, lon, on_shift, active_orders}].
  caregivers: () => (caregiverLayer ? caregiverLayer.list() : []),
});

boot().catch((err) => {
  console.error('dashboard failed to start', err);
  showError(true);
});
