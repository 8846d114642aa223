"""How well falls are caught, and how rarely daily life raises one, on SisFall.

``run(sisfall_dir)`` plays every recording as a wearable would live it:

1. the device's trigger (``evaluation.device``: 50 Hz, |a| >= 1.8 g, peak-hold) sends a
   ``fall`` event with 2 s before and 6 s after the impact; a recording it never fires
   on is a device-level negative (a fall it misses is a false negative);
2. each event goes, in event time, through that elder's ``FallRule``, which judges the
   burst and raises or dismisses;
3. a trial *alarms* when the rule raised ``fall`` at any time during it.

Sensitivity = fall trials that alarmed / fall trials; specificity = daily-activity
trials that did not alarm / daily-activity trials.  Detection delay = from the impact
to the moment the alarming event could reach the server (the device must first
collect the seconds after the impact).

Subject-wise, so that nothing is scored on a subject it learnt from: a subject the
shipped model (``alerts/fall_model.json``) was not trained on is scored with the
shipped model as is -- the honest figure for people we have not seen; a subject it was
trained on is scored with a model refitted, by the same recipe, on every *other*
subject of the folder (leave-one-subject-out).  ``folds`` in the result lists, per
subject, which model scored it and whom that model was trained on.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from rich.console import Group, RenderableType
from rich.table import Table

from alerts.core import Action
from alerts.fall import FallRule, FallSettings
from alerts.fall_features import FEATURE_NAMES
from alerts.fall_model import FallModel, default_model
from evaluation.device import TriggerSettings
from evaluation.fall_data import PlayedTrial, play_all, training_set
from evaluation.fall_training import train
from evaluation.sisfall import ACTIVITIES, find_trials, unpacked
from protocol.messages import AccelBurst, Event

FLOOR: Final = 0.97  # both sensitivity and specificity, per the detection issue
_T0: Final = datetime(2026, 1, 1, tzinfo=UTC)  # replay clock (any aware UTC time works)


@dataclass(frozen=True, slots=True)
class TrialOutcome:
    name: str
    subject: str
    code: str
    is_fall: bool
    bursts: int
    cut_off: int  # bursts lost because the recording ended
    fall_burst_sent: bool  # the device sent a burst around the recording's impact
    confirmed: int  # bursts judged falls
    dismissed: int
    trusted: int  # raised unjudged (burst too short)
    alarm: bool
    alarm_from_impact: bool  # the alarm came from the burst around the impact
    delay_s: float | None  # impact -> alarming event available to the server
    max_probability: float | None  # the most fall-like judged burst


def replay(pt: PlayedTrial, model: FallModel, trigger: TriggerSettings) -> TrialOutcome:
    """Feed one trial's device events through a fresh ``FallRule`` in event time."""
    rule = FallRule(FallSettings(), model)
    hz = trigger.hz
    counts: Counter[str] = Counter()
    alarm_burst = None
    probs: list[float] = []
    for seq, pb in enumerate(pt.bursts):
        b = pb.burst
        ev = Event(
            device_id=pt.trial.name,
            seq=seq,
            ts=_T0 + timedelta(seconds=b.peak_index / hz),
            type="fall",
            accel=AccelBurst(hz=hz, g=b.g.tolist()),
        )
        findings = rule.update(ev) + rule.advance(_T0 + timedelta(seconds=b.sent_index / hz))
        for f in findings:
            if f.kind in ("fall", "fall_dismissed") and f.detail.get("probability") is not None:
                probs.append(f.detail["probability"])
            if f.kind == "fall_dismissed":
                counts["dismissed"] += 1
            elif f.kind == "fall" and f.action is Action.RAISE and f.detail.get("verdict"):
                counts[f.detail["verdict"]] += 1
                if alarm_burst is None:
                    alarm_burst = pb
    rule.advance(_T0 + timedelta(seconds=pt.n_samples / hz + 3600))  # let every timer run
    delay = None
    if alarm_burst is not None and pt.trial.is_fall:
        delay = (alarm_burst.burst.sent_index - pt.impact_index) / hz
    return TrialOutcome(
        name=pt.trial.name,
        subject=pt.trial.subject,
        code=pt.trial.code,
        is_fall=pt.trial.is_fall,
        bursts=len(pt.bursts),
        cut_off=pt.cut_off,
        fall_burst_sent=any(pb.label for pb in pt.bursts),
        confirmed=counts["confirmed"],
        dismissed=counts["dismissed"],
        trusted=counts["trusted"],
        alarm=alarm_burst is not None,
        alarm_from_impact=alarm_burst is not None and alarm_burst.label is True,
        delay_s=delay,
        max_probability=max(probs, default=None),
    )


