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

export const COLORS = {
  red: '#e53935',
  notice: '#fb8c00',
  offline: '#90a4ae',
  ok: '#2e9d4f',
};

// 'red' | 'offline' | 'notice' | 'ok'. Red wins over everything: an SOS from
// a device that is also flagged offline is still an SOS.
export function classify(e) {
  if (e.attention) {
    const reasons = e.attention_reasons || [];
    if (reasons.length === 0 || reasons.some((r) => !NOTICE_REASONS.has(r))) return 'red';
    if (reasons.includes('offline')) return 'offline';
    return 'notice';
  }
  if (e.online === false) return 'offline';
  return 'ok';
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

// Sort key for the attention list: red first, then offline, then notices;
// within a class the most recent trouble first.
const CLASS_RANK = { red: 0, offline: 1, notice: 2, ok: 3 };

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
      if (e.attention) attention += 1;
    }
    // Offline includes elders never heard from (no device, or not yet).
    return { online, offline: this.byId.size - online, attention, total: this.byId.size };
  }

  // Elders needing attention: red first, then offline, then notices. Within
  // a class the most recent event (SOS, fall) or loss of contact comes first,
  // then by id, so the list does not reshuffle every time vitals arrive.
  // `ms` is the moment worth showing next to the name.
  attentionList() {
    const list = [];
    for (const e of this.byId.values()) {
      if (!e.attention) continue;
      const cls = classify(e);
      const reasons = e.attention_reasons || [];
      let sortMs = 0;
      let ms;
      if (reasons.includes('sos') || reasons.includes('fall')) sortMs = ms = parseTime(e.event_ts);
      else if (reasons.includes('offline')) sortMs = ms = parseTime(e.last_seen);
      else ms = parseTime(e.vitals_ts) ?? parseTime(e.last_seen);
      list.push({ e, cls, ms, sortMs: sortMs ?? 0 });
    }
    list.sort(
      (a, b) => CLASS_RANK[a.cls] - CLASS_RANK[b.cls] || b.sortMs - a.sortMs || a.e.elder_id - b.e.elder_id,
    );
    return list;
  }
}
