// The open service orders the board knows: the newest version of each, from
// pushes ({"type": "order"} on /ws/live) and from the answers to staff's own
// requests. Re-read in full on every (re)connect, since a push missed while
// the link was down is not sent again; polled while the link is down.
//
// An order that reaches completed or cancelled stays listed for a short while
// (greyed), so staff see it finish rather than vanish.

import { getJSON } from './api.js';
import { isOpen, newer } from './orders.js';

const LIST_PATH = '/api/v1/orders?open=true&limit=500';
const CLOSED_KEEP_MS = 120000;
const POLL_MS = 10000;

export class OrderStore {
  constructor({ onChange, onLoadError } = {}) {
    this.byId = new Map();
    this.closedAt = new Map(); // id → when it was seen closed (client clock)
    this.version = 0;
    this.loaded = false;
    this.onChange = onChange || (() => {});
    this.onLoadError = onLoadError || (() => {});
    this.pollTimer = null;
    this.refreshing = null;
  }

  get(id) {
    return this.byId.get(id) || null;
  }

  // One order, as pushed or as answered. Returns the version kept.
  apply(order) {
    if (!order || order.id == null) return null;
    const had = this.byId.get(order.id);
    const kept = newer(had, order);
    if (kept === had) return had;
    this.byId.set(order.id, kept);
    if (!isOpen(kept)) {
      if (!this.closedAt.has(kept.id)) this.closedAt.set(kept.id, Date.now());
    } else {
      this.closedAt.delete(kept.id);
    }
    this._changed();
    return kept;
  }

  // Orders to list: open ones and those closed in the last two minutes.
  list(nowMs = Date.now()) {
    this._prune(nowMs);
    return [...this.byId.values()];
  }

  openFor(elderId) {
    return [...this.byId.values()].filter((o) => o.elder_id === elderId && isOpen(o));
  }

  async refresh() {
    // One re-read at a time; a second caller waits for the same one.
    if (this.refreshing) return this.refreshing;
    this.refreshing = (async () => {
      try {
        const page = await getJSON(LIST_PATH);
        const items = Array.isArray(page) ? page : page.items || [];
        const seen = new Set(items.map((o) => o.id));
        // An open order missing from the answer was closed while we were
        // not listening: keep it only if we already know it closed.
        for (const [id, o] of this.byId) {
          if (!seen.has(id) && isOpen(o)) {
            this.byId.delete(id);
            this.closedAt.delete(id);
          }
        }
        for (const o of items) {
          const had = this.byId.get(o.id);
          this.byId.set(o.id, newer(had, o));
        }
        this.loaded = true;
        this.onLoadError(null);
        this._changed();
      } catch (err) {
        console.warn('orders: load failed', err);
        this.onLoadError(err);
        throw err;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  connectionChanged(state) {
    if (state === 'open') {
      this._stopPolling();
      this.refresh().catch(() => {});
    } else if (state === 'down' && !this.pollTimer) {
      this.pollTimer = setInterval(() => this.refresh().catch(() => {}), POLL_MS);
    }
  }

  _stopPolling() {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  _prune(nowMs) {
    let pruned = false;
    for (const [id, at] of this.closedAt) {
      if (nowMs - at > CLOSED_KEEP_MS) {
        this.closedAt.delete(id);
        this.byId.delete(id);
        pruned = true;
      }
    }
    if (pruned) this.version += 1;
  }

  _changed() {
    this.version += 1;
    this.onChange();
  }
}