def run(
    sisfall_dir: Path, *, workers: int | None = None, trigger: TriggerSettings | None = None
) -> dict[str, Any]:
    """Evaluate device trigger + server confirmation on every trial under ``sisfall_dir``.

    ``sisfall_dir`` is the unpacked archive (any level) or the ``.tar.xz`` itself.
    """
    started = time.perf_counter()
    trigger = trigger or TriggerSettings()
    with unpacked(Path(sisfall_dir)) as root:
        trials = find_trials(root)
        if not trials:
            raise ValueError(f"no SisFall trial files under {sisfall_dir}")
        played = play_all(trials, trigger, workers)
    read_s = time.perf_counter() - started

    shipped = default_model()
    models: dict[str, FallModel] = {}
    folds = []
    for subject in sorted({t.subject for t in trials}):
        if subject not in shipped.trained_on:
            models[subject] = shipped
            folds.append(_fold(subject, "shipped", shipped))
            continue
        feats, labels, others = training_set(played, exclude=frozenset({subject}))
        if not any(labels) or all(labels):
            raise ValueError(
                f"cannot score {subject} subject-wise: the other subjects in the folder "
                "lack fall or non-fall bursts to train on"
            )
        models[subject] = train(feats, labels, others, version=f"loso-{subject}")
        folds.append(_fold(subject, "leave-one-subject-out", models[subject]))

    outcomes = [replay(pt, models[pt.trial.subject], trigger) for pt in played]
    result = _summarise(outcomes, trigger)
    result["folds"] = folds
    result["method"] = _method(trigger)
    result["runtime_s"] = {
        "unpack_read_and_trigger": round(read_s, 2),
        "total": round(time.perf_counter() - started, 2),
    }
    return result


def _fold(subject: str, how: str, model: FallModel) -> dict[str, Any]:
    assert subject not in model.trained_on  # the one promise this evaluation makes
    return {"held_out": subject, "model": how, "trained_on": list(model.trained_on)}


def _rate(k: int, n: int) -> float | None:
    return round(k / n, 4) if n else None


def _summarise(outcomes: list[TrialOutcome], trigger: TriggerSettings) -> dict[str, Any]:
    falls = [o for o in outcomes if o.is_fall]
    adls = [o for o in outcomes if not o.is_fall]
    tp = sum(o.alarm for o in falls)
    fp = sum(o.alarm for o in adls)

    per_activity: dict[str, Any] = {}
    for code in sorted({o.code for o in outcomes}):
        group = [o for o in outcomes if o.code == code]
        alarmed = sum(o.alarm for o in group)
        fall = code.startswith("F")
        per_activity[code] = {
            "activity": ACTIVITIES.get(code, ""),
            "fall": fall,
            "trials": len(group),
            "device_fired": sum(o.bursts > 0 for o in group),
            "bursts": sum(o.bursts for o in group),
            "alarmed": alarmed,
            **(
                {"tp": alarmed, "fn": len(group) - alarmed}
                if fall
                else {"fp": alarmed, "tn": len(group) - alarmed}
            ),
            "correct": _rate(alarmed if fall else len(group) - alarmed, len(group)),
        }

    per_subject: dict[str, Any] = {}
    by_subject: dict[str, list[TrialOutcome]] = defaultdict(list)
    for o in outcomes:
        by_subject[o.subject].append(o)
    for subject, group in sorted(by_subject.items()):
        f = [o for o in group if o.is_fall]
        d = [o for o in group if not o.is_fall]
        per_subject[subject] = {
            "falls": len(f),
            "detected": sum(o.alarm for o in f),
            "adls": len(d),
            "false_alarms": sum(o.alarm for o in d),
            "sensitivity": _rate(sum(o.alarm for o in f), len(f)),
            "specificity": _rate(len(d) - sum(o.alarm for o in d), len(d)),
        }

    delays = sorted(o.delay_s for o in falls if o.delay_s is not None)
    sensitivity = _rate(tp, len(falls))
    specificity = _rate(len(adls) - fp, len(adls))
    return {
        "trials": len(outcomes),
        "subjects": len(by_subject),
        "falls": len(falls),
        "adls": len(adls),
        "true_positives": tp,
        "false_negatives": len(falls) - tp,
        "false_positives": fp,
        "true_negatives": len(adls) - fp,
        "sensitivity": sensitivity,
        "specificity": specificity,
        "floor": FLOOR,
        "meets_floor": (sensitivity or 0) >= FLOOR and (specificity or 0) >= FLOOR,
        "device": {
            "falls_missed_by_trigger": sum(not o.fall_burst_sent for o in falls),
            "adl_trials_fired": sum(o.bursts > 0 for o in adls),
            "bursts": sum(o.bursts for o in outcomes),
            "bursts_cut_off_by_recording_end": sum(o.cut_off for o in outcomes),
            "bursts_confirmed": sum(o.confirmed for o in outcomes),
            "bursts_dismissed": sum(o.dismissed for o in outcomes),
            "bursts_unjudged_raised": sum(o.trusted for o in outcomes),
            "fall_alarms_not_from_impact_burst": sum(
                o.alarm and not o.alarm_from_impact for o in falls
            ),
        },
        "delay_s": {
            "median": round(statistics.median(delays), 2) if delays else None,
            "p95": round(delays[min(len(delays) - 1, int(0.95 * len(delays)))], 2)
            if delays
            else None,
            "max": round(delays[-1], 2) if delays else None,
        },
        "per_activity": per_activity,
        "per_subject": per_subject,
        # Every wrong trial with its most fall-like burst's probability, for review.
        "errors": {o.name: o.max_probability for o in outcomes if o.alarm != o.is_fall},
    }


