"""Spec tests of the context rules: geofence, inactivity, device offline, not worn, low battery.

Every stream is synthetic with explicit timestamps on the community's local clock
(UTC+8); position noise is a seeded circular Gaussian whose 68 % radius is the
stated ``acc``, as the simulator and real chipsets define it.  No wall clock, no I/O.
"""

from __future__ import annotations

import dataclasses
import doctest
import itertools
import math
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from types import ModuleType

import pytest

import alerts.battery
import alerts.device_offline
import alerts.geofence
import alerts.inactivity
import alerts.wear
from alerts.battery import BatterySettings, LowBatteryRule
from alerts.core import Action, Finding, Rule, Severity
from alerts.device_offline import DeviceOfflineRule, OfflineSettings
from alerts.geofence import GeofenceRule, GeofenceSettings, Zone
from alerts.geometry import offset
from alerts.inactivity import InactivityRule, InactivitySettings
from alerts.wear import NotWornRule, WearSettings
from protocol.messages import Event, Position, Reading, Status, Vitals

LOCAL = timezone(timedelta(hours=8))
HOME_LAT, HOME_LON = 34.867, 110.447
ACC_TO_SIGMA = 1.0 / 1.5096


def local(day: int, hour: float) -> datetime:
    """``hour`` o'clock local on 2026-01-05 + ``day``, as an aware UTC datetime."""
    base = datetime(2026, 1, 5, tzinfo=LOCAL) + timedelta(days=day, hours=hour)
    return base.astimezone(UTC)


def fix(
    t: datetime,
    east: float,
    north: float = 0.0,
    *,
    acc: float = 8.0,
    src: str = "gps",
    rng: random.Random | None = None,
    seq: int = 0,
) -> Position:
    """A fix ``east``/``north`` metres from home, scattered by ``acc`` when ``rng`` is given."""
    if rng is not None:
        east += rng.gauss(0, acc * ACC_TO_SIGMA)
        north += rng.gauss(0, acc * ACC_TO_SIGMA)
    lat, lon = offset(HOME_LAT, HOME_LON, east, north)
    return Position("w1", seq, t, lat, lon, acc, src)  # type: ignore[arg-type]


def feed(rule: Rule, readings: Iterable[Reading | datetime]) -> list[Finding]:
    """Readings go to ``update``; a bare datetime is an ``advance`` tick."""
    out: list[Finding] = []
    for r in readings:
        out += rule.advance(r) if isinstance(r, datetime) else rule.update(r)
    return out


def episodes(found: list[Finding]) -> list[str]:
    return [f.detail["episode"] for f in found]


def every(start: datetime, minutes: float, step_s: float) -> list[datetime]:
    n = int(minutes * 60 / step_s)
    return [start + timedelta(seconds=i * step_s) for i in range(n)]


# === geofence ======================================================================

HOME = Zone.circle("家", HOME_LAT, HOME_LON, 150.0)


def community() -> Zone:
    """A 1 km x 800 m outline around home, all day."""
    ring = []
    for e, n in [(-500, -400), (500, -400), (500, 400), (-500, 400)]:
        lat, lon = offset(HOME_LAT, HOME_LON, e, n)
        ring.append([lon, lat])
    return Zone.polygon("杏北社区", ring)


def walk(
    start: datetime,
    path: list[tuple[float, float]],
    *,
    speed: float = 1.2,
    every_s: float = 30.0,
    acc: float = 6.0,
    rng: random.Random,
) -> list[Position]:
    """GPS fixes every ``every_s`` along straight legs between ``(east, north)`` points."""
    out: list[Position] = []
    t = start
    for (e0, n0), (e1, n1) in itertools.pairwise(path):
        legs = max(1, int(math.hypot(e1 - e0, n1 - n0) / (speed * every_s)))
        for k in range(legs):
            f = k / legs
            out.append(fix(t, e0 + f * (e1 - e0), n0 + f * (n1 - n0), acc=acc, rng=rng))
            t += timedelta(seconds=every_s)
    return out


def stay(
    start: datetime,
    minutes: float,
    east: float,
    north: float = 0.0,
    *,
    every_s: float = 30.0,
    acc: float = 6.0,
    src: str = "gps",
    rng: random.Random,
) -> list[Position]:
    return [fix(t, east, north, acc=acc, src=src, rng=rng) for t in every(start, minutes, every_s)]


def out_and_back(start: datetime, far: float, minutes_out: float, seed: int = 1) -> list[Position]:
    rng = random.Random(seed)
    leave = walk(start, [(0, 0), (far, 0)], rng=rng)
    t = leave[-1].ts + timedelta(seconds=30)
    there = stay(t, minutes_out, far, rng=rng)
    t = there[-1].ts + timedelta(seconds=30)
    back = walk(t, [(far, 0), (0, 0)], rng=rng)
    t = back[-1].ts + timedelta(seconds=30)
    return leave + there + back + stay(t, 10, 0, rng=rng)


def test_walk_out_of_the_zone_raises_once_and_return_clears() -> None:
    rule = GeofenceRule(GeofenceSettings(zones=(HOME,)))
    found = feed(rule, out_and_back(local(0, 14), far=500, minutes_out=20))
    assert episodes(found) == ["open", "clear"]
    raised, cleared = found
    assert raised.kind == "geofence_exit" and raised.severity is Severity.MEDIUM
    assert raised.action is Action.RAISE and cleared.action is Action.CLEAR
    # Confirmed on the second fix beyond 150 + 1.6 * 6 + 20 m: early, not at the far end.
    assert raised.value is not None and 35 < raised.value < 120
    assert raised.message == f"离开安全区域「家」{raised.value:.0f} 米"
    assert "（夜间）" not in raised.message
    assert cleared.message == "已返回安全区域「家」" and cleared.value == 0.0


