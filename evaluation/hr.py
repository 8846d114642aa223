"""False-alarm burden of the heart-rate rules on real smartwatch recordings.

``run(data_dir)`` streams every person's heart-rate samples (with the step count a
watch would report at that moment) through that person's heart-rate rules
(``alerts.heart_rate.heart_rate_rules``: ``news2_hr``, ``hr_activity``,
``baseline_drift``) in event-time order at accelerated time, ticking ``advance``
through gaps, and counts what staff would see:

- an *alert* is an episode a rule opens (RAISE with ``detail["episode"] == "open"``);
  reminders and escalations of an open episode are counted apart as ``reminders``,
  because the alert lifecycle merges them into the open alert;
- a *person-day* is a local calendar day with at least one heart-rate sample
  (``worn_days``, minutes with a sample / 1440, is reported too).

The floor the detection issue sets: at most ``FLOOR`` alerts per person-day for the
heart-rate rules together.  Some of these people had COVID-19 during the recording,
so a few true alerts are expected; every episode is listed per person with its
local date so that they can be checked against the recording.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from alerts.baseline import BaselineSettings
from alerts.core import Action, Finding, Rule
from alerts.heart_rate import HeartRateSettings, heart_rate_rules
from alerts.vitals_rule import VitalsSettings
from evaluation.smartwatch import DAY, find_users, load_user, vitals_stream

FLOOR = 0.1
HR_KINDS: tuple[str, ...] = ("news2_hr", "hr_activity", "baseline_drift")
UTC_OFFSET_HOURS = 8.0  # replay clock; the rules' default local time (see smartwatch.py)
_TICK = timedelta(minutes=1)


def _local(ts: datetime) -> datetime:
    return (ts + timedelta(hours=UTC_OFFSET_HOURS)).replace(tzinfo=None)


def _record(f: Finding) -> dict[str, Any]:
    local = _local(f.ts)
    return {
        "kind": f.kind,
        "action": f.action.value,
        "episode": f.detail.get("episode", "open" if f.action is Action.RAISE else "clear"),
        "severity": f.severity.value,
        "local_time": local.isoformat(timespec="minutes"),
        "date": local.date().isoformat(),
        "value": f.value,
        "message": f.message,
    }


def replay(
    user: str, data_dir: Path, rules_factory: Callable[[], list[Rule]] = heart_rate_rules
) -> dict[str, Any]:
    """Stream one person's recording through fresh rules; return findings and exposure."""
    hr, steps = load_user(data_dir, user)
    rules = rules_factory()
    findings: list[dict[str, Any]] = []
    last: datetime | None = None
    for reading in vitals_stream(user, hr, steps, utc_offset_hours=UTC_OFFSET_HOURS):
        # The shell ticks every rule about once a minute of event time; through a gap
        # a single tick to just before the next reading is equivalent.
        if last is not None and reading.ts - last > _TICK:
            for rule in rules:
                findings.extend(_record(f) for f in rule.advance(reading.ts - _TICK))
        for rule in rules:
            found = rule.update(reading)
            if found:
                findings.extend(_record(f) for f in found)
        last = reading.ts
    if last is not None:
        for rule in rules:
            findings.extend(_record(f) for f in rule.advance(last + timedelta(hours=2)))
    days = np.unique(hr.t // DAY)
    return {
        "user": user,
        "readings": len(hr),
        "person_days": int(days.size),
        "worn_days": round(float(np.unique(hr.t // 60).size) / 1440.0, 2),
        "first_day": str(np.datetime64(int(days[0]), "D")) if days.size else None,
        "last_day": str(np.datetime64(int(days[-1]), "D")) if days.size else None,
        "findings": findings,
    }


def _episodes(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open episodes paired with their clear, in time order."""
    open_: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for f in findings:
        kind = f["kind"]
        if f["action"] == Action.RAISE.value and f["episode"] == "open":
            ep = {k: f[k] for k in ("kind", "severity", "local_time", "date", "value", "message")}
            ep |= {"end": None, "reminders": 0}
            open_[kind] = ep
            out.append(ep)
        elif f["action"] == Action.RAISE.value and kind in open_:
            open_[kind]["reminders"] += 1
            if f["episode"] == "escalate":
                open_[kind]["severity"] = f["severity"]
        elif f["action"] == Action.CLEAR.value and kind in open_:
            open_.pop(kind)["end"] = f["local_time"]
    return out


def _summarise(per_user: list[dict[str, Any]], kinds: Sequence[str]) -> dict[str, Any]:
    person_days = sum(u["person_days"] for u in per_user)
    worn_days = sum(u["worn_days"] for u in per_user)

    def rate(n: int, days: float) -> float:
        return round(n / days, 4) if days else 0.0

    per_rule: dict[str, dict[str, Any]] = {}
    per_person: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        per_rule[kind] = {"alerts": 0, "reminders": 0, "clears": 0}
    for u in per_user:
        eps = _episodes(u["findings"])
        counts = {k: sum(1 for e in eps if e["kind"] == k) for k in kinds}
        for f in u["findings"]:
            r = per_rule.setdefault(f["kind"], {"alerts": 0, "reminders": 0, "clears": 0})
            if f["action"] == Action.CLEAR.value:
                r["clears"] += 1
            elif f["episode"] == "open":
                r["alerts"] += 1
            else:
                r["reminders"] += 1
        alerts = sum(counts.values())
        per_person[u["user"]] = {
            "person_days": u["person_days"],
            "worn_days": u["worn_days"],
            "first_day": u["first_day"],
            "last_day": u["last_day"],
            "readings": u["readings"],
            "alerts": alerts,
            "alerts_per_person_day": rate(alerts, u["person_days"]),
            "per_rule": counts,
            "episodes": eps,
        }
    for r in per_rule.values():
        r["alerts_per_person_day"] = rate(r["alerts"], person_days)
        r["alerts_per_worn_day"] = rate(r["alerts"], worn_days)
    alerts = sum(per_rule[k]["alerts"] for k in kinds)
    per_day = rate(alerts, person_days)
    return {
        "dataset": "smartwatch-hr",
        "rules": list(kinds),
        "users": [u["user"] for u in per_user],
        "readings": sum(u["readings"] for u in per_user),
        "person_days": person_days,
        "worn_days": round(worn_days, 2),
        "alerts": alerts,
        "alerts_per_person_day": per_day,
        "alerts_per_worn_day": rate(alerts, worn_days),
        "floor": FLOOR,
        "meets_floor": per_day <= FLOOR,
        "per_rule": per_rule,
        "per_person": per_person,
    }


def run(
    data_dir: Path, *, users: Sequence[str] | None = None, workers: int | None = None
) -> dict[str, Any]:
    """Evaluate the heart-rate rules on every person in ``data_dir`` (or ``users``).

    People are replayed in ``workers`` processes (default: one per CPU); one person
    stays in one process, as one elder stays on one worker in production, so the
    result does not depend on ``workers``.
    """
    started = time.perf_counter()
    data_dir = Path(data_dir)
    chosen = list(users) if users is not None else find_users(data_dir)
    if not chosen:
        raise FileNotFoundError(f"no <USER>_hr.csv[.zip] with a steps file in {data_dir}")
    workers = workers if workers is not None else os.cpu_count() or 1
    if workers > 1 and len(chosen) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(chosen))) as pool:
            per_user = list(pool.map(replay, chosen, [data_dir] * len(chosen)))
    else:
        per_user = [replay(u, data_dir) for u in chosen]
    result = _summarise(per_user, HR_KINDS)
    result["settings"] = {  # the defaults every person was replayed with
        "vitals": asdict(VitalsSettings()),
        "heart_rate": asdict(HeartRateSettings()),
        "baseline": asdict(BaselineSettings()),
        "replay_utc_offset_hours": UTC_OFFSET_HOURS,
    }
    result["data_dir"] = str(data_dir)
    result["runtime_s"] = round(time.perf_counter() - started, 1)
    result["generated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return result


def render_table(result: dict[str, Any]) -> Any:
    """A rich renderable: the summary per rule, then per person with every episode."""
    from rich.console import Group
    from rich.table import Table

    summary = Table(
        title=(
            f"心率规则误报负担 — {len(result['users'])} 人, {result['person_days']} 人日 "
            f"(佩戴 {result['worn_days']} 日), {result['readings']:,} 条读数, "
            f"{result['runtime_s']} s"
        )
    )
    for col in ("rule", "alerts", "per person-day", "per worn day", "reminders", "clears"):
        summary.add_column(col, justify="left" if col == "rule" else "right")
    for kind, r in result["per_rule"].items():
        summary.add_row(
            kind,
            str(r["alerts"]),
            f"{r['alerts_per_person_day']:.3f}",
            f"{r['alerts_per_worn_day']:.3f}",
            str(r["reminders"]),
            str(r["clears"]),
        )
    verdict = "meets" if result["meets_floor"] else "FAILS"
    summary.add_row(
        "heart-rate rules together",
        str(result["alerts"]),
        f"{result['alerts_per_person_day']:.3f}",
        f"{result['alerts_per_worn_day']:.3f}",
        "",
        f"floor ≤ {result['floor']}: {verdict}",
        style="bold",
    )
    people = Table(title="按人 (episodes, local time of the recording)")
    for col in ("user", "days", "range", "alerts", "/day", "episodes"):
        people.add_column(col, justify="right" if col in ("days", "alerts", "/day") else "left")
    for user, p in result["per_person"].items():
        eps = "\n".join(
            f"{e['local_time']} {e['kind']} {e['severity']}: {e['message']}"
            + (f" → {e['end']}" if e["end"] else "")
            for e in p["episodes"]
        )
        people.add_row(
            user,
            str(p["person_days"]),
            f"{p['first_day']} … {p['last_day']}",
            str(p["alerts"]),
            f"{p['alerts_per_person_day']:.3f}",
            eps or "—",
        )
    return Group(summary, people)
