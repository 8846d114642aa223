// The alerts column: active alerts (most severe first) with acknowledge and
// resolve buttons, the recently handled ones, and the false-alarm tab.
//
// Rendered only when the alert store changed (its `version`), never because
// positions moved: alerts are few, elders are thousands. Items are keyed by
// alert id and rewritten only when the alert itself changed; the "x 分钟前"
// ages are refreshed by tick() once a second.

import { escalationLabel, formatAgo, formatClock, kindLabel, lang, outcomeLabel, severityLabel, t } from './i18n.js';
import { nameOf } from './alert_actions.js';
import { parseTime } from './store.js';

const LIST_CAP = 100;
const FLASH_MS = 7000;

export class AlertPanel {
  // alerts: AlertStore; actions: AlertActions; stats: StatsView.
  // onOpen(alert): an alert was clicked (select the elder, show details).
  constructor(alerts, actions, stats, { onOpen, now }) {
    this.alerts = alerts;
    this.actions = actions;
    this.stats = stats;
    this.onOpen = onOpen;
    this.now = now; // server-clock estimate (store.now)
    this.tab = 'active';
    this.selectedId = null;
    this.renderedVersion = -1;
    this.items = new Map(); // alert id → <li> of the active list
    this.order = null;
    this.el = {
      count: byId('alerts-count'),
      tabs: byId('alert-tabs'),
      list: byId('alert-list'),
      more: byId('alert-more'),
      recent: byId('recent-list'),
      stats: byId('stats-view'),
      flash: byId('alerts-flash'),
    };
    this.el.tabs.addEventListener('click', (ev) => {
      const b = ev.target.closest('[data-tab]');
      if (b) this.showTab(b.dataset.tab);
    });
    for (const list of [this.el.list, this.el.recent]) {
      list.addEventListener('click', (ev) => this._onClick(ev));
      list.addEventListener('keydown', (ev) => {
        if ((ev.key === 'Enter' || ev.key === ' ') && ev.target.matches('[data-alert-id]')) {
          ev.preventDefault();
          this._onClick(ev);
        }
      });
    }
  }

  _onClick(ev) {
    const li = ev.target.closest('[data-alert-id]');
    if (!li) return;
    const alert = this.alerts.get(Number(li.dataset.alertId));
    if (!alert) return;
    const button = ev.target.closest('button[data-action]');
    if (button) {
      ev.stopPropagation();
      if (button.dataset.action === 'ack') this.actions.acknowledge(alert);
      else if (button.dataset.action === 'resolve') this.actions.resolve(alert);
      return;
    }
    this.onOpen(alert);
  }

  showTab(tab) {
    this.tab = tab;
    for (const b of this.el.tabs.querySelectorAll('[data-tab]')) b.setAttribute('aria-selected', String(b.dataset.tab === tab));
    this.el.list.hidden = tab !== 'active';
    this.el.more.hidden = tab !== 'active';
    this.el.recent.hidden = tab !== 'recent';
    this.el.stats.hidden = tab !== 'stats';
    // The 服务订单 tab is drawn by order_board.js; only its visibility is ours.
    const orders = document.getElementById('orders-view');
    if (orders) orders.hidden = tab !== 'orders';
    if (tab === 'stats') this.stats.open();
    else this.stats.close();
    this.render(true);
  }

  select(alertId) {
    this.selectedId = alertId;
    this.render(true);
  }

  // Bring the lists up to date; cheap when the store has not changed.
  render(force = false) {
    if (!force && this.renderedVersion === this.alerts.version) return;
    this.renderedVersion = this.alerts.version;
    const active = this.alerts.active();
    this.el.count.textContent = String(active.length);
    this.el.count.className = `alerts-count${active.some((a) => a.state === 'open' && (a.severity === 'critical' || a.severity === 'high')) ? ' hot' : ''}`;
    this._renderActive(active);
    if (this.tab === 'recent') this._renderRecent();
  }

  // Language switch: every item's text is rebuilt.
  renderAll() {
    for (const li of this.items.values()) delete li.dataset.key;
    this.order = null;
    this.render(true);
  }

  tick() {
    const now = this.now();
    for (const list of [this.el.list, this.el.recent]) {
      list.querySelectorAll('[data-ts]').forEach((node) => {
        node.textContent = formatAgo(Number(node.dataset.ts), now);
      });
    }
  }

  // A short message above the list ("已确认：…", "该警报已由他人处理…").
  flash(text, kind = 'ok') {
    const f = this.el.flash;
    f.textContent = text;
    f.className = `flash flash-${kind}`;
    f.hidden = false;
    clearTimeout(this._flashTimer);
    this._flashTimer = setTimeout(() => {
      f.hidden = true;
    }, FLASH_MS);
  }