def _method(trigger: TriggerSettings) -> dict[str, Any]:
    return {
        "validation": "subject-wise: shipped model on subjects it was not trained on, "
        "leave-one-subject-out refits on the others",
        "trial_alarm": "FallRule raised 'fall' at any time in the recording",
        "device_trigger": {
            "signal": "ADXL345 (raw/256 g), 200 Hz block-averaged to 50 Hz, magnitude |a|",
            "fires": f"|a| >= {trigger.impact_g} g, then peak-hold",
            "burst": f"{trigger.pre_s} s before and {trigger.post_s} s after the peak, 0.001 g",
        },
        "server": {
            "features": list(FEATURE_NAMES),
            "classifier": "L2 logistic regression, classes weighed equally, p >= 0.5 confirms",
            "no_burst_or_too_short": "raised (a fall event is trusted)",
        },
    }


def render_table(result: dict[str, Any]) -> RenderableType:
    """A summary table and the per-activity confusion, for the terminal."""
    summary = Table(title="Falls on SisFall (subject-wise)", show_header=False)
    for k, v in (
        ("trials / subjects", f"{result['trials']} / {result['subjects']}"),
        ("sensitivity", f"{result['sensitivity']}  ({result['true_positives']}/{result['falls']})"),
        ("specificity", f"{result['specificity']}  ({result['true_negatives']}/{result['adls']})"),
        ("floor met", f"{result['meets_floor']} (both >= {result['floor']})"),
        ("falls missed by the device trigger", str(result["device"]["falls_missed_by_trigger"])),
        (
            "bursts sent / dismissed",
            f"{result['device']['bursts']} / {result['device']['bursts_dismissed']}",
        ),
        ("delay median / p95 / max (s)", "{median} / {p95} / {max}".format(**result["delay_s"])),
        ("runtime (s)", str(result["runtime_s"]["total"])),
    ):
        summary.add_row(k, v)

    table = Table(title="Per activity")
    for col in ("code", "activity", "trials", "device fired", "alarmed", "correct"):
        table.add_column(col, justify="left" if col == "activity" else "right")
    for code, a in result["per_activity"].items():
        style = None if (a["correct"] or 0) >= result["floor"] else "bold red"
        table.add_row(
            code,
            a["activity"][:48],
            str(a["trials"]),
            str(a["device_fired"]),
            str(a["alarmed"]),
            f"{a['correct']:.3f}" if a["correct"] is not None else "-",
            style=style,
        )

    subjects = Table(title="Per subject")
    for col in ("subject", "falls", "detected", "adls", "false alarms", "model"):
        subjects.add_column(col, justify="right")
    models = {f["held_out"]: f["model"] for f in result.get("folds", [])}
    for s, v in result["per_subject"].items():
        subjects.add_row(
            s,
            str(v["falls"]),
            str(v["detected"]),
            str(v["adls"]),
            str(v["false_alarms"]),
            models.get(s, "?"),
        )
    return Group(summary, table, subjects)
