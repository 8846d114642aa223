"""The alert lifecycle's pure core: transitions, cooldown, clears, incidents, escalation,
and the per-elder settings table -- no database, synthetic clocks."""

from __future__ import annotations

import doctest
import typing
from datetime import UTC, datetime, timedelta

import pytest

import alerts.escalation
import alerts.lifecycle
import api.alert_models
from alerts.core import Severity
from alerts.escalation import AlertView, Level, due
from alerts.lifecycle import (
    PERSON_OUTCOMES,
    SYSTEM_OUTCOMES,
    TRANSITIONS,
    Active,
    AlertAction,
    AlertState,
    IllegalTransition,
    Outcome,
    Policy,
    Resolved,
    clear_outcome,
    incident_for,
    raised,
    related,
    suppressed,
    transition,
)
from alerts.ruleset import (
    EXTRA_FIELDS,
    SETTINGS_GROUPS,
    ElderProfile,
    night_window,
    scalar_fields,
    settings_for,
    vitals_settings,
)
from api.alert_models import ORDERED_KNOBS, THRESHOLD_KNOBS, PersonOutcome, validate_thresholds

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# --- transitions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "action", "after"),
    [
        ("open", "acknowledge", "acknowledged"),
        ("open", "resolve", "resolved"),
        ("acknowledged", "resolve", "resolved"),
    ],
)
def test_legal_transitions(state: str, action: str, after: str) -> None:
    assert transition(state, action) is AlertState(after)


@pytest.mark.parametrize(
    ("state", "action"),
    [("acknowledged", "acknowledge"), ("resolved", "acknowledge"), ("resolved", "resolve")],
)
def test_illegal_transitions_raise_with_the_current_state(state: str, action: str) -> None:
    with pytest.raises(IllegalTransition) as info:
        transition(state, action)
    assert info.value.state is AlertState(state) and info.value.action is AlertAction(action)
    assert state in str(info.value) and action in str(info.value)


def test_the_table_covers_exactly_the_legal_pairs() -> None:
    legal = {(s, a) for s in AlertState for a in AlertAction if (s, a) in TRANSITIONS}
    assert len(legal) == 3
    assert all(TRANSITIONS[(s, a)] is not AlertState.OPEN for s, a in legal)  # nothing reopens


def test_outcomes_split_into_people_and_system() -> None:
    assert {Outcome.SELF_CLEARED, Outcome.WITHDRAWN} == SYSTEM_OUTCOMES
    assert set(Outcome) == PERSON_OUTCOMES | SYSTEM_OUTCOMES
    assert Outcome.FALSE_ALARM in PERSON_OUTCOMES and Outcome.HOSPITAL in PERSON_OUTCOMES


def test_the_api_accepts_exactly_the_outcomes_people_set() -> None:
    assert set(typing.get_args(PersonOutcome)) == {o.value for o in PERSON_OUTCOMES}


def test_severity_only_rises() -> None:
    assert raised("medium", "high") is Severity.HIGH
    assert raised("critical", "low") is Severity.CRITICAL
    assert raised("high", "high") is Severity.HIGH


# --- cooldown ---------------------------------------------------------------------------


def test_cooldown_counts_a_flap_back_within_the_window() -> None:
    last = Resolved("medium", T0)
    assert suppressed(Policy(), "news2_hr", "medium", last, at(1))
    assert suppressed(Policy(), "news2_hr", "low", last, at(9.9))
    assert not suppressed(Policy(), "news2_hr", "medium", last, at(10))
    assert not suppressed(Policy(), "news2_hr", "medium", None, at(1))


def test_cooldown_lets_a_more_severe_finding_through() -> None:
    assert not suppressed(Policy(), "news2_hr", "high", Resolved("medium", T0), at(1))


def test_sos_is_never_suppressed_even_if_configured() -> None:
    policy = Policy(cooldown_s={"sos": 3600.0}, default_cooldown_s=3600.0)
    assert policy.cooldown_for("sos") == 0
    assert not suppressed(policy, "sos", "critical", Resolved("critical", T0), at(0.1))


def test_cooldown_is_per_kind() -> None:
    policy = Policy(cooldown_s={"low_battery": 3600.0})
    last = Resolved("low", T0)
    assert suppressed(policy, "low_battery", "low", last, at(30))
    assert not suppressed(policy, "not_worn", "low", last, at(30))


# --- clears -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "severity", "outcome"),
    [
        ("news2_spo2", "high", Outcome.SELF_CLEARED),
        ("inactivity", "medium", Outcome.SELF_CLEARED),
        ("low_battery", "low", Outcome.SELF_CLEARED),
        ("fall", "critical", Outcome.WITHDRAWN),
        ("fall", "high", Outcome.WITHDRAWN),
        ("news2_partial", "critical", None),  # eased, but a person must close it
        ("sos", "critical", None),
        ("sos", "low", None),
    ],
)
def test_what_a_clear_does(kind: str, severity: str, outcome: Outcome | None) -> None:
    assert clear_outcome(kind, severity) == outcome


# --- incidents --------------------------------------------------------------------------


def test_a_related_alert_within_the_window_joins_the_newest_incident() -> None:
    others = [Active("sos", 7, at(0)), Active("fall", 9, at(3)), Active("low_battery", 11, at(4))]
    assert incident_for(Policy(), "inactivity", at(10), others) == 9
    assert incident_for(Policy(), "news2_hr", at(10), others) == 9


def test_unrelated_or_old_alerts_start_their_own_incident() -> None:
    others = [Active("fall", 9, at(0)), Active("low_battery", 11, at(4))]
    assert incident_for(Policy(), "not_worn", at(5), others) is None  # not a related kind
    assert incident_for(Policy(), "inactivity", at(16), others) is None  # window is 15 min
    assert incident_for(Policy(incident_window_s=3600), "inactivity", at(16), others) == 9
    assert incident_for(Policy(), "fall", at(1), [Active("fall", 9, at(0))]) is None


