"""The wearable simulator: realistic, valid, deterministic, and visible on a real broker."""

from __future__ import annotations

import doctest
import importlib
import itertools
import json
import math
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from protocol.decode import decode, parse_ts
from protocol.messages import Event, Position, Status, Vitals
from protocol.topics import DEVICE_ID, UPLINK_SUBSCRIPTION, parse_topic
from simulator.cli import run_simulation
from simulator.clock import local_day_start, local_hour, ms
from simulator.community import (
    COMPOUNDS,
    build_roster,
    community_geojson,
)
from simulator.elder_model import plan_day
from simulator.geo import CENTRE_LAT, CENTRE_LON, distance_m, to_xy
from simulator.publisher import default_window, parse_broker_url, publish_stream
from simulator.scenarios import SCENARIOS, normalise, schedule
from simulator.stream import Message, generate, samples_in

BROKER = "mqtt://127.0.0.1:1883"
LOCAL = timedelta(hours=8)
# 20:00 local on a Friday; 28 h covers a night (wandering) and a full day.
START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DURATION = timedelta(hours=28)
SEED = 11


# --- one shared simulated community, decoded the way ingest would ----------------------


@dataclass
class Decoded:
    messages: list[Message]
    truth: list[dict[str, str]]
    roster: list
    vitals: dict[str, list[Vitals]] = field(default_factory=lambda: defaultdict(list))
    fixes: dict[str, list[Position]] = field(default_factory=lambda: defaultdict(list))
    events: dict[str, list[Event]] = field(default_factory=lambda: defaultdict(list))
    sent: dict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    arrays: list[tuple[Message, list]] = field(default_factory=list)
    rejects: list = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    samples: int = 0

    def truth_for(self, kind: str) -> dict[str, str]:
        (rec,) = [r for r in self.truth if r["kind"] == kind]
        return rec

    def scenario_devices(self) -> set[str]:
        return {r["device_id"] for r in self.truth}


@pytest.fixture(scope="module")
def world() -> Decoded:
    roster = build_roster(24, SEED)
    plan = schedule(roster, START, DURATION, SEED, ["all"])
    msgs = list(generate(roster, START, DURATION, SEED, plan.scenarios))
    w = Decoded(msgs, plan.truth(), roster)
    for m in msgs:
        parsed = parse_topic(m.topic)
        assert parsed is not None, m.topic
        dev, ch = parsed
        d = decode(ch, m.payload, device_id=dev, received_at=m.sim_time)
        w.rejects.extend(d.rejects)
        w.sent[dev].append(m.sim_time)
        if ch != "status":
            w.samples += samples_in(m.payload)
        if m.payload.startswith(b"["):
            w.arrays.append((m, d.readings))
        for r in d.readings:
            if isinstance(r, Vitals):
                w.vitals[dev].append(r)
            elif isinstance(r, Position):
                w.fixes[dev].append(r)
            elif isinstance(r, Event):
                w.events[dev].append(r)
            else:
                w.statuses.append(r)
    for rows in (*w.vitals.values(), *w.fixes.values(), *w.events.values()):
        rows.sort(key=lambda r: r.seq)
    return w


def _local_hour(ts: datetime) -> float:
    return float(local_hour(ms(ts)))


def _window(rows: list, rec: dict[str, str], pad: timedelta = timedelta(0)) -> list:
    a, b = datetime.fromisoformat(rec["start"]) + pad, datetime.fromisoformat(rec["end"])
    return [r for r in rows if a <= r.ts <= b]


# --- the community ------------------------------------------------------------------------


