// The two questions the page asks: the operator's name, and how an alert was
// resolved. Native <dialog> elements from index.html (modal, Escape cancels,
// focus kept inside); each question is a promise of the answer or null.

import { t } from './i18n.js';

function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html lacks #${id}`);
  return el;
}

// Show `dialog` and resolve with `read(form)` if it was confirmed, else null.
function ask(dialog, read) {
  return new Promise((resolve) => {
    const form = dialog.querySelector('form');
    dialog.returnValue = ''; // it keeps the previous answer otherwise
    dialog.addEventListener(
      'close',
      () => resolve(dialog.returnValue === 'ok' ? read(form) : null),
      { once: true },
    );
    dialog.showModal();
  });
}

// The operator's name (trimmed, 1–50 characters), or null if cancelled.
export function askName(current) {
  const dialog = byId('name-dialog');
  const input = byId('name-input');
  input.value = current || '';
  input.placeholder = t('operator.placeholder');
  setTimeout(() => input.select(), 0);
  return ask(dialog, () => input.value.trim() || null);
}

// { outcome, note } for an alert, or null if cancelled. `what` names the
// alert ("王秀英 · 紧急呼救"), `by` the operator who will be recorded.
export function askResolve({ what, by }) {
  const dialog = byId('resolve-dialog');
  const form = dialog.querySelector('form');
  form.reset();
  byId('resolve-what').textContent = what;
  byId('resolve-by').textContent = t('resolve.by', { name: by });
  return ask(dialog, () => {
    const data = new FormData(form);
    const note = String(data.get('note') || '').trim();
    return { outcome: String(data.get('outcome')), note: note || null };
  });
}
