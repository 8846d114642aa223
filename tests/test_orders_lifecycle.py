"""The 六助 order lifecycle (and the catalogue and check-in it leans on): pure, synthetic
clocks, no database."""

from __future__ import annotations

import dataclasses
import doctest
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orders.catalogue
import orders.checkin
import orders.dispatch
import orders.lifecycle
import orders.plans
import orders.schedule
import orders.targets
from alerts.geometry import offset
from orders.catalogue import CATALOGUE, ZH_NAMES, ServiceKind, Skill
from orders.checkin import Fix, Verdict, check_in
from orders.lifecycle import (
    AWAITING_DISPATCH,
    SYSTEM,
    TERMINAL,
    TRANSITIONS,
    Action,
    Actor,
    IllegalStep,
    NotPermitted,
    Order,
    OrderState,
    Source,
    allowed_actions,
    request,
    transition,
)

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in 杏北
STAFF = Actor("staff", 1)  # 值班 赵敏
WANG = Actor("caregiver", 12)  # 王秀兰
LI = Actor("caregiver", 13)  # 李建国
FAMILY = Actor("family", 31)  # 刘芳, the elder's daughter


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def assigned(to: int = 12, kind: str = "cleaning") -> Order:
    return transition(request(7, kind, FAMILY, T0), "assign", SYSTEM, at(1), caregiver_id=to)


@pytest.mark.parametrize(
    "module",
    [
        orders.catalogue,
        orders.checkin,
        orders.dispatch,
        orders.lifecycle,
        orders.plans,
        orders.schedule,
        orders.targets,
    ],
)
def test_docstring_examples(module: object) -> None:
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert attempted > 0 and failed == 0


# --- catalogue ---------------------------------------------------------------------------


def test_catalogue_has_the_six_kinds_with_chinese_names_and_consistent_targets() -> None:
    assert [k.value for k in ServiceKind] == [
        "meal", "cleaning", "bathing", "mobility", "emergency", "medical",
    ]  # fmt: skip
    assert "".join(ZH_NAMES[k] for k in ServiceKind) == "助餐助洁助浴助行助急助医"
    assert set(CATALOGUE) == set(ServiceKind)
    for kind, spec in CATALOGUE.items():
        level = spec.level
        assert spec.kind is kind and spec.zh == kind.zh
        assert spec.skills and spec.skills <= set(Skill)
        assert timedelta(0) < level.offer <= level.accept <= level.arrive
        assert spec.duration > timedelta(0) and spec.price_fen >= 0
    urgent = [k for k, s in CATALOGUE.items() if s.urgent]
    assert urgent == [ServiceKind.EMERGENCY]
    assert CATALOGUE[ServiceKind.EMERGENCY].level.arrive <= timedelta(minutes=15)
    assert CATALOGUE[ServiceKind.MEAL].level.window == (timedelta(minutes=15),) * 2


# --- the happy path and the record -------------------------------------------------------


def test_full_lifecycle_records_every_step_with_who_and_when() -> None:
    o = request(7, "bathing", FAMILY, T0, note="周三下午方便")
    o = transition(o, "assign", SYSTEM, at(1), caregiver_id=12)
    o = transition(o, "accept", WANG, at(3))
    o = transition(o, "depart", WANG, at(40))
    o = transition(o, "arrive", WANG, at(52))
    o = transition(o, "complete", WANG, at(110), note="洗浴顺利")
    assert o.state is OrderState.COMPLETED and o.source is Source.FAMILY
    assert [(s.action.value, s.to_state.value) for s in o.history] == [
        ("request", "requested"),
        ("assign", "assigned"),
        ("accept", "accepted"),
        ("depart", "en_route"),
        ("arrive", "in_service"),
        ("complete", "completed"),
    ]
    assert [s.actor for s in o.history] == [FAMILY, SYSTEM, WANG, WANG, WANG, WANG]
    assert [s.at for s in o.history] == [T0, at(1), at(3), at(40), at(52), at(110)]
    assert all(s.caregiver_id == 12 for s in o.history[1:])
    assert o.history[0].note == "周三下午方便" and o.history[-1].note == "洗浴顺利"
    assert (o.accepted_at, o.arrived_at, o.ended_at) == (at(3), at(52), at(110))


