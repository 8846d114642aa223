// The side panel: counts, the attention list, the details card of the
// selected elder, the connection indicator and the clock.
//
// All text goes through i18n.t(); all DOM is built with textContent (names
// come from the database and are never parsed as HTML). The list is rebuilt
// only when its content changed, and capped, so a district-sized screen does
// not spend its frame budget on DOM.

import { codeLabel, eventLabel, formatAgo, formatClock, kindLabel, lang, reasonLabel, t } from './i18n.js';
import { NOTICE_REASONS, effectiveReasons, isOnline, parseTime } from './store.js';

const LIST_CAP = 100;

// Which attention reason makes which card row stand out.
const REASON_ROW = {
  hr_high: 'hr', hr_low: 'hr', spo2_low: 'spo2', low_battery: 'battery', not_worn: 'worn', offline: 'device',
  sos: 'event', fall: 'event',
};
// And which active alert kind makes which row stand out.
const KIND_ROW = {
  news2_hr: 'hr', hr_activity: 'hr', baseline_drift: 'hr', news2_spo2: 'spo2', news2_sbp: 'bp', news2_temp: 'temp',
  news2_rr: 'rr', inactivity: 'steps', low_battery: 'battery', not_worn: 'worn', device_offline: 'device',
  geofence_exit: 'position', sos: 'event', fall: 'event',
};

// Alert kinds that say the same as an attention reason: shown once, as the reason.
const KIND_AS_REASONS = {
  sos: ['sos'], fall: ['fall'], low_battery: ['low_battery'], not_worn: ['not_worn'], device_offline: ['offline'],
  news2_spo2: ['spo2_low'], news2_hr: ['hr_high', 'hr_low'], hr_activity: ['hr_high'],
};

function saidByReasons(kind, reasons) {
  return (KIND_AS_REASONS[kind] || []).some((r) => reasons.includes(r));
}

// Active alert kinds not already said by a reason, each once.
function alertKindsBeyond(reasons, kinds) {
  return [...new Set(kinds || [])].filter((k) => !saidByReasons(k, reasons));
}

// Card rows: [field key, i18n label key]. The order is the one staff asked for.
const CARD_ROWS = [
  ['device', 'field.device'],
  ['position', 'field.position'],
  ['hr', 'field.hr'],
  ['spo2', 'field.spo2'],
  ['bp', 'field.bp'],
  ['temp', 'field.temp'],
  ['rr', 'field.rr'],
  ['steps', 'field.steps'],
  ['battery', 'field.battery'],
  ['worn', 'field.worn'],
  ['event', 'field.event'],
];

export class Panel {
  constructor(store, { onSelect }) {
    this.store = store;
    this.onSelect = onSelect;
    this.selectedId = null;
    this.listItems = new Map(); // elder_id → <li>
    this.listOrder = null;
    this.conn = { state: 'connecting', retryAt: null };

    this.el = {
      online: byId('count-online'),
      offline: byId('count-offline'),
      attention: byId('count-attention'),
      total: byId('count-total'),
      list: byId('attention-list'),
      listMore: byId('attention-more'),
      card: byId('card'),
      cardBody: byId('card-body'),
      cardName: byId('card-name'),
      cardStatus: byId('card-status'),
      cardHint: byId('card-hint'),
      cardReasons: byId('card-reasons'),
      conn: byId('conn'),
      connState: byId('conn-state'),
      clock: byId('clock-time'),
    };
    this._buildCardRows();
    byId('card-close').addEventListener('click', () => this.onSelect(null));
    this.el.list.addEventListener('click', (ev) => {
      const li = ev.target.closest('[data-elder-id]');
      if (li) this.onSelect(Number(li.dataset.elderId), { fromList: true });
    });
    this.el.list.addEventListener('keydown', (ev) => {
      const li = ev.target.closest('[data-elder-id]');
      if (li && (ev.key === 'Enter' || ev.key === ' ')) {
        ev.preventDefault();
        this.onSelect(Number(li.dataset.elderId), { fromList: true });
      }
    });
  }

  // After a batch of changes (called from the frame loop).
  render(changedIds) {
    this._renderCounts();
    this._renderList();
    if (this.selectedId != null && (changedIds == null || changedIds.includes(this.selectedId))) {
      this._renderCard();
    }
  }

  // Everything, e.g. after a language switch.
  renderAll() {
    this.listOrder = null;
    this.listItems.forEach((li) => delete li.dataset.key);
    this._buildCardRows();
    this.render(null);
    this.tick();
  }

