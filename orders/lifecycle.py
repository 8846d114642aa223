"""The service-order lifecycle: states, a transition table, and immutable orders.

::

    requested -> assigned -> accepted -> en_route -> in_service -> completed
                    |   ^        |
       reject/expire|   |assign  |reject (backs out before leaving)
                    v   |        v
                    rejected <---+          cancel: from any state before in_service

``rejected`` is "waiting to be re-dispatched": the caregiver declined (``reject``) or
did not answer in time (``expire``); the dispatcher takes orders that are ``requested``
or ``rejected`` (:data:`AWAITING_DISPATCH`) and never offers one again to a caregiver
who declined it (:attr:`Order.declined_by`).

:func:`transition` is the only way an order changes.  It returns a new :class:`Order`
with the step appended to its history (who, when, from, to); a step the table does not
allow raises :class:`IllegalStep` (the API's 409), a person not entitled to it raises
:class:`NotPermitted` (403).

>>> from datetime import datetime, timedelta, timezone
>>> t = datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc)
>>> o = request(7, "meal", Actor("family", 31), t)
>>> o = transition(o, "assign", SYSTEM, t, caregiver_id=12)
>>> o = transition(o, "accept", Actor("caregiver", 12), t + timedelta(minutes=1))
>>> o.state, o.caregiver_id, [s.action.value for s in o.history]
(<OrderState.ACCEPTED: 'accepted'>, 12, ['request', 'assign', 'accept'])
>>> transition(o, "complete", Actor("caregiver", 12), t + timedelta(minutes=2))
Traceback (most recent call last):
...
orders.lifecycle.IllegalStep: cannot complete an order that is accepted (allowed: cancel, depart, reject)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from orders.catalogue import ServiceKind


class OrderState(StrEnum):
    REQUESTED = "requested"
    ASSIGNED = "assigned"  # offered to one caregiver, who has not answered yet
    ACCEPTED = "accepted"
    EN_ROUTE = "en_route"
    IN_SERVICE = "in_service"  # checked in at the elder
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"  # declined or timed out: waiting to be re-dispatched


class Action(StrEnum):
    REQUEST = "request"  # only ever the first step (see :func:`request`)
    ASSIGN = "assign"
    ACCEPT = "accept"
    REJECT = "reject"
    EXPIRE = "expire"  # the offer timed out (system)
    DEPART = "depart"
    ARRIVE = "arrive"  # check-in: the shell verifies the position first (orders.checkin)
    COMPLETE = "complete"
    CANCEL = "cancel"


class Role(StrEnum):
    SYSTEM = "system"  # dispatcher, timers, schedules, alerts
    STAFF = "staff"  # 值班人员
    CAREGIVER = "caregiver"
    FAMILY = "family"
    ELDER = "elder"  # through the device (a ``service`` event)


class Source(StrEnum):
    """Where a request came from."""

    STAFF = "staff"
    FAMILY = "family"
    ELDER = "elder"
    SCHEDULE = "schedule"
    ALERT = "alert"


S, A = OrderState, Action
TRANSITIONS: Final[Mapping[tuple[OrderState, Action], OrderState]] = MappingProxyType(
    {
        (S.REQUESTED, A.ASSIGN): S.ASSIGNED,
        (S.REJECTED, A.ASSIGN): S.ASSIGNED,  # re-dispatch
        (S.ASSIGNED, A.ACCEPT): S.ACCEPTED,
        (S.ASSIGNED, A.REJECT): S.REJECTED,
        (S.ASSIGNED, A.EXPIRE): S.REJECTED,
        # Falling ill after accepting happens; better said now than discovered at the
        # arrival target.  Once on the way, the order is completed or cancelled.
        (S.ACCEPTED, A.REJECT): S.REJECTED,
        (S.ACCEPTED, A.DEPART): S.EN_ROUTE,
        (S.EN_ROUTE, A.ARRIVE): S.IN_SERVICE,
        (S.IN_SERVICE, A.COMPLETE): S.COMPLETED,
        # A service under way is completed (with a note), not cancelled: the visit happened.
        **{
            (s, A.CANCEL): S.CANCELLED
            for s in (S.REQUESTED, S.ASSIGNED, S.ACCEPTED, S.EN_ROUTE, S.REJECTED)
        },
    }
)
del S, A

TERMINAL: Final = frozenset({OrderState.COMPLETED, OrderState.CANCELLED})
AWAITING_DISPATCH: Final = frozenset({OrderState.REQUESTED, OrderState.REJECTED})
# States in which a caregiver has taken the job on (the accept target is met).
TAKEN: Final = frozenset(
    {OrderState.ACCEPTED, OrderState.EN_ROUTE, OrderState.IN_SERVICE, OrderState.COMPLETED}
)

# Who may take each step.  Staff may record a caregiver's step on their behalf (a
# phone call, a dead phone); a caregiver may act only on an order assigned to them.
ROLES: Final[Mapping[Action, frozenset[Role]]] = MappingProxyType(
    {
        Action.ASSIGN: frozenset({Role.SYSTEM, Role.STAFF}),
        Action.ACCEPT: frozenset({Role.CAREGIVER, Role.STAFF}),
        Action.REJECT: frozenset({Role.CAREGIVER, Role.STAFF}),
        Action.EXPIRE: frozenset({Role.SYSTEM}),
        Action.DEPART: frozenset({Role.CAREGIVER, Role.STAFF}),
        Action.ARRIVE: frozenset({Role.CAREGIVER, Role.STAFF}),
        Action.COMPLETE: frozenset({Role.CAREGIVER, Role.STAFF}),
        # The system cancels too: a 助急 order whose fall alert was withdrawn ("I'm OK").
        Action.CANCEL: frozenset({Role.STAFF, Role.FAMILY, Role.ELDER, Role.SYSTEM}),
    }
)
SOURCE_ROLE: Final[Mapping[Source, Role]] = MappingProxyType(
    {
        Source.STAFF: Role.STAFF,
        Source.FAMILY: Role.FAMILY,
        Source.ELDER: Role.ELDER,
        Source.SCHEDULE: Role.SYSTEM,
        Source.ALERT: Role.SYSTEM,
    }
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who took a step: a role and that person's id (None for the system)."""

    role: Role | str
    id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))