def test_a_long_absence_reminds_every_30_minutes_not_every_fix() -> None:
    rule = GeofenceRule(GeofenceSettings(zones=(HOME,)))
    found = feed(rule, out_and_back(local(0, 14), far=500, minutes_out=70))
    assert episodes(found) == ["open", "reraise", "reraise", "clear"]
    gaps = [(b.ts - a.ts).total_seconds() for a, b in itertools.pairwise(found[:3])]
    assert all(g >= 1800 for g in gaps)
    assert found[1].value == pytest.approx(350, abs=15)  # the distance now, not at the exit


@pytest.mark.parametrize("seed", range(5))
def test_gps_drift_of_a_stationary_elder_at_the_boundary_never_raises(seed: int) -> None:
    """An elder standing on the zone's edge for a day, a fix a minute, acc 30 m."""
    rng = random.Random(seed)
    fixes = stay(local(0, 0), 24 * 60, 150.0, every_s=60, acc=30.0, src="wifi", rng=rng)
    assert feed(GeofenceRule(GeofenceSettings(zones=(HOME,))), fixes) == []
    # The same fixes judged on the point alone (no accuracy, no margin, no
    # confirmation, no hysteresis) flap all day: the test can fail.
    naive = GeofenceSettings(
        zones=(HOME,),
        acc_factor=0,
        exit_margin_m=0,
        reenter_margin_m=0,
        confirm_fixes=1,
        return_minutes=0,
    )
    assert len(feed(GeofenceRule(naive), fixes)) > 100


def test_hanging_around_the_fence_after_an_exit_does_not_flap() -> None:
    """Back at the fence for two hours, wifi jitter either side: one episode, no churn."""
    rng = random.Random(3)
    fixes = walk(local(0, 14), [(0, 0), (300, 0)], rng=rng)
    t = fixes[-1].ts + timedelta(seconds=30)
    fixes += stay(t, 120, 150.0, acc=15.0, src="wifi", rng=rng)
    found = feed(GeofenceRule(GeofenceSettings(zones=(HOME,), reraise_minutes=None)), fixes)
    assert episodes(found) in (["open"], ["open", "clear"])
    naive = GeofenceSettings(
        zones=(HOME,),
        acc_factor=0,
        exit_margin_m=0,
        reenter_margin_m=0,
        confirm_fixes=1,
        return_minutes=0,
    )
    assert episodes(feed(GeofenceRule(naive), fixes)).count("open") > 10
    # Hysteresis: 10 m inside is not back yet, 25 m inside is -- once she stays there.
    rule = GeofenceRule(GeofenceSettings(zones=(HOME,)))
    out = walk(local(1, 14), [(0, 0), (300, 0)], rng=rng)
    out += stay(out[-1].ts + timedelta(seconds=30), 5, 300, rng=rng)
    assert episodes(feed(rule, out)) == ["open"]
    t = out[-1].ts
    assert rule.update(fix(t + timedelta(minutes=3), 140.0, acc=5.0)) == []
    assert rule.update(fix(t + timedelta(minutes=4), 125.0, acc=5.0)) == []
    assert rule.update(fix(t + timedelta(minutes=10), 140.0, acc=5.0)) == []  # the band
    assert rule.update(fix(t + timedelta(minutes=11), 125.0, acc=5.0)) == []  # again
    assert rule.update(fix(t + timedelta(minutes=20), 124.0, acc=5.0)) == []
    assert episodes(rule.update(fix(t + timedelta(minutes=21), 125.0, acc=5.0))) == ["clear"]


def test_a_single_2_km_jump_is_filtered() -> None:
    rng = random.Random(5)
    t0 = local(0, 15)
    fixes = stay(t0, 10, 0, rng=rng)
    fixes.append(fix(t0 + timedelta(minutes=10), 2000.0, acc=10.0))  # multipath: 2 km off
    fixes += stay(t0 + timedelta(minutes=10, seconds=30), 10, 0, rng=rng)
    rule = GeofenceRule(GeofenceSettings(zones=(HOME,), confirm_s=20.0))
    assert feed(rule, fixes) == []
    assert rule.snapshot()["jumps"] == 1


def test_a_jump_home_while_out_neither_clears_nor_reopens() -> None:
    """A stray fix at home (a cached "last known position") while the elder is 400 m out."""
    rng = random.Random(6)
    fixes = walk(local(0, 15), [(0, 0), (400, 0)], rng=rng)
    t = fixes[-1].ts + timedelta(seconds=30)
    fixes += stay(t, 5, 400, rng=rng)
    fixes.append(fix(fixes[-1].ts + timedelta(seconds=30), 0.0, acc=5.0))
    fixes += stay(fixes[-1].ts + timedelta(seconds=30), 5, 400, rng=rng)
    found = feed(GeofenceRule(GeofenceSettings(zones=(HOME,))), fixes)
    assert episodes(found) == ["open"]
    # Without the speed filter (nor the wait for a return to last) the stray fix clears
    # the alarm and the next fixes reopen it.
    unfiltered = GeofenceRule(GeofenceSettings(zones=(HOME,), max_speed_mps=1e9, return_minutes=0))
    assert episodes(feed(unfiltered, fixes)) == ["open", "clear", "open"]


def test_a_real_fast_departure_is_not_filtered_away() -> None:
    """Driven away at 12 m/s: every fix is "too fast", and each next one confirms it."""
    rng = random.Random(7)
    fixes = stay(local(0, 15), 5, 0, rng=rng)
    t = fixes[-1].ts + timedelta(seconds=30)
    fixes += walk(t, [(0, 0), (3000, 0)], speed=12.0, rng=rng)
    found = feed(GeofenceRule(GeofenceSettings(zones=(HOME,))), fixes)
    assert episodes(found) == ["open"]
    assert found[0].ts < t + timedelta(minutes=2)


