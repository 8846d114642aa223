"""The scenario evaluation: matching and alert bookkeeping on hand-made findings, then a
small replay of the simulated community (30 elders x 1 day) through the detection core.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console

from alerts.core import Action, Finding, Severity
from evaluation import scenarios as ev
from evaluation.scenarios import Alert, AlertBook, Truth, match, summarise

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 10:00 local
S = timedelta(seconds=1)
M = timedelta(minutes=1)


def _f(kind: str, t: datetime, action: Action = Action.RAISE, **detail: Any) -> Finding:
    return Finding(kind, Severity.CRITICAL, t, kind, action, detail=detail)


def _book(*items: tuple[str, Finding, datetime]) -> AlertBook:
    book = AlertBook()
    for elder, f, now in items:
        book.apply(elder, f, now)
    return book


# --- alert bookkeeping ----------------------------------------------------------------


def test_two_raises_of_one_episode_are_one_alert() -> None:
    book = _book(
        ("e0001", _f("fall", T0), T0 + 5 * S),
        ("e0001", _f("fall", T0 + 5 * M), T0 + 5 * M + 5 * S),  # "no movement" escalation
    )
    assert len(book.alerts) == 1
    assert book.alerts[0].opened_at == T0 + 5 * S
    assert book.alerts[0].merged_at == [T0 + 5 * M + 5 * S]


def test_clear_then_raise_are_two_alerts() -> None:
    later = T0 + 20 * M  # past the lifecycle's 10-minute cooldown
    book = _book(
        ("e0001", _f("news2_hr", T0), T0),
        ("e0001", _f("news2_hr", T0 + 5 * M, Action.CLEAR), T0 + 5 * M),
        ("e0001", _f("news2_hr", later), later),
    )
    assert [a.opened_at for a in book.alerts] == [T0, later]
    assert book.alerts[0].outcome == "cleared"


def test_raise_within_cooldown_is_counted_not_opened() -> None:
    book = _book(
        ("e0001", _f("inactivity", T0), T0),
        ("e0001", _f("inactivity", T0 + M, Action.CLEAR), T0 + M),
        ("e0001", _f("inactivity", T0 + 3 * M), T0 + 3 * M),
    )
    assert len(book.alerts) == 1
    assert book.alerts[0].suppressed_at == [T0 + 3 * M]


def test_sos_is_never_suppressed_and_kinds_and_elders_are_apart() -> None:
    book = _book(
        ("e0001", _f("sos", T0), T0),
        ("e0001", _f("sos", T0, Action.CLEAR), T0 + M),
        ("e0001", _f("sos", T0 + 2 * M), T0 + 2 * M),
        ("e0001", _f("fall", T0), T0),
        ("e0002", _f("fall", T0), T0),
    )
    assert sorted((a.elder, a.kind) for a in book.alerts) == [
        ("e0001", "fall"),
        ("e0001", "sos"),
        ("e0001", "sos"),
        ("e0002", "fall"),
    ]


def test_cancelled_fall_is_withdrawn_and_notes_are_not_alerts() -> None:
    book = _book(
        ("e0001", _f("fall_dismissed", T0, episode="note"), T0),
        ("e0001", _f("fall", T0), T0),
        ("e0001", _f("fall", T0 + 20 * S, Action.CLEAR), T0 + 20 * S),
    )
    assert [(a.kind, a.outcome) for a in book.alerts] == [("fall", "withdrawn")]
    assert book.notes == {"fall_dismissed": 1}


# --- matching -----------------------------------------------------------------------


def _alert(elder: str, kind: str, opened: datetime, outcome: str | None = None) -> Alert:
    return Alert(elder, kind, opened, opened, "critical", kind, outcome=outcome)


def test_alert_outside_the_window_is_false_and_the_incident_missed() -> None:
    fall = Truth("e0001", "xb-w0001", "fall", T0, T0 + 15 * M)
    lo, hi = fall.window()
    alerts = [
        _alert("e0001", "fall", lo - S),  # before the window
        _alert("e0001", "fall", hi + S),  # after it
        _alert("e0002", "fall", T0 + 5 * S),  # someone else
        _alert("e0001", "sos", T0 + 5 * S),  # not a kind that stands for a fall
    ]
    m = match([fall], alerts)
    assert m.first == [None]
    assert m.kinds == [set(), set(), set(), set()]
    r = summarise([fall], alerts, elder_days=2.0)
    assert r["per_kind"]["fall"]["recall"] == 0.0
    assert r["false_alerts"] == 4
    assert r["false_alerts_per_elder_day"] == 2.0
    assert [x["elder"] for x in r["missed_events"]] == ["e0001"]
    why = r["missed_events"][0]["message"]
    assert "fall alert already open since" in why and "fall alert opened late" in why
    assert summarise([fall], [], 1.0)["missed_events"][0]["message"] == "no fall alert opened"


def test_matched_alerts_delay_and_precision() -> None:
    hr = Truth("e0001", "xb-w0001", "tachycardia", T0, T0 + 30 * M)
    sos = Truth("e0002", "xb-w0002", "sos", T0, T0)
    alerts = [
        _alert("e0001", "news2_hr", T0 + 12 * M),
        _alert("e0001", "news2_partial", T0 + 14 * M),  # a second alert for the same episode
        _alert("e0001", "news2_hr", T0 + 3 * 60 * M),  # long after: false
        _alert("e0002", "sos", T0 + 2 * S),
        _alert("e0003", "fall", T0, outcome="withdrawn"),  # "I'm OK": apart, not false
    ]
    r = summarise([hr, sos], alerts, elder_days=3.0)
    k = r["per_kind"]["tachycardia"]
    assert (k["truth"], k["detected"], k["alerts"], k["true_alerts"]) == (1, 1, 3, 2)
    assert k["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert k["delay_median_s"] == 720.0
    assert r["per_kind"]["sos"]["delay_median_s"] == 2.0
    assert r["false_alerts"] == 1 and r["withdrawn"] == 1
    assert r["per_alert_kind"]["news2_hr"] == {
        "alerts": 2,
        "true": 1,
        "false": 1,
        "withdrawn": 0,
        "suppressed": 0,
    }
    assert r["false_alert_list"][0]["time"] == "2026-11-28T13:00:00+08:00"
    assert r["events"][0]["delay_s"] == 720.0
    assert [x.split()[0] for x in r["events"][0]["alerts"]] == ["news2_hr", "news2_partial"]


def test_missed_incident_explains_an_alert_already_open() -> None:
    fever = Truth("e0001", "xb-w0001", "fever", T0, T0 + 4 * 60 * M)
    earlier = _alert("e0001", "news2_partial", T0 - 60 * M)
    earlier.merged_at.append(T0 + 30 * M)
    r = summarise([fever], [earlier], elder_days=1.0)
    assert "news2_partial alert already open since" in r["missed_events"][0]["message"]
    assert "1 RAISEs merged" in r["missed_events"][0]["message"]


def test_a_fever_alert_stands_for_a_fever() -> None:
    """NEWS2 never calls a fever on temperature alone: the dedicated rule's alert counts."""
    fever = Truth("e0001", "xb-w0001", "fever", T0, T0 + 4 * 60 * M)
    r = summarise([fever], [_alert("e0001", "fever", T0 + 70 * M)], elder_days=1.0)
    assert r["per_kind"]["fever"]["recall"] == 1.0 and r["false_alerts"] == 0
    assert "fever" in ev.ALERT_KINDS["fever"] and "news2_temp" in ev.ALERT_KINDS["fever"]


