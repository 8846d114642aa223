// 六助 service orders as both pages see them: labels, which target an order
// is racing against now, countdowns, distances. No DOM and no fetching here.
//
// Orders come from the API (GET /api/orders, /api/caregivers/{id}/today) and
// as whole records on /ws/live ({"type": "order"}); times are ISO-8601 UTC and
// shown in Asia/Shanghai (formatClock).

import { codeLabel, formatClock, t } from './i18n.js';
import { parseTime } from './store.js';

// Open states in the order staff and caregivers work through them: the ones
// that need someone to act first.
export const STATE_ORDER = ['requested', 'rejected', 'assigned', 'accepted', 'en_route', 'in_service'];
export const TERMINAL = new Set(['completed', 'cancelled']);
// The board's groups: the urgent service first, then the catalogue's order.
export const KIND_ORDER = ['emergency', 'medical', 'mobility', 'bathing', 'meal', 'cleaning'];
// States in which staff may still cancel (a service under way is completed, not cancelled).
export const CANCELLABLE = new Set(['requested', 'assigned', 'accepted', 'en_route', 'rejected']);
export const DISPATCHABLE = new Set(['requested', 'rejected']);

export const kindText = (kind) => codeLabel('svc', kind);
export const stateText = (state) => codeLabel('ostate', state);
export const actionText = (action) => codeLabel('oaction', action);

export function isOpen(order) {
  return !TERMINAL.has(order.state);
}

// The newer of two versions of one order (pushes and answers can cross).
export function newer(a, b) {
  if (!a) return b;
  if (!b) return a;
  if ((b.version ?? 0) !== (a.version ?? 0)) return (b.version ?? 0) > (a.version ?? 0) ? b : a;
  return (parseTime(b.updated_at) ?? 0) >= (parseTime(a.updated_at) ?? 0) ? b : a;
}

// What the order is racing against now, as the server's deadlines say:
// {kind: 'accept'|'arrive'|'window', at, from?} (ms) or null. A booked order
// is to arrive inside its window (from window_start to arrive_by: early is as
// wrong as late), an on-demand one by arrive_by.
export function currentTarget(order) {
  const d = order.deadlines || {};
  const ms = (v) => parseTime(v);
  if (['requested', 'rejected', 'assigned'].includes(order.state)) {
    const at = ms(d.accept_by);
    return at == null ? null : { kind: 'accept', at };
  }
  if (order.state === 'accepted' || order.state === 'en_route') {
    const at = ms(d.arrive_by);
    if (at == null) return null;
    const from = ms(d.window_start);
    return from != null ? { kind: 'window', at, from } : { kind: 'arrive', at };
  }
  return null;
}

export function formatDuration(ms) {
  const s = Math.max(0, Math.floor(Math.abs(ms) / 1000));
  if (s >= 3600) return t('dur.h', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  if (s >= 60) return t('dur.m', { m: Math.floor(s / 60), s: s % 60 });
  return t('dur.s', { s });
}

// The target line and its countdown: {label, countdown, late} or null.
export function targetText(order, nowMs) {
  const target = currentTarget(order);
  if (!target) return null;
  const clock = (v) => formatClock(v, { nowMs }).slice(0, -3); // minutes are enough here
  const label = target.kind === 'window'
    ? t('target.window', { from: clock(target.from), to: clock(target.at) })
    : t(`target.${target.kind}`, { time: clock(target.at) });
  const left = target.at - nowMs;
  const late = left < 0;
  let countdown;
  if (late) countdown = t('target.late', { d: formatDuration(left) });
  else if (target.kind === 'window' && target.from != null && nowMs < target.from) {
    countdown = t('target.before', { d: formatDuration(target.from - nowMs) });
  } else countdown = t('target.left', { d: formatDuration(left) });
  return { label, countdown, late };
}

// Late now, or late at an earlier step (the server's record).
export function isBreached(order, nowMs) {
  const tt = targetText(order, nowMs);
  return Boolean((tt && tt.late) || (order.breaches && order.breaches.length && isOpen(order)));
}

export function haversineM(lat1, lon1, lat2, lon2) {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.min(1, Math.sqrt(a)));
}

export function distanceText(m) {
  if (m == null || Number.isNaN(m)) return t('dist.unknown');
  if (m < 1000) return t('dist.m', { n: Math.round(m) });
  return t('dist.km', { n: (m / 1000).toFixed(1) });
}

// The sort for lists: states that need action first, then the nearest target.
export function compareOrders(a, b) {
  const sa = STATE_ORDER.indexOf(a.state);
  const sb = STATE_ORDER.indexOf(b.state);
  const ra = sa < 0 ? 99 : sa;
  const rb = sb < 0 ? 99 : sb;
  if (ra !== rb) return ra - rb;
  const ta = currentTarget(a)?.at ?? parseTime(a.due_at) ?? parseTime(a.requested_at) ?? 0;
  const tb = currentTarget(b)?.at ?? parseTime(b.due_at) ?? parseTime(b.requested_at) ?? 0;
  return ta - tb || a.id - b.id;
}

// A short, human reason from an error answer ({detail} may be a string or
// FastAPI's list of field errors).
export function reasonOf(res) {
  const d = res && res.body && res.body.detail;
  if (typeof d === 'string') return d;
  if (Array.isArray(d) && d.length) return d.map((e) => `${(e.loc || []).slice(1).join('.')}: ${e.msg}`).join('; ');
  return res ? `HTTP ${res.status}` : '';
}