def test_an_lbs_fix_with_800_m_accuracy_does_not_trigger() -> None:
    t0 = local(0, 16)
    far = [fix(t0 + timedelta(minutes=i), 1500.0, acc=800.0, src="lbs") for i in range(10)]
    rule = GeofenceRule(GeofenceSettings(zones=(HOME,)))
    assert feed(rule, far) == []
    # Nor does any source whose accuracy circle still reaches into the zone.
    coarse = [fix(t0 + timedelta(minutes=i), 450.0, acc=190.0, src="wifi") for i in range(10)]
    assert feed(GeofenceRule(GeofenceSettings(zones=(HOME,))), coarse) == []
    # The same wifi fixes with a tight accuracy are an exit: the distance alone is enough.
    tight = [fix(t0 + timedelta(minutes=i), 450.0, acc=20.0, src="wifi") for i in range(10)]
    assert episodes(feed(GeofenceRule(GeofenceSettings(zones=(HOME,))), tight)) == ["open"]


def test_night_home_zone_and_all_day_community_outline() -> None:
    """A walk to a neighbour 400 m away inside the community: fine by day, HIGH at night."""
    zones = (Zone.circle("家", HOME_LAT, HOME_LON, 150.0, window=(21.0, 6.0)), community())
    day = feed(GeofenceRule(GeofenceSettings(zones=zones)), out_and_back(local(0, 14), 400, 20))
    assert day == []
    found = feed(GeofenceRule(GeofenceSettings(zones=zones)), out_and_back(local(0, 22), 400, 20))
    assert episodes(found) == ["open", "clear"]
    assert found[0].severity is Severity.HIGH
    assert found[0].message.startswith("离开安全区域「家」") and found[0].message.endswith(
        "（夜间）"
    )
    assert found[0].detail["night"] is True


def test_leaving_the_community_by_day_is_medium_and_night_falling_escalates() -> None:
    rule = GeofenceRule(GeofenceSettings(zones=(community(),), reraise_minutes=None))
    rng = random.Random(8)
    fixes = walk(local(0, 21.5), [(0, 0), (700, 0)], rng=rng)  # 21:30 local
    t = fixes[-1].ts + timedelta(seconds=30)
    fixes += stay(t, 45, 700, rng=rng)  # still outside at 22:00+
    found = feed(rule, fixes)
    assert episodes(found) == ["open", "escalate"]
    assert [f.severity for f in found] == [Severity.MEDIUM, Severity.HIGH]
    assert found[0].detail["zone"] == "杏北社区"
    assert found[1].ts >= local(0, 22)


def test_a_night_exit_stays_open_after_the_window_ends_until_the_elder_is_back() -> None:
    zones = (Zone.circle("家", HOME_LAT, HOME_LON, 150.0, window=(22.0, 5.0)),)
    rng = random.Random(9)
    fixes = walk(local(1, 4.5), [(0, 0), (400, 0)], rng=rng)  # 04:30 local
    t = fixes[-1].ts + timedelta(seconds=30)
    fixes += stay(t, 60, 400, rng=rng)  # until ~05:40: the home zone is no longer active
    fixes += walk(fixes[-1].ts + timedelta(seconds=30), [(400, 0), (0, 0)], rng=rng)
    fixes += stay(fixes[-1].ts + timedelta(seconds=30), 15, 0, rng=rng)
    found = feed(GeofenceRule(GeofenceSettings(zones=zones)), fixes)
    assert episodes(found) == ["open", "clear"]
    assert found[0].severity is Severity.HIGH
    assert found[1].ts > local(1, 5.5)


def test_a_wanderer_passing_her_door_is_not_back_one_episode_across_zones() -> None:
    """The night wander seen in the simulated community: out of the home zone at 03:03,
    the route back past her door at 03:13 (a minute within the home radius), then out
    of the community.  One alert, updated when she leaves the community; no CLEAR
    until she is home and stays there."""
    zones = (Zone.circle("家", HOME_LAT, HOME_LON, 150.0, window=(22.0, 5.0)), community())
    rng = random.Random(12)
    fixes = walk(local(1, 3), [(0, 0), (0, 300), (0, 0)], speed=1.0, rng=rng)  # out, back
    fixes += walk(fixes[-1].ts + timedelta(seconds=30), [(0, 0), (900, 0)], speed=1.0, rng=rng)
    fixes += stay(fixes[-1].ts + timedelta(seconds=30), 5, 900, rng=rng)
    back = walk(fixes[-1].ts + timedelta(seconds=30), [(900, 0), (0, 0)], speed=1.0, rng=rng)
    home = stay(back[-1].ts + timedelta(seconds=30), 15, 0, rng=rng)
    found = feed(GeofenceRule(GeofenceSettings(zones=zones)), fixes + back + home)
    assert episodes(found) == ["open", "reraise", "clear"]
    opened, left, cleared = found
    assert opened.detail["zone"] == "家" and opened.severity is Severity.HIGH
    assert left.detail["zone"] == "杏北社区" and left.message.startswith("离开安全区域「杏北社区」")
    assert left.detail["zones"] == ["家", "杏北社区"]
    assert cleared.message == "已返回安全区域「家」「杏北社区」"
    assert cleared.ts >= back[-1].ts + timedelta(minutes=8)
    # Judged on the first fix inside, as before, she was "back" at her door.
    eager = GeofenceRule(GeofenceSettings(zones=zones, return_minutes=0))
    assert episodes(feed(eager, fixes))[:2] == ["open", "clear"]


def test_confirm_s_confirms_one_outside_fix_left_standing() -> None:
    t0 = local(0, 15)
    rule = GeofenceRule(GeofenceSettings(zones=(HOME,), confirm_s=60.0))
    assert rule.update(fix(t0, 0.0)) == []
    assert rule.update(fix(t0 + timedelta(seconds=90), 250.0)) == []  # 2.6 m/s: plausible
    assert rule.advance(t0 + timedelta(seconds=149)) == []
    found = rule.advance(t0 + timedelta(seconds=300))
    assert episodes(found) == ["open"]
    assert found[0].ts == t0 + timedelta(seconds=150)  # when it fell due, not when asked


