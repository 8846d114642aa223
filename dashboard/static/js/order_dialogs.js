// The order questions staff answer on the big screen, as native <dialog>s
// from index.html: a new order for an elder (kind, optional booked time,
// note, how to dispatch it) and a caregiver to assign by hand. Each is a
// promise of the answer, or null when cancelled.

import { t } from './i18n.js';
import { KIND_ORDER, distanceText, haversineM, kindText } from './orders.js';

function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html lacks #${id}`);
  return el;
}

function ask(dialog, read) {
  return new Promise((resolve) => {
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok' ? read() : null), { once: true });
    dialog.showModal();
  });
}

// Caregivers on shift, nearest to the elder first, as <option>s.
function fillCaregivers(select, caregivers, near) {
  const rows = caregivers.map((c) => {
    const d = near && c.lat != null && c.lon != null ? haversineM(near.lat, near.lon, c.lat, c.lon) : null;
    return { c, d };
  });
  rows.sort((a, b) => (a.d ?? Infinity) - (b.d ?? Infinity) || (a.c.active_orders ?? 0) - (b.c.active_orders ?? 0));
  select.replaceChildren(
    ...rows.map(({ c, d }) => {
      const opt = document.createElement('option');
      opt.value = String(c.id);
      opt.textContent = t('order.caregiver_option', { name: c.name ?? `#${c.id}`, dist: distanceText(d), n: c.active_orders ?? 0 });
      return opt;
    }),
  );
  return rows.length;
}

// "2026-12-04T11:30" from <input type=datetime-local> is a Beijing time
// whatever the PC's own zone (China has one offset and no DST).
export function beijingLocalToIso(value) {
  if (!value) return null;
  const withSeconds = value.length === 16 ? `${value}:00` : value;
  const ms = Date.parse(`${withSeconds}+08:00`);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

// elder: {elder_id, name, lat, lon}; kinds: [{kind}] or null (the built-in six);
// caregivers: on shift now. → {kind, due_at, notes, mode, caregiver_id} | null
export function askNewOrder({ elder, kinds, caregivers }) {
  const dialog = byId('order-dialog');
  const form = dialog.querySelector('form');
  form.reset();
  byId('order-for').textContent = t('order.for', { name: elder.name ?? `#${elder.elder_id}` });
  const list = (kinds && kinds.length ? kinds.map((k) => k.kind) : KIND_ORDER).slice();
  const box = byId('order-kinds');
  box.querySelectorAll('label').forEach((n) => n.remove());
  list.forEach((kind, i) => {
    const label = document.createElement('label');
    label.className = `kind-choice kind-${kind}`;
    const input = document.createElement('input');
    input.type = 'radio';
    input.name = 'kind';
    input.value = kind;
    input.required = true;
    if (i === 0 && list.length === 1) input.checked = true;
    const span = document.createElement('span');
    span.textContent = kindText(kind);
    label.append(input, span);
    box.append(label);
  });
  const select = byId('order-caregiver');
  const n = fillCaregivers(select, caregivers, elder.lat != null ? elder : null);
  const manual = form.querySelector('input[name="mode"][value="manual"]');
  manual.disabled = n === 0;
  byId('order-no-caregivers').hidden = n > 0;
  const syncMode = () => {
    select.disabled = !manual.checked;
  };
  form.querySelectorAll('input[name="mode"]').forEach((r) => {
    r.onchange = syncMode;
  });
  form.querySelector('input[name="mode"][value="auto"]').checked = true;
  syncMode();
  return ask(dialog, () => {
    const data = new FormData(form);
    const notes = String(data.get('notes') || '').trim();
    const mode = String(data.get('mode') || 'auto');
    return {
      kind: String(data.get('kind')),
      due_at: beijingLocalToIso(String(data.get('due') || '')),
      notes: notes || null,
      mode,
      caregiver_id: mode === 'manual' && select.value ? Number(select.value) : null,
    };
  });
}

// → caregiver id | null
export function askAssign({ what, caregivers, near }) {
  const dialog = byId('assign-dialog');
  byId('assign-what').textContent = what;
  const select = byId('assign-caregiver');
  const n = fillCaregivers(select, caregivers, near);
  byId('assign-none').hidden = n > 0;
  dialog.querySelector('button[value="ok"]').disabled = n === 0;
  return ask(dialog, () => (select.value ? Number(select.value) : null));
}