  // Once a second: ages ("3 分钟前"), the clock, the reconnect countdown.
  tick() {
    const now = this.store.now();
    this.el.clock.textContent = formatClock(now, { nowMs: now });
    this._renderCounts(); // "online" depends on how long ago a device was heard from
    this.el.list.querySelectorAll('[data-ts]').forEach((node) => {
      if (node.dataset.ts) node.textContent = formatAgo(Number(node.dataset.ts), now);
    });
    if (this.selectedId != null) this._renderCardTimes(now);
    this._renderConn();
  }

  select(id) {
    this.selectedId = id;
    this.el.list.querySelectorAll('.selected').forEach((n) => n.classList.remove('selected'));
    if (id != null) this.el.list.querySelector(`[data-elder-id="${id}"]`)?.classList.add('selected');
    this._renderCard();
  }

  setConnection({ state, retryInMs }) {
    this.conn = { state, retryAt: retryInMs != null ? Date.now() + retryInMs : null };
    this._renderConn();
  }

  _renderConn() {
    const { state, retryAt } = this.conn;
    this.el.conn.className = `conn conn-${state}`;
    this.el.conn.dataset.state = state;
    let text = t(`conn.${state}`);
    if (state === 'down' && retryAt != null) {
      text += ` · ${t('conn.retry', { s: Math.max(0, Math.ceil((retryAt - Date.now()) / 1000)) })}`;
    }
    this.el.connState.textContent = text;
  }

  _renderCounts() {
    const c = this.store.counts();
    this.el.online.textContent = String(c.online);
    this.el.offline.textContent = String(c.offline);
    this.el.attention.textContent = String(c.attention);
    this.el.total.textContent = t('count.total', { n: c.total });
  }

  // Keyed update: one <li> per elder, reused; its content is rewritten only
  // when what it shows changed, and the children are re-ordered only when the
  // order changed. Ages are refreshed by tick().
  _renderList() {
    const all = this.store.attentionList();
    const shown = all.slice(0, LIST_CAP);
    const now = this.store.now();
    const keep = new Map();
    for (const item of shown) {
      const id = item.e.elder_id;
      const li = this.listItems.get(id) || this._newListItem(id);
      this._fillListItem(li, item, now);
      keep.set(id, li);
    }
    this.listItems = keep;
    const order = shown.map((x) => x.e.elder_id).join(',');
    if (order !== this.listOrder || shown.length === 0) {
      this.listOrder = order;
      if (shown.length === 0) {
        const li = document.createElement('li');
        li.className = 'empty';
        li.textContent = t('list.empty');
        this.el.list.replaceChildren(li);
      } else {
        this.el.list.replaceChildren(...keep.values());
      }
    }
    const more = all.length - shown.length;
    this.el.listMore.textContent = more > 0 ? t('list.more', { n: more }) : '';
  }

  _newListItem(id) {
    const li = document.createElement('li');
    li.dataset.elderId = String(id);
    li.tabIndex = 0;
    li.append(span('dot'), span('name'), span('reasons'), span('age'));
    return li;
  }

  _fillListItem(li, { e, cls, ms, reasons, kinds }, now) {
    // The age is kept apart from the rest: it changes every time vitals come
    // in, and rewriting whole items every second is where the time went.
    const age = li.children[3];
    const ts = ms ? String(ms) : '';
    if (age.dataset.ts !== ts) {
      age.dataset.ts = ts;
      age.textContent = ms ? formatAgo(ms, now) : '';
    }
    const extra = alertKindsBeyond(reasons, kinds);
    const key = `${cls}|${e.name}|${reasons.join(',')}|${extra.join(',')}|${lang()}`;
    if (li.dataset.key === key) return;
    li.dataset.key = key;
    li.className = `item item-${cls}${e.elder_id === this.selectedId ? ' selected' : ''}`;
    li.children[1].textContent = e.name ?? `#${e.elder_id}`;
    li.children[2].textContent = [...reasons.map(reasonLabel), ...extra.map(kindLabel)].join('、');
  }

  _buildCardRows() {
    const body = this.el.cardBody;
    body.replaceChildren();
    this.rows = {};
    for (const [key, label] of CARD_ROWS) {
      const row = document.createElement('div');
      row.className = 'row';
      row.dataset.row = key;
      const value = span('value');
      value.dataset.field = key;
      const time = span('time');
      time.dataset.fieldTime = key;
      row.append(span('label', t(label)), value, time);
      body.appendChild(row);
      this.rows[key] = { row, value, time };
    }
  }