def test_zone_from_dict_and_validation() -> None:
    z = Zone.from_dict(
        {"name": "社区", "polygon": [[110.44, 34.86], [110.45, 34.86], [110.45, 34.87]]}
    )
    assert z.ring is not None and len(z.ring) == 3 and z.window is None
    assert z.signed_distance_m(34.80, 110.445) > 0
    with pytest.raises(ValueError):
        Zone("坏", lat=34.9, lon=110.4)  # a circle without a radius
    with pytest.raises(ValueError):
        Zone("坏", lat=34.9, lon=110.4, radius_m=100, ring=((110.4, 34.9),) * 3)


def test_geofence_ignores_other_readings_and_no_zones_is_silent() -> None:
    rule = GeofenceRule(GeofenceSettings(zones=(HOME,)))
    t = local(0, 12)
    assert rule.update(Vitals("w1", 1, t, hr=70)) == []
    assert rule.update(Event("w1", 2, t, "sos")) == []
    assert rule.update(Status("w1", t, False)) == []
    far = [fix(t + timedelta(minutes=i), 900.0) for i in range(5)]
    assert feed(GeofenceRule(), far) == []


# === inactivity ====================================================================


def vitals_every(
    start: datetime, minutes: float, *, every_s: float = 300, steps: int = 1200, **kw: object
) -> list[Vitals]:
    return [
        Vitals("w1", i, t, hr=70, steps=steps, **kw)  # type: ignore[arg-type]
        for i, t in enumerate(every(start, minutes, every_s))
    ]


def test_inactivity_fires_after_four_daytime_hours_not_before() -> None:
    rule = InactivityRule()
    stream = [Vitals("w1", 0, local(0, 8.5), steps=1000)]
    stream += [Vitals("w1", 1, local(0, 9), steps=1500)]  # walked: still since 09:00
    stream += vitals_every(local(0, 9), 239, steps=1500)
    assert feed(rule, stream) == []
    assert rule.advance(local(0, 12.5)) == []  # 3.5 h in the armchair: an ordinary day
    assert rule.advance(local(0, 12.99)) == []
    found = rule.advance(local(0, 13.5))
    assert episodes(found) == ["open"]
    f = found[0]
    assert f.ts == local(0, 13) and f.severity is Severity.MEDIUM and f.kind == "inactivity"
    assert f.message == "已 4.0 小时无活动（无步数、位置未变）"
    assert f.detail["threshold_minutes"] == 240.0
    moved = rule.update(Vitals("w1", 99, local(0, 13.6), steps=1530))
    assert episodes(moved) == ["clear"]


def test_inactivity_threshold_is_set_per_elder() -> None:
    stream = vitals_every(local(0, 9), 200, steps=1500)
    assert feed(InactivityRule(), stream) == []
    found = feed(InactivityRule(InactivitySettings(threshold_minutes=180)), stream)
    assert episodes(found) == ["open"] and found[0].ts == local(0, 12)


def test_the_finding_time_does_not_depend_on_the_advance_tick() -> None:
    base: list[Reading | datetime] = [*vitals_every(local(0, 8), 6 * 60, steps=400)]
    ticked = sorted([*base, *every(local(0, 8), 6 * 60, 7)], key=_ts)
    settings = InactivitySettings(reraise_minutes=None)
    a = feed(InactivityRule(settings), base)
    b = feed(InactivityRule(settings), ticked)
    assert a == b and len(a) == 1 and a[0].ts == local(0, 12)


def _ts(r: Reading | datetime) -> datetime:
    return r if isinstance(r, datetime) else r.ts


def test_sleeping_in_counts_from_8_and_evening_stillness_waits_for_morning() -> None:
    # Last steps at 17:30: 4 h would be 21:30, after the 20:00 end of the day window.
    stream = vitals_every(local(0, 17.5), 18 * 60, steps=3000)  # until 11:30 next day
    rule = InactivityRule()
    assert feed(rule, stream) == []
    found = feed(rule, vitals_every(local(1, 11.5), 60, steps=3000))
    assert episodes(found) == ["open"] and found[0].ts == local(1, 12)


def test_inactivity_across_the_midnight_step_reset() -> None:
    """A round-the-clock window (settable) makes midnight count: the reset is not movement."""
    settings = InactivitySettings(daytime=None, threshold_minutes=120, reraise_minutes=None)
    stream: list[Reading] = [Vitals("w1", 0, local(0, 22.5), steps=5200)]
    stream += vitals_every(local(0, 22.5), 85, steps=5230)  # the last 30 steps at 22:30
    stream += vitals_every(local(1, 0), 60, steps=0)  # the counter is reset at midnight
    found = feed(InactivityRule(settings), stream)
    assert episodes(found) == ["open"] and found[0].ts == local(1, 0.5)
    # Steps taken after the reset are movement even though the count is below yesterday's.
    rule = InactivityRule(settings)
    feed(rule, stream)
    assert episodes(rule.update(Vitals("w1", 9, local(1, 1.1), steps=12))) == ["clear"]


def test_a_counter_reset_that_lands_on_a_small_count_is_those_steps() -> None:
    settings = InactivitySettings(daytime=None, threshold_minutes=120, reraise_minutes=None)
    # Reset to 3 just after midnight: fewer than ``min_steps``, so still since 22:00.
    stream = vitals_every(local(0, 22), 120, steps=5000)
    stream += vitals_every(local(1, 0) + timedelta(seconds=30), 60, steps=3)
    found = feed(InactivityRule(settings), stream)
    assert episodes(found) == ["open"] and found[0].ts == local(1, 0)
    # A reboot at 23:35 that lands on 40: those are 40 steps, so still since 23:35 only.
    stream = vitals_every(local(0, 22), 95, steps=5000)
    stream += vitals_every(local(0, 23) + timedelta(minutes=35), 130, steps=40)
    found = feed(InactivityRule(settings), stream)
    assert episodes(found) == ["open"] and found[0].ts == local(1, 1) + timedelta(minutes=35)