SYSTEM: Final = Actor(Role.SYSTEM)


@dataclass(frozen=True, slots=True)
class Step:
    """One recorded step of an order's history."""

    action: Action
    from_state: OrderState | None  # None for the request itself
    to_state: OrderState
    at: datetime
    actor: Actor
    caregiver_id: int | None = None  # assign: who was offered it; reject/expire: who declined
    note: str = ""


@dataclass(frozen=True, slots=True)
class Order:
    """A service order: what, for whom, when, its state, and how it got there."""

    elder_id: int
    kind: ServiceKind
    source: Source
    requested_at: datetime
    history: tuple[Step, ...]
    state: OrderState = OrderState.REQUESTED
    caregiver_id: int | None = None  # the current assignee
    scheduled_for: datetime | None = None  # booked time; None = on demand
    id: int | None = None  # given by the database
    alert_id: int | None = None  # the alert that raised a 助急 order

    @property
    def declined_by(self) -> frozenset[int]:
        """Caregivers who rejected this order or let the offer expire: not asked again."""
        return frozenset(
            s.caregiver_id
            for s in self.history
            if s.action in (Action.REJECT, Action.EXPIRE) and s.caregiver_id is not None
        )

    def last(self, action: Action | str) -> Step | None:
        """The most recent step of ``action``, if any."""
        a = Action(action)
        for s in reversed(self.history):
            if s.action is a:
                return s
        return None

    def entered(self, state: OrderState | str) -> datetime | None:
        """When the order last entered ``state``."""
        st = OrderState(state)
        for s in reversed(self.history):
            if s.to_state is st:
                return s.at
        return None

    @property
    def accepted_at(self) -> datetime | None:
        """When the current caregiver accepted, while that acceptance stands."""
        return self.entered(OrderState.ACCEPTED) if self.state in TAKEN else None

    @property
    def arrived_at(self) -> datetime | None:
        return self.entered(OrderState.IN_SERVICE)

    @property
    def ended_at(self) -> datetime | None:
        """When the order was completed or cancelled."""
        return self.history[-1].at if self.state in TERMINAL else None