def test_transition_returns_a_new_order_and_leaves_the_old_one_alone() -> None:
    o = assigned()
    before = dataclasses.replace(o)
    after = transition(o, "accept", WANG, at(2))
    assert o == before and o.state is OrderState.ASSIGNED and len(o.history) == 2
    assert after is not o and len(after.history) == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.state = OrderState.COMPLETED  # type: ignore[misc]


# --- illegal steps -----------------------------------------------------------------------


def _order_in(state: OrderState) -> Order:
    """An order brought to ``state`` by legal steps."""
    o = request(7, "cleaning", FAMILY, T0)
    path = {
        OrderState.REQUESTED: [],
        OrderState.ASSIGNED: [("assign", SYSTEM)],
        OrderState.ACCEPTED: [("assign", SYSTEM), ("accept", WANG)],
        OrderState.EN_ROUTE: [("assign", SYSTEM), ("accept", WANG), ("depart", WANG)],
        OrderState.IN_SERVICE: [
            ("assign", SYSTEM),
            ("accept", WANG),
            ("depart", WANG),
            ("arrive", WANG),
        ],
        OrderState.COMPLETED: [
            ("assign", SYSTEM),
            ("accept", WANG),
            ("depart", WANG),
            ("arrive", WANG),
            ("complete", WANG),
        ],
        OrderState.CANCELLED: [("cancel", FAMILY)],
        OrderState.REJECTED: [("assign", SYSTEM), ("reject", WANG)],
    }[state]
    for i, (action, actor) in enumerate(path, start=1):
        o = transition(o, action, actor, at(i), caregiver_id=12 if action == "assign" else None)
    assert o.state is state
    return o


ILLEGAL = [
    (s, a)
    for s, a in itertools.product(OrderState, Action)
    if (s, a) not in TRANSITIONS and a is not Action.REQUEST
]


@pytest.mark.parametrize(("state", "action"), ILLEGAL)
def test_every_step_outside_the_table_is_refused_with_the_current_state(
    state: OrderState, action: Action
) -> None:
    o = _order_in(state)
    actor = SYSTEM if action in (Action.EXPIRE, Action.ASSIGN) else STAFF
    with pytest.raises(IllegalStep) as err:
        transition(o, action, actor, at(30), caregiver_id=12 if action is Action.ASSIGN else None)
    assert err.value.state is state and err.value.action is action
    assert f"cannot {action.value} an order that is {state.value}" in str(err.value)
    assert err.value.allowed == allowed_actions(state)


def test_the_error_names_what_is_allowed_instead() -> None:
    with pytest.raises(IllegalStep, match=r"is en_route \(allowed: arrive, cancel\)"):
        transition(_order_in(OrderState.EN_ROUTE), "complete", WANG, at(30))
    with pytest.raises(IllegalStep, match="none: it is final"):
        transition(_order_in(OrderState.COMPLETED), "cancel", STAFF, at(30))