def test_walking_with_no_pedometer_is_movement_but_wifi_jitter_is_not() -> None:
    rng = random.Random(11)
    t0 = local(0, 9)
    jitter = stay(t0, 5 * 60, 0, every_s=300, acc=40.0, src="wifi", rng=rng)
    found = feed(InactivityRule(), jitter)
    assert episodes(found) == ["open"] and found[0].ts == local(0, 13)
    # One stray fix 200 m off is not a walk either.
    rule = InactivityRule()
    stray = [*jitter[:10], fix(t0 + timedelta(minutes=52), 200.0, acc=10.0), *jitter[11:]]
    assert episodes(feed(rule, stray)) == ["open"]
    # A walk of a few hundred metres, no step counter at all: no alarm.
    walked = stay(t0, 100, 0, every_s=300, acc=40.0, src="wifi", rng=rng)
    walked += walk(t0 + timedelta(minutes=100), [(0, 0), (300, 0), (0, 0)], rng=rng)
    t = walked[-1].ts + timedelta(seconds=30)
    walked += stay(t, 150, 0, every_s=300, acc=40.0, src="wifi", rng=rng)
    found = feed(InactivityRule(), walked)
    assert found == []


def test_indoor_wifi_jitter_is_no_movement_from_an_outdoor_gps_anchor() -> None:
    """Home from a walk at 11:00: the last GPS fix (acc 4 m) at the door 40 m east of
    the flat, then indoor wifi fixes.  Two of them, 45 m off (acc 40 m, then 28 m),
    lie just beyond 3 sigma of the GPS anchor -- the miss seen in the simulated
    community: they are two positioning systems, not a walk."""
    t0 = local(0, 11)
    stream: list[Reading] = [Vitals("w1", 0, t0 - timedelta(minutes=10), steps=2900)]
    stream.append(fix(t0 - timedelta(minutes=2), 40.0, acc=4.0))  # outdoors, at the door
    stream += vitals_every(t0, 4.5 * 60, steps=3000)  # the last steps at 11:00
    jitter = [(3, -4, 25), (-6, 2, 33), (-45, 0, 40), (-35, -25, 28), (4, 6, 30), (-2, -5, 22)]
    for i, t in enumerate(every(t0 + timedelta(minutes=50), 3 * 60, 600)):
        east, north, acc = jitter[i % len(jitter)]
        stream.append(fix(t, east, north, acc=acc, src="wifi"))
    stream.sort(key=_ts)
    found = feed(InactivityRule(), stream)
    assert episodes(found) == ["open"] and found[0].ts == local(0, 15)
    assert found[0].detail["still_since"] == t0.isoformat()


def test_an_outlying_first_wifi_fix_is_not_the_reference_for_hours() -> None:
    """Still at home on wifi all day.  The fix the count started from happened to land
    50 m east (acc 31 m); hours later two fixes land 50 m west (acc 39, 35 m).  Against
    that one fix they are 100 m away, beyond 3 sigma -- a "walk" (seen in the simulated
    community).  Against the mean of the fixes that agreed since, they are jitter."""
    t0 = local(0, 10.5)
    stream: list[Reading] = [*vitals_every(t0, 5 * 60, steps=4900)]
    spots = [(50, 0, 31)] + [(e, n, 25) for e, n in [(5, -4), (-8, 6), (3, 9), (-6, -7)] * 4]
    spots += [(-52, 0, 39), (-50, 8, 35)] + [(2, 3, 20)] * 8
    for i, (east, north, acc) in enumerate(spots):
        stream.append(fix(t0 + timedelta(minutes=10 * i), east, north, acc=acc, src="wifi"))
    stream.sort(key=_ts)
    found = feed(InactivityRule(), stream)
    assert episodes(found) == ["open"] and found[0].ts == t0 + timedelta(hours=4)


def test_inactivity_needs_the_watch_on_and_data_arriving() -> None:
    rule = InactivityRule()
    stream: list[Reading] = [*vitals_every(local(0, 8), 60, steps=100)]
    stream.append(Event("w1", 1, local(0, 9), "off_wrist"))
    stream += vitals_every(local(0, 9), 180, steps=100, worn=False)
    stream.append(Event("w1", 2, local(0, 12), "on_wrist"))
    stream += vitals_every(local(0, 12), 210, steps=100)
    assert feed(rule, stream) == []  # on again at 12:00: due 16:00
    found = feed(rule, vitals_every(local(0, 15.5), 60, steps=100))
    assert episodes(found) == ["open"] and found[0].ts == local(0, 16)
    # A device gone silent at 09:00 is the offline rule's: nothing from advance...
    silent = InactivityRule()
    feed(silent, vitals_every(local(0, 8), 60, steps=100))
    assert silent.advance(local(0, 14)) == []
    # ...until it speaks again and shows no step was taken meanwhile.
    found = silent.update(Vitals("w1", 5, local(0, 14.25), steps=100))
    assert episodes(found) == ["open"] and found[0].ts == local(0, 14.25)


# === device offline ================================================================


def test_offline_after_three_missed_intervals_and_not_before() -> None:
    rule = DeviceOfflineRule(OfflineSettings(report_interval_s=300))
    t0 = local(0, 10)
    assert rule.update(Vitals("w1", 1, t0, hr=70)) == []
    assert rule.advance(t0 + timedelta(seconds=899)) == []
    found = rule.advance(t0 + timedelta(seconds=901))
    assert episodes(found) == ["open"]
    f = found[0]
    assert f.ts == t0 + timedelta(seconds=900) and f.severity is Severity.MEDIUM
    assert f.message == "设备离线：15 分钟未收到任何消息" and f.value == 15.0
    assert rule.advance(t0 + timedelta(minutes=70)) == []  # reminder not yet due
    assert episodes(rule.advance(t0 + timedelta(minutes=76))) == ["reraise"]
    back = rule.update(Position("w1", 2, t0 + timedelta(minutes=80), HOME_LAT, HOME_LON, 5, "gps"))
    assert episodes(back) == ["clear"] and back[0].action is Action.CLEAR
    assert back[0].message == "设备恢复通信"


