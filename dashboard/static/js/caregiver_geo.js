// The caregiver's phone position: watched while the page is open, reported to
// the centre every 30 s while on shift (so the dispatcher can pick whoever is
// nearest), and read fresh for a check-in (a fix from before setting off must
// not start a service: the server refuses fixes older than two minutes).

import { postJSON } from './api.js';

export const REPORT_EVERY_MS = 30000;

function toFix(pos) {
  return {
    lat: pos.coords.latitude,
    lon: pos.coords.longitude,
    acc: pos.coords.accuracy,
    ts: new Date(pos.timestamp || Date.now()).toISOString(),
  };
}

// GeolocationPositionError codes as words for the page ('denied' is the one
// the caregiver can fix).
export function geoErrorKind(err) {
  if (err && err.code === 1) return 'denied';
  if (err && err.code === 3) return 'timeout';
  if (err && err.code === 2) return 'unavailable';
  return err && err.message ? err.message : 'unavailable';
}

export class Geo {
  constructor({ onFix, onError } = {}) {
    this.latest = null;
    this.latestAtMs = null; // when the page received it (the fix's own clock may be off)
    this.error = null;
    this.onFix = onFix || (() => {});
    this.onError = onError || (() => {});
    this.available = 'geolocation' in navigator;
  }

  watch() {
    if (!this.available) {
      this.error = 'unavailable';
      this.onError(this.error);
      return;
    }
    navigator.geolocation.watchPosition(
      (pos) => {
        this.latest = toFix(pos);
        this.latestAtMs = Date.now();
        this.error = null;
        this.onFix(this.latest);
      },
      (err) => {
        this.error = geoErrorKind(err);
        this.onError(this.error);
      },
      { enableHighAccuracy: true, maximumAge: 15000, timeout: 60000 },
    );
  }

  // A fresh fix for a check-in: the watched one if it came in the last few
  // seconds (the watch only fires on movement, and a second request for the
  // same position can wait for the next one), else a new one. Rejects with
  // {kind} ('denied', 'timeout', …).
  current({ timeoutMs = 20000, freshMs = 10000 } = {}) {
    if (!this.available) return Promise.reject({ kind: 'unavailable' });
    if (this.latest && this.latestAtMs != null && Date.now() - this.latestAtMs < freshMs) {
      return Promise.resolve(this.latest);
    }
    return new Promise((resolve, reject) => {
      navigator.geolocation.getCurrentPosition(
        (pos) => {
          this.latest = toFix(pos);
          this.latestAtMs = Date.now();
          resolve(this.latest);
        },
        (err) => reject({ kind: geoErrorKind(err) }),
        { enableHighAccuracy: true, maximumAge: freshMs, timeout: timeoutMs },
      );
    });
  }
}

export class PositionReporter {
  constructor(caregiverId, geo, { headers, onSent } = {}) {
    this.path = `/api/v1/caregivers/${caregiverId}/position`;
    this.geo = geo;
    this.headers = headers || {};
    this.onSent = onSent || (() => {});
    this.onShift = false;
    this.sent = 0;
    this.lastSentMs = null;
    this.lastSentFix = null;
    this.lastStatus = null;
    setInterval(() => this.report(), REPORT_EVERY_MS);
  }

  setOnShift(on) {
    const started = on && !this.onShift;
    this.onShift = on;
    if (started) this.report();
  }

  // A first fix after the page opened goes out at once, not 30 s later.
  fixArrived() {
    if (this.onShift && this.lastSentMs == null) this.report();
  }

  async report() {
    const fix = this.geo.latest;
    if (!this.onShift || !fix || this.inFlight) return;
    this.inFlight = true;
    try {
      const body = { lat: fix.lat, lon: fix.lon, acc: fix.acc, ts: fix.ts };
      const res = await postJSON(this.path, body, { headers: this.headers });
      this.lastStatus = res.status;
      if (res.status >= 200 && res.status < 300) {
        this.sent += 1;
        this.lastSentMs = Date.now();
        this.lastSentFix = body;
        this.onSent(this.lastSentMs);
      } else {
        console.warn('position not accepted', res.status, res.body);
      }
    } catch (err) {
      // Next tick tries again; a phone in a lift is normal.
      console.warn('position not sent', err);
    } finally {
      this.inFlight = false;
    }
  }
}
