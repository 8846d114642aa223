// Client-side state: the latest known record of every elder, as the API
// describes it (ElderLatest), with partial live updates merged in.
//
// The store does no drawing. It remembers which elders changed since the last
// frame (`dirty`), so that the map and the panel touch only those, once per
// animation frame, however many WebSocket messages arrived in between.

// Reasons that mean someone should go and look now. Anything else the API
// flags (offline, low battery, not worn) is a notice. An unknown reason code
// counts as urgent: a new alarm kind must not look harmless on the map.
export const NOTICE_REASONS = new Set(['offline', 'low_battery', 'not_worn']);

// red: act now; warn: an active medium alert (look soon); offline; notice
// (low battery, not worn, a low alert); ok.
export const COLORS = {
  red: '#e53935',
  warn: '#fb8c00',
  notice: '#f2c12e',
  offline: '#90a4ae',
  ok: '#2e9d4f',
};

// What an elder's worst active alert (open or acknowledged) does to the dot.
// An unknown severity is treated as the worst: see NOTICE_REASONS.
const SEVERITY_CLASS = { critical: 'red', high: 'red', medium: 'warn', low: 'notice' };
export const SEVERITY_RANK = { low: 0, medium: 1, high: 2, critical: 3 };

// Most urgent first. Used to combine the latest-state judgement with alerts,
// and to order the attention list.
export const CLASS_RANK = { red: 0, warn: 1, offline: 2, notice: 3, ok: 4 };

// The server flags an SOS or fall for 30 minutes after the event, from the
// latest state alone. Once staff have resolved the alert that covers that
// event, the flag is stale: a dot must not stay red for half an hour after
// "误报". Only these event-window reasons are cleared this way; reasons read
// from current values (a heart rate of 150 now) stay until the value changes.
const EVENT_REASONS = new Set(['sos', 'fall']);

// The reasons still in force, given what the alerts say (see alerts.js,
// `info.handled[kind]`: up to when events of that kind have been dealt with).
export function effectiveReasons(e, info) {
  const reasons = e.attention_reasons || [];
  if (!info || !info.handled || reasons.length === 0) return reasons;
  const eventMs = parseTime(e.event_ts);
  if (eventMs == null) return reasons;
  return reasons.filter((r) => !(EVENT_REASONS.has(r) && info.handled[r] != null && eventMs <= info.handled[r]));
}

// 'red' | 'warn' | 'offline' | 'notice' | 'ok'. Red wins over everything: an
// SOS from a device that is also flagged offline is still an SOS. `info` is
// the elder's alert summary (alerts.js), or null.
export function classify(e, info = null) {
  let cls = 'ok';
  const reasons = effectiveReasons(e, info);
  // attention with no reason at all is an unknown alarm: red. Reasons that
  // were all handled leave no attention.
  const attention = e.attention && (reasons.length > 0 || (e.attention_reasons || []).length === 0);
  if (attention) {
    if (reasons.length === 0 || reasons.some((r) => !NOTICE_REASONS.has(r))) cls = 'red';
    else if (reasons.includes('offline')) cls = 'offline';
    else cls = 'notice';
  } else if (e.online === false) cls = 'offline';
  if (info && info.severity) {
    const fromAlert = SEVERITY_CLASS[info.severity] || 'red';
    if (CLASS_RANK[fromAlert] < CLASS_RANK[cls]) cls = fromAlert;
  }
  return cls;
}

// Is the device in contact? The API's `online` comes from the device's
// retained status message (and its MQTT will); the "offline" reason is the
// server's own judgement and wins. A device that never sent a status message
// (online === null) but has been heard from recently is in contact: counting
// it as offline would show a working device as lost.
export const RECENTLY_SEEN_MS = 10 * 60 * 1000;

export function isOnline(e, nowMs) {
  if ((e.attention_reasons || []).includes('offline') || e.online === false) return false;
  if (e.online === true) return true;
  const seen = parseTime(e.last_seen);
  return seen != null && nowMs - seen <= RECENTLY_SEEN_MS;
}

export function parseTime(iso) {
  if (iso == null) return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
}

export class ElderStore {
  constructor() {
    this.byId = new Map();
    this.dirty = new Set();
    this.removed = new Set();
    // Server time minus client time, from the latest server_time seen: ages
    // ("3 分钟前") are computed against the server's clock, because the PC
    // driving the big screen may be minutes off.
    this.skewMs = 0;
    this.snapshotMs = null; // server_time of the snapshot in force
    // elder_id → summary of that elder's alerts, kept by alerts.js:
    // { severity (worst active) | null, kinds: [active kinds], sinceMs,
    //   handled: { kind: ms } }. Separate from the records because
    // replaceAll() rewrites those from the API.
    this.alertInfo = new Map();
  }