  _renderCard() {
    const e = this.selectedId != null ? this.store.byId.get(this.selectedId) : null;
    this.el.card.classList.toggle('empty', !e);
    this.el.cardHint.hidden = !!e;
    this.el.cardBody.hidden = !e;
    if (!e) {
      this.el.cardName.textContent = t('card.title');
      this.el.cardStatus.textContent = '';
      this.el.cardStatus.className = 'status';
      this.el.cardReasons.replaceChildren();
      return;
    }
    const cls = this.store.classOf(e);
    this.el.card.dataset.elderId = String(e.elder_id);
    this.el.cardName.textContent = e.name ?? `#${e.elder_id}`;
    this.el.cardStatus.className = `status status-${cls}`;
    this.el.cardStatus.textContent = t(`legend.${cls}`);

    const info = this.store.alertInfo.get(e.elder_id) || null;
    const reasons = effectiveReasons(e, info);
    // Active alerts as chips coloured by severity, after the reasons they do not repeat.
    const extra = info ? info.items.filter((a) => !saidByReasons(a.kind, reasons)) : [];
    this.el.cardReasons.replaceChildren(
      ...reasons.map((r) => span(`chip chip-${NOTICE_REASONS.has(r) ? 'notice' : 'red'}`, reasonLabel(r))),
      ...extra.map((a) => span(`chip chip-sev-${a.severity}`, kindLabel(a.kind))),
    );
    const bad = new Set([
      ...reasons.map((r) => REASON_ROW[r]),
      ...(info ? info.items.map((a) => KIND_ROW[a.kind]) : []),
    ].filter(Boolean));

    const none = t('value.none');
    const num = (v, digits = 0) => (v == null ? null : Number(v).toFixed(digits));
    const withUnit = (v, unit) => (v == null ? none : `${v} ${unit}`);

    let device = none;
    if (e.device_id == null) device = t('value.no_device');
    else {
      const status = isOnline(e, this.store.now()) ? t('value.online') : t('value.offline');
      device = `${e.device_id} · ${status}`;
    }
    const values = {
      device,
      // Staff want "how good and where from"; raw coordinates go in the tooltip.
      position: e.lat == null
        ? t('map.no_position')
        : [e.acc != null ? t('value.acc', { m: Math.round(e.acc) }) : null, e.src ? codeLabel('src', e.src) : null]
          .filter(Boolean)
          .join(' · ') || t('value.none'),
      hr: withUnit(num(e.hr), t('unit.bpm')),
      spo2: withUnit(num(e.spo2), '%'),
      bp: e.sbp == null && e.dbp == null ? none : `${num(e.sbp) ?? none}/${num(e.dbp) ?? none} mmHg`,
      temp: withUnit(num(e.temp, 1), '°C'),
      rr: withUnit(num(e.rr), t('unit.rpm')),
      steps: e.steps == null ? none : `${Number(e.steps).toLocaleString('zh-CN')} ${t('unit.steps')}`,
      battery: withUnit(num(e.battery), '%'),
      worn: e.worn == null ? none : e.worn ? t('value.worn') : t('value.not_worn'),
      event: e.event_type ? eventLabel(e.event_type) : none,
    };
    const titles = {
      position: e.lat == null ? '' : `WGS-84 ${Number(e.lat).toFixed(6)}, ${Number(e.lon).toFixed(6)}`,
    };
    for (const [key] of CARD_ROWS) {
      const r = this.rows[key];
      r.value.textContent = values[key];
      r.value.title = titles[key] || '';
      r.row.classList.toggle('bad', bad.has(key));
    }
    this._renderCardTimes(this.store.now());
  }

  // Each row's time: the fix time for the position, the time of the latest
  // vitals sample for vitals (the API keeps one per elder), and so on.
  _renderCardTimes(now) {
    const e = this.selectedId != null ? this.store.byId.get(this.selectedId) : null;
    if (!e) return;
    const vitals = parseTime(e.vitals_ts);
    const times = {
      device: parseTime(e.last_seen),
      position: parseTime(e.pos_ts),
      event: parseTime(e.event_ts),
    };
    const vitalValue = { hr: e.hr, spo2: e.spo2, bp: e.sbp ?? e.dbp, temp: e.temp, rr: e.rr, steps: e.steps, battery: e.battery, worn: e.worn };
    for (const [key] of CARD_ROWS) {
      const ms = key in vitalValue ? (vitalValue[key] == null ? null : vitals) : times[key];
      const node = this.rows[key].time;
      node.textContent = ms == null ? '' : `${formatAgo(ms, now)} · ${formatClock(ms, { nowMs: now })}`;
      node.title = ms == null ? '' : formatClock(ms, { withDate: true });
    }
  }
}

function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html lacks #${id}`);
  return el;
}

function span(className, text) {
  const s = document.createElement('span');
  s.className = className;
  if (text != null) s.textContent = text;
  return s;
}
