// Small controls around the alerts: the sound buttons ("启用声音", mute) and
// who is on duty. They only reflect state kept elsewhere (sound.js,
// operator.js) and forward clicks.

import { t } from './i18n.js';
import { operatorName } from './operator.js';

export class Controls {
  // sound: AlarmSound; actions: AlertActions (asks for the operator's name).
  constructor(sound, actions) {
    this.sound = sound;
    this.el = {
      enable: byId('sound-enable'),
      mute: byId('sound-mute'),
      operator: byId('operator-button'),
    };
    // The click itself is the user gesture the browser wants before audio.
    this.el.enable.addEventListener('click', () => sound.unlock({ chirp: true }));
    this.el.mute.addEventListener('click', () => sound.toggleMute());
    this.el.operator.addEventListener('click', () => actions.operator({ change: true }));
  }

  render() {
    const s = this.sound.state();
    // Shown while the browser blocks audio; urgent while an alarm should ring.
    this.el.enable.hidden = s.enabled;
    this.el.enable.classList.toggle('urgent', s.blocked);
    this.el.enable.dataset.state = s.context;
    this.el.mute.hidden = !s.enabled;
    this.el.mute.disabled = !s.due;
    this.el.mute.setAttribute('aria-pressed', String(s.muted));
    this.el.mute.classList.toggle('ringing', s.ringing);
    this.el.mute.textContent = s.muted ? t('sound.muted') : t('sound.mute');
    const name = operatorName();
    this.el.operator.textContent = name || t('operator.none');
    this.el.operator.classList.toggle('unset', !name);
  }
}

function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html lacks #${id}`);
  return el;
}
