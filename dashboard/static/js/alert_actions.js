// Acknowledge and resolve, as staff do them from the page.
//
// The server's answer is the alert after the change; it goes straight into
// the alert store, so the list changes at once rather than when the push
// arrives (both carry the same updated_at, so either order is fine).
// Several screens may act on the same alert: a 409 means someone else got
// there first. That is said politely, and the alert is re-read so the screen
// shows what really happened.

import { getJSON, postJSON } from './api.js';
import { kindLabel, outcomeLabel, stateLabel, t } from './i18n.js';
import { askName, askResolve } from './dialogs.js';
import { operatorName, setOperatorName } from './operator.js';

export class AlertActions {
  // alerts: AlertStore. notify(text, kind): a short message for the operator
  // ('ok' | 'warn' | 'error'). onChange(): busy state or operator changed.
  constructor(alerts, { notify, onChange }) {
    this.alerts = alerts;
    this.notify = notify;
    this.onChange = onChange || (() => {});
    this.busy = new Set(); // alert ids with a request in flight
  }

  isBusy(id) {
    return this.busy.has(id);
  }

  // The operator's name: asked once, then remembered (operator.js).
  // `change`: ask again even if known (the "更换值班人员" button).
  async operator({ change = false } = {}) {
    const known = operatorName();
    if (known && !change) return known;
    const name = await askName(known);
    if (name) {
      setOperatorName(name);
      this.onChange();
    }
    return name || (change ? known : null);
  }

  async acknowledge(alert) {
    if (this.busy.has(alert.id)) return;
    const by = await this.operator();
    if (!by) return;
    await this._post(alert, 'acknowledge', { by }, (a) =>
      t('alerts.ack_done', { name: nameOf(a), kind: kindLabel(a.kind) }),
    );
  }

  async resolve(alert) {
    if (this.busy.has(alert.id)) return;
    const by = await this.operator();
    if (!by) return;
    const answer = await askResolve({ what: `${nameOf(alert)} · ${kindLabel(alert.kind)}`, by });
    if (!answer) return;
    const body = { by, outcome: answer.outcome };
    if (answer.note) body.note = answer.note;
    await this._post(alert, 'resolve', body, (a) =>
      t('alerts.resolve_done', { name: nameOf(a), kind: kindLabel(a.kind), outcome: outcomeLabel(a.outcome) }),
    );
  }

  async _post(alert, verb, body, doneText) {
    this.busy.add(alert.id);
    this.onChange();
    try {
      const res = await postJSON(`/api/v1/alerts/${alert.id}/${verb}`, body);
      if (res.status === 200) {
        this.alerts.apply(res.body);
        this.notify(doneText(res.body), 'ok');
      } else if (res.status === 409) {
        this.notify(t('alerts.conflict', { state: stateLabel(res.body?.state ?? '?') }), 'warn');
        await this._reread(alert.id);
      } else if (res.status === 404) {
        this.notify(t('alerts.not_found'), 'warn');
        await this.alerts.refresh();
      } else {
        this.notify(t('alerts.failed', { reason: reasonOf(res) }), 'error');
      }
    } catch (err) {
      this.notify(t('alerts.failed', { reason: err.name === 'AbortError' ? 'timeout' : err.message }), 'error');
    } finally {
      this.busy.delete(alert.id);
      this.onChange();
    }
  }

  // After a conflict: the alert as it now is, and the list around it.
  async _reread(id) {
    try {
      const fresh = await getJSON(`/api/v1/alerts/${id}`);
      delete fresh.history;
      delete fresh.readings;
      this.alerts.apply(fresh);
    } catch (err) {
      console.warn('alerts: re-read failed', err);
    }
    await this.alerts.refresh();
  }
}

export function nameOf(alert) {
  return alert.elder_name ?? `#${alert.elder_id}`;
}

// FastAPI's 422 carries a list of problems; other errors a string.
function reasonOf(res) {
  const d = res.body && res.body.detail;
  if (typeof d === 'string') return d;
  if (Array.isArray(d) && d.length) return d.map((x) => x.msg).join('; ');
  return `HTTP ${res.status}`;
}