def test_offline_minimum_silence_for_chatty_devices() -> None:
    rule = DeviceOfflineRule()  # 60 s interval: 3 minutes would flag every cell handover
    t0 = local(0, 10)
    rule.update(Vitals("w1", 1, t0, hr=70))
    assert rule.advance(t0 + timedelta(minutes=14)) == []
    assert episodes(rule.advance(t0 + timedelta(minutes=15))) == ["open"]


@pytest.mark.parametrize("gap_minutes", [3, 8, 12])
def test_a_coverage_gap_on_a_walk_is_not_offline(gap_minutes: int) -> None:
    """Out of coverage for up to 12 minutes (an underpass, a lift), samples buffered and
    uploaded when back: the device was never gone, so nothing is raised."""
    rule = DeviceOfflineRule()
    t0 = local(0, 10)
    live = [Vitals("w1", i, t) for i, t in enumerate(every(t0, 20, 60))]
    gap_end = live[-1].ts + timedelta(minutes=gap_minutes)
    held = [Vitals("w1", 100 + i, t) for i, t in enumerate(every(live[-1].ts, gap_minutes, 60))]
    stream: list[Reading | datetime] = [*live]
    stream += every(live[-1].ts + timedelta(seconds=10), gap_minutes, 10)  # engine ticks
    stream += held[1:]  # the buffered upload, when coverage is back
    stream += [Vitals("w1", 200 + i, t) for i, t in enumerate(every(gap_end, 20, 60))]
    assert feed(rule, stream) == []


def test_regular_reports_never_go_offline() -> None:
    rule = DeviceOfflineRule()
    stream: list[Reading | datetime] = []
    for i, t in enumerate(every(local(0, 0), 24 * 60, 60)):
        stream += [Vitals("w1", i, t, hr=70), t + timedelta(seconds=59)]
    assert feed(rule, stream) == []


def test_a_retained_offline_status_is_recorded_but_is_not_the_trigger() -> None:
    rule = DeviceOfflineRule()
    t0 = local(0, 10)
    rule.update(Vitals("w1", 1, t0, hr=70))
    assert rule.update(Status("w1", t0 + timedelta(seconds=30), False)) == []
    assert rule.advance(t0 + timedelta(minutes=5)) == []
    found = rule.advance(t0 + timedelta(minutes=16))
    assert episodes(found) == ["open"]
    assert found[0].ts == t0 + timedelta(minutes=15)  # from the last message, not the will
    assert found[0].detail["status_offline"] == (t0 + timedelta(seconds=30)).isoformat()
    # A will replayed later is no sign of life either: the episode stays open.
    assert rule.update(Status("w1", t0 + timedelta(minutes=20), False)) == []
    assert episodes(rule.update(Status("w1", t0 + timedelta(minutes=21), True))) == ["clear"]


def test_power_off_event_says_so() -> None:
    rule = DeviceOfflineRule()
    t0 = local(0, 10)
    rule.update(Event("w1", 1, t0, "power_off"))
    found = rule.advance(t0 + timedelta(minutes=30))
    assert found[0].message == "设备已关机：15 分钟未收到任何消息"
    assert found[0].detail["power_off"] == t0.isoformat()


def test_a_buffered_upload_clears_at_the_rule_clock_not_in_the_past() -> None:
    rule = DeviceOfflineRule()
    t0 = local(0, 10)
    rule.update(Vitals("w1", 1, t0, hr=70))
    rule.advance(t0 + timedelta(hours=2))
    found = rule.update(Vitals("w1", 2, t0 + timedelta(minutes=30), hr=71))  # buffered
    assert episodes(found) == ["clear"]
    assert found[0].ts == t0 + timedelta(hours=2) and found[0].detail["buffered"] is True


def test_resume_grace_after_a_restart_prevents_the_flood() -> None:
    t0 = local(0, 10)
    before = DeviceOfflineRule()
    before.update(Vitals("w1", 1, t0, hr=70))
    state = before.snapshot()
    restart = t0 + timedelta(hours=1)  # the server was down for an hour

    # Without resume(): "offline" the moment the clock moves -- for every device.
    naive = DeviceOfflineRule()
    naive.restore(state)
    assert episodes(naive.advance(restart)) == ["open"]

    # With resume(): quiet through the grace (2 x 15 min) while the devices reconnect.
    rule = DeviceOfflineRule()
    rule.restore(state)
    rule.resume(restart)
    assert rule.advance(restart) == []
    assert rule.advance(restart + timedelta(minutes=29)) == []
    assert rule.update(Vitals("w1", 2, restart + timedelta(minutes=2), hr=70)) == []
    assert rule.advance(restart + timedelta(minutes=16)) == []

    # A device that is really gone is reported when the grace ends, not before.
    silent = DeviceOfflineRule()
    silent.restore(state)
    silent.resume(restart)
    assert silent.advance(restart + timedelta(minutes=29, seconds=59)) == []
    found = silent.advance(restart + timedelta(minutes=35))
    assert episodes(found) == ["open"] and found[0].ts == restart + timedelta(minutes=30)
    assert found[0].detail["after_restart"] is True


def test_resume_counts_a_never_heard_device_from_the_restart() -> None:
    rule = DeviceOfflineRule()
    t0 = local(0, 10)
    assert rule.advance(t0 + timedelta(days=1)) == []  # no reference point: nothing to say
    rule.resume(t0 + timedelta(days=1))
    found = rule.advance(t0 + timedelta(days=1, hours=1))
    assert found[0].ts == t0 + timedelta(days=1, minutes=30)
    assert found[0].detail["last_seen"] is None