def test_table_shape_terminal_states_are_final_and_every_state_can_end() -> None:
    for s in TERMINAL:
        assert allowed_actions(s) == frozenset()
    assert {s for (s, a) in TRANSITIONS if a is Action.ASSIGN} == AWAITING_DISPATCH
    # every state reaches COMPLETED (through re-dispatch if need be) and CANCELLED
    graph: dict[OrderState, set[OrderState]] = {}
    for (s, _), t in TRANSITIONS.items():
        graph.setdefault(s, set()).add(t)
    for start in set(OrderState) - TERMINAL:
        seen, todo = {start}, [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert OrderState.COMPLETED in seen
    assert (OrderState.IN_SERVICE, Action.CANCEL) not in TRANSITIONS  # the visit happened


# --- rejects, timeouts, re-dispatch ------------------------------------------------------


def test_reject_and_expire_hand_the_order_back_and_remember_who_declined() -> None:
    o = transition(assigned(12), "reject", WANG, at(2), note="在另一位老人家")
    assert o.state is OrderState.REJECTED and o.caregiver_id is None
    assert o.declined_by == {12} and o.history[-1].caregiver_id == 12
    o = transition(o, "assign", SYSTEM, at(3), caregiver_id=13)
    o = transition(o, "expire", SYSTEM, at(13))  # 李建国 did not answer
    assert o.state is OrderState.REJECTED and o.declined_by == {12, 13}
    o = transition(o, "assign", STAFF, at(14), caregiver_id=14)  # staff phoned 张桂英
    o = transition(o, "accept", Actor("caregiver", 14), at(15))
    assert o.state is OrderState.ACCEPTED and o.caregiver_id == 14
    assert o.accepted_at == at(15) and o.declined_by == {12, 13}


def test_backing_out_after_accepting_is_a_reject_and_the_acceptance_no_longer_stands() -> None:
    o = transition(assigned(12), "accept", WANG, at(2))
    o = transition(o, "reject", WANG, at(20), note="身体不适")
    assert o.state is OrderState.REJECTED and o.accepted_at is None and 12 in o.declined_by


def test_cancel_from_every_state_before_service_and_by_whom() -> None:
    for state in (OrderState.REQUESTED, OrderState.ASSIGNED, OrderState.ACCEPTED,
                  OrderState.EN_ROUTE, OrderState.REJECTED):  # fmt: skip
        o = transition(_order_in(state), "cancel", FAMILY, at(30), note="老人去女儿家了")
        assert o.state is OrderState.CANCELLED and o.ended_at == at(30)
    for who in (STAFF, FAMILY, Actor("elder", 7), SYSTEM):
        transition(_order_in(OrderState.ASSIGNED), "cancel", who, at(30))


# --- who may do what ---------------------------------------------------------------------


def test_only_the_assigned_caregiver_acts_on_an_order() -> None:
    with pytest.raises(NotPermitted, match="not assigned to them"):
        transition(assigned(12), "accept", LI, at(2))
    with pytest.raises(NotPermitted, match="not assigned to them"):
        transition(transition(assigned(12), "accept", WANG, at(2)), "depart", LI, at(3))
    transition(assigned(12), "accept", STAFF, at(2), note="电话确认")  # on their behalf


@pytest.mark.parametrize(
    ("action", "actor"),
    [
        ("expire", STAFF),
        ("expire", WANG),
        ("accept", FAMILY),
        ("assign", WANG),
        ("assign", FAMILY),
        ("cancel", WANG),  # a caregiver declines, they do not cancel
    ],
)
def test_roles_are_enforced(action: str, actor: Actor) -> None:
    if action == "assign":
        with pytest.raises(NotPermitted):
            transition(request(7, "meal", STAFF, T0), action, actor, at(2), caregiver_id=12)
    else:
        with pytest.raises(NotPermitted):
            transition(assigned(12), action, actor, at(2))


def test_request_sources() -> None:
    assert request(7, "meal", STAFF, T0).source is Source.STAFF
    assert request(7, "meal", Actor("elder", 7), T0).source is Source.ELDER
    sched = request(7, "meal", SYSTEM, T0, source="schedule", scheduled_for=at(90))
    assert sched.source is Source.SCHEDULE and sched.scheduled_for == at(90)
    alarm = request(7, "emergency", SYSTEM, T0, source="alert", alert_id=99)
    assert alarm.alert_id == 99 and alarm.history[0].actor == SYSTEM
    with pytest.raises(ValueError, match="which source"):
        request(7, "meal", SYSTEM, T0)
    with pytest.raises(NotPermitted):
        request(7, "meal", FAMILY, T0, source="staff")
    with pytest.raises(NotPermitted, match="only for that elder"):
        request(7, "meal", Actor("elder", 8), T0)
    with pytest.raises(NotPermitted):
        request(7, "meal", WANG, T0, source="staff")
    with pytest.raises(ValueError):
        request(7, "massage", STAFF, T0)


def test_time_must_be_zoned_and_never_go_backwards() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        request(7, "meal", STAFF, datetime(2026, 3, 2, 10, 0))
    o = assigned()
    with pytest.raises(ValueError, match="before the last step"):
        transition(o, "accept", WANG, at(0.5))
    with pytest.raises(ValueError, match="no time zone"):
        transition(o, "accept", WANG, datetime(2026, 3, 2, 10, 5))
    transition(o, "accept", WANG, at(1))  # the same instant is fine


def test_assign_needs_a_caregiver_and_others_cannot_name_a_different_one() -> None:
    with pytest.raises(ValueError, match="needs the caregiver_id"):
        transition(request(7, "meal", STAFF, T0), "assign", SYSTEM, at(1))
    with pytest.raises(ValueError, match="not assigned"):
        transition(assigned(12), "accept", STAFF, at(2), caregiver_id=13)


# --- any sequence of steps ---------------------------------------------------------------

ACTORS = st.sampled_from([SYSTEM, STAFF, WANG, LI, FAMILY])


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(list(Action)[1:]), ACTORS, st.sampled_from([12, 13])), max_size=25
    )
)
def test_random_walks_follow_the_table_and_keep_a_consistent_record(
    steps: list[tuple[Action, Actor, int]],
) -> None:
    o = request(7, "mobility", STAFF, T0)
    for i, (action, actor, cg) in enumerate(steps, start=1):
        try:
            nxt = transition(
                o, action, actor, at(i), caregiver_id=cg if action is Action.ASSIGN else None
            )
        except IllegalStep as e:
            assert (o.state, action) not in TRANSITIONS and e.state is o.state
            continue
        except NotPermitted:
            assert (o.state, action) in TRANSITIONS
            continue
        assert nxt.state is TRANSITIONS[(o.state, action)]
        assert nxt.history[:-1] == o.history and nxt.history[-1].actor == actor
        o = nxt
    chain = o.history
    assert chain[0].from_state is None and chain[-1].to_state is o.state
    for a, b in itertools.pairwise(chain):
        assert a.to_state is b.from_state and a.at <= b.at
    if o.state in AWAITING_DISPATCH:
        assert o.caregiver_id is None
    elif o.state is not OrderState.CANCELLED:
        assert o.caregiver_id == o.last(Action.ASSIGN).caregiver_id  # type: ignore[union-attr]


