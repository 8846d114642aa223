// The small map on the family page: one marker where the elder was last, and
// around it the circle the family may know them to be in (the 500 m grid cell
// when coarse, the fix's accuracy when precise). Tiles and their coordinate
// system come from /api/v1/config, as on the big screen; without tiles the
// marker still shows on a plain background.

import { displayProjection } from './coords.js';

export class FamilyMap {
  constructor(container, config) {
    this.container = container;
    this.project = displayProjection(config?.tile_crs);
    this.map = L.map(container, { zoomControl: true, attributionControl: false, minZoom: 3, maxZoom: 19 });
    if (config?.tile_url) {
      L.tileLayer(config.tile_url, { maxZoom: 19, maxNativeZoom: 18 }).addTo(this.map);
    } else {
      container.classList.add('no-tiles');
    }
    const c = config?.center || [34.867, 110.447];
    this.map.setView(this.project(c[0], c[1]), 14);
    this.marker = null;
    this.area = null;
  }

  // loc: the API's location ({lat, lon, acc_m, precision}) or null.
  show(loc) {
    if (this.marker) this.marker.remove();
    if (this.area) this.area.remove();
    this.marker = null;
    this.area = null;
    this.container.dataset.precision = loc ? loc.precision : 'none';
    if (!loc) return;
    const at = this.project(loc.lat, loc.lon);
    const precise = loc.precision === 'precise';
    this.area = L.circle(at, {
      radius: Math.max(loc.acc_m || 0, precise ? 10 : 250),
      color: precise ? '#c62828' : '#2e7d32',
      weight: 1,
      fillOpacity: precise ? 0.15 : 0.1,
      interactive: false,
    }).addTo(this.map);
    this.marker = L.marker(at, { keyboard: false, title: loc.precision }).addTo(this.map);
    this.marker.getElement()?.classList.add(`fm-marker-${loc.precision}`);
    this.map.setView(at, precise ? 17 : 15);
  }

  // The container was hidden when the map was made: measure again.
  resize() {
    this.map.invalidateSize();
  }
}
