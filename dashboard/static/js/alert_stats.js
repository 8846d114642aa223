// The "误报率" tab: per rule and per elder, how many resolved alerts staff
// called a false alarm (GET /api/v1/alerts/stats). Alarm fatigue is the
// field's best-known failure; this is where staff and whoever tunes the rules
// see which rule cries wolf. Loaded when the tab opens, refreshed while open.

import { getJSON } from './api.js';
import { kindLabel, t } from './i18n.js';

const PATH = '/api/v1/alerts/stats';
const REFRESH_MS = 30000;
const ELDERS_SHOWN = 10;

export class StatsView {
  constructor(root) {
    this.root = root;
    this.timer = null;
    this.data = null;
    this.failed = false;
  }

  open() {
    if (this.timer != null) return;
    this.load();
    this.timer = setInterval(() => this.load(), REFRESH_MS);
  }

  close() {
    if (this.timer != null) clearInterval(this.timer);
    this.timer = null;
  }

  async load() {
    try {
      this.data = await getJSON(PATH);
      this.failed = false;
    } catch (err) {
      console.warn('alert stats not loaded', err);
      this.failed = true;
    }
    this.render();
  }

  render() {
    const root = this.root;
    if (this.failed && !this.data) {
      root.replaceChildren(p('stats-empty', t('stats.failed')));
      return;
    }
    if (!this.data) {
      root.replaceChildren(p('stats-empty', t('detail.loading')));
      return;
    }
    const kinds = Object.entries(this.data.by_kind || {}).sort(
      ([ka, a], [kb, b]) => b.false_alarms - a.false_alarms || b.resolved - a.resolved || ka.localeCompare(kb),
    );
    if (kinds.length === 0) {
      root.replaceChildren(p('stats-empty', t('stats.empty')));
      return;
    }
    const byKind = table(
      [t('stats.rule'), t('stats.resolved'), t('stats.false'), t('stats.rate')],
      kinds.map(([kind, s]) => ({ cells: [kindLabel(kind), s.resolved, s.false_alarms], rate: s.false_alarm_rate, key: kind })),
    );
    byKind.classList.add('stats-kinds');
    const elders = (this.data.by_elder || [])
      .filter((e) => e.false_alarms > 0)
      .sort((a, b) => b.false_alarms - a.false_alarms || (b.false_alarm_rate ?? 0) - (a.false_alarm_rate ?? 0))
      .slice(0, ELDERS_SHOWN);
    const parts = [byKind, p('stats-hint', t('stats.hint'))];
    if (elders.length) {
      const h = document.createElement('h3');
      h.textContent = t('stats.by_elder');
      const byElder = table(
        ['', t('stats.resolved'), t('stats.false'), t('stats.rate')],
        elders.map((e) => ({
          cells: [e.elder_name ?? `#${e.elder_id}`, e.resolved, e.false_alarms],
          rate: e.false_alarm_rate,
          key: String(e.elder_id),
        })),
      );
      byElder.classList.add('stats-elders');
      parts.push(h, byElder);
    }
    root.replaceChildren(...parts);
  }
}

// A table whose last column is the rate, as a percentage over a small bar.
function table(head, rows) {
  const tbl = document.createElement('table');
  tbl.className = 'stats-table';
  const thead = tbl.createTHead().insertRow();
  for (const h of head) {
    const th = document.createElement('th');
    th.textContent = h;
    thead.appendChild(th);
  }
  const body = tbl.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    tr.dataset.key = row.key;
    for (const c of row.cells) tr.insertCell().textContent = String(c);
    const cell = tr.insertCell();
    cell.className = 'rate';
    if (row.rate == null) {
      cell.textContent = '—';
    } else {
      const pct = Math.round(row.rate * 100);
      cell.dataset.rate = String(row.rate);
      const bar = document.createElement('span');
      bar.className = `bar${pct >= 50 ? ' bar-high' : ''}`;
      bar.style.width = `${Math.max(2, pct)}%`;
      const label = document.createElement('span');
      label.className = 'pct';
      label.textContent = `${pct}%`;
      cell.append(bar, label);
    }
  }
  return tbl;
}

function p(className, text) {
  const el = document.createElement('p');
  el.className = className;
  el.textContent = text;
  return el;
}
