"""Personal baseline drift: the elder's own resting values per hour of day, CUSUM-style.

Every local clock hour with enough at-rest minutes (no steps for a while) yields one
*resting value*: the median of its at-rest samples.  It is compared with the same
elder's resting values at that hour of day (and the neighbouring hours) over the
last ``window_days``: median and MAD, never mean and SD, so a feverish night or a
loose strap in the history does not move the baseline much.  The robust z-score,
capped at ``z_cap``, feeds a one-sided upper CUSUM

    S = max(0, S + z - k)

which raises when S reaches ``h``.  A shift of +15 bpm is 3-5 robust SDs and crosses
``h = 24`` within about a day of resting hours; a single bad night does not.  S is
capped at ``cap_factor * h`` so that, once the elder is back to normal, the episode
clears after a bounded time (about ``cap_factor * h / k`` resting hours) however long
the drift lasted.

The score is computed before the hour is learned (test-then-train), and hours that
look abnormal (``z > protect_z``) are not learned, so a drift does not teach itself
into the baseline; after ``adapt_after_days`` of an open episode the new level is
accepted as the elder's new normal and the rule clears as the baseline catches up.

Severity: low at ``h``, medium at ``medium_factor * h`` (a longer or larger drift).
One RAISE per episode, a reminder every ``reraise_hours``, CLEAR when S is back to 0.

>>> BaselineSettings().h
24.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from alerts.core import Action, Finding, Severity
from alerts.vitals_rule import Activity, ActivitySettings, worn_change
from protocol.messages import Event, Reading, Vitals

_HOUR = 3600


@dataclass(frozen=True, slots=True)
class BaselineSettings:
    """Per-elder settings of the baseline-drift rule (defaults: resting heart rate)."""

    param: str = "hr"  # a numeric Vitals field
    utc_offset_hours: float = 8.0  # the elder's local time (China: UTC+8, no DST)
    window_days: int = 28
    min_days: int = 7  # distinct days of history before anything is scored
    neighbour_hours: int = 1  # pool hour-of-day h-1..h+1: sparse data, smooth circadian
    min_rest_minutes: int = 10  # at-rest minutes for an hour to have a resting value
    min_scale: float = 3.0  # floor of the robust SD (bpm): days-alike elders are not fragile
    z_cap: float = 4.0  # one wild hour adds at most z_cap - k
    k: float = 1.0  # CUSUM allowance, in robust SDs
    h: float = 24.0  # CUSUM decision level
    medium_factor: float = 2.0
    cap_factor: float = 2.5  # S <= cap_factor * h: a long drift clears in bounded time
    protect_z: float = 3.0  # hours above this are not learned into the baseline
    adapt_after_days: int = 7  # an episode this old is the new normal: learn again
    reraise_hours: int = 24
    unit: str = "次/分"
    label: str = "静息心率"
    # Stricter than the pulse rules: a resting baseline needs truly resting minutes,
    # and a value of unknown activity is not learned.
    activity: ActivitySettings = field(
        default_factory=lambda: ActivitySettings(lookback_minutes=15, assume_rest_if_unknown=False)
    )


def robust_stats(values: list[float]) -> tuple[float, float]:
    """Median and MAD scaled to a normal SD (x 1.4826).

    >>> robust_stats([70.0, 71.0, 72.0, 73.0, 200.0])
    (72.0, 1.4826)
    """
    s = sorted(values)
    n = len(s)
    med = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0
    dev = sorted(abs(v - med) for v in s)
    mad = dev[n // 2] if n % 2 else (dev[n // 2 - 1] + dev[n // 2]) / 2.0
    return med, 1.4826 * mad


def cusum_step(s: float, z: float, k: float) -> float:
    """One step of the upper CUSUM.

    >>> cusum_step(0.0, 3.0, 1.0), cusum_step(1.0, -2.0, 1.0)
    (2.0, 0.0)
    """
    return max(0.0, s + z - k)


class BaselineDriftRule:
    """Drift of the elder's resting value from their own baseline (kind ``baseline_drift``)."""

    kind = "baseline_drift"
    accepts: ClassVar[frozenset[type]] = frozenset({Vitals, Event})  # see MinuteRule.accepts

    def __init__(self, settings: BaselineSettings | None = None) -> None:
        self.settings = settings or BaselineSettings()
        self.activity = Activity(self.settings.activity)
        self._offset = int(self.settings.utc_offset_hours * _HOUR)
        self.worn = True
        self.hour: int | None = None  # local hour index (hours since epoch, local clock)
        self.values: list[float] = []  # at-rest samples of the open hour
        self.minutes = 0  # distinct at-rest minutes in the open hour
        self.last_minute = -1
        self.history: list[list[list[float]]] = [[] for _ in range(24)]  # [day, value]
        self.s = 0.0
        self.active = False
        self.severity = ""
        self.since_hour: int | None = None
        self.last_raise_hour: int | None = None
        self.recent: list[list[float]] = []  # [hour, value, baseline] of the last 24 h
        self.rise_hour: int | None = None  # first scored hour of the current S > 0 run

    # -- Rule protocol --
    def update(self, reading: Reading) -> list[Finding]:
        change = worn_change(reading)
        if change is not None:
            self.worn = change
        if not isinstance(reading, Vitals):
            return []
        t = reading.ts.timestamp()
        out = self._roll(t)
        self.activity.observe(t, reading.steps)
        v = getattr(reading, self.settings.param)
        if v is None or not self.worn or not self.activity.at_rest(t):
            return out
        local = int(t) + self._offset
        hour = local // _HOUR
        if self.hour is None:
            self.hour = hour
        elif hour < self.hour:
            return out  # late sample of a closed hour
        self.values.append(float(v))
        minute = local // 60
        if minute != self.last_minute:
            self.last_minute = minute
            self.minutes += 1
        return out

    def advance(self, now: datetime) -> list[Finding]:
        return self._roll(now.timestamp())

    def next_due(self) -> float | None:
        """Earliest event time (epoch s) at which ``advance`` can act: the open hour's end."""
        return None if self.hour is None else float((self.hour + 1) * _HOUR - self._offset)

    def snapshot(self) -> dict[str, Any]:
        # Fresh containers throughout, built by hand (``copy.deepcopy`` is slow).
        return {
            "activity": self.activity.snapshot(),
            "worn": self.worn,
            "hour": self.hour,
            "values": list(self.values),
            "minutes": self.minutes,
            "last_minute": self.last_minute,
            "history": [[list(e) for e in h] for h in self.history],
            "s": self.s,
            "active": self.active,
            "severity": self.severity,
            "since_hour": self.since_hour,
            "last_raise_hour": self.last_raise_hour,
            "recent": [list(e) for e in self.recent],
            "rise_hour": self.rise_hour,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.activity.restore(state["activity"])
        self.worn = state["worn"]
        self.hour = state["hour"]
        self.values = list(state["values"])
        self.minutes = state["minutes"]
        self.last_minute = state["last_minute"]
        self.history = [[list(e) for e in h] for h in state["history"]]
        self.s = state["s"]
        self.active = state["active"]
        self.severity = state["severity"]
        self.since_hour = state["since_hour"]
        self.last_raise_hour = state["last_raise_hour"]
        self.recent = [list(e) for e in state["recent"]]
        self.rise_hour = state["rise_hour"]

    # -- internals --
    def _roll(self, t: float) -> list[Finding]:
        if self.hour is None or (int(t) + self._offset) // _HOUR <= self.hour:
            return []
        hour, values, minutes = self.hour, self.values, self.minutes
        self.hour, self.values, self.minutes, self.last_minute = None, [], 0, -1
        if minutes < self.settings.min_rest_minutes:
            return []
        values.sort()
        n = len(values)
        x = values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2.0
        return self._score_hour(hour, x)

    def _pool(self, hour: int) -> tuple[list[float], int]:
        s = self.settings
        day, hod = divmod(hour, 24)
        oldest = day - s.window_days
        pool: list[float] = []
        days: set[float] = set()
        for dh in range(-s.neighbour_hours, s.neighbour_hours + 1):
            for d, v in self.history[(hod + dh) % 24]:
                if oldest <= d < day:
                    pool.append(v)
                    days.add(d)
        return pool, len(days)

    def _learn(self, hour: int, x: float) -> None:
        day, hod = divmod(hour, 24)
        h = self.history[hod]
        h.append([float(day), x])
        oldest = day - self.settings.window_days
        while h and h[0][0] < oldest:
            h.pop(0)

    def _score_hour(self, hour: int, x: float) -> list[Finding]:
        s = self.settings
        pool, ndays = self._pool(hour)
        if ndays < s.min_days:
            self._learn(hour, x)  # warming up: everything is learned
            return []
        med, sd = robust_stats(pool)
        z = (x - med) / max(sd, s.min_scale)
        z_capped = min(max(z, -s.z_cap), s.z_cap)
        was_zero = self.s <= 0.0
        self.s = min(cusum_step(self.s, z_capped, s.k), s.cap_factor * s.h)
        if self.s <= 0.0:
            self.rise_hour = None
        elif was_zero:
            self.rise_hour = hour
        adapting = (
            self.active
            and self.since_hour is not None
            and hour - self.since_hour >= s.adapt_after_days * 24
        )
        if z <= s.protect_z or adapting:
            self._learn(hour, x)
        self.recent.append([float(hour), x, med])
        while self.recent and self.recent[0][0] <= hour - 24:
            self.recent.pop(0)
        return self._decide(hour)

    def _decide(self, hour: int) -> list[Finding]:
        s = self.settings
        ts = datetime.fromtimestamp((hour + 1) * _HOUR - self._offset, UTC)
        level = "medium" if self.s >= s.medium_factor * s.h else "low"
        if not self.active:
            if self.s < s.h:
                return []
            self.active, self.since_hour = True, hour
            return [self._raise("open", level, hour, ts)]
        if self.s <= 0.0:
            self.active, self.since_hour, self.severity = False, None, ""
            return [self._clear(ts)]
        if level == "medium" and self.severity == "low":
            return [self._raise("escalate", level, hour, ts)]
        assert self.last_raise_hour is not None
        if self.s >= s.h and hour - self.last_raise_hour >= s.reraise_hours:
            return [self._raise("reraise", level, hour, ts)]
        return []

    def _delta(self) -> tuple[float, float, float]:
        """Median resting value, baseline and shift over the hours that raised S.

        Only the last 24 h, and only since S last left 0: the hours before the drift
        began would dilute the size of the shift staff are told about.
        """
        since = self.rise_hour if self.rise_hour is not None else -1
        rows = [e for e in self.recent if e[0] >= since] or self.recent
        xs = sorted(e[1] for e in rows)
        bs = sorted(e[2] for e in rows)
        ds = sorted(e[1] - e[2] for e in rows)
        return xs[len(xs) // 2], bs[len(bs) // 2], ds[len(ds) // 2]

    def _raise(self, episode: str, level: str, hour: int, ts: datetime) -> Finding:
        s = self.settings
        self.severity, self.last_raise_hour = level, hour
        x, b, delta = self._delta()
        sign = "升高" if delta >= 0 else "降低"
        message = (
            f"{s.label}较个人基线{sign} {abs(delta):.0f} {s.unit}（近24小时 {x:.0f}，基线 {b:.0f}）"
        )
        detail = {
            "episode": episode,
            "param": s.param,
            "cusum": round(self.s, 2),
            "resting_24h": x,
            "baseline": b,
            "since": datetime.fromtimestamp(
                (self.since_hour or hour) * _HOUR - self._offset, UTC
            ).isoformat(),
        }
        severity = Severity.MEDIUM if level == "medium" else Severity.LOW
        return Finding(self.kind, severity, ts, message, Action.RAISE, round(delta, 1), detail)

    def _clear(self, ts: datetime) -> Finding:
        s = self.settings
        x, b, delta = self._delta()
        return Finding(
            self.kind,
            Severity.LOW,
            ts,
            f"{s.label}已回到个人基线（{x:.0f}，基线 {b:.0f}）",
            Action.CLEAR,
            round(delta, 1),
            {"episode": "clear", "param": s.param, "cusum": 0.0},
        )
