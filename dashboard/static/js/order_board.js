// The order board: the alerts column's 服务订单 tab. Open orders grouped by
// kind (助急 first), in each group those needing action first, each with its
// caregiver, booked time and the target it is racing against, counting down
// and red once breached. Staff dispatch (automatic or by hand) and cancel
// from here; a click on an order selects its elder on the map.
//
// Redrawn only when the order store changes; the countdowns are refreshed in
// place once a second.

import { codeLabel, formatClock, t } from './i18n.js';
import { askAssign } from './order_dialogs.js';
import { nameOf } from './order_actions.js';
import {
  CANCELLABLE, DISPATCHABLE, KIND_ORDER, STATE_ORDER, compareOrders, isBreached, isOpen, kindText, stateText, targetText,
} from './orders.js';
import { parseTime } from './store.js';

const CONFIRM_MS = 4000;

export class OrderBoard {
  constructor(orders, actions, caregivers, { onSelectElder }) {
    this.orders = orders;
    this.actions = actions;
    this.caregivers = caregivers;
    this.onSelectElder = onSelectElder;
    this.renderedVersion = -1;
    this.confirming = new Map(); // order id → until (ms): "确认取消？" shown
    this.el = {
      view: byId('orders-view'),
      summary: byId('orders-summary'),
      groups: byId('orders-groups'),
      tabCount: byId('orders-tab-count'),
    };
    this.el.groups.addEventListener('click', (ev) => this._onClick(ev));
    this.el.groups.addEventListener('keydown', (ev) => {
      if ((ev.key === 'Enter' || ev.key === ' ') && ev.target.matches('[data-order-id]')) {
        ev.preventDefault();
        this._onClick(ev);
      }
    });
  }

  render(force = false) {
    const now = Date.now();
    const list = this.orders.list(now);
    if (!force && this.renderedVersion === this.orders.version) return;
    this.renderedVersion = this.orders.version;
    const open = list.filter(isOpen);
    this._renderSummary(open);
    this._renderGroups(list, now);
    this._renderBadge(open, now);
  }

  renderAll() {
    this.render(true);
  }

  // Once a second: countdowns, breach colours, the tab's badge.
  tick() {
    const now = Date.now();
    this.orders.list(now); // drops orders closed a while ago (bumps the version)
    if (this.renderedVersion !== this.orders.version) {
      this.render(true);
      return;
    }
    for (const li of this.el.groups.querySelectorAll('li[data-order-id]')) {
      const o = this.orders.get(Number(li.dataset.orderId));
      if (o) this._fillTarget(li, o, now);
    }
    for (const [id, until] of this.confirming) {
      if (until < now) {
        this.confirming.delete(id);
        this.render(true);
      }
    }
    this._renderBadge(this.orders.list(now).filter(isOpen), now);
  }

  _renderBadge(open, now) {
    const late = open.filter((o) => isBreached(o, now)).length;
    this.el.tabCount.textContent = String(open.length);
    this.el.tabCount.className = `tab-count${late ? ' hot' : ''}`;
    this.el.tabCount.title = late ? t('board.breached', { n: late }) : '';
  }

  _renderSummary(open) {
    const counts = new Map();
    for (const o of open) counts.set(o.state, (counts.get(o.state) || 0) + 1);
    const chips = STATE_ORDER.filter((s) => counts.get(s)).map((s) => {
      const chip = span(`ostate ostate-${s}`, `${stateText(s)} ${counts.get(s)}`);
      chip.dataset.state = s;
      return chip;
    });
    this.el.summary.replaceChildren(...chips);
  }

  _renderGroups(list, now) {
    if (list.length === 0) {
      const p = document.createElement('p');
      p.className = 'empty';
      p.textContent = t('board.empty');
      this.el.groups.replaceChildren(p);
      return;
    }
    const byKind = new Map();
    for (const o of list) {
      if (!byKind.has(o.kind)) byKind.set(o.kind, []);
      byKind.get(o.kind).push(o);
    }
    const kinds = [...byKind.keys()].sort((a, b) => rank(KIND_ORDER, a) - rank(KIND_ORDER, b) || a.localeCompare(b));
    const sections = kinds.map((kind) => {
      // Open ones by state and target; the recently finished at the bottom.
      const items = byKind.get(kind).sort((a, b) => Number(!isOpen(a)) - Number(!isOpen(b)) || compareOrders(a, b));
      const section = document.createElement('section');
      section.className = `order-group kind-${kind}`;
      section.dataset.kind = kind;
      const h = document.createElement('h3');
      const openN = items.filter(isOpen).length;
      const lateN = items.filter((o) => isBreached(o, now)).length;
      h.append(span('kind', kindText(kind)), span('n', String(openN)));
      if (lateN) h.append(span('late-n', t('board.breached', { n: lateN })));
      const ul = document.createElement('ul');
      ul.className = 'order-list';
      ul.append(...items.map((o) => this._item(o, now)));
      section.append(h, ul);
      return section;
    });
    this.el.groups.replaceChildren(...sections);
  }