def test_roster_is_deterministic_plausible_and_prefix_stable() -> None:
    roster = build_roster(200, seed=3)
    assert roster == build_roster(200, seed=3)
    assert roster[:20] == build_roster(20, seed=3)  # growing the roster keeps the first elders
    assert [e.name for e in roster] != [e.name for e in build_roster(200, seed=4)]
    assert len({e.key for e in roster}) == len({e.device_id for e in roster}) == 200
    assert all(DEVICE_ID.match(e.device_id) for e in roster)
    assert roster[0].key == "e0001" and roster[0].device_id == "xb-w0001"
    assert all(1935 <= e.birth_year <= 1960 and e.gender in ("F", "M") for e in roster)
    assert all(
        2 <= len(e.name) <= 3 and all("\u4e00" <= c <= "\u9fff" for c in e.name) for e in roster
    )
    assert all(55 <= e.resting_hr <= 85 for e in roster)
    assert 1 <= sum(e.hypercapnic for e in roster) <= 30  # a few with COPD
    assert len({e.compound for e in roster}) == len(COMPOUNDS) >= 5
    for e in roster:  # each lives inside their compound, and the address says where
        assert e.address.startswith(e.compound) and e.address.endswith("室")
        assert e.place.contains(*e.home_xy)
    assert {e.ts_epoch_ms for e in roster} == {True, False}  # devices differ
    with pytest.raises(ValueError):
        build_roster(1, 0, device_prefix="bad id ")


def test_community_geojson_has_outline_compounds_and_streets() -> None:
    g = community_geojson()
    assert g["type"] == "FeatureCollection"
    kinds = Counter(f["properties"]["kind"] for f in g["features"])
    uses = Counter(f["properties"].get("use") for f in g["features"])
    assert kinds["outline"] == 1 and kinds["street"] >= 6 and uses["residential"] >= 5
    assert set(kinds) == {"outline", "compound", "street"}  # what the dashboard draws
    outline = next(f for f in g["features"] if f["properties"]["kind"] == "outline")
    ring = outline["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) >= 5
    lons, lats = zip(*ring, strict=True)
    w = distance_m(CENTRE_LAT, min(lons), CENTRE_LAT, max(lons))
    h = distance_m(min(lats), CENTRE_LON, max(lats), CENTRE_LON)
    assert 0.8e6 <= w * h <= 1.6e6  # about a square kilometre
    assert abs(np.mean(lats) - 34.867) < 0.003 and abs(np.mean(lons) - 110.447) < 0.003
    for f in g["features"]:
        assert f["properties"]["name"]
        if f["properties"].get("use") == "residential":
            assert f["geometry"]["type"] == "Polygon"
        if f["properties"]["kind"] == "street":
            assert f["geometry"]["type"] == "LineString"
    json.dumps(g)  # serialisable as is


# --- the stream ---------------------------------------------------------------------------


def _small(seed: int) -> list[Message]:
    roster = build_roster(6, seed)
    start = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
    plan = schedule(roster, start, timedelta(hours=10), seed, ["fall", "sos", "device_offline"])
    return list(generate(roster, start, timedelta(hours=10), seed, plan.scenarios))


def test_same_seed_gives_identical_bytes_and_another_seed_does_not() -> None:
    a, b, c = _small(5), _small(5), _small(6)
    assert [(m.sim_time, m.topic, m.payload, m.qos, m.retain) for m in a] == [
        (m.sim_time, m.topic, m.payload, m.qos, m.retain) for m in b
    ]
    assert [m.payload for m in a] != [m.payload for m in c]


def test_every_payload_decodes_without_rejects(world: Decoded) -> None:
    assert world.rejects == []
    readings = sum(len(v) for d in (world.vitals, world.fixes, world.events) for v in d.values())
    assert readings == world.samples > 24 * 28 * 60  # every sample object became a reading
    assert all(m.qos == 1 for m in world.messages)


def test_stream_is_ordered_and_starts_with_retained_online(world: Decoded) -> None:
    times = [m.sim_time for m in world.messages]
    assert times == sorted(times)
    first = world.messages[:24]
    assert all(m.topic.endswith("/status") and m.retain for m in first)
    assert {s.device_id for s in world.statuses if s.online} == {e.device_id for e in world.roster}
    assert not any(m.retain for m in world.messages[24:])


def test_seq_counts_every_sample_per_device_in_time_order(world: Decoded) -> None:
    for dev in world.vitals:
        rows = sorted(world.vitals[dev] + world.fixes[dev] + world.events[dev], key=lambda r: r.seq)
        seqs = [r.seq for r in rows]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), dev  # no gap, no repeat
        # RFC 3339 devices print whole seconds: allow that much disorder.
        assert all(b.ts >= a.ts - timedelta(seconds=1) for a, b in itertools.pairwise(rows))


