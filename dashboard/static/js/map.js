// The Leaflet map: optional tiles, the community drawn from GeoJSON, and one
// dot per elder.
//
// Built to stay smooth with thousands of elders updating every second:
// - everything is drawn on canvas (preferCanvas plus explicit renderers); SVG
//   or DOM markers crawl above about a thousand devices;
// - the community and the dots live on two canvases in two panes, so moving
//   dots never repaints the outline, and dots always sit above it;
// - each dot is created once and then changed in place (setLatLng, setStyle,
//   setRadius), and only when its position or colour really changed. Leaflet's
//   canvas renderer already coalesces those calls into one repaint per frame.
//
// Leaflet is the vendored UMD build loaded by index.html as the global `L`.

import { COLORS } from './store.js';
import { t } from './i18n.js';

const L = window.L;

const RADIUS = { red: 9, warn: 8, notice: 7, offline: 6, ok: 6 };
// A white outline separates neighbouring dots, but stroking doubles the cost
// of painting the canvas (measured: 5,000 dots without a GPU, 150 → 75 ms of
// paint per second). Beyond this many dots they are drawn without it.
const OUTLINE_MAX_DOTS = 1500;

const COMMUNITY_STYLE = {
  outline: { color: '#1e5aa8', weight: 3, fillColor: '#dce8f5', fillOpacity: 0.55, dashArray: null },
  compound: { color: '#6b8fb8', weight: 1.5, fillColor: '#ffffff', fillOpacity: 0.7 },
  street: { color: '#b7c3cf', weight: 7, opacity: 0.9, lineCap: 'round' },
  other: { color: '#8a9aa9', weight: 1, fillOpacity: 0.2 },
};
// Draw order inside the community canvas: area under buildings under streets.
const KIND_ORDER = { outline: 0, compound: 1, street: 2 };

export class LiveMap {
  // project: (lat, lon) WGS-84 → [lat, lon] in the tiles' system (coords.js).
  constructor(container, config, project, { onSelect }) {
    this.project = project;
    this.onSelect = onSelect;
    this.config = config;
    this.dots = new Map(); // elder_id → { m: CircleMarker, cls, lat, lon, name }
    this.selectedId = null;
    this.outlined = true;

    const map = L.map(container, {
      preferCanvas: true,
      minZoom: 3,
      maxZoom: 19,
      zoomSnap: 0.5,
      // Big screens are often touch screens; keep Leaflet's defaults there.
    });
    this.map = map;

    map.createPane('community').style.zIndex = 350; // above tiles (200)
    map.createPane('elders').style.zIndex = 450; // above overlays (400)
    map.createPane('alarmLabels').style.zIndex = 620; // above markers (600)
    this.communityRenderer = L.canvas({ pane: 'community' });
    // A little padding so that a pan shows dots already drawn at the edges.
    this.dotRenderer = L.canvas({ pane: 'elders', padding: 0.3, tolerance: 3 });

    if (config.tile_url) {
      L.tileLayer(config.tile_url, { maxZoom: 19, maxNativeZoom: 18 }).addTo(map);
    } else {
      container.classList.add('no-tiles');
      this._addNote('map.no_tiles');
    }

    this.group = L.featureGroup().addTo(map);
    // One listener for all dots, not 5,000 closures.
    this.group.on('click', (e) => this.onSelect(e.propagatedFrom.options.elderId));
    this.hoverTip = L.tooltip({ direction: 'top', offset: [0, -8], className: 'dot-tip' });
    this.group.on('mouseover', (e) => {
      const rec = this.dots.get(e.propagatedFrom.options.elderId);
      if (!rec) return;
      // An element, not a string: Leaflet puts a string in as HTML, and names are data.
      this.hoverTip.setLatLng(rec.m.getLatLng()).setContent(textElement(rec.name || String(rec.id)));
      map.openTooltip(this.hoverTip);
    });
    this.group.on('mouseout', () => map.closeTooltip(this.hoverTip));

    // The selected elder: a ring around the dot and the fix's accuracy circle.
    this.ring = L.circleMarker([0, 0], {
      renderer: this.dotRenderer, radius: 14, color: '#0d47a1', weight: 3, fill: false, interactive: false,
    });
    this.accCircle = L.circle([0, 0], {
      renderer: this.communityRenderer, radius: 1, color: '#1565c0', weight: 1, fillOpacity: 0.12, interactive: false,
    });

    this._addHomeControl();
    this.home();
  }

