// Small inline SVG sparklines for today's vital signs: no chart library, no
// network. One point per hour (the hour's average), a band from the hour's
// minimum to maximum, the x axis spanning the whole Asia/Shanghai day so that
// "now" sits where the clock says.
//
// Returned as markup for innerHTML: the HTML parser puts <svg> in the SVG
// namespace by itself. Only numbers go into it, formatted here.

const W = 300;
const H = 56;
const PAD = 4;
const DAY_MS = 86400000;

const n = (v) => Number(v).toFixed(1);

// points: [{t (ms), v, lo, hi}] with v possibly null; dayStart (ms).
// Returns the <svg> markup, or '' when there is nothing to draw.
export function sparkline(points, dayStart, { className = 'spark' } = {}) {
  const pts = points.filter((p) => p.v != null && Number.isFinite(p.v));
  if (!pts.length) return '';
  let lo = Math.min(...pts.map((p) => p.lo ?? p.v));
  let hi = Math.max(...pts.map((p) => p.hi ?? p.v));
  if (hi - lo < 1e-9) {
    lo -= 1;
    hi += 1;
  }
  const x = (t) => PAD + ((t - dayStart) / DAY_MS) * (W - 2 * PAD);
  const y = (v) => H - PAD - ((v - lo) / (hi - lo)) * (H - 2 * PAD);
  const band = pts
    .map((p) => `${n(x(p.t))},${n(y(p.hi ?? p.v))}`)
    .concat(pts.slice().reverse().map((p) => `${n(x(p.t))},${n(y(p.lo ?? p.v))}`))
    .join(' ');
  const line = pts.map((p) => `${n(x(p.t))},${n(y(p.v))}`).join(' ');
  const last = pts[pts.length - 1];
  return (
    `<svg viewBox="0 0 ${W} ${H}" class="${className}" role="img" aria-hidden="true">` +
    `<polygon class="band" points="${band}"></polygon>` +
    `<polyline class="line" points="${line}"></polyline>` +
    `<circle class="dot" cx="${n(x(last.t))}" cy="${n(y(last.v))}" r="3"></circle></svg>`
  );
}