def test_timestamps_mix_epoch_ms_and_rfc3339_with_offset(world: Decoded) -> None:
    kinds = Counter()
    for m in world.messages[24:]:
        body = json.loads(m.payload)
        for obj in body if isinstance(body, list) else [body]:
            ts = obj["ts"]
            kinds[type(ts).__name__] += 1
            if isinstance(ts, str):
                assert ts.endswith("+08:00") and parse_ts(ts) is not None
    assert kinds["int"] > 1000 and kinds["str"] > 1000


def test_positions_stay_in_the_community_except_the_wanderer(world: Decoded) -> None:
    wanderer = world.truth_for("night_wandering")["device_id"]
    n = 0
    for dev, fixes in world.fixes.items():
        if dev == wanderer:
            continue
        for f in fixes:
            d = distance_m(f.lat, f.lon, CENTRE_LAT, CENTRE_LON)
            if f.src == "lbs":  # cell-tower fixes: only as good as they say
                assert d <= 1000 + 3 * f.acc
            else:
                assert d <= 1000, (dev, f)
                n += 1
    assert n > 1000
    sources = Counter(f.src for fx in world.fixes.values() for f in fx)
    assert sources["gps"] > 500 and sources["wifi"] > 500 and sources["lbs"] > 10


def _errors(world: Decoded, src: str) -> np.ndarray:
    """|fix - true position| / stated accuracy, for elders with no scenario."""
    ratios = []
    quiet = [e for e in world.roster if e.device_id not in world.scenario_devices()]
    for e in quiet:
        plans = {}
        for f in world.fixes[e.device_id]:
            if f.src != src:
                continue
            t = ms(f.ts)
            day = local_day_start(t)
            if day not in plans:
                plans[day] = plan_day(e, day, SEED)
            x, y = plans[day].position(np.array([t]))
            fx, fy = to_xy(f.lat, f.lon)
            ratios.append(math.hypot(fx - x[0], fy - y[0]) / f.acc)
    return np.array(ratios)


def test_gps_and_wifi_noise_match_the_stated_accuracy(world: Decoded) -> None:
    gps, wifi = _errors(world, "gps"), _errors(world, "wifi")
    assert gps.size > 300 and wifi.size > 300
    for r in (gps, wifi):
        # acc is a 68 % radius: 95 % of fixes within ~1.6 acc, and the noise is real.
        assert 1.2 <= np.percentile(r, 95) <= 2.0
        assert 0.6 <= np.percentile(r, 68) <= 1.3
    by_src = defaultdict(list)
    for fx in world.fixes.values():
        for f in fx:
            by_src[f.src].append(f.acc)
    assert min(by_src["gps"]) >= 3 and max(by_src["gps"]) <= 15
    assert min(by_src["wifi"]) >= 15 and max(by_src["wifi"]) <= 40
    assert min(by_src["lbs"]) >= 200 and max(by_src["lbs"]) <= 800


def _step_rates(rows: list[Vitals]) -> list[tuple[Vitals, float]]:
    """Each worn sample with the steps per minute since the sample before it."""
    out = []
    for a, b in itertools.pairwise(rows):
        gap = (b.ts - a.ts).total_seconds() / 60
        same_day = local_day_start(ms(a.ts)) == local_day_start(ms(b.ts))
        if 0.5 < gap < 1.6 and same_day and b.hr is not None:
            out.append((b, (b.steps - a.steps) / gap))
    return out


def test_heart_rate_rises_with_walking_and_brisk_walks_occur(world: Decoded) -> None:
    quiet = world.scenario_devices()
    walking, resting, brisk = [], [], 0
    for dev, rows in world.vitals.items():
        if dev in quiet:
            continue
        for v, rate in _step_rates(sorted(rows, key=lambda r: r.ts)):
            if rate >= 80:
                walking.append(v.hr)
                brisk += rate >= 110 and 110 <= v.hr <= 128
            elif rate == 0 and 9 <= _local_hour(v.ts) < 18:
                resting.append(v.hr)
                assert v.hr < 120  # a resting elder with no scenario is never tachycardic
    assert len(walking) > 100 and len(resting) > 1000
    assert np.median(walking) >= np.median(resting) + 15
    assert brisk >= 10  # normal behaviour a naive 110 bpm alarm would flag