class IllegalStep(ValueError):
    """``action`` is not allowed in ``state``: the API's 409, with the current state."""

    def __init__(self, state: OrderState, action: Action) -> None:
        self.state = state
        self.action = action
        self.allowed = allowed_actions(state)
        hint = ", ".join(a.value for a in sorted(self.allowed)) or "none: it is final"
        super().__init__(f"cannot {action.value} an order that is {state.value} (allowed: {hint})")


class NotPermitted(PermissionError):
    """The actor may not take this step (the API's 403)."""

    def __init__(self, actor: Actor, action: Action, why: str) -> None:
        self.actor = actor
        self.action = action
        super().__init__(f"{Role(actor.role).value} {actor.id} may not {action.value}: {why}")


def allowed_actions(state: OrderState | str) -> frozenset[Action]:
    """The steps the table allows from ``state``.

    >>> sorted(a.value for a in allowed_actions("rejected"))
    ['assign', 'cancel']
    """
    st = OrderState(state)
    return frozenset(a for (s, a) in TRANSITIONS if s is st)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"timestamp {at.isoformat()} has no time zone")
    return at


def request(
    elder_id: int,
    kind: ServiceKind | str,
    actor: Actor,
    at: datetime,
    *,
    source: Source | str | None = None,
    scheduled_for: datetime | None = None,
    alert_id: int | None = None,
    note: str = "",
) -> Order:
    """A new order in ``requested``, its first step recorded.

    ``source`` defaults to the requester's role (staff, family, elder); the system
    requests for a schedule or an alert and must say which.
    """
    role = Role(actor.role)
    if source is None:
        if role is Role.SYSTEM or role is Role.CAREGIVER:
            raise ValueError("say which source a system request comes from (schedule, alert)")
        source = Source(role.value)
    src = Source(source)
    if SOURCE_ROLE[src] is not role:
        raise NotPermitted(
            actor, Action.REQUEST, f"{src.value} requests are made by the {src.value}"
        )
    if role is Role.ELDER and actor.id != elder_id:
        raise NotPermitted(actor, Action.REQUEST, "an elder's device asks only for that elder")
    step = Step(Action.REQUEST, None, OrderState.REQUESTED, _aware(at), actor, note=note)
    return Order(
        elder_id,
        ServiceKind(kind),
        src,
        at,
        (step,),
        scheduled_for=None if scheduled_for is None else _aware(scheduled_for),
        alert_id=alert_id,
    )


def transition(
    order: Order,
    action: Action | str,
    actor: Actor,
    at: datetime,
    *,
    caregiver_id: int | None = None,
    note: str = "",
) -> Order:
    """``order`` after ``actor`` takes ``action`` at ``at``; the input is not changed.

    ``caregiver_id`` names the caregiver on ``assign`` (required) and defaults to the
    current assignee otherwise.  Steps must not go back in time: the history is the
    order's audit trail and the service-level timers read it.
    """
    act = Action(action)
    try:
        after = TRANSITIONS[(order.state, act)]
    except KeyError:
        raise IllegalStep(order.state, act) from None
    _check_actor(order, act, actor)
    last = order.history[-1].at
    if _aware(at) < last:
        raise ValueError(
            f"{act.value} at {at.isoformat()} is before the last step ({last.isoformat()})"
        )
    if act is Action.ASSIGN:
        if caregiver_id is None:
            raise ValueError("assign needs the caregiver_id")
        who: int | None = caregiver_id
    else:
        if caregiver_id is not None and caregiver_id != order.caregiver_id:
            raise ValueError(f"caregiver {caregiver_id} is not assigned to this order")
        who = order.caregiver_id
    step = Step(act, order.state, after, at, actor, who, note)
    # Declining hands the order back: nobody is its caregiver until the next assign.
    current = None if after is OrderState.REJECTED else who
    return replace(order, state=after, caregiver_id=current, history=(*order.history, step))


def _check_actor(order: Order, act: Action, actor: Actor) -> None:
    role = Role(actor.role)
    if role not in ROLES[act]:
        raise NotPermitted(actor, act, f"only {', '.join(sorted(ROLES[act]))} may")
    if role is Role.CAREGIVER and actor.id != order.caregiver_id:
        raise NotPermitted(actor, act, "the order is not assigned to them")
