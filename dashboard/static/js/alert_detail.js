// The alert details drawer, docked at the bottom of the map: what the alert
// is, who did what to it (its history), and the elder's readings 15 minutes
// either side (GET /api/v1/alerts/{id}). The map stays visible above it with
// the elder selected, so staff see where and what at once.
//
// The header follows the alert store (pushes) at once; history and readings
// are re-read when the alert changes while the drawer is open.

import { getJSON } from './api.js';
import {
  codeLabel, escalationLabel, eventLabel, formatClock, kindLabel, lang, outcomeLabel, severityLabel, stateLabel, t,
} from './i18n.js';
import { nameOf } from './alert_actions.js';
import { parseTime } from './store.js';

const ROWS_MAX = 60;
const REFETCH_DELAY_MS = 300;

// Readings table: [column, label key]. `other` holds positions and events.
const COLUMNS = ['hr', 'spo2', 'bp', 'temp', 'rr', 'steps', 'battery', 'other'].map((c) => [c, `detail.col.${c}`]);

// The column that explains each kind of alert, highlighted.
const KIND_COLUMN = {
  news2_hr: 'hr', hr_activity: 'hr', baseline_drift: 'hr', news2_spo2: 'spo2', news2_sbp: 'bp',
  news2_rr: 'rr', news2_temp: 'temp', low_battery: 'battery', inactivity: 'steps',
  geofence_exit: 'other', sos: 'other', fall: 'other', not_worn: 'other', device_offline: 'other',
};

