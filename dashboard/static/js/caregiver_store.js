// The caregivers the big screen shows: who, where (their phone's last fix),
// on shift or not, how many open orders. From GET /api/caregivers, re-read on
// every (re)connect, and {"type": "caregiver"} pushes when one moves.

import { getJSON } from './api.js';
import { parseTime } from './store.js';

export class CaregiverStore {
  constructor({ onChange } = {}) {
    this.byId = new Map();
    this.version = 0;
    this.onChange = onChange || (() => {});
  }

  get(id) {
    return this.byId.get(id) || null;
  }

  all() {
    return [...this.byId.values()];
  }

  onShift() {
    return this.all().filter((c) => c.on_shift && c.active !== false);
  }

  // The list row (last_lat/…) and the push (lat/…) name the position
  // differently; both become lat/lon/acc/pos_ms here.
  apply(raw) {
    if (!raw || raw.id == null) return;
    const had = this.byId.get(raw.id) || {};
    const c = { ...had, ...raw };
    if ('last_lat' in raw) c.lat = raw.last_lat;
    if ('last_lon' in raw) c.lon = raw.last_lon;
    if ('last_acc' in raw) c.acc = raw.last_acc;
    const posMs = parseTime(raw.last_pos_at);
    // A late push must not move the marker back to an older fix.
    if (had.pos_ms != null && posMs != null && posMs < had.pos_ms) {
      c.lat = had.lat;
      c.lon = had.lon;
      c.acc = had.acc;
      c.pos_ms = had.pos_ms;
    } else if (posMs != null) {
      c.pos_ms = posMs;
    }
    this.byId.set(c.id, c);
    this.version += 1;
    this.onChange(c);
  }

  async refresh() {
    const list = await getJSON('/api/v1/caregivers');
    const items = Array.isArray(list) ? list : list.items || [];
    const seen = new Set();
    for (const c of items) {
      seen.add(c.id);
      this.apply(c);
    }
    for (const id of [...this.byId.keys()]) {
      if (!seen.has(id)) {
        this.byId.delete(id);
        this.onChange({ id, removed: true });
      }
    }
    this.version += 1;
  }

  connectionChanged(state) {
    if (state === 'open') this.refresh().catch((err) => console.warn('caregivers: load failed', err));
  }
}