  // The view from the config; falls back to the community outline.
  home() {
    const c = this.config.center;
    if (Array.isArray(c) && c.length === 2 && c[0] != null) {
      this.map.setView(this.project(c[0], c[1]), this.config.zoom || 16);
    } else if (this.outlineBounds) {
      this.map.fitBounds(this.outlineBounds, { padding: [20, 20] });
    } else {
      this.map.setView([0, 0], 3);
    }
  }

  setCommunity(fc) {
    if (this.communityLayer) this.communityLayer.remove();
    const features = [...((fc && fc.features) || [])].sort(
      (a, b) => (KIND_ORDER[kindOf(a)] ?? 9) - (KIND_ORDER[kindOf(b)] ?? 9),
    );
    this.communityLayer = L.geoJSON(
      { type: 'FeatureCollection', features },
      {
        renderer: this.communityRenderer,
        interactive: false,
        // GeoJSON is [lon, lat] WGS-84; convert exactly as the dots are.
        coordsToLatLng: (c) => L.latLng(this.project(c[1], c[0])),
        style: (f) => COMMUNITY_STYLE[kindOf(f)] || COMMUNITY_STYLE.other,
        // The community has no point features; never let one become a DOM marker.
        pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 3 }),
        onEachFeature: (f, layer) => {
          const name = f.properties && f.properties.name;
          const kind = kindOf(f);
          if (name && (kind === 'compound' || kind === 'street')) {
            layer.bindTooltip(textElement(String(name)), {
              permanent: true, direction: 'center', className: `${kind}-label`, interactive: false,
            });
          }
          if (kind === 'outline') this.outlineBounds = layer.getBounds();
        },
      },
    ).addTo(this.map);
    if (!this.config.center && this.outlineBounds) this.home();
  }

  // Bring one elder's dot in line with its record and colour class (the
  // store's classOf: latest state and alerts together). Cheap when nothing changed.
  apply(e, cls) {
    const id = e.elder_id;
    let rec = this.dots.get(id);
    if (e.lat == null || e.lon == null) {
      if (rec) this.remove(id);
      return;
    }
    if (!rec) {
      const m = L.circleMarker(this.project(e.lat, e.lon), {
        renderer: this.dotRenderer,
        radius: RADIUS[cls],
        stroke: this.outlined,
        color: '#ffffff',
        weight: 1.5,
        fillColor: COLORS[cls],
        fillOpacity: 0.95,
        elderId: id,
      });
      rec = { id, m, cls, lat: e.lat, lon: e.lon, name: e.name };
      this.dots.set(id, rec);
      this.group.addLayer(m);
      this.addedInBatch = true;
      if (cls === 'red') this._markRed(rec);
    } else {
      if (rec.lat !== e.lat || rec.lon !== e.lon) {
        rec.lat = e.lat;
        rec.lon = e.lon;
        rec.m.setLatLng(this.project(e.lat, e.lon));
        if (rec.label) rec.label.setLatLng(rec.m.getLatLng());
      }
      if (rec.name !== e.name) {
        rec.name = e.name;
        if (rec.label) rec.label.getElement().firstChild.textContent = String(e.name ?? id);
      }
      if (rec.cls !== cls) {
        const wasRed = rec.cls === 'red';
        rec.cls = cls;
        rec.m.setStyle({ fillColor: COLORS[cls] });
        rec.m.setRadius(RADIUS[cls]);
        if (cls === 'red') this._markRed(rec);
        else if (wasRed) this._unmarkRed(rec);
      }
    }
    if (id === this.selectedId) this._placeSelection(e);
  }

  // After a batch: dots added in it were drawn over the red ones, so raise
  // the red ones again (there are few).
  endBatch() {
    if (!this.addedInBatch) return;
    this.addedInBatch = false;
    for (const rec of this.dots.values()) if (rec.cls === 'red') rec.m.bringToFront();
  }

  // Called with the number of elders after each snapshot; switches outlines
  // for all dots at once when the count crosses the threshold (rare).
  fitDensity(count) {
    const outlined = count <= OUTLINE_MAX_DOTS;
    if (outlined === this.outlined) return;
    this.outlined = outlined;
    for (const rec of this.dots.values()) rec.m.setStyle({ stroke: outlined });
  }

  // Red dots go on top of the others (canvas draws in insertion order) and
  // carry their name, so staff can find them without hovering. The name is a
  // DOM marker, not a permanent tooltip: moving a tooltip reads its size back
  // from the DOM (a forced layout per label per update), moving a marker only
  // writes a transform.
  _markRed(rec) {
    rec.m.bringToFront();
    const html = document.createElement('span');
    html.textContent = String(rec.name ?? rec.id); // names are data, never HTML
    rec.label = L.marker(rec.m.getLatLng(), {
      pane: 'alarmLabels',
      keyboard: false,
      icon: L.divIcon({ className: 'alarm-label', html, iconSize: null, iconAnchor: [-13, 12] }),
    });
    rec.label.on('click', () => this.onSelect(rec.id));
    rec.label.addTo(this.map);
  }

  _unmarkRed(rec) {
    if (!rec.label) return;
    rec.label.remove();
    rec.label = null;
  }

  remove(id) {
    const rec = this.dots.get(id);
    if (!rec) return;
    this.group.removeLayer(rec.m);
    this._unmarkRed(rec);
    this.dots.delete(id);
    // The elder stays selected (the card still applies); only the ring goes.
    if (id === this.selectedId) this._placeSelection({ elder_id: id });
  }

  select(id, e = null) {
    this.selectedId = id;
    if (id == null || !e || !this.dots.has(id)) {
      this.ring.remove();
      this.accCircle.remove();
      return;
    }
    this._placeSelection(e);
  }

  _placeSelection(e) {
    const rec = this.dots.get(e.elder_id);
    if (!rec) {
      this.ring.remove();
      this.accCircle.remove();
      return;
    }
    const ll = rec.m.getLatLng();
    this.ring.setLatLng(ll);
    if (!this.map.hasLayer(this.ring)) this.ring.addTo(this.map);
    if (e.acc != null && e.acc > 0) {
      this.accCircle.setLatLng(ll).setRadius(e.acc);
      if (!this.map.hasLayer(this.accCircle)) this.accCircle.addTo(this.map);
    } else {
      this.accCircle.remove();
    }
  }

  // Pan to a dot picked from the list, if it is not comfortably in view.
  // `coverBottom`: pixels at the bottom of the map hidden by the alert
  // details drawer; the dot is brought into the part still visible.
  reveal(id, { coverBottom = 0 } = {}) {
    const rec = this.dots.get(id);
    if (!rec) return;
    const ll = rec.m.getLatLng();
    if (coverBottom > 0) {
      this.map.panInside(ll, { paddingTopLeft: [80, 80], paddingBottomRight: [80, coverBottom + 60] });
    } else if (!this.map.getBounds().pad(-0.15).contains(ll)) {
      this.map.panTo(ll);
    }
  }

  // For the hook: what is drawn, with positions as the API gave them (WGS-84).
  markerList() {
    const out = [];
    for (const rec of this.dots.values()) {
      out.push({
        elder_id: rec.id, lat: rec.lat, lon: rec.lon, color: COLORS[rec.cls], cls: rec.cls, red: rec.cls === 'red',
      });
    }
    return out;
  }

  // For the hook: where a dot is on the page (CSS pixels), e.g. to click it.
  screenPoint(id) {
    const rec = this.dots.get(id);
    if (!rec) return null;
    const p = this.map.latLngToContainerPoint(rec.m.getLatLng());
    const box = this.map.getContainer().getBoundingClientRect();
    const inside = p.x >= 0 && p.y >= 0 && p.x <= box.width && p.y <= box.height;
    return { x: box.left + p.x, y: box.top + p.y, inside };
  }

  _addNote(key) {
    const Note = L.Control.extend({
      options: { position: 'bottomleft' },
      onAdd: () => {
        const div = L.DomUtil.create('div', 'map-note');
        div.dataset.i18n = key;
        div.textContent = t(key);
        return div;
      },
    });
    new Note().addTo(this.map);
  }

  _addHomeControl() {
    const Home = L.Control.extend({
      options: { position: 'topleft' },
      onAdd: () => {
        const bar = L.DomUtil.create('div', 'leaflet-bar');
        const a = L.DomUtil.create('a', 'home-button', bar);
        a.href = '#';
        a.setAttribute('role', 'button');
        a.dataset.i18nTitle = 'map.home';
        a.title = t('map.home');
        a.textContent = '⌂';
        L.DomEvent.on(a, 'click', (ev) => {
          L.DomEvent.preventDefault(ev);
          L.DomEvent.stopPropagation(ev);
          this.home();
        });
        return bar;
      },
    });
    new Home().addTo(this.map);
  }
}

function kindOf(f) {
  return (f && f.properties && f.properties.kind) || 'other';
}

// Text for a Leaflet tooltip, never parsed as HTML.
function textElement(text) {
  const span = document.createElement('span');
  span.textContent = text;
  return span;
}
