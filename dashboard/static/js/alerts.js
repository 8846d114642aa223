// Client-side alerts: the active ones (open or acknowledged) and the recently
// resolved, kept current from `{"type": "alert"}` messages on /ws/live and
// re-read from the API on every (re)connect. No DOM here.
//
// Each push is a whole alert with its `updated_at`, so ordering is simple:
// keep the newest version of each id, whichever way it came (a REST answer
// can overtake a push and the other way round). What a reconnect cannot tell
// from pushes -- an alert resolved while the socket was down -- the re-read
// of the active list settles.
//
// For the map, each elder's alerts are summed up into the elder store
// (store.setAlertInfo): worst active severity, active kinds, and up to when
// SOS and fall events have been dealt with. Only elders whose alerts changed
// are touched, so a position update never costs anything here.

import { getJSON } from './api.js';
import { SEVERITY_RANK, parseTime } from './store.js';

const ACTIVE_PATH = '/api/v1/alerts?state=active&limit=500';
const RECENT_PATH = '/api/v1/alerts?state=resolved&limit=20';
const RECENT_CAP = 20;
// While the live link is down, alerts are re-read this often over HTTP.
const DEGRADED_REFRESH_MS = 10000;
const RETRY_MS = 5000;

export const isActive = (a) => a.state === 'open' || a.state === 'acknowledged';

// Display order of the active list: most severe first ("critical and high
// first"), then those nobody has acknowledged yet, then the newest.
function compareActive(a, b) {
  return (
    (SEVERITY_RANK[b.severity] ?? 9) - (SEVERITY_RANK[a.severity] ?? 9) ||
    (a.state === 'open' ? 0 : 1) - (b.state === 'open' ? 0 : 1) ||
    (parseTime(b.opened_at) ?? 0) - (parseTime(a.opened_at) ?? 0) ||
    b.id - a.id
  );
}

// Is `a` a later version than `b` of the same alert?
function later(a, b) {
  const ta = parseTime(a.updated_at);
  const tb = parseTime(b.updated_at);
  return ta != null && tb != null && ta > tb;
}

export class AlertStore {
  // elders: the ElderStore, told about each elder's alerts.
  // onChange(): something to redraw (called synchronously; the caller batches).
  // onLoadError(err | null): a re-read failed / worked again.
  constructor(elders, { onChange, onLoadError } = {}) {
    this.elders = elders;
    this.onChange = onChange || (() => {});
    this.onLoadError = onLoadError || (() => {});
    this.byId = new Map(); // id → newest known alert (active and recently resolved)
    this.receivedAt = new Map(); // id → client ms when that version arrived
    this.handled = new Map(); // elder_id → { kind: ms } (see _noteHandled)
    this.loaded = false;
    this.version = 0; // bumped on every change; views compare it
    this._sortedActive = null;
    this._sortedRecent = null;
    this._touched = new Set();
    this._pollTimer = null;
    this._retryTimer = null;
    this._refreshing = null;
    this._failing = false;
  }

  // --- input ---------------------------------------------------------------

  // One alert from a push or a POST answer.
  apply(alert) {
    if (this._take(alert)) this._changed();
  }

  // The live link's state (live.js onStatus). On every 'open' the lists are
  // re-read; while the link is down they are polled.
  connectionChanged(state) {
    if (state === 'open') {
      this._stopPolling();
      this.refresh();
    } else if (this._pollTimer == null) {
      this._pollTimer = setInterval(() => this.refresh(), DEGRADED_REFRESH_MS);
    }
  }

  // Re-read the active and recently resolved alerts. Concurrent calls share
  // one request; a failure retries on its own.
  refresh() {
    if (!this._refreshing) {
      this._refreshing = this._load().finally(() => {
        this._refreshing = null;
      });
    }
    return this._refreshing;
  }