  _renderActive(active) {
    const shown = active.slice(0, LIST_CAP);
    const keep = new Map();
    for (const a of shown) {
      const li = this.items.get(a.id) || this._newItem(a.id);
      this._fillActive(li, a);
      keep.set(a.id, li);
    }
    this.items = keep;
    const order = shown.map((a) => a.id).join(',');
    if (order !== this.order || shown.length === 0) {
      this.order = order;
      if (shown.length === 0) this.el.list.replaceChildren(emptyItem(this.alerts.loaded ? t('alerts.empty') : t('detail.loading')));
      else this.el.list.replaceChildren(...keep.values());
    }
    const more = active.length - shown.length;
    this.el.more.textContent = more > 0 ? t('alerts.more', { n: more }) : '';
  }

  _newItem(id) {
    const li = document.createElement('li');
    li.dataset.alertId = String(id);
    li.tabIndex = 0;
    return li;
  }

  _fillActive(li, a) {
    const busy = this.actions.isBusy(a.id);
    const key = `${a.updated_at}|${a.state}|${a.severity}|${a.escalation_level}|${a.count}|${a.elder_name}|${busy}|${a.id === this.selectedId}|${lang()}`;
    if (li.dataset.key === key) return;
    li.dataset.key = key;
    li.dataset.elderId = String(a.elder_id);
    li.dataset.state = a.state;
    li.className = `alert sev-${a.severity} state-${a.state}${a.id === this.selectedId ? ' selected' : ''}`;

    const top = div('a-top');
    top.append(span(`sev sev-${a.severity}`, severityLabel(a.severity)), span('a-name', nameOf(a)), span('a-kind', kindLabel(a.kind)));
    if (a.count > 1) {
      const c = span('a-count', t('alerts.count', { n: a.count }));
      c.title = t('alerts.count_title', { n: a.count });
      top.append(c);
    }
    top.append(ageSpan(parseTime(a.first_ts), this.now()));

    const msg = div('a-msg', a.message);
    msg.title = a.message;

    const bottom = div('a-bottom');
    const escText = t('alerts.escalation', { level: escalationLabel(a.escalation_level) });
    const esc = span(`esc esc-${a.escalation_level}`, escText);
    esc.title = escText; // the badge may be cut short on a narrow column
    bottom.append(esc);
    const status = span('a-status');
    if (a.state === 'acknowledged') status.textContent = t('alerts.acked_by', { name: a.acknowledged_by ?? '?' });
    if (a.cleared_at) status.append(span('cleared', t('alerts.cleared')));
    bottom.append(status);
    if (a.state === 'open') bottom.append(button('ack', t('alerts.ack'), busy));
    bottom.append(button('resolve', t('alerts.resolve'), busy));

    li.replaceChildren(top, msg, bottom);
  }

  _renderRecent() {
    const recent = this.alerts.recent();
    if (recent.length === 0) {
      this.el.recent.replaceChildren(emptyItem(t('alerts.recent_empty')));
      return;
    }
    const now = this.now();
    this.el.recent.replaceChildren(
      ...recent.map((a) => {
        const li = this._newItem(a.id);
        li.className = `alert recent${a.id === this.selectedId ? ' selected' : ''}`;
        li.dataset.outcome = a.outcome ?? '';
        const top = div('a-top');
        top.append(
          span(`outcome outcome-${a.outcome}`, outcomeLabel(a.outcome ?? '—')),
          span('a-name', nameOf(a)),
          span('a-kind', kindLabel(a.kind)),
          ageSpan(parseTime(a.resolved_at), now),
        );
        const by = a.resolved_by === 'system' ? t('actor.system') : a.resolved_by;
        const when = formatClock(parseTime(a.resolved_at), { nowMs: now });
        const line = div('a-msg', [by, when, a.note].filter(Boolean).join(' · '));
        li.replaceChildren(top, line);
        return li;
      }),
    );
  }
}

function ageSpan(ms, now) {
  const s = span('a-age', ms != null ? formatAgo(ms, now) : '');
  if (ms != null) {
    s.dataset.ts = String(ms);
    s.title = formatClock(ms, { withDate: true });
  }
  return s;
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

function emptyItem(text) {
  const li = document.createElement('li');
  li.className = 'empty';
  li.textContent = text;
  return li;
}

function div(className, text) {
  const d = document.createElement('div');
  d.className = className;
  if (text != null) d.textContent = text;
  return d;
}

function span(className, text) {
  const s = document.createElement('span');
  s.className = className;
  if (text != null) s.textContent = text;
  return s;
}

function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html lacks #${id}`);
  return el;
}