export class AlertDetail {
  // onClose(): the drawer was closed by its × button.
  constructor(alerts, actions, { onClose, now }) {
    this.alerts = alerts;
    this.actions = actions;
    this.onClose = onClose;
    this.now = now;
    this.alertId = null;
    this.detail = null; // the last GET /alerts/{id} answer
    this.failed = false;
    this.token = 0; // drops answers for an alert no longer shown
    this.shownKey = null;
    this.root = byId('alert-detail');
    this.el = {
      title: byId('detail-title'),
      badges: byId('detail-badges'),
      actions: byId('detail-actions'),
      message: byId('detail-message'),
      facts: byId('detail-facts'),
      history: byId('detail-history'),
      readings: byId('detail-readings'),
    };
    byId('detail-close').addEventListener('click', () => {
      this.close();
      this.onClose();
    });
    this.el.actions.addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-action]');
      const a = this.alertId != null ? this.alerts.get(this.alertId) || this.detail : null;
      if (!b || !a) return;
      if (b.dataset.action === 'ack') this.actions.acknowledge(a);
      else this.actions.resolve(a);
    });
  }

  isOpen() {
    return this.alertId != null;
  }

  // Pixels of the map the drawer covers (for panning the dot into view).
  height() {
    return this.isOpen() ? this.root.offsetHeight : 0;
  }

  open(alertId) {
    this.alertId = alertId;
    this.detail = null;
    this.failed = false;
    this.shownKey = null;
    this.root.hidden = false;
    this.root.dataset.alertId = String(alertId);
    this._renderHead();
    this._renderBody();
    this._fetch();
  }

  close() {
    this.alertId = null;
    this.detail = null;
    this.root.hidden = true;
    delete this.root.dataset.alertId;
    clearTimeout(this._refetch);
  }

  // The alert store changed: refresh the header, and re-read history and
  // readings if this alert got a new version.
  onAlertsChanged() {
    if (!this.isOpen()) return;
    this._renderHead();
    const a = this.alerts.get(this.alertId);
    if (a && this.detail && a.updated_at !== this.detail.updated_at) {
      clearTimeout(this._refetch);
      this._refetch = setTimeout(() => this._fetch(), REFETCH_DELAY_MS);
    }
  }

  renderAll() {
    if (!this.isOpen()) return;
    this.shownKey = null;
    this._renderHead();
    this._renderBody();
  }

  async _fetch() {
    const id = this.alertId;
    const token = ++this.token;
    try {
      const detail = await getJSON(`/api/v1/alerts/${id}`);
      if (token !== this.token || id !== this.alertId) return;
      this.detail = detail;
      this.failed = false;
    } catch (err) {
      if (token !== this.token) return;
      console.warn('alert detail not loaded', err);
      this.failed = true;
    }
    this._renderHead();
    this._renderBody();
  }

  // The newest version we know: a push may be newer than the detail fetched.
  _alert() {
    const pushed = this.alerts.get(this.alertId);
    if (!this.detail) return pushed;
    if (!pushed) return this.detail;
    return (parseTime(pushed.updated_at) ?? 0) > (parseTime(this.detail.updated_at) ?? 0) ? pushed : this.detail;
  }

  _renderHead() {
    const a = this._alert();
    if (!a) {
      this.el.title.textContent = t('detail.title');
      this.el.badges.replaceChildren();
      this.el.actions.replaceChildren();
      this.el.message.textContent = this.failed ? t('detail.failed') : t('detail.loading');
      this.el.facts.replaceChildren();
      return;
    }
    const busy = this.actions.isBusy(a.id);
    const key = `${a.updated_at}|${a.state}|${busy}|${this.detail ? 1 : 0}|${lang()}`;
    if (key === this.shownKey) return;
    this.shownKey = key;
    this.root.dataset.state = a.state;
    this.el.title.textContent = `${nameOf(a)} · ${kindLabel(a.kind)}`;
    this.el.badges.replaceChildren(
      span(`sev sev-${a.severity}`, severityLabel(a.severity)),
      span(`state state-${a.state}`, stateLabel(a.state)),
    );
    const buttons = [];
    if (a.state === 'open') buttons.push(button('ack', t('alerts.ack'), busy));
    if (a.state !== 'resolved') buttons.push(button('resolve', t('alerts.resolve'), busy));
    this.el.actions.replaceChildren(...buttons);
    this.el.message.textContent = a.message;
    this._renderFacts(a);
  }

  _renderFacts(a) {
    const clock = (iso) => formatClock(parseTime(iso), { withDate: true });
    const who = (name) => (name === 'system' ? t('actor.system') : name);
    const facts = [
      ['detail.first', clock(a.first_ts)],
      ['detail.last', clock(a.last_ts)],
      ['detail.count', a.suppressed ? `${a.count} (+${a.suppressed})` : String(a.count)],
      ['detail.escalation', escalationLabel(a.escalation_level)],
    ];
    if (a.value != null) facts.push(['detail.value', String(a.value)]);
    if (a.acknowledged_at) facts.push(['detail.ack', `${who(a.acknowledged_by)} · ${clock(a.acknowledged_at)}`]);
    if (a.resolved_at) {
      facts.push(['detail.resolved', `${who(a.resolved_by)} · ${outcomeLabel(a.outcome)} · ${clock(a.resolved_at)}`]);
    }
    if (a.cleared_at) facts.push(['alerts.cleared', clock(a.cleared_at)]);
    if (a.note) facts.push(['detail.note', a.note]);
    this.el.facts.replaceChildren(
      ...facts.flatMap(([label, value]) => [el('dt', t(label)), el('dd', value)]),
    );
  }

  _renderBody() {
    const d = this.detail;
    if (!d) {
      const text = this.failed ? t('detail.failed') : t('detail.loading');
      this.el.history.replaceChildren(el('li', text));
      this.el.readings.replaceChildren(el('p', text));
      return;
    }
    this._renderHistory(d.history || []);
    this._renderReadings(d);
  }

  _renderHistory(history) {
    const now = this.now();
    this.el.history.replaceChildren(
      ...history.map((h) => {
        const li = el('li');
        li.dataset.action = h.action;
        const when = span('h-time', formatClock(parseTime(h.at), { nowMs: now }));
        when.title = formatClock(parseTime(h.at), { withDate: true });
        const actor = span('h-actor', h.actor === 'system' ? t('actor.system') : h.actor);
        const what = span('h-action', codeLabel('action', h.action));
        li.append(when, actor, what);
        const more = historyDetail(h);
        if (more) li.append(span('h-detail', more));
        return li;
      }),
    );
  }

  _renderReadings(d) {
    const r = d.readings || {};
    let rows = [
      ...(r.vitals || []).map((v) => ({ ms: parseTime(v.ts), kind: 'vitals', v })),
      ...(r.positions || []).map((v) => ({ ms: parseTime(v.ts), kind: 'position', v })),
      ...(r.events || []).map((v) => ({ ms: parseTime(v.ts), kind: 'event', v })),
    ].filter((x) => x.ms != null);
    const at = parseTime(d.first_ts);
    if (rows.length === 0) {
      this.el.readings.replaceChildren(el('p', t('detail.no_readings')));
      return;
    }
    const more = rows.length > ROWS_MAX;
    if (more) {
      rows.sort((a, b) => Math.abs(a.ms - at) - Math.abs(b.ms - at));
      rows = rows.slice(0, ROWS_MAX);
    }
    rows.sort((a, b) => a.ms - b.ms || (a.kind === 'event' ? -1 : 1));
    // The row closest to the moment of the alert is marked.
    let nearest = 0;
    rows.forEach((x, i) => {
      if (Math.abs(x.ms - at) < Math.abs(rows[nearest].ms - at)) nearest = i;
    });
    const hot = KIND_COLUMN[d.kind];
    const table = el('table');
    table.className = 'readings-table';
    const head = table.createTHead().insertRow();
    head.append(el('th', t('detail.col.time')));
    for (const [col, label] of COLUMNS) {
      const th = el('th', t(label));
      if (col === hot) th.className = 'hot';
      head.append(th);
    }
    const body = table.createTBody();
    rows.forEach((x, i) => {
      const tr = body.insertRow();
      tr.className = `r-${x.kind}${i === nearest ? ' at-alert' : ''}`;
      tr.insertCell().textContent = formatClock(x.ms, { nowMs: at });
      const cells = readingCells(x);
      for (const [col] of COLUMNS) {
        const td = tr.insertCell();
        td.textContent = cells[col] ?? '';
        if (col === hot) td.className = 'hot';
      }
    });
    const parts = [table];
    if (more) parts.unshift(el('p', t('detail.readings_more', { n: ROWS_MAX })));
    this.el.readings.replaceChildren(...parts);
  }
}