# --- check-in ----------------------------------------------------------------------------

HOME = (34.867, 110.447)


def _fix(north_m: float, acc: float, age_s: float = 10.0) -> Fix:
    lat, lon = offset(*HOME, 0.0, north_m)
    return Fix(lat, lon, acc, T0 - timedelta(seconds=age_s))


@pytest.mark.parametrize(
    ("north_m", "acc", "elder_acc", "verdict"),
    [
        (0.0, 5.0, 0.0, Verdict.ACCEPTED),
        (149.0, 3.0, 0.0, Verdict.ACCEPTED),
        (155.0, 3.0, 0.0, Verdict.TOO_FAR),
        (185.0, 40.0, 0.0, Verdict.ACCEPTED),  # the benefit of the doubt
        (199.0, 30.0, 40.0, Verdict.ACCEPTED),  # hypot(30, 40) = 50
        (205.0, 30.0, 40.0, Verdict.TOO_FAR),
        (240.0, 100.0, 0.0, Verdict.ACCEPTED),  # the coarsest fix allowed
        (260.0, 100.0, 500.0, Verdict.TOO_FAR),  # allowance capped at 100 m
        (0.0, 150.0, 0.0, Verdict.COARSE_FIX),  # a cell-tower fix proves nothing
        (0.0, float("nan"), 0.0, Verdict.COARSE_FIX),
    ],
)
def test_check_in_within_150_m_with_the_fixs_accuracy(
    north_m: float, acc: float, elder_acc: float, verdict: Verdict
) -> None:
    got = check_in(_fix(north_m, acc), HOME, T0, elder_accuracy_m=elder_acc)
    assert got.verdict is verdict
    assert got.accepted == (verdict is Verdict.ACCEPTED)
    assert abs(got.distance_m - north_m) < 0.2


def test_check_in_refuses_old_and_future_fixes() -> None:
    assert check_in(_fix(10, 5, age_s=121), HOME, T0).verdict is Verdict.STALE_FIX
    assert check_in(_fix(10, 5, age_s=-300), HOME, T0).verdict is Verdict.STALE_FIX
    assert check_in(_fix(10, 5, age_s=119), HOME, T0).accepted


@settings(max_examples=200, deadline=None)
@given(
    north=st.floats(-2_000, 2_000),
    east=st.floats(-2_000, 2_000),
    acc=st.floats(0, 100),
    elder_acc=st.floats(0, 1_000),
)
def test_check_in_never_accepts_beyond_250_m_and_always_within_150(
    north: float, east: float, acc: float, elder_acc: float
) -> None:
    lat, lon = offset(*HOME, east, north)
    got = check_in(Fix(lat, lon, acc, T0), HOME, T0, elder_accuracy_m=elder_acc)
    if got.distance_m > 250.1:
        assert not got.accepted
    if got.distance_m < 149.9:
        assert got.accepted