def test_night_is_quiet_and_slower(world: Decoded) -> None:
    quiet = world.scenario_devices()
    night_hr, day_hr, night_steps = [], [], 0
    for dev, rows in world.vitals.items():
        if dev in quiet:
            continue
        for v, rate in _step_rates(sorted(rows, key=lambda r: r.ts)):
            h = _local_hour(v.ts)
            if 1 <= h < 4:
                night_hr.append(v.hr)
                night_steps += rate
            elif 10 <= h < 17 and rate == 0:
                day_hr.append(v.hr)
    assert np.median(night_hr) <= np.median(day_hr) - 5
    assert night_steps / len(night_hr) < 2  # a toilet trip or two, not walks


def test_steps_never_fall_within_a_local_day_and_reset_at_midnight(world: Decoded) -> None:
    resets, totals = 0, []
    full_day = local_day_start(ms(START + timedelta(hours=12)))  # 28 Nov local, wholly simulated
    for dev, rows in world.vitals.items():
        rows = sorted(rows, key=lambda r: r.ts)
        for a, b in itertools.pairwise(rows):
            if local_day_start(ms(a.ts)) == local_day_start(ms(b.ts)):
                assert b.steps >= a.steps
            else:
                resets += 1
                assert b.steps <= 100 <= a.steps  # the counter starts again at local midnight
        if dev not in world.scenario_devices():
            totals.append(max(r.steps for r in rows if local_day_start(ms(r.ts)) == full_day))
    assert resets == len(world.vitals)  # one local midnight in the window, every device
    assert min(totals) >= 1000 and max(totals) <= 25_000
    assert 3000 <= np.median(totals) <= 10_000  # what older adults walk in a day


def test_vital_signs_stay_in_their_normal_ranges_without_scenarios(world: Decoded) -> None:
    copd = {e.device_id for e in world.roster if e.hypercapnic}
    for dev, rows in world.vitals.items():
        if dev in world.scenario_devices():
            continue
        for v in rows:
            assert v.worn is not None and v.battery is not None and v.steps is not None
            if not v.worn:  # only the evening charge takes the watch off
                assert v.hr is None and v.spo2 is None
                assert 18.5 <= _local_hour(v.ts) < 23.5
                continue
            lo = 88 if dev in copd else 94
            assert lo <= v.spo2 <= 99 and 12 <= v.rr <= 20 and 40 <= v.hr <= 130
            if v.temp is not None:
                assert 36.1 <= v.temp <= 37.2
            if v.sbp is not None:
                assert v.dbp < v.sbp and 90 <= v.sbp <= 200
            assert 10 <= v.battery <= 100
    n_temp = sum(v.temp is not None for r in world.vitals.values() for v in r)
    n_bp = sum(v.sbp is not None for r in world.vitals.values() for v in r)
    assert n_temp > 2000 and n_bp > 300


def test_battery_drains_by_day_and_charges_in_the_evening(world: Decoded) -> None:
    drains, charged = [], 0
    for dev, rows in world.vitals.items():
        if dev in world.scenario_devices():
            continue
        rows = sorted(rows, key=lambda r: r.ts)
        day = [
            r for r in rows if 9 <= _local_hour(r.ts) < 17 and r.ts > START + timedelta(hours=12)
        ]
        if len(day) > 300:
            hours = (day[-1].ts - day[0].ts).total_seconds() / 3600
            drains.append((day[0].battery - day[-1].battery) / hours)
        runs = [list(g) for worn, g in itertools.groupby(rows, key=lambda r: r.worn) if not worn]
        # On the charger: the gauge climbs (or sits at full) while the watch is off.
        charged += any(r[-1].battery > r[0].battery or r[-1].battery == 100 for r in runs)
    assert 0.5 <= np.median(drains) <= 1.6  # ~1 %/h
    assert charged >= 0.6 * len(drains)  # most elders charge on most evenings


