// Boot: config → map and community → live data. Also the frame loop and the
// read-only `window.xingbei` hook for tests and ops debugging.

import { getJSON, getJSONRetrying } from './api.js';
import { displayProjection } from './coords.js';
import { applyStatic, lang, onLangChange, setLang, t } from './i18n.js';
import { LiveConnection } from './live.js';
import { LiveMap } from './map.js';
import { Panel } from './panel.js';
import { ElderStore } from './store.js';

const store = new ElderStore();
let liveMap = null;
let panel = null;
let live = null;
let haveSnapshot = false;

// Frame loop. WebSocket messages only merge data into the store and ask for
// a frame; the map and panel are brought up to date once per animation frame,
// however many messages came in. Durations are kept for the hook so a
// benchmark can read what the page itself spent.
let frameRequested = false;
const frameLog = []; // per flush: elders applied, ms spent on map and panel

function requestFrame() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(flush);
}

function flush() {
  frameRequested = false;
  const t0 = performance.now();
  const { changed, removed } = store.takeChanges();
  for (const id of removed) liveMap.remove(id);
  for (const id of changed) {
    const e = store.byId.get(id);
    if (e) liveMap.apply(e);
  }
  liveMap.endBatch();
  const t1 = performance.now();
  if (panel.selectedId != null && !store.byId.has(panel.selectedId)) select(null);
  panel.render(changed);
  const t2 = performance.now();
  frameLog.push({ n: changed.length, map: t1 - t0, panel: t2 - t1 });
  if (frameLog.length > 600) frameLog.shift();
  if (haveSnapshot && document.body.dataset.ready !== '1') document.body.dataset.ready = '1';
}

function select(id, { fromList = false } = {}) {
  const e = id != null ? store.byId.get(id) : null;
  const sel = e ? id : null;
  panel.select(sel);
  liveMap.select(sel, e);
  if (sel != null && fromList) liveMap.reveal(sel);
}

function showError(on) {
  document.getElementById('load-error').hidden = !on;
}

async function boot() {
  applyStatic(document);
  document.getElementById('lang-toggle').addEventListener('click', () => setLang(lang() === 'zh' ? 'en' : 'zh'));

  const config = await getJSONRetrying('/api/v1/config', () => showError(true));
  showError(false);

  liveMap = new LiveMap(document.getElementById('map'), config, displayProjection(config.tile_crs), {
    onSelect: (id) => select(id),
  });
  panel = new Panel(store, { onSelect: select });
  onLangChange(() => panel.renderAll());
  panel.tick();
  setInterval(() => panel.tick(), 1000);

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
    onStatus: (status) => panel.setConnection(status),
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
});

boot().catch((err) => {
  console.error('dashboard failed to start', err);
  showError(true);
});
