"""Fall: the device's fall event, judged on its accelerometer burst, then watched.

The device's trigger is cheap and permissive (it fires on jogging and on sitting down
hard), so the server judges the burst it sends (``alerts.fall_features`` +
``alerts.fall_model``) and raises *at once* -- no waiting for a confirmation window:

- burst judged a fall -> RAISE ``fall`` CRITICAL (``verdict`` "confirmed");
- no burst, or one too short to judge -> RAISE anyway ("trusted"): a fall event is
  evidence enough, and a missed fall costs more than a false alarm;
- burst judged not a fall -> no alarm.  A LOW ``fall_dismissed`` finding carries the
  verdict, probability, features and model version, so every dismissal can be audited
  (and staff can see a device that cries wolf) without anyone being paged; its
  ``detail["episode"]`` is "note", and it never touches an open fall episode.

What follows changes the episode (each a finding on the same ``fall`` kind, so the
alert lifecycle updates the one open alert):

- ``cancel`` ("I'm OK") within ``confirm_window_s`` of the fall -> CLEAR (withdrawn);
  later -> RAISE HIGH "deescalate": the elder answered, staff should still call;
- ``moved_steps`` steps counted after the fall -> RAISE HIGH "deescalate": up and walking;
- neither for ``still_after_s`` -> RAISE CRITICAL "escalate", ``detail["note"]`` is
  "no movement since fall".

Steps are counted only between two readings both after the fall: a reading that
straddles it may carry the walk that led to it.

>>> from datetime import datetime, timedelta, timezone
>>> from protocol.messages import Event
>>> t = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
>>> rule = FallRule()
>>> [(f.action.value, f.detail["verdict"]) for f in rule.update(Event("w1", 1, t, "fall"))]
[('raise', 'trusted')]
>>> [f.action.value for f in rule.update(Event("w1", 2, t + timedelta(seconds=20), "cancel"))]
['clear']
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alerts.core import Action, Finding, Severity
from alerts.fall_features import burst_features
from alerts.fall_model import FallModel, default_model
from protocol.messages import Event, Reading, Vitals


@dataclass(frozen=True, slots=True)
class FallSettings:
    """Per-elder fall settings."""

    confirm_window_s: float = 60.0  # "I'm OK" this soon after the fall withdraws it
    still_after_s: float = 300.0  # no walking this long after the fall -> escalate
    moved_steps: int = 15  # steps after the fall that mean the elder is up and walking
    episode_s: float = 1800.0  # the rule then forgets the fall (the alert stays with staff)
    threshold: float | None = None  # burst probability that confirms; None: the model's own
    judge_burst: bool = True  # False: trust every device fall event as is


class FallRule:
    """One elder's fall rule.  ``model`` defaults to the shipped ``alerts/fall_model.json``."""

    kind = "fall"

    def __init__(self, settings: FallSettings | None = None, model: FallModel | None = None):
        self.settings = settings or FallSettings()
        self.model = model or default_model()
        self._steps: int | None = None  # last cumulative step count and its time
        self._steps_t: float | None = None
        self._ep: dict[str, Any] | None = None  # the open fall episode, plain data

    # --- the Rule protocol ----------------------------------------------------------

    def update(self, reading: Reading) -> list[Finding]:
        out = self._timeouts(reading.ts.timestamp())
        if isinstance(reading, Event):
            if reading.type == "fall":
                out += self._on_fall(reading)
            elif reading.type == "cancel":
                out += self._on_cancel(reading)
        elif isinstance(reading, Vitals) and reading.steps is not None:
            out += self._on_steps(reading.ts.timestamp(), reading.steps)
        return out

    def advance(self, now: datetime) -> list[Finding]:
        return self._timeouts(now.timestamp())

    def snapshot(self) -> dict[str, Any]:
        return {"steps": self._steps, "steps_t": self._steps_t, "episode": copy.deepcopy(self._ep)}

    def restore(self, state: dict[str, Any]) -> None:
        self._steps = state["steps"]
        self._steps_t = state["steps_t"]
        self._ep = copy.deepcopy(state["episode"])

    # --- readings -------------------------------------------------------------------

    def _on_fall(self, ev: Event) -> list[Finding]:
        verdict, reason, prob, feats = self._judge(ev)
        p = None if prob is None else round(prob, 4)
        judged: dict[str, Any] = {
            "verdict": verdict,
            "probability": p,
            "threshold": self._threshold(),
            "features": feats,
            "model": self.model.version,
            "seq": ev.seq,
        }
        if verdict == "dismissed":
            return [
                Finding(
                    kind="fall_dismissed",
                    severity=Severity.LOW,
                    ts=ev.ts,
                    message="设备报告跌倒，加速度判断为非跌倒（已记录，未报警）",
                    value=p,
                    detail={"episode": "note", **judged},
                )
            ]
        episode = "open" if self._ep is None else "reraise"
        self._ep = {
            "t0": ev.ts.timestamp(),
            "steps": 0,  # steps counted since the fall
            "moved": False,
            "still": False,  # "no movement since fall" already said
            "late_cancel": False,
        }
        if verdict == "confirmed":
            message = f"疑似跌倒：加速度确认（置信度 {prob:.2f}）"
        elif reason == "no_burst":
            message = "设备报告跌倒（无加速度数据，按跌倒处理）"
        else:
            message = "设备报告跌倒（加速度数据过短无法判断，按跌倒处理）"
        return [
            Finding(
                kind=self.kind,
                severity=Severity.CRITICAL,
                ts=ev.ts,
                message=message,
                value=p,
                detail={
                    "episode": episode,
                    "reason": reason,
                    "fall_ts": _iso(ev.ts.timestamp()),
                    **judged,
                },
            )
        ]

    def _on_cancel(self, ev: Event) -> list[Finding]:
        ep = self._ep
        if ep is None:
            return []
        after = ev.ts.timestamp() - ep["t0"]
        if after < 0:  # stamped before the fall: it is not about this fall
            return []
        if after <= self.settings.confirm_window_s:
            self._ep = None
            return [
                Finding(
                    kind=self.kind,
                    severity=Severity.CRITICAL,
                    ts=ev.ts,
                    message="老人已按“我没事”，跌倒报警撤回",
                    action=Action.CLEAR,
                    detail={
                        "episode": "clear",
                        "reason": "cancelled",
                        "seconds_after_fall": after,
                        "fall_ts": _iso(ep["t0"]),
                    },
                )
            ]
        if ep["late_cancel"]:
            return []
        ep["late_cancel"] = True
        return [
            self._followup(
                ev.ts.timestamp(),
                Severity.HIGH,
                f"跌倒 {after / 60:.0f} 分钟后老人按了“我没事”，请电话核实",
                {"episode": "deescalate", "reason": "late_cancel", "seconds_after_fall": after},
            )
        ]

    def _on_steps(self, t: float, steps: int) -> list[Finding]:
        if self._steps_t is not None and t < self._steps_t:
            return []  # older than what we know: ordering is the shell's job, be safe
        prev, prev_t = self._steps, self._steps_t
        self._steps, self._steps_t = steps, t
        ep = self._ep
        if ep is None or ep["moved"] or prev is None or prev_t is None or prev_t < ep["t0"]:
            return []
        # A counter that went down is a new day (or a device reset): all of it is new.
        ep["steps"] += steps - prev if steps >= prev else steps
        if ep["steps"] < self.settings.moved_steps:
            return []
        ep["moved"] = True
        return [
            self._followup(
                t,
                Severity.HIGH,
                f"跌倒后已检测到行走（{ep['steps']} 步），紧急程度降低",
                {"episode": "deescalate", "reason": "moved", "steps_since_fall": ep["steps"]},
            )
        ]

    # --- time -----------------------------------------------------------------------

    def _timeouts(self, now: float) -> list[Finding]:
        ep = self._ep
        if ep is None:
            return []
        out = []
        due = ep["t0"] + self.settings.still_after_s
        if now >= due and not (ep["moved"] or ep["still"] or ep["late_cancel"]):
            ep["still"] = True
            minutes = self.settings.still_after_s / 60
            out.append(
                self._followup(
                    due,
                    Severity.CRITICAL,
                    f"跌倒后 {minutes:.0f} 分钟无活动",
                    {
                        "episode": "escalate",
                        "reason": "no_movement",
                        "note": "no movement since fall",
                        "minutes": minutes,
                        "steps_since_fall": ep["steps"],
                    },
                )
            )
        if now >= ep["t0"] + self.settings.episode_s:
            self._ep = None
        return out

    # --- helpers --------------------------------------------------------------------

    def _judge(self, ev: Event) -> tuple[str, str | None, float | None, dict[str, float] | None]:
        """(verdict, why it was not judged, probability, features)."""
        if ev.accel is None or not self.settings.judge_burst:
            return "trusted", "no_burst", None, None
        f = burst_features(ev.accel.g, ev.accel.hz)
        if f is None:
            return "trusted", "short_burst", None, None
        p = self.model.probability(f)
        return ("confirmed" if p >= self._threshold() else "dismissed"), None, p, f.as_dict()

    def _threshold(self) -> float:
        t = self.settings.threshold
        return self.model.threshold if t is None else t

    def _followup(
        self, t: float, severity: Severity, message: str, detail: dict[str, Any]
    ) -> Finding:
        assert self._ep is not None
        return Finding(
            kind=self.kind,
            severity=severity,
            ts=datetime.fromtimestamp(t, UTC),
            message=message,
            detail={**detail, "fall_ts": _iso(self._ep["t0"])},
        )


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()
