// The live connection: /ws/live plus catch-up through /api/v1/latest.
//
// Live messages are deltas, so a gap (a dropped connection, a sleeping PC)
// would leave the map wrong until every elder happened to change again. Hence,
// on every (re)connect: open the socket first, buffer what it sends, fetch a
// full snapshot, apply it, then apply the buffered deltas that are not older
// than the snapshot. Nothing between the snapshot and the live stream is lost.
//
// Reconnects back off exponentially with jitter (0.5 s doubling to 30 s), so
// a few hundred screens do not hammer a restarting server in lockstep.
//
// Signing in: a browser cannot set headers on a WebSocket, so the access token
// travels as the second of two subprotocols, ["bearer", token] (never in the
// URL, which ends up in logs). The server closes with 4401 when the token is
// missing, expired or the session ended: refresh, then reconnect; when the
// refresh fails, back to the login page.

const SIGNED_OUT = 4401;

import { getJSON, liveSocketUrl } from './api.js';
import { accessToken, refresh, toLogin } from './session.js';
import { parseTime } from './store.js';

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30000;
// If the server has shown that it sends pings, this much silence means the
// connection is dead even though the browser has not noticed (half-open TCP
// after a network change).
const SILENCE_LIMIT_MS = 30000;
// While the socket is down, refresh the snapshot at most this often so the
// screen keeps roughly current through plain HTTP.
const DEGRADED_REFRESH_MS = 10000;

export class LiveConnection {
  // handlers: onSnapshot(snapshot), onUpdate(message), onAlert(alert), onOrder(order),
  // onCaregiver(caregiver), onStatus({state, retryInMs})
  // latestPath: what to re-read on every (re)connect (the caregiver page reads
  // its own orders instead of the whole map), with these request headers.
  constructor(handlers, { url = liveSocketUrl(), latestPath = '/api/v1/latest', headers = {} } = {}) {
    this.h = handlers;
    this.url = url;
    this.latestPath = latestPath;
    this.headers = headers;
    this.ws = null;
    this.state = 'connecting';
    this.attempt = 0;
    this.lastMessageMs = 0;
    this.sawPing = false;
    this.lastSnapshotFetchMs = 0;
    this.everPainted = false;
    this.watchdog = setInterval(() => this._checkSilence(), 5000);
  }

  connected() {
    return this.state === 'open';
  }

  start() {
    this._connect();
  }

  _setState(state, retryInMs = null) {
    this.state = state;
    this.h.onStatus?.({ state, retryInMs });
  }

  _connect() {
    this._setState('connecting');
    let ws;
    try {
      const token = accessToken();
      ws = token ? new WebSocket(this.url, ['bearer', token]) : new WebSocket(this.url);
    } catch (err) {
      console.warn('live: cannot open', err);
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    const pending = []; // deltas that arrive before this connection's snapshot
    let caughtUp = false;

    ws.onopen = async () => {
      this.lastMessageMs = Date.now();
      let snapshot;
      try {
        snapshot = await this._fetchSnapshot();
      } catch (err) {
        // Without a snapshot the deltas cannot be trusted; start over.
        console.warn('live: catch-up failed', err);
        if (this.ws === ws) ws.close();
        return;
      }
      if (this.ws !== ws) return; // superseded while fetching
      const snapMs = parseTime(snapshot.server_time);
      for (const msg of pending) {
        const ms = parseTime(msg.server_time);
        if (snapMs == null || ms == null || ms >= snapMs) this.h.onUpdate(msg);
      }
      pending.length = 0;
      caughtUp = true;
      this.attempt = 0;
      this._setState('open');
    };

    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.lastMessageMs = Date.now();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (err) {
        console.warn('live: not JSON', err);
        return;
      }
      if (msg.type === 'ping') {
        this.sawPing = true;
        return;
      }
      // Alerts are whole records, not deltas, each with its updated_at: they
      // need no snapshot ordering and are handed over at once (alerts.js
      // keeps the newest version and re-reads the list on every reconnect).
      if (msg.type === 'alert') {
        if (msg.alert) this.h.onAlert?.(msg.alert);
        return;
      }
      // Orders and caregivers likewise: whole records, re-read on reconnect.
      if (msg.type === 'order') {
        if (msg.order) this.h.onOrder?.(msg.order);
        return;
      }
      if (msg.type === 'caregiver') {
        if (msg.caregiver) this.h.onCaregiver?.(msg.caregiver);
        return;
      }
      if (msg.type !== 'update') return; // unknown kinds are for newer clients
      if (caughtUp) this.h.onUpdate(msg);
      else pending.push(msg);
    };

    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (ev.code === SIGNED_OUT) {
        refresh()
          .then(() => this._scheduleReconnect())
          .catch(() => toLogin());
        return;
      }
      this._scheduleReconnect();
      // Keep the screen roughly current over HTTP while the socket is down,
      // and make sure the page paints at all when WebSockets are blocked.
      if (!this.everPainted || Date.now() - this.lastSnapshotFetchMs > DEGRADED_REFRESH_MS) {
        this._fetchSnapshot().catch((err) => console.warn('live: refresh failed', err));
      }
    };
    // onerror is always followed by onclose; nothing to do here.
    ws.onerror = () => {};
  }

  async _fetchSnapshot() {
    this.lastSnapshotFetchMs = Date.now();
    const snapshot = await getJSON(this.latestPath, { headers: this.headers });
    this.h.onSnapshot(snapshot);
    this.everPainted = true;
    return snapshot;
  }

  _scheduleReconnect() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    const delay = Math.round(base * (0.5 + Math.random() * 0.5));
    this.attempt += 1;
    this._setState('down', delay);
    setTimeout(() => this._connect(), delay);
  }

  _checkSilence() {
    if (this.ws && this.state === 'open' && this.sawPing && Date.now() - this.lastMessageMs > SILENCE_LIMIT_MS) {
      console.warn('live: no message for a while, reconnecting');
      // Detach first: on a dead connection the close handshake (and so
      // onclose) can take minutes.
      const dead = this.ws;
      this.ws = null;
      dead.close();
      this._scheduleReconnect();
    }
  }
}