def test_coverage_gaps_upload_old_samples_as_one_array(world: Decoded) -> None:
    assert len(world.arrays) >= 5
    channels = Counter(parse_topic(m.topic)[1] for m, _ in world.arrays)
    assert channels["vitals"] >= 3 and channels["location"] >= 3
    for m, readings in world.arrays:
        assert len(readings) >= 3
        assert all(r.ts < m.sim_time for r in readings)  # held back, sent later
        span = max(r.ts for r in readings) - min(r.ts for r in readings)
        assert timedelta(minutes=1) < span <= timedelta(minutes=13)
    fixes = [r for _, rs in world.arrays for r in rs if isinstance(r, Position)]
    assert fixes and all(f.src == "gps" for f in fixes)  # gaps happen out walking


# --- scenarios ------------------------------------------------------------------------------


def test_every_scenario_is_in_the_ground_truth_on_distinct_elders(world: Decoded) -> None:
    assert sorted(r["kind"] for r in world.truth) == sorted(SCENARIOS)
    assert len({r["elder"] for r in world.truth}) == len(SCENARIOS)
    lo, hi = START, START + DURATION
    for r in world.truth:
        a, b = datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"])
        assert lo <= a <= b <= hi and a.utcoffset() == timedelta(0)
        assert r["device_id"] == f"xb-w{r['elder'][1:]}"


def test_fall_sends_an_impact_burst_then_no_steps(world: Decoded) -> None:
    rec = world.truth_for("fall")
    falls = [e for e in world.events[rec["device_id"]] if e.type == "fall"]
    (ev,) = [
        e for e in falls if abs(e.ts - datetime.fromisoformat(rec["start"])) < timedelta(seconds=1)
    ]
    assert ev.accel is not None and ev.accel.hz == 50
    g = np.array(ev.accel.g)
    assert 150 <= len(g) <= 250  # ~4 s
    mag = np.linalg.norm(g, axis=1)
    k = int(np.argmax(mag))
    assert 3 <= mag[k] <= 6
    assert mag[:k].min() < 0.4  # free fall before the impact
    before, after = g[:25].mean(axis=0), g[-25:].mean(axis=0)
    assert abs(np.linalg.norm(after) - 1) < 0.1  # lying still
    assert np.argmax(np.abs(after)) != np.argmax(np.abs(before))  # on another axis
    lying = _window(world.vitals[rec["device_id"]], rec, pad=timedelta(minutes=1))
    assert len(lying) >= 5 and len({v.steps for v in lying}) == 1
    assert datetime.fromisoformat(rec["end"]) - ev.ts >= timedelta(minutes=5)


def test_sos_event_at_its_time(world: Decoded) -> None:
    rec = world.truth_for("sos")
    sos = [e for e in world.events[rec["device_id"]] if e.type == "sos"]
    assert len(sos) == 1 and abs(sos[0].ts - datetime.fromisoformat(rec["start"])) < timedelta(
        seconds=1
    )
    assert not any(
        e.type == "sos" for d, evs in world.events.items() if d != rec["device_id"] for e in evs
    )


def test_tachycardia_is_sustained_fast_heart_rate_at_rest(world: Decoded) -> None:
    rec = world.truth_for("tachycardia")
    a, b = datetime.fromisoformat(rec["start"]), datetime.fromisoformat(rec["end"])
    assert b - a >= timedelta(minutes=15)
    rows = _window(world.vitals[rec["device_id"]], rec, pad=timedelta(minutes=1))
    assert len(rows) >= 14
    assert all(130 <= v.hr <= 150 for v in rows)
    assert rows[-1].steps == rows[0].steps


def test_hypoxia_is_sustained_low_spo2(world: Decoded) -> None:
    rec = world.truth_for("hypoxia")
    rows = _window(world.vitals[rec["device_id"]], rec, pad=timedelta(minutes=6))
    assert len(rows) >= 14 and all(85 <= v.spo2 <= 89 for v in rows)


def test_fever_lasts_hours(world: Decoded) -> None:
    rec = world.truth_for("fever")
    a, b = datetime.fromisoformat(rec["start"]), datetime.fromisoformat(rec["end"])
    assert b - a >= timedelta(hours=2)
    temps = [(v.ts, v.temp) for v in world.vitals[rec["device_id"]] if v.temp is not None]
    inside = [t for ts, t in temps if a <= ts <= b]
    assert 38.5 <= max(inside) <= 39.5
    assert sum(t >= 38.5 for t in inside) >= 12  # an hour of 5-minute readings at least
    assert all(t <= 37.2 for ts, t in temps if not a <= ts <= b)


