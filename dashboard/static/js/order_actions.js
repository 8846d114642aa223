// What staff do to orders from the big screen: request one for an elder,
// dispatch it (the dispatcher chooses, or staff pick a caregiver), cancel it.
//
// Answers go straight into the order store, so the board changes at once
// rather than when the push arrives (versions decide which is newer). A 409
// means someone or something (the dispatcher, a caregiver) changed the order
// first: said politely, and the order re-read so the board shows what is true.
// No actor header: the dashboard is staff (staff:0) until there is a login.

import { getJSON, postJSON } from './api.js';
import { t } from './i18n.js';
import { kindText, reasonOf, stateText } from './orders.js';

export class OrderActions {
  // orders: OrderStore; caregivers: CaregiverStore; notify(text, kind).
  constructor(orders, caregivers, { notify }) {
    this.orders = orders;
    this.caregivers = caregivers;
    this.notify = notify;
    this.busy = new Set();
  }

  isBusy(id) {
    return this.busy.has(id);
  }

  // { elder_id, kind, due_at?, notes? } → the new order, or null.
  async create(request, elderName) {
    const res = await this._call(() => postJSON('/api/v1/orders', request));
    if (!res) return null;
    if (res.status === 201 || res.status === 200) {
      const o = this.orders.apply(res.body) || res.body;
      this.notify(t('board.created', { kind: kindText(o.kind), name: o.elder_name ?? elderName ?? `#${o.elder_id}` }), 'ok');
      return o;
    }
    this.notify(t('board.failed', { reason: reasonOf(res) }), 'error');
    return null;
  }

  // The server's dispatcher also offers every new order at once, so a request
  // here can lose that race: a 409 after which the order turns out offered
  // is reported as the dispatch it is, not as a conflict.
  async dispatch(order) {
    return this._step(order, () => postJSON(`/api/v1/orders/${order.id}/dispatch`, {}), (o) => this._dispatchedText(o), {
      raced: (o) => o.caregiver_id != null && o.state !== 'requested' && o.state !== 'rejected',
    });
  }

  async assign(order, caregiverId) {
    const body = { action: 'assign', caregiver_id: caregiverId };
    if (order.version != null) body.version = order.version;
    return this._step(order, () => postJSON(`/api/v1/orders/${order.id}/steps`, body), (o) => this._dispatchedText(o), {
      raced: (o) => o.caregiver_id === caregiverId && o.state === 'assigned',
    });
  }

  _dispatchedText(o) {
    return t('board.dispatched', { caregiver: this._caregiverName(o), kind: kindText(o.kind), name: nameOf(o) });
  }

  async cancel(order) {
    const body = { action: 'cancel' };
    if (order.version != null) body.version = order.version;
    return this._step(order, () => postJSON(`/api/v1/orders/${order.id}/steps`, body), (o) =>
      t('board.cancelled', { kind: kindText(o.kind), name: nameOf(o) }),
    );
  }

  _caregiverName(o) {
    return o.caregiver_name ?? this.caregivers.get(o.caregiver_id)?.name ?? `#${o.caregiver_id}`;
  }

  // raced(fresh): after a 409, whether the order is now as this step wanted anyway.
  async _step(order, send, doneText, { raced = null } = {}) {
    if (this.busy.has(order.id)) return null;
    this.busy.add(order.id);
    this.orders.version += 1; // redraw the busy buttons
    this.orders.onChange();
    try {
      const res = await this._call(send);
      if (!res) return null;
      if (res.status === 200) {
        const o = this.orders.apply(res.body) || res.body;
        this.notify(doneText(o), 'ok');
        return o;
      }
      if (res.status === 409 && res.body && 'funnel' in res.body) {
        // The dispatcher found nobody: the order itself did not change.
        this.notify(t('board.no_caregiver', { reason: reasonOf(res).replace(/^no caregiver available:\s*/, '') }), 'warn');
        await this._reread(order.id);
        return null;
      }
      const fresh = await this._reread(order.id);
      if (res.status === 409 && fresh && raced && raced(fresh)) {
        this.notify(doneText(fresh), 'ok');
        return fresh;
      }
      if (res.status === 409) this.notify(t('board.conflict', { state: stateText(fresh?.state ?? res.body?.state ?? '?') }), 'warn');
      else this.notify(t('board.failed', { reason: reasonOf(res) }), 'error');
      return null;
    } finally {
      this.busy.delete(order.id);
      this.orders.version += 1;
      this.orders.onChange();
    }
  }

  async _call(send) {
    try {
      return await send();
    } catch (err) {
      this.notify(t('board.failed', { reason: err.name === 'AbortError' ? 'timeout' : err.message }), 'error');
      return null;
    }
  }

  async _reread(id) {
    try {
      const fresh = await getJSON(`/api/v1/orders/${id}`);
      delete fresh.steps;
      return this.orders.apply(fresh) || fresh;
    } catch (err) {
      console.warn('orders: re-read failed', err);
      return null;
    }
  }
}

export function nameOf(order) {
  return order.elder_name ?? `#${order.elder_id}`;
}