function readingCells({ kind, v }) {
  const n = (x, digits = 0) => (x == null ? null : Number(x).toFixed(digits));
  if (kind === 'vitals') {
    return {
      hr: n(v.hr),
      spo2: v.spo2 == null ? null : `${n(v.spo2)}%`,
      bp: v.sbp == null && v.dbp == null ? null : `${n(v.sbp) ?? '—'}/${n(v.dbp) ?? '—'}`,
      temp: n(v.temp, 1),
      rr: n(v.rr),
      steps: v.steps == null ? null : Number(v.steps).toLocaleString('zh-CN'),
      battery: v.battery == null ? null : `${n(v.battery)}%`,
      other: v.worn === false ? t('value.not_worn') : null,
    };
  }
  if (kind === 'position') {
    const acc = v.acc != null ? t('value.acc', { m: Math.round(v.acc) }) : '';
    const src = v.src ? ` · ${codeLabel('src', v.src)}` : '';
    return { other: t('detail.position', { acc, src }) };
  }
  return { other: t('detail.event', { event: eventLabel(v.type) }) };
}

// What is worth saying about one history entry beyond its action.
function historyDetail(h) {
  const d = h.detail || {};
  const parts = [];
  if (h.action === 'escalated' && d.level != null) parts.push(escalationLabel(d.level));
  if (d.outcome) parts.push(outcomeLabel(d.outcome));
  if (d.severity && (h.action === 'opened' || h.action === 'repeated')) parts.push(severityLabel(d.severity));
  if (d.count != null && h.action === 'repeated') parts.push(t('alerts.count', { n: d.count }));
  // The system's entries carry the rule's own zh-CN message; people's their note.
  if (h.actor === 'system' && d.message && h.action !== 'opened') parts.push(d.message);
  else if (h.actor !== 'system' && d.note) parts.push(d.note);
  if (d.error) parts.push(d.error);
  return parts.join(' · ');
}

function button(action, text, disabled) {
  const b = document.createElement('button');
  b.type = 'button';
  b.dataset.action = action;
  b.className = `btn btn-${action}`;
  b.textContent = text;
  b.disabled = disabled;
  return b;
}

function el(tag, text) {
  const e = document.createElement(tag);
  if (text != null) e.textContent = text;
  return e;
}

function span(className, text) {
  const s = el('span', text);
  s.className = className;
  return s;
}

function byId(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`index.html lacks #${id}`);
  return e;
}