  async _load() {
    const started = Date.now();
    let active;
    let recent;
    try {
      [active, recent] = await Promise.all([getJSON(ACTIVE_PATH), getJSON(RECENT_PATH)]);
    } catch (err) {
      console.warn('alerts: load failed', err);
      if (!this._failing) this.onLoadError(err); // once per outage, not every retry
      this._failing = true;
      // While the link is down the poll retries; otherwise retry soon.
      clearTimeout(this._retryTimer);
      if (this._pollTimer == null) this._retryTimer = setTimeout(() => this.refresh(), RETRY_MS);
      return;
    }
    if (this._failing) this.onLoadError(null);
    this._failing = false;
    for (const a of recent.data || []) this._take(a);
    const listed = new Set();
    for (const a of active.data || []) {
      listed.add(a.id);
      this._take(a);
    }
    // Active here but not in the server's list, and not pushed since the
    // request went out: it was resolved while we were not listening. How, we
    // do not know, so it is forgotten rather than shown as resolved.
    for (const [id, a] of this.byId) {
      if (isActive(a) && !listed.has(id) && (this.receivedAt.get(id) ?? 0) < started) {
        this.byId.delete(id);
        this.receivedAt.delete(id);
        this._touched.add(a.elder_id);
      }
    }
    this.loaded = true;
    this._changed();
  }

  _stopPolling() {
    if (this._pollTimer != null) clearInterval(this._pollTimer);
    this._pollTimer = null;
  }

  _take(alert) {
    if (!alert || alert.id == null) return false;
    const old = this.byId.get(alert.id);
    if (old && later(old, alert)) return false;
    this.byId.set(alert.id, alert);
    this.receivedAt.set(alert.id, Date.now());
    this._touched.add(alert.elder_id);
    if (old && old.elder_id !== alert.elder_id) this._touched.add(old.elder_id);
    if (alert.state === 'resolved') this._noteHandled(alert);
    return true;
  }

  // Up to when events of this kind have been dealt with for this elder: the
  // later of the last finding's time (device clock) and the resolution (server
  // clock), so that a device clock a little off does not undo it.
  _noteHandled(a) {
    const ms = Math.max(parseTime(a.last_ts) ?? 0, parseTime(a.resolved_at) ?? 0);
    let h = this.handled.get(a.elder_id);
    if (!h) this.handled.set(a.elder_id, (h = {}));
    if (!(h[a.kind] >= ms)) h[a.kind] = ms;
  }

  _changed() {
    this._sortedActive = null;
    this._sortedRecent = null;
    this._trimResolved();
    for (const elderId of this._touched) this.elders.setAlertInfo(elderId, this._summary(elderId));
    this._touched.clear();
    this.version += 1;
    this.onChange();
  }

  // Keep only the newest resolved alerts (the "recently handled" list).
  _trimResolved() {
    const resolved = [...this.byId.values()].filter((a) => !isActive(a));
    if (resolved.length <= RECENT_CAP) return;
    resolved.sort((a, b) => (parseTime(b.resolved_at) ?? 0) - (parseTime(a.resolved_at) ?? 0));
    for (const a of resolved.slice(RECENT_CAP)) {
      this.byId.delete(a.id);
      this.receivedAt.delete(a.id);
    }
  }

  // What the map needs to know about one elder's alerts (see store.js).
  _summary(elderId) {
    const items = [];
    let severity = null;
    let sinceMs = null;
    for (const a of this.byId.values()) {
      if (a.elder_id !== elderId || !isActive(a)) continue;
      items.push({ id: a.id, kind: a.kind, severity: a.severity, state: a.state });
      if (severity == null || (SEVERITY_RANK[a.severity] ?? 9) > (SEVERITY_RANK[severity] ?? 9)) severity = a.severity;
      const first = parseTime(a.first_ts);
      if (first != null && (sinceMs == null || first > sinceMs)) sinceMs = first;
    }
    const handled = this.handled.get(elderId) || null;
    if (items.length === 0 && !handled) return null;
    items.sort(compareActive);
    return { severity, kinds: items.map((a) => a.kind), items, sinceMs, handled };
  }

  // --- output --------------------------------------------------------------

  get(id) {
    return this.byId.get(id) || null;
  }

  active() {
    if (!this._sortedActive) this._sortedActive = [...this.byId.values()].filter(isActive).sort(compareActive);
    return this._sortedActive;
  }

  recent() {
    if (!this._sortedRecent) {
      this._sortedRecent = [...this.byId.values()]
        .filter((a) => !isActive(a))
        .sort((a, b) => (parseTime(b.resolved_at) ?? 0) - (parseTime(a.resolved_at) ?? 0));
    }
    return this._sortedRecent;
  }

  // Critical alerts nobody has acknowledged yet: what the alarm sounds for.
  unacknowledgedCritical() {
    return this.active().filter((a) => a.severity === 'critical' && a.state === 'open');
  }
}
