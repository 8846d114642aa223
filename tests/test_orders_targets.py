"""Service-level targets with an injected clock: deadlines, breaches, offer timeouts, the
助急 escalation ladder, and a little shell loop driven by ``next_check``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.core import Severity
from alerts.geometry import offset
from orders.catalogue import ServiceKind, Skill
from orders.dispatch import Caregiver, Shift, choose
from orders.lifecycle import SYSTEM, Actor, Order, request, transition
from orders.schedule import SHANGHAI
from orders.targets import (
    BreachKind,
    Level,
    breaches,
    deadlines,
    escalations_due,
    next_check,
    offer_due,
    offer_expired,
)

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in 杏北
STAFF = Actor("staff", 1)
WANG = Actor("caregiver", 12)  # 王秀兰
LI = Actor("caregiver", 13)  # 李建国


def m(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def sos() -> Order:
    return request(7, "emergency", SYSTEM, T0, source="alert", alert_id=5)


def walk(o: Order, *steps: tuple[str, Actor, float, int | None]) -> Order:
    for action, actor, minute, cg in steps:
        o = transition(o, action, actor, m(minute), caregiver_id=cg)
    return o


def kinds(o: Order, now: datetime) -> list[str]:
    return [b.kind.value for b in breaches(o, now)]


# --- on demand: 助急 in minutes -------------------------------------------------------


def test_emergency_accept_target_is_two_minutes_on_the_injected_clock() -> None:
    o = sos()
    assert deadlines(o).accept_by == m(2) and deadlines(o).arrive_by == m(15)
    assert kinds(o, m(1.99)) == []
    (b,) = breaches(o, m(2))  # due at the deadline itself when nothing has happened
    assert b.kind is BreachKind.ACCEPT_LATE and b.severity is Severity.CRITICAL
    assert (b.order_id, b.elder_id, b.service) == (None, 7, ServiceKind.EMERGENCY)
    assert b.happened_at is None and b.by == timedelta(0)
    assert breaches(o, m(5))[0].by == timedelta(minutes=3)  # how late so far


def test_steps_in_time_meet_the_targets() -> None:
    o = walk(
        sos(), ("assign", SYSTEM, 0, 12), ("accept", WANG, 1.5, None), ("depart", WANG, 2, None)
    )
    assert kinds(o, m(10)) == []
    o = walk(o, ("arrive", WANG, 14, None), ("complete", WANG, 40, None))
    assert kinds(o, m(60)) == []


def test_late_steps_are_recorded_with_when_and_how_late() -> None:
    o = walk(
        sos(), ("assign", SYSTEM, 0, 12), ("accept", WANG, 2.5, None), ("depart", WANG, 3, None)
    )
    o = walk(o, ("arrive", WANG, 16, None))
    accept, arrive = breaches(o, m(30))
    assert (accept.kind, accept.happened_at, accept.by) == (
        BreachKind.ACCEPT_LATE,
        m(2.5),
        timedelta(seconds=30),
    )
    assert (arrive.kind, arrive.happened_at, arrive.by) == (
        BreachKind.ARRIVE_LATE,
        m(16),
        timedelta(minutes=1),
    )


def test_re_dispatch_does_not_restart_the_clock() -> None:
    o = walk(
        sos(),
        ("assign", SYSTEM, 0, 12),
        ("reject", WANG, 0.5, None),
        ("assign", SYSTEM, 0.6, 13),
        ("accept", LI, 2.2, None),
    )
    (b,) = breaches(o, m(3))
    assert b.kind is BreachKind.ACCEPT_LATE and b.happened_at == m(2.2)


def test_an_acceptance_backed_out_of_does_not_meet_the_target() -> None:
    o = walk(
        sos(), ("assign", SYSTEM, 0, 12), ("accept", WANG, 1, None), ("reject", WANG, 1.5, None)
    )
    assert kinds(o, m(1.9)) == []
    assert kinds(o, m(2)) == ["accept_late"]


def test_a_cancelled_order_is_judged_as_it_stood_when_cancelled() -> None:
    early = walk(sos(), ("cancel", SYSTEM, 1, None))  # the elder pressed "I'm OK"
    assert kinds(early, m(600)) == [] and next_check(early, m(1)) is None
    late = walk(sos(), ("cancel", STAFF, 4, None))
    (b,) = breaches(late, m(600))
    assert b.kind is BreachKind.ACCEPT_LATE and b.by == timedelta(minutes=2)


# --- booked: the 助餐 delivery window --------------------------------------------------


def lunch(requested: datetime | None = None) -> Order:
    at = datetime(2026, 3, 2, 11, 30, tzinfo=SHANGHAI)
    asked = requested or at - timedelta(minutes=90)
    return request(7, "meal", SYSTEM, asked, source="schedule", scheduled_for=at)


def served(o: Order, hh: int, mm: int) -> Order:
    arrive = datetime(2026, 3, 2, hh, mm, tzinfo=SHANGHAI)
    t = o.requested_at
    o = transition(o, "assign", SYSTEM, t, caregiver_id=12)
    o = transition(o, "accept", WANG, t + timedelta(minutes=5))
    o = transition(o, "depart", WANG, arrive - timedelta(minutes=10))
    return transition(o, "arrive", WANG, arrive)


@pytest.mark.parametrize(
    ("hh", "mm", "expected"),
    [
        (11, 10, ["arrive_early"]),  # 20 minutes early: the window opens at 11:15
        (11, 15, []),
        (11, 30, []),
        (11, 45, []),
        (11, 50, ["arrive_late"]),
    ],
)
def test_lunch_arrives_inside_its_window(hh: int, mm: int, expected: list[str]) -> None:
    o = served(lunch(), hh, mm)
    assert kinds(o, datetime(2026, 3, 2, 13, 0, tzinfo=SHANGHAI)) == expected
    for b in breaches(o, datetime(2026, 3, 2, 13, 0, tzinfo=SHANGHAI)):
        assert b.severity is (
            Severity.LOW if b.kind is BreachKind.ARRIVE_EARLY else Severity.MEDIUM
        )


def test_booked_deadlines_and_a_booking_made_at_the_last_minute() -> None:
    d = deadlines(lunch())
    assert d.arrive_from is not None
    assert [
        t.astimezone(SHANGHAI).strftime("%H:%M") for t in (d.accept_by, d.arrive_from, d.arrive_by)
    ] == [
        "10:30",
        "11:15",
        "11:45",
    ]
    rushed = lunch(requested=datetime(2026, 3, 2, 11, 20, tzinfo=SHANGHAI))
    d = deadlines(rushed)  # no better than on demand: accept in 30, arrive in 60 minutes
    assert d.accept_by.astimezone(SHANGHAI).strftime("%H:%M") == "11:50"
    assert d.arrive_by.astimezone(SHANGHAI).strftime("%H:%M") == "12:20"


# --- offers and escalation ------------------------------------------------------------


def test_offer_expiry() -> None:
    o = walk(sos(), ("assign", SYSTEM, 0, 12))
    assert offer_due(o) == T0 + timedelta(seconds=45)
    assert not offer_expired(o, T0 + timedelta(seconds=44)) and offer_expired(
        o, T0 + timedelta(seconds=45)
    )
    assert offer_due(walk(o, ("accept", WANG, 0.5, None))) is None
    assert offer_due(sos()) is None
    cleaning = request(7, "cleaning", STAFF, T0)
    cleaning = transition(cleaning, "assign", SYSTEM, T0, caregiver_id=12)
    assert offer_due(cleaning) == m(30)


def test_emergency_escalates_when_nobody_accepts_and_stops_when_someone_does() -> None:
    o = sos()
    assert escalations_due(o, m(1.9), recorded=0) == []
    assert escalations_due(o, m(2), recorded=0) == [Level.WIDEN]
    assert escalations_due(o, m(5), recorded=0) == [Level.WIDEN, Level.OUTSIDE]
    assert escalations_due(o, m(5), recorded=1) == [Level.OUTSIDE]
    assert escalations_due(o, m(9), recorded=2) == []
    taken = walk(o, ("assign", SYSTEM, 3, 12), ("accept", WANG, 3.5, None))
    assert escalations_due(taken, m(9), recorded=1) == []
    # other kinds never escalate; their missed targets are staff alerts (breaches)
    slow = request(7, "medical", STAFF, T0)
    assert escalations_due(slow, m(600), recorded=0) == []
    assert kinds(slow, m(600)) == ["accept_late", "arrive_late"]


def test_next_check_is_the_next_thing_that_can_fall_due() -> None:
    o = sos()
    assert next_check(o, T0) == m(2)
    assert next_check(o, m(2), recorded=1) == m(5)
    assert next_check(o, m(5), recorded=2) == m(15)
    assigned = walk(o, ("assign", SYSTEM, 0, 12))
    assert next_check(assigned, T0) == T0 + timedelta(seconds=45)
    done = walk(assigned, ("accept", WANG, 0.5, None), ("depart", WANG, 1, None))
    assert next_check(done, m(1)) == m(15)
    assert next_check(walk(done, ("arrive", WANG, 9, None)), m(9)) is None


# --- a shell loop on the injected clock --------------------------------------------------


def test_a_shell_driven_by_next_check_tries_the_nearest_first_then_widens() -> None:
    """Nobody answers: every 45 s the offer lapses and goes to the next nearest; at the
    accept target the ladder widens; at +3 minutes it goes outside; the breach is
    raised exactly once."""
    home = (34.867, 110.447)
    shift = (Shift(T0 - timedelta(hours=2), T0 + timedelta(hours=6)),)
    team = [
        Caregiver(
            i, frozenset({Skill.FIRST_AID}), shift, *offset(*home, 0.0, 150.0 * i), T0, name=n
        )
        for i, n in enumerate(["王秀兰", "李建国", "张桂英", "刘淑珍"], start=1)
    ]
    o, now, level = sos(), T0, 0
    offered: list[int] = []
    seen: set[BreachKind] = set()
    log: list[tuple[float, str]] = []
    for _ in range(50):
        if offer_expired(o, now):
            o = transition(o, "expire", SYSTEM, now)
        if o.state.value in ("requested", "rejected"):
            d = choose(o, home, team, now)
            if d.caregiver_id is not None:
                o = transition(o, "assign", SYSTEM, now, caregiver_id=d.caregiver_id)
                offered.append(d.caregiver_id)
        for b in breaches(o, now):
            if b.kind not in seen:
                seen.add(b.kind)
                log.append(((now - T0).total_seconds(), b.kind.value))
        for lv in escalations_due(o, now, level):
            level = lv
            log.append(((now - T0).total_seconds(), f"level {lv}"))
        nxt = next_check(o, now, level)
        if nxt is None:
            break
        now = nxt
    assert offered == [1, 2, 3, 4]  # nearest first, nobody asked twice
    assert log == [
        (120.0, "accept_late"),
        (120.0, "level 1"),
        (300.0, "level 2"),
        (900.0, "arrive_late"),
    ]


# --- properties -------------------------------------------------------------------------

ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(
            ["assign", "accept", "reject", "expire", "depart", "arrive", "complete", "cancel"]
        ),
        st.floats(0, 30),
    ),
    max_size=10,
)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(list(ServiceKind)),
    steps=ACTIONS,
    a=st.floats(0, 300),
    b=st.floats(0, 300),
)
def test_once_late_always_late_and_next_check_is_in_the_future(
    kind: ServiceKind, steps: list[tuple[str, float]], a: float, b: float
) -> None:
    o = request(7, kind, STAFF, T0)
    t = 0.0
    for action, gap in steps:
        t += gap
        actor = SYSTEM if action in ("assign", "expire") else STAFF
        try:
            o = transition(o, action, actor, m(t), caregiver_id=12 if action == "assign" else None)
        except ValueError:  # IllegalStep
            continue
    lo, hi = m(min(a, b) + t), m(max(a, b) + t)  # both after the last step
    early, later = breaches(o, lo), breaches(o, hi)
    assert {x.kind for x in early} <= {x.kind for x in later}
    for x in later:
        assert x.by >= timedelta(0)
    nxt = next_check(o, lo)
    assert nxt is None or nxt > lo
    if nxt is None or nxt > hi:  # nothing fell due in between
        assert {x.kind for x in early} == {x.kind for x in later}