def test_resume_delays_reminders_of_an_open_episode() -> None:
    rule = DeviceOfflineRule()
    t0 = local(0, 10)
    rule.update(Vitals("w1", 1, t0, hr=70))
    assert episodes(rule.advance(t0 + timedelta(minutes=15))) == ["open"]
    rule.resume(t0 + timedelta(hours=3))
    assert rule.advance(t0 + timedelta(hours=3, minutes=25)) == []
    assert episodes(rule.advance(t0 + timedelta(hours=3, minutes=30))) == ["reraise"]


# === not worn ======================================================================


def test_not_worn_for_30_minutes_in_daytime_then_cleared() -> None:
    rule = NotWornRule()
    t0 = local(0, 10)
    stream: list[Reading | datetime] = [Event("w1", 1, t0, "off_wrist")]
    for i, t in enumerate(every(t0, 60, 60)):
        stream += [Vitals("w1", i, t, battery=80, worn=False), t + timedelta(seconds=30)]
    found = feed(rule, stream)
    assert episodes(found) == ["open"]
    f = found[0]
    assert f.ts == t0 + timedelta(minutes=30) and f.severity is Severity.LOW
    assert f.kind == "not_worn" and f.message == "设备未佩戴已 30 分钟"
    back = rule.update(Vitals("w1", 99, t0 + timedelta(minutes=61), worn=True))
    assert episodes(back) == ["clear"]


def test_not_worn_at_night_waits_for_the_day() -> None:
    rule = NotWornRule()
    stream = vitals_every(local(0, 20.75), 11.5 * 60, every_s=60, worn=False)  # to 08:15
    assert feed(rule, stream) == []  # 20:45 off: not at 21:15, not overnight
    found = feed(rule, vitals_every(local(1, 8.25), 30, every_s=60, worn=False))
    assert episodes(found) == ["open"] and found[0].ts == local(1, 8.5)
    assert found[0].message == "设备未佩戴已 705 分钟"


def test_not_worn_reminds_in_daytime_and_stays_quiet_when_the_device_is_silent() -> None:
    rule = NotWornRule()
    found = feed(rule, vitals_every(local(0, 9), 5 * 60, every_s=60, worn=False))
    assert episodes(found) == ["open", "reraise", "reraise"]
    silent = NotWornRule()
    feed(silent, vitals_every(local(0, 9), 10, every_s=60, worn=False))
    assert silent.advance(local(0, 12)) == []  # device_offline's business


def charging(
    start: datetime, minutes: float, pct0: float, per_hour: float, *, every_s: float = 60
) -> list[Vitals]:
    """Off-wrist samples of a watch whose battery moves ``per_hour`` %/h (whole percent)."""
    return [
        Vitals(
            "w1",
            i,
            t,
            steps=800,
            worn=False,
            battery=float(
                min(100, math.floor(pct0 + per_hour * (t - start).total_seconds() / 3600))
            ),
        )
        for i, t in enumerate(every(start, minutes, every_s))
    ]


def test_a_watch_on_its_charger_is_not_not_worn() -> None:
    """The evening charge seen in the simulated community, here at 10:00 so that only the
    battery can tell: on the charger at 54 %, full within the hour, back on at 12:00."""
    t0 = local(0, 10)
    stream: list[Reading | datetime] = [Event("w1", 1, t0, "off_wrist")]
    stream += charging(t0, 120, 54, 45.0)
    stream += [Event("w1", 2, local(0, 12), "on_wrist")]
    stream += vitals_every(local(0, 12), 30, every_s=60, battery=99, worn=True)
    stream.sort(key=_ts)
    assert feed(NotWornRule(), stream) == []
    # The same two hours draining on the table are raised at 10:30.
    table = [Event("w1", 1, t0, "off_wrist"), *charging(t0, 120, 54, -0.5)]
    found = feed(NotWornRule(), table)
    assert episodes(found) == ["open"] and found[0].ts == t0 + timedelta(minutes=30)


def test_a_gauge_that_jitters_by_one_percent_is_not_charging() -> None:
    t0 = local(0, 10)
    levels = [60, 61, 60, 59, 60, 60, 59, 60, 59, 59] * 6
    stream = [
        Vitals("w1", i, t0 + timedelta(minutes=i), battery=float(b), worn=False)
        for i, b in enumerate(levels)
    ]
    found = feed(NotWornRule(), stream)
    assert episodes(found) == ["open"] and found[0].ts == t0 + timedelta(minutes=30)
    assert found[0].detail["charging_since"] is None


def test_off_the_charger_counts_from_its_last_rise() -> None:
    """Charged 40 -> 70 % from 10:00 to 10:40, then left on the table (no more rises):
    off the charger since 10:40, so not worn is due 30 minutes later, at 11:10."""
    t0 = local(0, 10)
    stream = charging(t0, 40, 40, 45.0) + charging(t0 + timedelta(minutes=40), 90, 70, -0.5)
    found = feed(NotWornRule(), stream)
    assert episodes(found) == ["open"]
    last_rise = max(
        v.ts for v in stream if v.battery == 70.0 and v.ts <= t0 + timedelta(minutes=40)
    )
    assert found[0].ts == last_rise + timedelta(minutes=30)
    assert found[0].message == f"设备未佩戴已 {(found[0].ts - t0).total_seconds() / 60:.0f} 分钟"


def test_a_watch_left_on_its_charger_all_morning_is_raised_after_three_hours() -> None:
    t0 = local(0, 8)
    stream = charging(t0, 5 * 60, 60, 45.0)  # full before 09:00 and left there
    found = feed(NotWornRule(), stream)
    assert episodes(found)[0] == "open"
    assert found[0].ts == t0 + timedelta(hours=3)
    assert found[0].message == "设备未佩戴已 180 分钟（在充电）"
    assert found[0].detail["charging_since"] is not None


