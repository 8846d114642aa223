// The caregiver's "new order" signal: a vibration and a short two-tone chime,
// three times for 助急. Web Audio, no files (the page works offline). As on the
// big screen, browsers keep audio off until the first tap; the page shows
// "开启提醒音" until then. Vibration needs no tap where it is supported.

export class Chime {
  constructor({ onChange } = {}) {
    this.onChange = onChange || (() => {});
    this.ctx = null;
    this.rung = 0;
    this.vibrated = 0;
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (Ctx) {
      try {
        this.ctx = new Ctx();
        this.ctx.onstatechange = () => this.onChange();
      } catch (_) {
        this.ctx = null;
      }
    }
    const unlock = () => this.unlock();
    document.addEventListener('pointerdown', unlock, true);
    document.addEventListener('keydown', unlock, true);
  }

  enabled() {
    return Boolean(this.ctx && this.ctx.state === 'running');
  }

  blocked() {
    return Boolean(this.ctx && this.ctx.state !== 'running');
  }

  unlock() {
    if (this.ctx && this.ctx.state === 'suspended') this.ctx.resume().then(() => this.onChange(), () => {});
  }

  // urgent: 助急 — longer vibration, the chime three times.
  ring({ urgent = false } = {}) {
    let vibrated = false;
    try {
      vibrated = Boolean(navigator.vibrate && navigator.vibrate(urgent ? [400, 150, 400, 150, 400] : [250, 100, 250]));
    } catch (_) {
      vibrated = false;
    }
    if (vibrated) this.vibrated += 1;
    let played = false;
    if (this.enabled()) {
      const t0 = this.ctx.currentTime + 0.02;
      const times = urgent ? 3 : 1;
      for (let i = 0; i < times; i += 1) {
        this._tone(t0 + i * 0.7, 988);
        this._tone(t0 + i * 0.7 + 0.22, 1319);
      }
      played = true;
      this.rung += 1;
    }
    return { vibrated, played };
  }

  _tone(at, hz) {
    const osc = this.ctx.createOscillator();
    const gain = this.ctx.createGain();
    osc.type = 'sine';
    osc.frequency.value = hz;
    gain.gain.setValueAtTime(0, at);
    gain.gain.linearRampToValueAtTime(0.3, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.001, at + 0.2);
    osc.connect(gain).connect(this.ctx.destination);
    osc.start(at);
    osc.stop(at + 0.22);
  }
}
