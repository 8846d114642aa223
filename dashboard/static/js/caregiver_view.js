// The caregiver page's list: one card per order of today, open ones first,
// each with the service, the elder and where they live, the booked time, the
// target it is racing against (counting down, red once late) and one big
// button per step the server allows this caregiver now.

import { formatClock, t } from './i18n.js';
import { actionText, compareOrders, isBreached, isOpen, kindText, stateText, targetText } from './orders.js';
import { parseTime } from './store.js';

// The steps a caregiver takes, in the order they are offered on a card.
export const CAREGIVER_ACTIONS = ['accept', 'depart', 'arrive', 'complete', 'reject'];

export class CaregiverView {
  // onAction(order, action): a step button was tapped.
  constructor({ onAction }) {
    this.onAction = onAction;
    this.el = {
      open: byId('cg-open'),
      closed: byId('cg-closed'),
      openCount: byId('cg-open-count'),
      closedCount: byId('cg-closed-count'),
    };
    for (const list of [this.el.open, this.el.closed]) {
      list.addEventListener('click', (ev) => {
        const b = ev.target.closest('button[data-action]');
        const li = ev.target.closest('[data-order-id]');
        if (b && li && !b.disabled) this.onAction(Number(li.dataset.orderId), b.dataset.action);
      });
    }
  }

  // orders: today's; messages: id → {text, kind}; busy: ids with a step in flight;
  // fresh: ids that just arrived (highlighted).
  render(orders, { messages, busy, fresh }) {
    const now = Date.now();
    const open = orders.filter(isOpen).sort(compareOrders);
    const closed = orders.filter((o) => !isOpen(o)).sort((a, b) => (parseTime(b.updated_at) ?? 0) - (parseTime(a.updated_at) ?? 0));
    this.el.openCount.textContent = String(open.length);
    this.el.closedCount.textContent = String(closed.length);
    this.el.open.replaceChildren(...(open.length ? open.map((o) => this._card(o, now, messages, busy, fresh)) : [emptyItem(t('cg.empty'))]));
    this.el.closed.replaceChildren(...closed.map((o) => this._card(o, now, messages, busy, fresh)));
  }

  tick(ordersById) {
    const now = Date.now();
    for (const li of document.querySelectorAll('.jobs li[data-order-id]')) {
      const o = ordersById.get(Number(li.dataset.orderId));
      if (o) fillTarget(li, o, now);
    }
  }

  _card(o, now, messages, busy, fresh) {
    const li = document.createElement('li');
    li.className = `job state-${o.state} job-${o.kind}${fresh.has(o.id) ? ' fresh' : ''}`;
    li.dataset.orderId = String(o.id);
    li.dataset.state = o.state;

    const top = div('job-top');
    const st = span(`ostate ostate-${o.state}`, stateText(o.state));
    st.dataset.role = 'state';
    top.append(span(`kind kind-${o.kind}`, kindText(o.kind)), st);
    li.append(top, div('job-elder', o.elder_name ?? `#${o.elder_id}`));

    const addr = div('job-addr');
    const elder = o.elder || {};
    addr.append(span('text', elder.address || t('order.no_address')));
    if (elder.lat != null && elder.lon != null && isOpen(o)) {
      // geo: opens the phone's own map app; no map service is named here.
      const a = document.createElement('a');
      a.className = 'nav';
      a.href = `geo:${elder.lat},${elder.lon}`;
      a.textContent = t('cg.navigate');
      addr.append(a);
    }
    li.append(addr);

    const due = parseTime(o.due_at);
    if (due != null) li.append(div('job-time', t('order.due', { time: formatClock(due, { nowMs: now }).slice(0, -3) })));
    const target = div('job-target');
    target.append(span('o-label'), span('countdown'));
    li.append(target);
    if (o.notes) li.append(div('job-notes', t('order.note', { note: o.notes })));
    if (o.completion_note && !isOpen(o)) li.append(div('job-notes', o.completion_note));

    const msg = messages.get(o.id);
    const p = document.createElement('p');
    p.className = `job-msg${msg ? ` msg-${msg.kind}` : ''}`;
    p.setAttribute('role', 'alert');
    p.hidden = !msg;
    if (msg) p.textContent = msg.text;
    li.append(p);

    const allowed = new Set(o.allowed_actions || []);
    const actions = CAREGIVER_ACTIONS.filter((a) => allowed.has(a));
    if (actions.length && isOpen(o)) {
      const box = div('job-actions');
      for (const a of actions) {
        const b = document.createElement('button');
        b.type = 'button';
        b.dataset.action = a;
        b.className = a === 'reject' ? 'secondary' : 'primary';
        b.textContent = actionText(a);
        b.disabled = busy.has(o.id);
        box.append(b);
      }
      li.append(box);
    }
    fillTarget(li, o, now);
    return li;
  }
}

function fillTarget(li, o, now) {
  const box = li.querySelector('.job-target');
  if (!box) return;
  const tt = isOpen(o) ? targetText(o, now) : null;
  box.hidden = !tt;
  if (tt) {
    box.children[0].textContent = tt.label;
    box.children[1].textContent = tt.countdown;
    box.children[1].classList.toggle('late', tt.late);
  }
  li.classList.toggle('breached', isBreached(o, now));
}

function emptyItem(text) {
  const li = document.createElement('li');
  li.className = 'empty';
  li.textContent = text;
  return li;
}

function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`caregiver.html lacks #${id}`);
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