def test_not_worn_counts_until_20_not_through_the_evening() -> None:
    """Off at 19:45 (washing, then bed): not raised at 20:15; due 08:30 if still off."""
    rule = NotWornRule()
    found = feed(rule, vitals_every(local(0, 19.75), 60, every_s=60, worn=False))
    assert found == []
    assert feed(rule, vitals_every(local(1, 8), 40, every_s=60, worn=False))[0].ts == local(1, 8.5)
    assert WearSettings().daytime == (8.0, 20.0)


# === low battery ===================================================================


def battery_stream(start: datetime, levels: Iterable[float], every_s: float = 60) -> list[Vitals]:
    return [
        Vitals("w1", i, start + timedelta(seconds=i * every_s), battery=float(b))
        for i, b in enumerate(levels)
    ]


def linear(
    start_pct: float, per_hour: float, minutes: int, *, quantise: bool = True
) -> list[float]:
    out = [start_pct - per_hour * m / 60 for m in range(minutes)]
    return [math.floor(v) if quantise else v for v in out]


@pytest.mark.parametrize("per_hour", [1.0, 2.5, 6.0])
def test_low_battery_estimate_on_a_linear_drain(per_hour: float) -> None:
    levels = linear(40, per_hour, int((40 - 8) / per_hour * 60))  # down to ~8 %
    found = feed(LowBatteryRule(), battery_stream(local(0, 9), levels))
    assert len(found) == 1, "one finding per episode, not per sample"
    f = found[0]
    assert f.kind == "low_battery" and f.severity is Severity.LOW
    assert f.value == 15.0 and f.detail["episode"] == "open"
    assert f.detail["drain_pct_per_hour"] == pytest.approx(per_hour, rel=0.1)
    assert f.detail["hours_to_empty"] == pytest.approx(15 / per_hour, rel=0.1)
    assert f.message.startswith("电量 15%，约 ")


def test_charging_is_not_drain_and_clears_only_when_charged() -> None:
    levels = linear(40, 3.0, 400)  # to 20 %
    levels += [20 + k for k in range(1, 6)]  # a short top-up to 25 %, within the window
    levels += linear(25, 5.0, 300)  # a hungrier drain afterwards: 15 % two hours later
    found = feed(LowBatteryRule(), battery_stream(local(0, 9), levels))
    assert episodes(found) == ["open"]
    assert found[0].detail["drain_pct_per_hour"] == pytest.approx(5.0, rel=0.1)
    # Back on the charger: jitter around the threshold does not clear, 30 % does.
    rule = LowBatteryRule()
    feed(rule, battery_stream(local(0, 9), levels))
    t = local(0, 22)  # after the stream above
    assert feed(rule, battery_stream(t, [15, 14, 15, 14, 16])) == []
    found = feed(rule, battery_stream(t + timedelta(minutes=10), range(15, 40)))
    assert episodes(found) == ["clear"] and found[0].action is Action.CLEAR
    assert found[0].value == 30.0


def test_device_low_battery_event_opens_once() -> None:
    rule = LowBatteryRule()
    feed(rule, battery_stream(local(0, 9), linear(30, 4.0, 180)))  # 30 -> 18 %
    found = rule.update(Event("w1", 5, local(0, 12), "low_battery"))
    assert episodes(found) == ["open"] and found[0].detail["reason"] == "device_event"
    assert found[0].message.startswith("设备报告电量低（最近电量 18%）")
    assert feed(rule, battery_stream(local(0, 12), linear(18, 4.0, 120))) == []


def test_low_battery_without_history_says_so_without_a_guess() -> None:
    found = LowBatteryRule().update(Vitals("w1", 1, local(0, 9), battery=12.0))
    assert found[0].message == "电量 12%" and found[0].detail["hours_to_empty"] is None


def test_short_time_left_is_given_in_minutes() -> None:
    rule = LowBatteryRule(BatterySettings(low_pct=5))
    found = feed(rule, battery_stream(local(0, 9), linear(30, 12.0, 130)))
    head, minutes = found[0].message.removesuffix(" 分钟后耗尽").split("，约 ")
    assert head == "电量 5%" and 22 <= int(minutes) <= 28  # 5 % at 12 %/h: 25 minutes


# === shared ========================================================================


@pytest.mark.parametrize(
    "module",
    [
        alerts.geofence,
        alerts.inactivity,
        alerts.device_offline,
        alerts.wear,
        alerts.battery,
    ],
)
def test_docstring_examples(module: ModuleType) -> None:
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0


def test_settings_are_per_elder_and_frozen() -> None:
    for s in (
        GeofenceSettings(),
        InactivitySettings(),
        OfflineSettings(),
        WearSettings(),
        BatterySettings(),
    ):
        name = dataclasses.fields(s)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(s, name, getattr(s, name))
    assert OfflineSettings(report_interval_s=600).silence_s == 1800
    assert OfflineSettings(report_interval_s=600).grace == 3600


def test_geofence_restore_after_zones_were_redrawn() -> None:
    old = GeofenceRule(GeofenceSettings(zones=(HOME, community())))
    feed(old, out_and_back(local(0, 14), far=300, minutes_out=5)[:20])  # out of home
    assert old.snapshot()["zones"][0]["out"] is True
    state = old.snapshot()
    # Same home, bigger community outline, listed in another order.
    wider = Zone.circle("家", HOME_LAT, HOME_LON, 400.0)
    new = GeofenceRule(GeofenceSettings(zones=(community(), wider)))
    new.restore(state)
    assert [z["out"] for z in new.snapshot()["zones"]] == [False, False]
    unchanged = GeofenceRule(GeofenceSettings(zones=(community(), HOME)))
    unchanged.restore(state)
    assert [z["out"] for z in unchanged.snapshot()["zones"]] == [False, True]
    # The open episode of a zone that changed clears on the next fix.
    t = local(0, 15)
    assert episodes(new.update(fix(t, 300.0))) == ["clear"]
