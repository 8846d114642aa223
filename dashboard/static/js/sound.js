// The alarm sound for critical alerts nobody has acknowledged yet.
//
// Synthesised with the Web Audio API: the page must work offline and has no
// audio files to load. The burst is shaped after the IEC 60601-1-8 high-
// priority pattern (3 + 2 short square-wave pulses, band-limited so that it
// is urgent without being shrill) and repeats every few seconds for as long
// as such an alert exists: a single beep is easily missed across a room.
//
// Browsers do not let a page start audio before a user gesture (autoplay
// policy): an AudioContext made at load stays 'suspended'. So the context is
// made at load (a kiosk started with --autoplay-policy=no-user-gesture-required
// gets sound at once), any click or key press on the page resumes it, and the
// page shows a one-click "启用声音" button while it is still blocked.
//
// Mute silences the alarms ringing now. It is not a standing switch: a new
// critical alert sounds again, because an operator who muted the last one
// must still hear the next.

const REPEAT_MS = 5000;
const CHECK_MS = 500;
// Pulse start times (s) within one burst, and their pitches (Hz).
const BURST = [
  [0.0, 880],
  [0.2, 880],
  [0.4, 880],
  [0.75, 660],
  [0.95, 660],
];
const PULSE_S = 0.15;
const VOLUME = 0.28;

export class AlarmSound {
  // onChange(): the state shown on the page changed (buttons to redraw).
  constructor({ onChange } = {}) {
    this.onChange = onChange || (() => {});
    this.ctx = null;
    this.due = new Set(); // ids of the alerts that call for the alarm
    this.silenced = new Set(); // those of them muted by the operator
    this.beeps = 0; // bursts played, for the hook
    this.lastBeepMs = null; // when the repeat timer last fired (reset to ring at once)
    this.lastPlayedMs = null; // when a burst really last played, for the hook
    this.lastError = null;
    this._create();
    const unlock = () => this.unlock();
    // Capture phase: runs even when the click lands on a map control that
    // stops propagation.
    document.addEventListener('pointerdown', unlock, true);
    document.addEventListener('keydown', unlock, true);
    setInterval(() => this._check(), CHECK_MS);
  }

  _create() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) {
      this.lastError = 'no Web Audio';
      return;
    }
    try {
      this.ctx = new Ctx();
      this.ctx.onstatechange = () => {
        this.onChange();
        this._check();
      };
    } catch (err) {
      this.lastError = String(err);
      this.ctx = null;
    }
  }

  enabled() {
    return !!this.ctx && this.ctx.state === 'running';
  }

  // Called from a user gesture: let audio play from now on. `chirp` confirms
  // with one short tone that the speakers work (the explicit button).
  unlock({ chirp = false } = {}) {
    if (!this.ctx) this._create();
    if (!this.ctx) return Promise.resolve(false);
    const wasRunning = this.ctx.state === 'running';
    return this.ctx.resume().then(
      () => {
        if (chirp) {
          const out = this._out();
          this._pulse(this.ctx.currentTime + 0.02, 660, out).onended = () => out.disconnect();
        }
        if (!wasRunning) this.onChange();
        this._check();
        return this.enabled();
      },
      (err) => {
        this.lastError = String(err);
        return false;
      },
    );
  }

  // The alerts that call for the alarm now (ids). A new one sounds at once.
  setDue(ids) {
    const next = new Set(ids);
    let fresh = false;
    for (const id of next) if (!this.due.has(id)) fresh = true;
    for (const id of this.silenced) if (!next.has(id)) this.silenced.delete(id);
    const changed = fresh || next.size !== this.due.size;
    this.due = next;
    // Ring now, not at the next repeat. (A new id is not in `silenced`, so
    // it also overrides an earlier mute: see the top of this file.)
    if (fresh) this.lastBeepMs = null;
    if (changed) this.onChange();
    this._check();
  }

  muted() {
    return this.due.size > 0 && [...this.due].every((id) => this.silenced.has(id));
  }

  toggleMute() {
    if (this.muted()) this.silenced.clear();
    else for (const id of this.due) this.silenced.add(id);
    this.lastBeepMs = null;
    this.onChange();
    this._check();
  }

  state() {
    const due = this.due.size > 0;
    const muted = this.muted();
    const enabled = this.enabled();
    return {
      due, // an unacknowledged critical alert exists
      dueCount: this.due.size,
      muted,
      enabled, // the browser lets the page play sound
      context: this.ctx ? this.ctx.state : 'none',
      ringing: due && !muted && enabled,
      blocked: due && !muted && !enabled, // should ring but the browser does not allow it yet
      beeps: this.beeps,
      lastBeepAt: this.lastPlayedMs != null ? new Date(this.lastPlayedMs).toISOString() : null,
      error: this.lastError,
    };
  }

  _check() {
    if (this.due.size === 0 || this.muted() || !this.enabled()) return;
    const now = Date.now();
    if (this.lastBeepMs != null && now - this.lastBeepMs < REPEAT_MS) return;
    this.lastBeepMs = now;
    this._burst();
  }

  // One output chain per burst: a low-pass takes the harsh top off the
  // square wave; disconnected when the last pulse ends.
  _out() {
    const master = this.ctx.createGain();
    master.gain.value = VOLUME;
    const filter = this.ctx.createBiquadFilter();
    filter.type = 'lowpass';
    filter.frequency.value = 3000;
    master.connect(filter).connect(this.ctx.destination);
    return master;
  }

  _burst() {
    const t0 = this.ctx.currentTime + 0.02;
    const out = this._out();
    let last = null;
    for (const [at, hz] of BURST) last = this._pulse(t0 + at, hz, out);
    if (last) last.onended = () => out.disconnect();
    this.beeps += 1;
    this.lastPlayedMs = Date.now();
    this.onChange();
  }

  // A short tone with a soft attack and release (no clicks).
  _pulse(t, hz, out) {
    const osc = this.ctx.createOscillator();
    osc.type = 'square';
    osc.frequency.value = hz;
    const env = this.ctx.createGain();
    env.gain.setValueAtTime(0, t);
    env.gain.linearRampToValueAtTime(1, t + 0.012);
    env.gain.setValueAtTime(1, t + PULSE_S - 0.03);
    env.gain.linearRampToValueAtTime(0, t + PULSE_S);
    osc.connect(env).connect(out);
    osc.start(t);
    osc.stop(t + PULSE_S + 0.01);
    return osc;
  }
}