def test_related_kinds() -> None:
    assert related("fall", "sos") and related("device_offline", "news2_partial")
    assert not related("geofence_exit", "fall") and not related("low_battery", "not_worn")


# --- escalation -------------------------------------------------------------------------


def test_an_unacknowledged_critical_alert_climbs_the_ladder_on_time() -> None:
    recorded = 0
    timeline: list[tuple[float, list[int]]] = []
    for minute in (0, 1, 1.99, 2, 3, 5, 9, 10, 60):
        levels = due(AlertView("open", "critical", T0, recorded), at(minute))
        timeline.append((minute, levels))
        recorded = max([recorded, *levels])
    assert timeline == [
        (0, []),
        (1, []),
        (1.99, []),
        (2, [1]),
        (3, []),
        (5, [2]),
        (9, []),
        (10, [3]),
        (60, []),
    ]


def test_levels_missed_between_passes_are_all_due_lowest_first() -> None:
    assert due(AlertView("open", "critical", T0, 0), at(11)) == [1, 2, 3]
    assert due(AlertView("open", "critical", T0, 1), at(11)) == [2, 3]


@pytest.mark.parametrize(
    ("state", "severity", "minutes", "levels"),
    [
        ("open", "high", 9.9, []),
        ("open", "high", 10, [Level.SUPERVISOR]),
        ("open", "high", 600, [Level.SUPERVISOR]),
        ("open", "medium", 600, []),
        ("open", "low", 600, []),
        ("acknowledged", "critical", 600, []),
        ("resolved", "critical", 600, []),
    ],
)
def test_who_escalates(state: str, severity: str, minutes: float, levels: list[int]) -> None:
    assert due(AlertView(state, severity, T0, 0), at(minutes)) == levels


# --- per-elder settings -----------------------------------------------------------------


@pytest.mark.parametrize("group", sorted(THRESHOLD_KNOBS))
def test_every_knob_is_a_setting_the_engine_applies(group: str) -> None:
    """Same name and type as a scalar field of the group's settings (what
    ``alerts.ruleset.settings_for`` overrides), and its default is itself valid."""
    cls = SETTINGS_GROUPS[group]
    fields = {**scalar_fields(cls), **EXTRA_FIELDS.get(group, {})}
    for name, knob in THRESHOLD_KNOBS[group].items():
        assert fields.get(name) is knob.type, f"{group}.{name}: {fields.get(name)} in the engine"
        default = getattr(cls(), name, None)
        if default is not None:
            knob.check(f"{group}.{name}", default)


def test_the_defaults_respect_the_ordering_checks() -> None:
    for group, low, high in ORDERED_KNOBS:
        defaults = SETTINGS_GROUPS[group]()
        assert getattr(defaults, low) < getattr(defaults, high)
        validate_thresholds({group: {low: getattr(defaults, low)}})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"gremlins": {}}, "unknown settings group 'gremlins'"),
        ({"news2_spo2": {"hypercapnic": True}}, "set under 'vitals'"),
        ({"low_battery": {"low_pct": 10}}, "set under 'battery'"),
        ({"sos": {"anything": 1}}, "SOS cannot be configured away"),
        ({"fall": 3}, "fall must be an object"),
        ({"fall": {"speed": 1}}, "fall has no setting 'speed'"),
        ({"fall": {"confirm_window_s": 5}}, "between 10 and 600 (got 5)"),
        ({"fall": {"moved_steps": 2.5}}, "whole number"),
        ({"fall": {"moved_steps": True}}, "must be a number"),
        ({"fall": {"judge_burst": 1}}, "true or false"),
        ({"heart_rate": {"rest_high": "120"}}, "must be a number"),
        ({"heart_rate": {"rest_high": float("nan")}}, "finite"),
        ({"heart_rate": {"rest_high": 140}}, "rest_high (140) must be below heart_rate.defer_at"),
        ({"vitals": {"aggregate_medium_at": 9}}, "aggregate_medium_at (9) must be below"),
        ({"battery": {"low_pct": 40, "clear_pct": 30}}, "battery.low_pct (40)"),
        ({"fever": {"high_c": 37.8}}, "fever.fever_c (38) must be below fever.high_c (37.8)"),
        ({"geofence": {"night_start_h": 25}}, "between 0 and 24 (got 25)"),
    ],
)
def test_invalid_overrides_say_what_is_wrong(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_thresholds(overrides)
    assert message in str(info.value)


def test_valid_overrides_pass_unchanged_and_reach_the_rules() -> None:
    good = {
        "fall": {"confirm_window_s": 90, "judge_burst": False},
        "vitals": {"hypercapnic": True, "aggregate_medium_at": 4, "aggregate_critical_at": 6},
        "heart_rate": {"rest_high": 110.5},
        "geofence": {"home_radius_m": 300, "night_start_h": 21.0, "night_end_h": 6.0},
        "fever": {"fever_c": 37.8, "high_c": 38.8},
    }
    assert validate_thresholds(good) == good
    profile = ElderProfile(1, thresholds=good)
    assert vitals_settings(profile).hypercapnic is True
    assert settings_for("fall", profile).confirm_window_s == 90
    assert settings_for("heart_rate", profile).rest_high == 110.5
    assert settings_for("fever", profile).fever_c == 37.8
    assert night_window(profile) == (21.0, 6.0)


@pytest.mark.parametrize("module", [alerts.lifecycle, alerts.escalation, api.alert_models])
def test_docstring_examples(module: object) -> None:
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert attempted > 0 and failed == 0