def test_night_wandering_leaves_home_at_night_and_goes_far(world: Decoded) -> None:
    rec = world.truth_for("night_wandering")
    elder = next(e for e in world.roster if e.key == rec["elder"])
    a = datetime.fromisoformat(rec["start"])
    assert 0 <= _local_hour(a) < 5
    fixes = _window(world.fixes[rec["device_id"]], rec)
    far = max(
        distance_m(f.lat, f.lon, elder.home_lat, elder.home_lon) for f in fixes if f.src == "gps"
    )
    assert far > 400
    steps = _window(world.vitals[rec["device_id"]], rec)
    assert steps[-1].steps - steps[0].steps > 500


def test_inactivity_is_hours_without_steps_in_daytime_while_worn(world: Decoded) -> None:
    rec = world.truth_for("inactivity")
    a, b = datetime.fromisoformat(rec["start"]), datetime.fromisoformat(rec["end"])
    # Longer than the inactivity rule's default 4 h: shorter stillness is ordinary.
    assert b - a >= timedelta(hours=4) and _local_hour(a) >= 7 and _local_hour(b) <= 20
    rows = _window(world.vitals[rec["device_id"]], rec)
    assert all(v.worn for v in rows) and rows[-1].steps == rows[0].steps


def test_device_offline_is_truly_silent(world: Decoded) -> None:
    rec = world.truth_for("device_offline")
    a, b = datetime.fromisoformat(rec["start"]), datetime.fromisoformat(rec["end"])
    assert b - a >= timedelta(minutes=30)
    sent = world.sent[rec["device_id"]]
    assert not [t for t in sent if a <= t <= b]
    assert any(t < a for t in sent) and any(t > b for t in sent)


def test_not_worn_is_an_hour_off_the_wrist_in_daytime(world: Decoded) -> None:
    rec = world.truth_for("not_worn")
    a, b = datetime.fromisoformat(rec["start"]), datetime.fromisoformat(rec["end"])
    assert b - a >= timedelta(hours=1) and _local_hour(a) >= 7 and _local_hour(b) <= 19
    # The last sample may carry the second the watch went back on (RFC 3339 has no ms).
    rows = _window(world.vitals[rec["device_id"]], rec, pad=timedelta(seconds=1))[:-1]
    assert rows and all(v.worn is False and v.hr is None for v in rows)
    types = {e.type for e in world.events[rec["device_id"]] if abs(e.ts - a) < timedelta(seconds=1)}
    assert "off_wrist" in types


def test_low_battery_drains_below_ten_then_warns(world: Decoded) -> None:
    rec = world.truth_for("low_battery")
    a = datetime.fromisoformat(rec["start"])
    dev = rec["device_id"]
    (ev,) = [e for e in world.events[dev] if e.type == "low_battery"]
    assert abs(ev.ts - a) < timedelta(seconds=1)
    rows = sorted(world.vitals[dev], key=lambda r: r.ts)
    before = [r.battery for r in rows if r.ts < a]
    after = [r.battery for r in rows if a <= r.ts <= datetime.fromisoformat(rec["end"])]
    assert min(before) >= 10 and after[0] < 10 and max(after) < 10
    assert not any(
        e.type == "low_battery" for d, evs in world.events.items() if d != dev for e in evs
    )


def test_schedule_places_what_fits_and_says_why_not() -> None:
    roster = build_roster(5, 2)
    start = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 10:00-11:00 local
    plan = schedule(roster, start, timedelta(hours=1), 2, ["sos", "night-wandering", "fever"])
    assert [s.kind for s in plan.scenarios] == ["sos"]
    assert [n for n, _ in plan.skipped] == ["night_wandering", "fever"]
    assert all("0.5-3.5 h local" in why for n, why in plan.skipped if n == "night_wandering")
    again = schedule(roster, start, timedelta(hours=1), 2, ["sos", "night-wandering", "fever"])
    assert [s.truth() for s in again.scenarios] == [s.truth() for s in plan.scenarios]
    with pytest.raises(ValueError, match="unknown scenario"):
        normalise(["earthquake"])