def test_low_battery_window_reaches_back_to_the_rules_own_threshold() -> None:
    low = Truth("e0001", "xb-w0001", "low_battery", T0, T0 + 3 * 60 * M)
    m = match([low], [_alert("e0001", "low_battery", T0 - 4 * 60 * M)])
    assert m.first[0] is not None


# --- the replay ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> dict[str, Any]:
    return ev.run(7, elders=30, days=1.0, incidents=3, workers=2)


def test_small_run_has_the_keys(small: dict[str, Any]) -> None:
    for key in (
        "seed",
        "elder_days",
        "per_kind",
        "false_alerts",
        "false_alerts_per_elder_day",
        "missed_events",
        "false_alert_list",
        "withdrawn",
        "floors",
    ):
        assert key in small
    assert small["seed"] == 7 and small["elder_days"] == 30.0
    assert set(small["per_kind"]) == set(ev.ALERT_KINDS)
    for k in small["per_kind"].values():
        assert {
            "truth",
            "detected",
            "recall",
            "alerts",
            "true_alerts",
            "precision",
            "delay_median_s",
            "delay_p95_s",
        } <= set(k)
    for row in small["missed_events"] + small["false_alert_list"]:
        assert {"elder", "kind", "time", "message"} <= set(row)
    assert small["rejects"] == {}  # the simulator's traffic is valid; nothing quarantined
    assert small["engine"]["rule_errors"] == 0
    assert sum(k["truth"] for k in small["per_kind"].values()) == 30
    assert small["false_alerts"] == len(small["false_alert_list"])


def test_small_run_catches_every_sos_and_fall_at_once(small: dict[str, Any]) -> None:
    for kind in ("sos", "fall"):
        k = small["per_kind"][kind]
        assert k["truth"] == 3
        assert k["recall"] == 1.0, small["missed_events"]
        assert k["delay_median_s"] is not None and k["delay_median_s"] <= ev.DELAY_FLOOR_S


def test_small_run_detects_every_fever(small: dict[str, Any]) -> None:
    k = small["per_kind"]["fever"]
    assert k["truth"] == 3 and k["recall"] == 1.0, small["missed_events"]
    firsts = [e["alerts"][0].split()[0] for e in small["events"] if e["kind"] == "fever"]
    assert firsts == ["fever"] * 3
    # A fever is held for 30 minutes before it is called, on readings every 5 minutes.
    assert 30 * 60 < k["delay_median_s"] < 3 * 3600


def test_render_table_shows_the_floors() -> None:
    r = summarise([], [], elder_days=1.0)
    r.update(seed=1, elders=1, days=1.0, messages=0, runtime_s=0.0)
    console = Console(width=160, record=True)
    console.print(ev.render_table(r))
    assert "recall sos" in console.export_text()


def test_result_depends_neither_on_workers_nor_on_shards() -> None:
    # Local 00:00-06:00: room for night wandering and a device going offline.
    args: dict[str, Any] = {"elders": 30, "days": 0.25, "incidents": 1}
    one = ev.run(7, workers=1, **args)  # one shard of 30
    three = ev.run(7, workers=2, shard_size=10, **args)  # three shards on two processes
    for r in (one, three):
        r.pop("runtime_s")
    assert one == three
    assert {e["kind"] for e in one["events"]} == {"night_wandering", "device_offline"}
    with pytest.raises(ValueError, match="shard_size"):
        ev.run(7, elders=1, days=0.01, shard_size=10_000)
