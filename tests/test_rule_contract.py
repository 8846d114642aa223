"""The contract every rule in ``alerts/`` keeps (river's ``check_estimator`` in spirit).

One synthetic five-day stream of one elder -- vitals, fixes, events, statuses, with
``advance`` ticks between them as the engine would send -- gives every rule
something to say.  Over it, for every rule:

- it is an ``alerts.core.Rule`` with a ``kind``, and its findings are well formed;
- it does not mutate its input, and two runs give the same findings (determinism);
- ``snapshot()`` is plain data: through ``json.dumps``/``loads`` into a fresh rule,
  ``restore`` gives identical findings and snapshots from there on, neither
  ``restore`` nor ``snapshot`` shares references with the caller's data.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any

import pytest

from alerts.baseline import BaselineDriftRule, BaselineSettings
from alerts.battery import LowBatteryRule
from alerts.core import Action, Finding, Rule
from alerts.device_offline import DeviceOfflineRule
from alerts.fall import FallRule
from alerts.fever import FeverRule
from alerts.geofence import GeofenceRule, GeofenceSettings, Zone
from alerts.geometry import offset
from alerts.heart_rate import HrActivityRule
from alerts.inactivity import InactivityRule
from alerts.news2 import PARAMS
from alerts.sos import SosRule
from alerts.vitals_rule import News2ParamRule, PartialNews2Rule
from alerts.wear import NotWornRule
from protocol.messages import AccelBurst, Event, Position, Reading, Status, Vitals

LOCAL = timezone(timedelta(hours=8))
DAY0 = datetime(2026, 1, 5, tzinfo=LOCAL).astimezone(UTC)  # local midnight
HOME = (34.867, 110.447)
END = DAY0 + timedelta(days=5)
EPISODES = {"open", "reraise", "escalate", "clear", "deescalate", "note"}

Step = Reading | datetime  # a datetime is an ``advance`` tick


def home_zones() -> GeofenceSettings:
    return GeofenceSettings(zones=(Zone.circle("家", *HOME, 150.0, window=(21.0, 6.0)),))


FACTORIES: dict[str, Callable[[], Rule]] = {
    "sos": SosRule,
    "fall": FallRule,
    "fever": FeverRule,
    **{f"news2_{p}": partial(News2ParamRule, p) for p in PARAMS},
    "news2_partial": PartialNews2Rule,
    "hr_activity": HrActivityRule,
    "baseline_drift": lambda: BaselineDriftRule(BaselineSettings(min_days=3)),
    "geofence_exit": lambda: GeofenceRule(home_zones()),
    "inactivity": InactivityRule,
    "device_offline": DeviceOfflineRule,
    "not_worn": NotWornRule,
    "low_battery": LowBatteryRule,
}


def at(day: int, hour: float) -> datetime:
    return DAY0 + timedelta(days=day, hours=hour)


def battery(t: datetime) -> float:
    """Charged overnight and 3.5 %/h by day; not charged on night 2, so down to 9 % by 09:00."""
    h = (t - DAY0).total_seconds() / 3600
    if 55 <= h < 81:  # day 2 07:00 to day 3 09:00 without a charge
        return 100 - 3.5 * (h - 55)
    if 81 <= h < 96:  # then on the charger, and left there for the day
        return min(100.0, 9 + 40 * (h - 81))
    hour = h % 24
    return 100.0 if hour < 7 else 100 - 3.5 * (hour - 7)


def stream(seed: int = 7) -> list[Step]:
    rng = random.Random(seed)
    out: list[Step] = []
    seq = 0
    t = DAY0
    while t < END:
        day = (t - DAY0).days
        hour = (t - DAY0).total_seconds() / 3600 % 24
        silent = (day == 3 and 14 <= hour < 15) or (day == 4 and 20 <= hour < 21)
        if not silent:
            worn = not (day == 1 and 12 <= hour < 13)
            walking = 8 <= hour < 8 + 40 / 60
            steps = 0 if hour < 8 else 4000 if hour >= 8 + 40 / 60 else int((hour - 8) * 6000)
            hr = (58 if hour < 6 or hour >= 22 else 68) + rng.gauss(0, 3)
            hr += 40 if walking else 20 if day >= 3 else 0
            v: dict[str, Any] = {"spo2": 97, "rr": 14, "temp": 36.6, "sbp": 122}
            if day == 0 and 14 <= hour < 16:  # a fever: 38.6 degrees, then 39.2
                v["temp"] = 38.6 if hour < 15 else 39.2
            if day == 4 and 13 <= hour < 14.5:  # an acute episode at rest
                hr = 125 if hour < 13.7 else 138
                v = {"spo2": 82, "rr": 26, "temp": 34.5, "sbp": 88}
            out.append(
                Vitals(
                    "w1",
                    seq,
                    t,
                    hr=None if not worn else round(hr),
                    steps=steps,
                    battery=float(int(battery(t))),
                    worn=worn,
                    **(v if worn else {}),
                )
            )
            if t.minute % 10 == 0:
                east = 0.0
                if day == 2 and 21.5 <= hour < 22.5:  # a night walk 600 m out and back
                    east = 600 * (1 - abs(hour - 22) / 0.5)
                lat, lon = offset(*HOME, east + rng.gauss(0, 8), rng.gauss(0, 8))
                out.append(Position("w1", seq + 1, t, lat, lon, 12.0, "gps"))
        out.append(t + timedelta(seconds=90))
        seq += 2
        t += timedelta(minutes=2)
    burst = AccelBurst(hz=50, g=[[0.0, 0.0, 1.0]] * 10)
    out += [
        Event("w1", 10**6, at(1, 10), "sos"),
        Event("w1", 10**6 + 1, at(1, 12), "off_wrist"),
        Event("w1", 10**6 + 2, at(1, 13), "on_wrist"),
        Event("w1", 10**6 + 3, at(2, 10), "fall"),
        Event("w1", 10**6 + 4, at(2, 10) + timedelta(seconds=20), "cancel"),
        Event("w1", 10**6 + 5, at(3, 9.5), "fall", accel=burst),
        Event("w1", 10**6 + 6, at(4, 16), "low_battery"),
        Event("w1", 10**6 + 7, at(4, 19.99), "power_off"),
        Status("w1", at(4, 20.01), False),
        Status("w1", at(4, 21), True),
        Event("w1", 10**6 + 8, at(4, 21), "service", kind="meal"),
    ]
    return sorted(out, key=_ts)  # stable: a tick sorts after the reading it follows


def _ts(step: Step) -> datetime:
    return step if isinstance(step, datetime) else step.ts


def feed(rule: Rule, steps: list[Step]) -> list[Finding]:
    out: list[Finding] = []
    for s in steps:
        out += rule.advance(s) if isinstance(s, datetime) else rule.update(s)
    return out


@pytest.fixture(scope="module")
def steps() -> list[Step]:
    return stream()


@pytest.fixture(scope="module")
def runs(steps: list[Step]) -> dict[str, list[Finding]]:
    return {name: feed(make(), steps) for name, make in FACTORIES.items()}


# --- the contract -----------------------------------------------------------------


@pytest.mark.parametrize("name", FACTORIES)
def test_is_a_rule_with_a_kind(name: str) -> None:
    rule = FACTORIES[name]()
    assert isinstance(rule, Rule)
    assert isinstance(rule.kind, str) and rule.kind == name


@pytest.mark.parametrize("name", FACTORIES)
def test_speaks_with_well_formed_findings(name: str, runs: dict[str, list[Finding]]) -> None:
    found = runs[name]
    assert found, f"{name}: the contract stream should make every rule speak"
    for f in found:
        assert f.kind == name or f.kind.startswith(name + "_"), f.kind  # fall -> fall_dismissed
        assert f.ts.tzinfo is not None and DAY0 <= f.ts <= END + timedelta(days=1)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in f.message), f.message  # zh-CN
        assert f.detail["episode"] in EPISODES
        assert (f.action is Action.CLEAR) == (f.detail["episode"] == "clear")
        json.dumps(f.detail)  # plain data, fit for the alert store
        assert f.value is None or isinstance(f.value, float | int)
    ts = [f.ts for f in found]
    assert ts == sorted(ts), f"{name}: findings out of event-time order"


@pytest.mark.parametrize("name", FACTORIES)
def test_input_not_mutated_and_deterministic(
    name: str, steps: list[Step], runs: dict[str, list[Finding]]
) -> None:
    frozen = copy.deepcopy(steps)
    again = feed(FACTORIES[name](), steps)
    assert steps == frozen
    assert again == runs[name]


@pytest.mark.parametrize("name", FACTORIES)
def test_snapshot_json_round_trip_restores_identical_behaviour(
    name: str, steps: list[Step]
) -> None:
    n = len(steps)
    for cut in (n // 7, n // 3, n // 2, 3 * n // 5, 4 * n // 5, n - 50):
        a = FACTORIES[name]()
        feed(a, steps[:cut])
        state = json.loads(json.dumps(a.snapshot()))  # as a worker hands it over
        frozen = copy.deepcopy(state)
        b = FACTORIES[name]()
        b.restore(state)
        assert state == frozen, "restore mutated its input"
        restored = json.dumps(b.snapshot(), sort_keys=True)
        scramble(state)
        assert json.dumps(b.snapshot(), sort_keys=True) == restored, "restore kept references"
        mine = b.snapshot()
        scramble(mine)
        assert json.dumps(b.snapshot(), sort_keys=True) == restored, "snapshot leaked state"
        rest = steps[cut:]
        expect = feed(a, rest) + a.advance(END + timedelta(days=30))
        got = feed(b, rest) + b.advance(END + timedelta(days=30))
        assert got == expect
        assert json.dumps(a.snapshot(), sort_keys=True) == json.dumps(b.snapshot(), sort_keys=True)


def test_offline_resume_after_restore_is_deterministic(steps: list[Step]) -> None:
    cut = len(steps) // 2
    a = DeviceOfflineRule()
    feed(a, steps[:cut])
    state = json.loads(json.dumps(a.snapshot()))
    restart = _ts(steps[cut]) + timedelta(hours=2)
    rules = []
    for _ in range(2):
        r = DeviceOfflineRule()
        r.restore(copy.deepcopy(state))
        r.resume(restart)
        rules.append(r)
    later = [s for s in steps[cut:] if _ts(s) >= restart]
    assert feed(rules[0], later) == feed(rules[1], later)


def scramble(state: object) -> None:
    """Empty every list and dict inside ``state``, innermost first."""
    if isinstance(state, dict):
        for v in state.values():
            scramble(v)
        state.clear()
    elif isinstance(state, list):
        for v in state:
            scramble(v)
        state.clear()


def test_every_rule_kind_in_alerts_is_covered() -> None:
    """A new rule module must join this contract: fail if one is left out."""
    import importlib
    import inspect
    import pkgutil

    import alerts

    kinds = set()
    for mod in pkgutil.iter_modules(alerts.__path__):
        module = importlib.import_module(f"alerts.{mod.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or getattr(cls, "_is_protocol", False):
                continue
            if all(hasattr(cls, m) for m in ("update", "advance", "snapshot", "restore")):
                kinds.add(cls.__name__)
    covered = {type(make()).__name__ for make in FACTORIES.values()}
    assert kinds - {"MinuteRule"} <= covered, kinds - covered