def test_endless_stream_can_be_read_lazily() -> None:
    roster = build_roster(3, 1)
    stream = generate(roster, datetime(2026, 11, 28, tzinfo=UTC), None, 1)
    first = list(itertools.islice(stream, 2000))
    assert len(first) == 2000 and first[-1].sim_time - first[0].sim_time > timedelta(hours=8)


# --- the shell ------------------------------------------------------------------------------


def test_broker_url_and_default_window() -> None:
    assert parse_broker_url("mqtt://127.0.0.1:1883").port == 1883
    assert parse_broker_url("tcp://u:p%40ss@h").password == "p@ss"
    with pytest.raises(ValueError):
        parse_broker_url("http://h:1883")
    now = datetime(2026, 11, 28, 8, tzinfo=UTC)
    assert default_window(1, timedelta(hours=1), now) == (now, timedelta(hours=1), None)
    start, dur, note = default_window(100, timedelta(hours=3), now)
    assert start + dur == now and note is None  # accelerated time ends now, never in future
    start, dur, note = default_window(0, timedelta(hours=100), now)
    assert dur == timedelta(hours=71) and start == now - dur and "72 h" in note
    assert default_window(60, None, now)[0] == now - timedelta(hours=24)


class _Counter:
    """A plain paho subscriber counting what arrives for some devices."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.got: list[tuple[str, bytes]] = []
        self.ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(UPLINK_SUBSCRIPTION, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rc, p: self.ready.set()
        self.client.on_message = self._on_message

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.split("/")[3].startswith(self.prefix):
            self.got.append((msg.topic, msg.payload))

    def __enter__(self) -> _Counter:
        self.client.connect("127.0.0.1", 1883)
        self.client.loop_start()
        assert self.ready.wait(5), "subscription not acknowledged"
        return self

    def wait_for(self, n: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _clear_retained(device_ids: list[str]) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2)
    c.connect("127.0.0.1", 1883)
    c.loop_start()
    infos = [
        c.publish(f"eldercare/v1/devices/{d}/status", b"", qos=1, retain=True) for d in device_ids
    ]
    for info in infos:
        info.wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def test_publishes_through_the_real_broker_and_every_message_arrives(tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:6]}-"
    # Under ~1000 messages: Mosquitto's default queue for one subscriber (see DESIGN).
    roster = build_roster(4, 77, device_prefix=prefix)
    # 12:00-14:00 local of the latest such window before now: an SOS (07-21 h) and a
    # device going offline both fit whatever the wall clock says when the test runs.
    noon = datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0)
    start = noon if noon + timedelta(hours=2) <= datetime.now(UTC) else noon - timedelta(days=1)
    plan = schedule(roster, start, timedelta(hours=2), 77, ["device_offline", "sos"])
    msgs = list(generate(roster, start, timedelta(hours=2), 77, plan.scenarios))
    truth = tmp_path / "truth.jsonl"
    try:
        with _Counter(prefix) as sub:
            summary = publish_stream(
                iter(msgs),
                parse_broker_url(BROKER),
                speed=0,
                sim_start=start,
                sim_duration=timedelta(hours=2),
                connections=3,
                truth=plan.truth(),
                truth_path=truth,
                offline_devices=[e.device_id for e in roster],
                progress=False,
            )
            expected = len(msgs) + len(roster)  # + a retained "offline" per device at the end
            sub.wait_for(expected)
    finally:
        _clear_retained([e.device_id for e in roster])
    assert summary["messages"] == expected and summary["all_acked"] and not summary["interrupted"]
    assert summary["samples"] == sum(samples_in(m.payload) for m in msgs)
    assert len(sub.got) == expected
    arrived = Counter(sub.got)
    assert arrived - Counter((m.topic, m.payload) for m in msgs) == Counter(
        {
            (
                f"eldercare/v1/devices/{e.device_id}/status",
                b'{"state":"offline","ts":' + str(ms(msgs[-1].sim_time)).encode() + b"}",
            ): 1
            for e in roster
        }
    )
    lines = [json.loads(x) for x in truth.read_text().splitlines()]
    assert lines == plan.truth() and len(lines) == len(plan.scenarios) >= 1


def test_publisher_paces_by_simulated_time() -> None:
    prefix = f"p{uuid.uuid4().hex[:6]}-"
    roster = build_roster(2, 5, device_prefix=prefix)
    start = datetime.now(UTC) - timedelta(minutes=30)
    msgs = list(generate(roster, start, timedelta(minutes=30), 5))
    try:
        t0 = time.monotonic()
        summary = publish_stream(
            iter(msgs),
            parse_broker_url(BROKER),
            speed=1200,
            sim_start=start,
            sim_duration=timedelta(minutes=30),
            progress=False,
        )
        wall = time.monotonic() - t0
    finally:
        _clear_retained([e.device_id for e in roster])
    assert summary["all_acked"] and summary["messages"] == len(msgs)
    assert 1.2 <= wall <= 6  # 30 simulated minutes at 1200x take 1.5 s


def test_generation_is_fast_enough_for_evaluation() -> None:
    roster = build_roster(40, 9)
    t0 = time.perf_counter()
    n = sum(1 for _ in generate(roster, START, timedelta(days=1), 9))
    elapsed = time.perf_counter() - t0
    assert n > 40 * 1440
    assert 40 / elapsed * 60 >= 1000  # elder-days per minute, with a wide margin for CI


def _recent_local_afternoon() -> datetime:
    """The latest 15:00 local (07:00 UTC) that is already past: scenarios fit before it."""
    now = datetime.now(UTC)
    t = now.replace(hour=7, minute=0, second=0, microsecond=0)
    return t if t <= now else t - timedelta(days=1)


def test_run_simulation_end_to_end_writes_ground_truth(tmp_path: Path) -> None:
    prefix = f"r{uuid.uuid4().hex[:6]}-"
    truth = tmp_path / "truth.jsonl"
    try:
        with _Counter(prefix) as sub:
            # 4 simulated hours in ~2 s: paced, so the one test subscriber keeps up.
            summary = run_simulation(
                BROKER,
                6,
                7200,
                21,
                4 * 3600,
                ["sos", "tachycardia", "device-offline"],
                truth,
                None,
                device_prefix=prefix,
                progress=False,
                now=_recent_local_afternoon(),
            )
            sub.wait_for(summary["messages"])
    finally:
        _clear_retained([f"{prefix}{i:04d}" for i in range(1, 7)])
    assert summary["all_acked"] and not summary["interrupted"] and summary["skipped"] == []
    assert summary["messages"] == len(sub.got) > 6 * 4 * 60
    lines = [json.loads(x) for x in truth.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["kind"] for r in lines) == ["device_offline", "sos", "tachycardia"]
    assert [r["kind"] for r in lines] == summary["scenarios"]
    assert all(r["device_id"].startswith(prefix) for r in lines)


def test_live_run_stops_cleanly_on_ctrl_c() -> None:
    prefix = f"l{uuid.uuid4().hex[:6]}-"
    script = (
        "import json; from simulator.cli import run_simulation; "
        f"print(json.dumps(run_simulation({BROKER!r}, 3, 1, 4, None, [], None, 1.0, "
        f"device_prefix={prefix!r}, progress=False)))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        time.sleep(4)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        _clear_retained([f"{prefix}{i:04d}" for i in range(1, 4)])
    assert proc.returncode == 0, err.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["interrupted"] and summary["all_acked"]
    assert summary["messages"] >= 3 + 3  # online statuses, samples, offline statuses
    # Live: simulated time kept to the wall clock, never ahead of it.
    assert datetime.fromisoformat(summary["sim_end"]) <= datetime.now(UTC)


@pytest.mark.parametrize(
    "module",
    ["accel", "cli", "clock", "community", "elder_model", "geo", "plan", "publisher",
     "scenarios", "sensors", "stream", "streets", "__init__"],
)  # fmt: skip
def test_docstring_examples_hold(module: str) -> None:
    mod = importlib.import_module("simulator" if module == "__init__" else f"simulator.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
