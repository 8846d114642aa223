// The family page's two forms: asking for a 六助 service for the elder shown,
// and how the signed-in person wants to be notified. family.js hands in a
// context: {guarded, showProblem, flash, problemText, elderId}.

import { call } from './family_auth.js';
import { ft } from './family_i18n.js';

const SERVICE_KINDS = ['meal', 'cleaning', 'bathing', 'mobility', 'emergency', 'medical'];
const CHANNELS = ['in_app', 'wecom', 'dingtalk', 'email', 'sms', 'webhook'];

const byId = (id) => document.getElementById(id);

// --- requesting a service -------------------------------------------------------------------

function buildOrderForm() {
  const box = byId('order-kinds');
  for (const k of SERVICE_KINDS) {
    const label = document.createElement('label');
    label.className = `kind kind-${k}`;
    const input = document.createElement('input');
    input.type = 'radio';
    input.name = 'kind';
    input.value = k;
    const span = document.createElement('span');
    span.dataset.ft = `svc.${k}`;
    span.textContent = ft(`svc.${k}`);
    label.append(input, span);
    box.appendChild(label);
  }
}

async function onOrder(ev, ctx) {
  ev.preventDefault();
  const kind = document.querySelector('#order-kinds input:checked')?.value;
  if (!kind) {
    ctx.showProblem('order-problem', ft('order.pick'));
    return;
  }
  const whenValue = byId('order-when').value; // local wall-clock, read as Asia/Shanghai
  const body = { kind };
  if (whenValue) body.due_at = `${whenValue.length === 16 ? `${whenValue}:00` : whenValue}+08:00`;
  const notes = byId('order-notes').value.trim();
  if (notes) body.notes = notes;
  const r = await ctx.guarded(() => call(`/api/v1/family/elders/${ctx.elderId()}/orders`, { method: 'POST', json: body }));
  if (!r) return;
  if (r.status === 201) {
    ctx.showProblem('order-problem', '');
    byId('order-form').reset();
    ctx.flash(ft('order.sent', { kind: ft(`svc.${kind}`) }));
  } else {
    ctx.showProblem('order-problem', ft('problem.generic', { detail: ctx.problemText(r.body) }));
  }
}

// --- notification preferences ---------------------------------------------------------------

function buildNotifyForm() {
  const box = byId('notify-channels');
  for (const k of CHANNELS) {
    const row = document.createElement('div');
    row.className = 'channel';
    row.dataset.kind = k;
    const label = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.name = 'channel';
    input.value = k;
    const span = document.createElement('span');
    span.dataset.ft = `ch.${k}`;
    span.textContent = ft(`ch.${k}`);
    label.append(input, span);
    row.appendChild(label);
    if (k !== 'in_app') {
      const addr = document.createElement('input');
      addr.className = 'address';
      addr.name = `address-${k}`;
      addr.maxLength = 300;
      addr.dataset.ftPlaceholder = `ph.${k}`;
      addr.placeholder = ft(`ph.${k}`);
      addr.addEventListener('input', () => {
        if (addr.value.trim()) input.checked = true;
      });
      row.appendChild(addr);
    }
    box.appendChild(row);
  }
}

export async function loadPrefs(ctx) {
  const r = await ctx.guarded(() => call('/api/v1/family/me/notify'));
  if (!r || r.status !== 200) return;
  const chosen = new Map(r.body.channels.map((c) => [c.kind, c.address]));
  for (const row of byId('notify-channels').querySelectorAll('.channel')) {
    const k = row.dataset.kind;
    row.querySelector('input[type=checkbox]').checked = chosen.has(k);
    const addr = row.querySelector('.address');
    if (addr) addr.value = chosen.get(k) || '';
  }
  byId('quiet-start').value = (r.body.quiet_start || '').slice(0, 5);
  byId('quiet-end').value = (r.body.quiet_end || '').slice(0, 5);
}

async function onNotify(ev, ctx) {
  ev.preventDefault();
  const channels = [];
  for (const row of byId('notify-channels').querySelectorAll('.channel')) {
    if (!row.querySelector('input[type=checkbox]').checked) continue;
    const addr = row.querySelector('.address');
    channels.push({ kind: row.dataset.kind, address: addr ? addr.value.trim() || null : null });
  }
  const body = {
    channels,
    quiet_start: byId('quiet-start').value || null,
    quiet_end: byId('quiet-end').value || null,
  };
  const r = await ctx.guarded(() => call('/api/v1/family/me/notify', { method: 'PUT', json: body }));
  if (!r) return;
  if (r.status === 200) {
    ctx.showProblem('notify-problem', '');
    ctx.flash(ft('notify.saved'));
  } else {
    ctx.showProblem('notify-problem', ft('problem.generic', { detail: ctx.problemText(r.body) }));
  }
}

// Build both forms once and wire their submit buttons.
export function setUpForms(ctx) {
  buildOrderForm();
  buildNotifyForm();
  document.getElementById('order-form').addEventListener('submit', (ev) => onOrder(ev, ctx));
  document.getElementById('notify-form').addEventListener('submit', (ev) => onNotify(ev, ctx));
}
