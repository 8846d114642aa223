"""Device offline: nothing heard from the device for several expected reporting intervals.

Silence is the signal, so the rule fires from ``advance`` (or from the next reading,
which first settles what fell due before it).  An episode opens at
``last_seen + silence_s`` -- the instant it fell due, whatever the engine's tick --
with ``silence_s = max(missed_intervals * report_interval_s, min_silence_s)``.

``min_silence_s`` (15 minutes) is what devices really do, not only what they are
configured to do: out walking, a watch loses coverage for minutes at a time (an
underpass, a lift, a basement market) and uploads what it buffered as soon as it
is back.  In the simulated community such gaps last 3-12 minutes, and every one
of the 49 "offline" alarms a 10-minute threshold raised over 600 elder-days was
one of them, cleared by the buffered upload 5-145 s later.  A device that is
really gone stays gone: the incidents injected there are 30 minutes and more.

What counts as hearing from the device: any vitals, position or event, and a
``Status(online=True)`` (the device's own "I connected").  A ``Status(online=False)``
is the broker publishing the device's MQTT will, often replayed as a *retained*
message long after the fact: it is recorded (``detail["status_offline"]``) but is
neither a trigger nor a sign of life.  A ``power_off`` event is a sign of life that
explains the silence that follows: the episode then says "设备已关机".

Anything heard while an episode is open CLEARs it -- also a buffered upload of old
readings, which proves the device talks again (``detail["buffered"]``).  Its
timestamp is the rule's event clock (the latest time it has seen), never earlier
than the alarm it clears.

**Restarts.**  After the engine restores this rule from a snapshot, or starts it
fresh, it must call ``resume(now)``: nothing then fires before ``now + grace_s``
(default twice the silence threshold), and only if the device is still silent
then.  Without it every device whose last message predates the downtime would be
"offline" at once -- the flood of alarms the field notes warn about.

>>> from datetime import datetime, timedelta, timezone
>>> from protocol.messages import Vitals
>>> t0 = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
>>> rule = DeviceOfflineRule()
>>> rule.update(Vitals("w1", 1, t0, hr=70))
[]
>>> rule.advance(t0 + timedelta(minutes=14, seconds=59))
[]
>>> [(f.action.value, f.message, f.ts.minute) for f in rule.advance(t0 + timedelta(hours=1))]
[('raise', '设备离线：15 分钟未收到任何消息', 15)]
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alerts.core import Action, Finding, Severity
from protocol.messages import Event, Reading, Status


@dataclass(frozen=True, slots=True)
class OfflineSettings:
    """Per-device settings: how often it should report, and how much silence is too much."""

    report_interval_s: float = 60.0  # the device's configured reporting interval
    missed_intervals: int = 3  # this many intervals with nothing heard -> offline
    min_silence_s: float = 900.0  # never sooner: coverage gaps on a walk last minutes
    grace_s: float | None = None  # after resume(now); None: 2 x silence_s
    reraise_minutes: float | None = 60.0  # reminder period while silent; None: no reminders

    @property
    def silence_s(self) -> float:
        return max(self.missed_intervals * self.report_interval_s, self.min_silence_s)

    @property
    def grace(self) -> float:
        return 2 * self.silence_s if self.grace_s is None else self.grace_s


def is_device_message(reading: Reading) -> bool:
    """Whether the reading is the device speaking (a will published by the broker is not)."""
    return not isinstance(reading, Status) or reading.online


class DeviceOfflineRule:
    """One device's offline rule (kind ``device_offline``, MEDIUM)."""

    kind = "device_offline"

    def __init__(self, settings: OfflineSettings | None = None) -> None:
        self.settings = settings or OfflineSettings()
        self._st: dict[str, Any] = {
            "last_seen": None,  # latest event time heard from the device
            "since": None,  # silence is counted from here: last_seen, or a resume() time
            "clock": None,  # latest event time seen at all (readings and advance)
            "hold_until": None,  # grace after resume(): nothing fires before this
            "status_offline": None,  # time of the latest will / retained "offline"
            "power_off": None,  # time of a power_off event not yet followed by life
            "open": None,  # open episode: {"t0", "last_raise"}
        }

    # --- the Rule protocol ----------------------------------------------------------

    def update(self, reading: Reading) -> list[Finding]:
        t = reading.ts.timestamp()
        out = self._timeouts(t)
        st = self._st
        if not is_device_message(reading):
            st["status_offline"] = t
            return out
        last = st["last_seen"]
        if isinstance(reading, Event) and reading.type == "power_off":
            st["power_off"] = t
        elif st["power_off"] is not None and t > st["power_off"]:
            st["power_off"] = None  # switched back on
        if st["status_offline"] is not None and t > st["status_offline"]:
            st["status_offline"] = None
        st["last_seen"] = t if last is None else max(last, t)
        # Alive as of this reading's stamp -- or, if we had declared it offline, as of
        # now: a buffered upload of old readings proves it talks *now*, and counting
        # from their stamps would declare it offline again on the next tick.
        alive = t if st["open"] is None else max(t, st["clock"])
        st["since"] = alive if st["since"] is None else max(st["since"], alive)
        if st["open"] is not None:
            out.append(self._clear(t))
        return out

    def advance(self, now: datetime) -> list[Finding]:
        return self._timeouts(now.timestamp())

    def resume(self, now: datetime) -> None:
        """Start the restart grace period: call after ``restore`` and on start.

        No offline finding fires before ``now + grace`` (reminders of an episode
        already open included), and one fires then only if the device is still
        silent.  A device never heard from has its silence counted from ``now``.
        """
        t = now.timestamp()
        st = self._st
        st["hold_until"] = t + self.settings.grace
        if st["since"] is None:
            st["since"] = t
        st["clock"] = t if st["clock"] is None else max(st["clock"], t)

    def snapshot(self) -> dict[str, Any]:
        return _copied(self._st)

    def restore(self, state: dict[str, Any]) -> None:
        self._st = _copied(state)

    # --- internals ------------------------------------------------------------------

    def _timeouts(self, now: float) -> list[Finding]:
        st = self._st
        st["clock"] = now if st["clock"] is None else max(st["clock"], now)
        last = st["since"]
        if last is None:
            return []  # never heard of, never resumed: nothing to be silent against
        hold = st["hold_until"] or -1.0
        ep = st["open"]
        if ep is None:
            due = max(last + self.settings.silence_s, hold)
            if now < due:
                return []
            st["open"] = {"t0": due, "last_raise": due}
            return [self._raise(due, "open", after_restart=due == hold)]
        period = self.settings.reraise_minutes
        if period is None or now < max(ep["last_raise"] + period * 60, hold):
            return []
        ep["last_raise"] = now  # one reminder per call, stamped now: no catch-up burst
        return [self._raise(now, "reraise", after_restart=False)]

    def _detail(self, episode: str) -> dict[str, Any]:
        st = self._st
        return {
            "episode": episode,
            "last_seen": _iso(st["last_seen"]),
            "silence_s": self.settings.silence_s,
            "report_interval_s": self.settings.report_interval_s,
            "missed_intervals": self.settings.missed_intervals,
            "status_offline": _iso(st["status_offline"]),
            "power_off": _iso(st["power_off"]),
        }

    def _raise(self, t: float, episode: str, *, after_restart: bool) -> Finding:
        minutes = (t - self._st["since"]) / 60
        what = "设备已关机" if self._st["power_off"] is not None else "设备离线"
        return Finding(
            kind=self.kind,
            severity=Severity.MEDIUM,
            ts=_dt(t),
            message=f"{what}：{minutes:.0f} 分钟未收到任何消息",
            value=round(minutes, 1),
            detail={**self._detail(episode), "after_restart": after_restart},
        )

    def _clear(self, t: float) -> Finding:
        st = self._st
        ep = st["open"]
        st["open"] = None
        when = max(t, st["clock"])
        buffered = when - t > self.settings.silence_s  # it waited in the device
        note = "（补传离线期间数据）" if buffered else ""
        return Finding(
            kind=self.kind,
            severity=Severity.MEDIUM,
            ts=_dt(when),
            message=f"设备恢复通信{note}",
            action=Action.CLEAR,
            value=round((when - ep["t0"]) / 60, 1),
            detail={**self._detail("clear"), "buffered": buffered},
        )


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _iso(t: float | None) -> str | None:
    return None if t is None else _dt(t).isoformat()


def _copied(state: dict[str, Any]) -> dict[str, Any]:
    # A deep copy of plain JSON-shaped state; a pickle round trip is several times
    # faster than ``copy.deepcopy`` and the fast path moves states at every hand-over.
    return pickle.loads(pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
