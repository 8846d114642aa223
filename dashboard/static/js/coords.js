// Coordinate systems for display.
//
// The API stores and sends WGS-84 (what GPS reports). Most domestic tile
// sources (AMap 高德, Tencent) draw their maps in GCJ-02, which is shifted by
// several hundred metres; a WGS-84 dot on a GCJ-02 map lands in the wrong
// building. So when /api/v1/config says tile_crs = "gcj02", everything drawn
// on the map (outline, compounds, streets, dots) goes through wgs84ToGcj02.
// Values handed to the hook and shown as text stay WGS-84.
//
// The formula is the widely published one (Krasovsky 1940 ellipsoid
// parameters); outside mainland China GCJ-02 equals WGS-84.

const A = 6378245.0; // semi-major axis of the Krasovsky ellipsoid, metres
const EE = 0.00669342162296594323; // its first eccentricity squared

// The usual rough bounding box. It includes some neighbouring countries, as
// every implementation of this formula does; good enough for a community map.
export function outOfChina(lat, lon) {
  return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271;
}

function transformLat(x, y) {
  let r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  r += ((20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0) / 3.0;
  r += ((20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin((y / 3.0) * Math.PI)) * 2.0) / 3.0;
  r += ((160.0 * Math.sin((y / 12.0) * Math.PI) + 320 * Math.sin((y * Math.PI) / 30.0)) * 2.0) / 3.0;
  return r;
}

function transformLon(x, y) {
  let r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  r += ((20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0) / 3.0;
  r += ((20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin((x / 3.0) * Math.PI)) * 2.0) / 3.0;
  r += ((150.0 * Math.sin((x / 12.0) * Math.PI) + 300.0 * Math.sin((x / 30.0) * Math.PI)) * 2.0) / 3.0;
  return r;
}

// WGS-84 → GCJ-02, both as [lat, lon] in degrees.
export function wgs84ToGcj02(lat, lon) {
  if (outOfChina(lat, lon)) return [lat, lon];
  let dLat = transformLat(lon - 105.0, lat - 35.0);
  let dLon = transformLon(lon - 105.0, lat - 35.0);
  const radLat = (lat / 180.0) * Math.PI;
  let magic = Math.sin(radLat);
  magic = 1 - EE * magic * magic;
  const sqrtMagic = Math.sqrt(magic);
  dLat = (dLat * 180.0) / (((A * (1 - EE)) / (magic * sqrtMagic)) * Math.PI);
  dLon = (dLon * 180.0) / ((A / sqrtMagic) * Math.cos(radLat) * Math.PI);
  return [lat + dLat, lon + dLon];
}

function identity(lat, lon) {
  return [lat, lon];
}

// The display projection for a tile source: (lat, lon) WGS-84 → [lat, lon] as
// the tiles expect. "wgs84" (and anything unknown, e.g. Tianditu's CGCS2000,
// which is WGS-84 to within centimetres) needs no change.
export function displayProjection(tileCrs) {
  return tileCrs === 'gcj02' ? wgs84ToGcj02 : identity;
}
