// Caregivers on the live map: a purple 护 flag, unlike the elders' round
// dots, in its own pane above them. Few (tens), so plain DOM markers; off-shift
// caregivers are shown faded, caregivers without a fix not at all.

import { t } from './i18n.js';

const L = window.L;

export class CaregiverLayer {
  // liveMap: the LiveMap (its Leaflet map and display projection).
  constructor(liveMap) {
    this.map = liveMap.map;
    this.project = liveMap.project;
    this.map.createPane('caregivers').style.zIndex = 560; // above elders (450), below alarm labels (620)
    this.markers = new Map(); // id → { m, c }
  }

  // One caregiver changed (or { id, removed: true }).
  apply(c) {
    const rec = this.markers.get(c.id);
    if (c.removed || c.lat == null || c.lon == null || c.active === false) {
      if (rec) {
        rec.m.remove();
        this.markers.delete(c.id);
      }
      return;
    }
    const ll = this.project(c.lat, c.lon);
    if (!rec) {
      const m = L.marker(ll, { pane: 'caregivers', keyboard: false, icon: this._icon(c) });
      m.bindTooltip('', { direction: 'top', offset: [15, -30], className: 'dot-tip' });
      m.addTo(this.map);
      const added = { m, c, onShift: Boolean(c.on_shift) };
      this.markers.set(c.id, added);
      this._tooltip(added);
      return;
    }
    rec.c = c;
    rec.m.setLatLng(ll);
    if (rec.onShift !== Boolean(c.on_shift)) {
      rec.onShift = Boolean(c.on_shift);
      rec.m.setIcon(this._icon(c));
    }
    this._tooltip(rec);
  }

  // Language switch: tooltips again.
  renderAll() {
    for (const rec of this.markers.values()) this._tooltip(rec);
  }

  list() {
    return [...this.markers.values()].map(({ c }) => ({
      id: c.id, name: c.name, lat: c.lat, lon: c.lon, on_shift: Boolean(c.on_shift), active_orders: c.active_orders ?? 0,
    }));
  }

  _tooltip(rec) {
    const c = rec.c;
    // An element, not a string: Leaflet puts a string in as HTML, and names are data.
    const tip = document.createElement('span');
    tip.textContent = t('caregiver.tip', { name: c.name ?? `#${c.id}`, n: c.active_orders ?? 0 });
    rec.m.setTooltipContent(tip);
  }

  _icon(c) {
    const html = document.createElement('span');
    html.textContent = '护';
    html.dataset.caregiverId = String(c.id);
    // A flag up and to the right of the position, its tail on the point: a
    // caregiver at an elder's door must not hide the elder's dot (nor its click).
    return L.divIcon({
      className: `cg-marker${c.on_shift ? '' : ' off'}`,
      html,
      iconSize: [26, 26],
      iconAnchor: [-2, 30],
    });
  }
}