  _item(o, now) {
    const li = document.createElement('li');
    li.className = `order-item state-${o.state}${isOpen(o) ? '' : ' closed'}`;
    li.dataset.orderId = String(o.id);
    li.dataset.elderId = String(o.elder_id);
    li.dataset.state = o.state;
    li.dataset.kind = o.kind;
    li.tabIndex = 0;

    const top = div('o-top');
    const st = span(`ostate ostate-${o.state}`, stateText(o.state));
    st.dataset.role = 'state';
    top.append(span('o-name', nameOf(o)), st);

    const who = div('o-who');
    const cg = o.caregiver_id != null
      ? t('order.caregiver', { name: o.caregiver_name ?? this.caregivers.get(o.caregiver_id)?.name ?? `#${o.caregiver_id}` })
      : t('order.unassigned');
    who.append(span('o-cg', cg));
    const due = parseTime(o.due_at);
    if (due != null) who.append(span('o-due', t('order.due', { time: formatClock(due, { nowMs: now }).slice(0, -3) })));

    const target = div('o-target');
    target.append(span('o-label'), span('countdown'));
    li.append(top, who, target);
    if (o.notes) li.append(div('o-notes', t('order.note', { note: o.notes })));
    // Why the dispatcher found nobody: staff then pick someone by hand.
    const reason = o.dispatch_note && o.dispatch_note.reason;
    if (reason && DISPATCHABLE.has(o.state)) {
      li.append(div('o-notes o-why', t('board.no_caregiver', { reason: codeLabel('dreason', reason) })));
    }
    this._fillTarget(li, o, now);

    if (isOpen(o)) {
      const actions = div('o-actions');
      const busy = this.actions.isBusy(o.id);
      if (DISPATCHABLE.has(o.state)) {
        actions.append(button('dispatch', t('oaction.dispatch'), busy), button('assign', `${t('oaction.assign')}…`, busy));
      }
      if (CANCELLABLE.has(o.state)) {
        const confirming = (this.confirming.get(o.id) ?? 0) > now;
        const b = button('cancel', confirming ? t('board.cancel_confirm') : t('oaction.cancel'), busy);
        b.classList.add(confirming ? 'confirm' : 'quiet');
        actions.append(b);
      }
      if (actions.childElementCount) li.append(actions);
    }
    return li;
  }

  _fillTarget(li, o, now) {
    const box = li.querySelector('.o-target');
    const tt = isOpen(o) ? targetText(o, now) : null;
    box.hidden = !tt;
    if (tt) {
      box.children[0].textContent = tt.label;
      box.children[1].textContent = tt.countdown;
      box.children[1].classList.toggle('late', tt.late);
    }
    li.classList.toggle('breached', isBreached(o, now));
  }

  async _onClick(ev) {
    const li = ev.target.closest('[data-order-id]');
    if (!li) return;
    const o = this.orders.get(Number(li.dataset.orderId));
    if (!o) return;
    const b = ev.target.closest('button[data-action]');
    if (!b) {
      this.onSelectElder(o.elder_id);
      return;
    }
    ev.stopPropagation();
    const action = b.dataset.action;
    if (action === 'dispatch') {
      await this.actions.dispatch(o);
    } else if (action === 'assign') {
      const near = o.elder && o.elder.lat != null ? { lat: o.elder.lat, lon: o.elder.lon } : null;
      const id = await askAssign({ what: `${nameOf(o)} · ${kindText(o.kind)}`, caregivers: this.caregivers.onShift(), near });
      if (id != null) await this.actions.assign(this.orders.get(o.id) || o, id);
    } else if (action === 'cancel') {
      // Two taps: a cancelled 助急 cannot be undone by a slip of the mouse.
      if ((this.confirming.get(o.id) ?? 0) > Date.now()) {
        this.confirming.delete(o.id);
        await this.actions.cancel(o);
      } else {
        this.confirming.set(o.id, Date.now() + CONFIRM_MS);
        this.render(true);
      }
    }
  }
}

function rank(order, x) {
  const i = order.indexOf(x);
  return i < 0 ? order.length : i;
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

function div(className, text) {
  const d = document.createElement('div');
  d.className = className;
  if (text != null) d.textContent = text;
  return d;
}

function button(action, text, disabled) {
  const b = document.createElement('button');
  b.type = 'button';
  b.dataset.action = action;
  b.textContent = text;
  b.disabled = disabled;
  return b;
}