  // Set (or with null, drop) an elder's alert summary; its dot and list
  // entry are redrawn in the next frame.
  setAlertInfo(elderId, info) {
    if (info) this.alertInfo.set(elderId, info);
    else this.alertInfo.delete(elderId);
    if (this.byId.has(elderId)) this.dirty.add(elderId);
  }

  classOf(e) {
    return classify(e, this.alertInfo.get(e.elder_id) || null);
  }

  // Does this elder need attention, counting alerts and forgetting handled events?
  needsAttention(e) {
    const info = this.alertInfo.get(e.elder_id);
    if (info && info.severity) return true;
    if (!e.attention) return false;
    return effectiveReasons(e, info).length > 0 || (e.attention_reasons || []).length === 0;
  }

  now() {
    return Date.now() + this.skewMs;
  }

  _noteServerTime(iso) {
    const ms = parseTime(iso);
    if (ms != null) this.skewMs = ms - Date.now();
    return ms;
  }

  // Replace everything with a /api/v1/latest response. Returns false (and
  // changes nothing) if the snapshot is older than the one in force, which
  // happens when a slow catch-up fetch loses a race with a newer one.
  replaceAll(snapshot) {
    const ms = parseTime(snapshot.server_time);
    if (ms != null && this.snapshotMs != null && ms < this.snapshotMs) return false;
    this.snapshotMs = ms;
    this._noteServerTime(snapshot.server_time);
    const seen = new Set();
    for (const e of snapshot.elders || []) {
      seen.add(e.elder_id);
      const old = this.byId.get(e.elder_id);
      // Keep the same object when we can: the map keeps a reference per dot.
      if (old) {
        for (const k of Object.keys(old)) if (!(k in e)) delete old[k];
        Object.assign(old, e);
      } else {
        this.byId.set(e.elder_id, { ...e });
      }
      this.dirty.add(e.elder_id);
    }
    for (const id of this.byId.keys()) {
      if (!seen.has(id)) {
        this.byId.delete(id);
        this.dirty.delete(id);
        this.removed.add(id);
      }
    }
    return true;
  }

  // Merge one live message's partial records. A record for an elder we have
  // never seen (enrolled after the snapshot) is taken as the start of a new one.
  merge(partials, serverTime) {
    this._noteServerTime(serverTime);
    for (const p of partials || []) {
      if (p == null || p.elder_id == null) continue;
      const old = this.byId.get(p.elder_id);
      if (old) Object.assign(old, p);
      else this.byId.set(p.elder_id, { attention: false, attention_reasons: [], ...p });
      this.removed.delete(p.elder_id);
      this.dirty.add(p.elder_id);
    }
  }

  // Hand over (and forget) what changed since the last call.
  takeChanges() {
    const changed = [...this.dirty];
    const removed = [...this.removed];
    this.dirty.clear();
    this.removed.clear();
    return { changed, removed };
  }

  counts() {
    const now = this.now();
    let online = 0;
    let attention = 0;
    for (const e of this.byId.values()) {
      if (isOnline(e, now)) online += 1;
      if (this.needsAttention(e)) attention += 1;
    }
    // Offline includes elders never heard from (no device, or not yet).
    return { online, offline: this.byId.size - online, attention, total: this.byId.size };
  }

  // Elders needing attention: red first, then orange, offline, notices.
  // Within a class the most recent event (SOS, fall, alert) or loss of
  // contact comes first, then by id, so the list does not reshuffle every
  // time vitals arrive. `ms` is the moment worth showing next to the name;
  // `reasons` the reason codes still in force, `kinds` the active alert kinds.
  attentionList() {
    const list = [];
    for (const e of this.byId.values()) {
      const info = this.alertInfo.get(e.elder_id);
      if (!e.attention && !(info && info.severity)) continue; // fast path: most elders
      if (!this.needsAttention(e)) continue;
      const cls = classify(e, info || null);
      const reasons = effectiveReasons(e, info);
      let sortMs = 0;
      let ms;
      if (reasons.includes('sos') || reasons.includes('fall')) sortMs = ms = parseTime(e.event_ts);
      else if (info && info.sinceMs != null) sortMs = ms = info.sinceMs;
      else if (reasons.includes('offline')) sortMs = ms = parseTime(e.last_seen);
      else ms = parseTime(e.vitals_ts) ?? parseTime(e.last_seen);
      list.push({ e, cls, ms, sortMs: sortMs ?? 0, reasons, kinds: info ? info.kinds : [] });
    }
    list.sort(
      (a, b) => CLASS_RANK[a.cls] - CLASS_RANK[b.cls] || b.sortMs - a.sortMs || a.e.elder_id - b.e.elder_id,
    );
    return list;
  }
}
