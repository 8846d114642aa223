// Orders on the selected elder's card: the elder's open services and the
// "新建服务订单" button (kind, optional booked time, note, then dispatch:
// automatic, a caregiver picked by hand, or not yet).

import { getJSON } from './api.js';
import { t } from './i18n.js';
import { askNewOrder } from './order_dialogs.js';
import { compareOrders, kindText, stateText } from './orders.js';

export class ElderOrders {
  // orders: OrderStore; actions: OrderActions; caregivers: CaregiverStore;
  // elderOf(id): the elder as the map knows it ({elder_id, name, lat, lon}).
  constructor(orders, actions, caregivers, { elderOf }) {
    this.orders = orders;
    this.actions = actions;
    this.caregivers = caregivers;
    this.elderOf = elderOf;
    this.elderId = null;
    this.kinds = null;
    this.el = {
      box: byId('card-orders'),
      list: byId('card-order-list'),
      button: byId('card-new-order'),
    };
    this.el.button.addEventListener('click', () => this.newOrder());
  }

  show(elderId) {
    this.elderId = elderId;
    this.render();
  }

  render() {
    this.el.box.hidden = this.elderId == null;
    if (this.elderId == null) return;
    const open = this.orders.openFor(this.elderId).sort(compareOrders);
    if (open.length === 0) {
      const li = document.createElement('li');
      li.className = 'empty';
      li.textContent = t('order.none_for_elder');
      this.el.list.replaceChildren(li);
      return;
    }
    this.el.list.replaceChildren(
      ...open.map((o) => {
        const li = document.createElement('li');
        li.dataset.orderId = String(o.id);
        const state = document.createElement('span');
        state.className = `ostate ostate-${o.state}`;
        state.textContent = stateText(o.state);
        const kind = document.createElement('span');
        kind.className = 'kind';
        kind.textContent = kindText(o.kind);
        li.append(kind, state);
        if (o.caregiver_name) {
          const who = document.createElement('span');
          who.className = 'who';
          who.textContent = o.caregiver_name;
          li.append(who);
        }
        return li;
      }),
    );
  }

  async _serviceKinds() {
    if (this.kinds) return this.kinds;
    try {
      this.kinds = await getJSON('/api/v1/service-kinds');
    } catch (err) {
      console.warn('service kinds not loaded; using the built-in six', err);
      return null;
    }
    return this.kinds;
  }

  async newOrder() {
    const elderId = this.elderId;
    if (elderId == null) return null;
    const e = this.elderOf(elderId) || { elder_id: elderId };
    const elder = { elder_id: elderId, name: e.name, lat: e.lat ?? e.home_lat, lon: e.lon ?? e.home_lon };
    const answer = await askNewOrder({ elder, kinds: await this._serviceKinds(), caregivers: this.caregivers.onShift() });
    if (!answer) return null;
    const request = { elder_id: elderId, kind: answer.kind };
    if (answer.due_at) request.due_at = answer.due_at;
    if (answer.notes) request.notes = answer.notes;
    const order = await this.actions.create(request, elder.name);
    if (!order) return null;
    if (answer.mode === 'auto' && order.state === 'requested') return this.actions.dispatch(order);
    if (answer.mode === 'manual' && answer.caregiver_id != null && ['requested', 'rejected'].includes(order.state)) {
      return this.actions.assign(order, answer.caregiver_id);
    }
    return order;
  }
}

function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html lacks #${id}`);
  return el;
}
