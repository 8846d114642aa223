"""Service-level timers on an injected clock: deadlines, breaches, offer timeouts and
the 助急 escalation ladder.  Pure: ``now`` is always passed in.

Deadlines come from the kind's :class:`~orders.catalogue.ServiceLevel`:

* on demand: accept by ``requested + accept``, arrive by ``requested + arrive``;
* booked for ``t``: accept by ``t - accept_lead``, arrive inside ``[t - early, t + late]``
  (the 助餐 delivery window) -- but never sooner than the on-demand targets from the
  request, since a booking made at 11:20 for 11:30 cannot promise more than "now".

A target is missed when its step happened after the deadline, or has not happened by
``now >= deadline``.  Re-dispatch does not restart the clock: the elder has been
waiting since the request.  A cancelled order is judged at its cancellation (what was
already late stays late; nothing falls due afterwards).

The shell wakes at :func:`next_check`, records what :func:`breaches` returns that it has
not recorded yet (one staff alert per order and breach kind), expires offers that
:func:`offer_expired` says are due, and records the levels :func:`escalations_due` lists.

>>> from datetime import datetime, timedelta, timezone
>>> from orders.lifecycle import Actor, request
>>> t0 = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)
>>> sos = request(7, "emergency", Actor("staff", 1), t0)
>>> breaches(sos, t0 + timedelta(minutes=1))
[]
>>> [(b.kind.value, b.severity.value, b.by) for b in breaches(sos, t0 + timedelta(minutes=3))]
[('accept_late', 'critical', datetime.timedelta(seconds=60))]
>>> escalations_due(sos, t0 + timedelta(minutes=3), recorded=0)
[1]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Final

from alerts.core import Severity
from orders.catalogue import CATALOGUE, ServiceKind, ServiceSpec
from orders.lifecycle import TAKEN, TERMINAL, Action, Order, OrderState

Catalogue = Mapping[ServiceKind, ServiceSpec]


class BreachKind(StrEnum):
    ACCEPT_LATE = "accept_late"  # nobody took the job on in time
    ARRIVE_LATE = "arrive_late"  # no check-in at the elder in time
    ARRIVE_EARLY = "arrive_early"  # before a booked window opened (a cold lunch at 10:50)


@dataclass(frozen=True, slots=True)
class Deadlines:
    accept_by: datetime
    arrive_by: datetime
    arrive_from: datetime | None  # booked orders: the window's start


@dataclass(frozen=True, slots=True)
class Breach:
    """A missed target, for a staff alert."""

    kind: BreachKind
    order_id: int | None
    elder_id: int
    service: ServiceKind
    due: datetime  # the deadline (for ARRIVE_EARLY: the window's start)
    happened_at: datetime | None  # when the step was taken; None: still not taken
    by: timedelta  # how late (or early) it was, or is so far
    severity: Severity


def deadlines(order: Order, catalogue: Catalogue = CATALOGUE) -> Deadlines:
    """The order's accept and arrival deadlines.

    >>> from datetime import datetime, timedelta, timezone
    >>> from orders.lifecycle import SYSTEM, request
    >>> from orders.schedule import SHANGHAI
    >>> lunch = datetime(2026, 3, 2, 11, 30, tzinfo=SHANGHAI)
    >>> released = lunch - timedelta(minutes=90)  # the meal's release lead
    >>> o = request(7, "meal", SYSTEM, released, source="schedule", scheduled_for=lunch)
    >>> d = deadlines(o)
    >>> [t.strftime("%H:%M") for t in (d.accept_by, d.arrive_from, d.arrive_by)]
    ['10:30', '11:15', '11:45']
    """
    level = catalogue[order.kind].level
    asked = order.requested_at
    accept_by, arrive_by = asked + level.accept, asked + level.arrive
    if order.scheduled_for is None:
        return Deadlines(accept_by, arrive_by, None)
    t = order.scheduled_for
    early, late = level.window
    return Deadlines(max(accept_by, t - level.accept_lead), max(arrive_by, t + late), t - early)


def _severity(order: Order, kind: BreachKind, catalogue: Catalogue) -> Severity:
    if catalogue[order.kind].urgent:
        return Severity.CRITICAL
    return Severity.LOW if kind is BreachKind.ARRIVE_EARLY else Severity.MEDIUM


def breaches(order: Order, now: datetime, catalogue: Catalogue = CATALOGUE) -> list[Breach]:
    """The targets ``order`` has missed as of ``now`` (accept first, then arrival)."""
    d = deadlines(order, catalogue)
    # A cancelled order is judged as it stood when cancelled.
    cutoff = min(now, order.history[-1].at) if order.state is OrderState.CANCELLED else now
    out: list[Breach] = []

    def late(kind: BreachKind, due: datetime, done: datetime | None) -> None:
        if done is not None and done > due:
            out.append(_breach(order, kind, due, done, done - due, catalogue))
        elif done is None and cutoff >= due:
            out.append(_breach(order, kind, due, None, cutoff - due, catalogue))

    late(BreachKind.ACCEPT_LATE, d.accept_by, _accepted_at(order))
    arrived = order.arrived_at
    late(BreachKind.ARRIVE_LATE, d.arrive_by, arrived)
    if d.arrive_from is not None and arrived is not None and arrived < d.arrive_from:
        out.append(
            _breach(
                order,
                BreachKind.ARRIVE_EARLY,
                d.arrive_from,
                arrived,
                d.arrive_from - arrived,
                catalogue,
            )
        )
    return out


def _accepted_at(order: Order) -> datetime | None:
    """When the acceptance that stands was given (an accept later backed out of does
    not count: the elder is still waiting)."""
    return order.entered(OrderState.ACCEPTED) if order.state in TAKEN else None


def _breach(
    order: Order,
    kind: BreachKind,
    due: datetime,
    done: datetime | None,
    by: timedelta,
    catalogue: Catalogue,
) -> Breach:
    return Breach(
        kind, order.id, order.elder_id, order.kind, due, done, by, _severity(order, kind, catalogue)
    )


def offer_expired(order: Order, now: datetime, catalogue: Catalogue = CATALOGUE) -> bool:
    """Whether the assigned caregiver has let the offer lapse (the shell then takes the
    ``expire`` step and dispatches again, without them).

    >>> from datetime import datetime, timedelta, timezone
    >>> from orders.lifecycle import SYSTEM, Actor, request, transition
    >>> t0 = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)
    >>> o = transition(request(7, "emergency", Actor("staff", 1), t0), "assign", SYSTEM, t0, caregiver_id=4)
    >>> offer_expired(o, t0 + timedelta(seconds=44)), offer_expired(o, t0 + timedelta(seconds=45))
    (False, True)
    """
    due = offer_due(order, catalogue)
    return due is not None and now >= due


def offer_due(order: Order, catalogue: Catalogue = CATALOGUE) -> datetime | None:
    """When the current offer lapses, if the order is waiting for an answer."""
    if order.state is not OrderState.ASSIGNED:
        return None
    step = order.last(Action.ASSIGN)
    assert step is not None  # ASSIGNED is entered only by assign
    return step.at + catalogue[order.kind].level.offer


# --- 助急 escalation ------------------------------------------------------------------


class Level(IntEnum):
    NONE = 0
    WIDEN = 1  # offer to every qualified caregiver on shift at once; page the supervisor
    OUTSIDE = 2  # staff prompted to call 120 and the family: nobody of ours is coming


# (level, time after the accept deadline).  Level 1 is the accept target itself.
Ladder = tuple[tuple[Level, timedelta], ...]
DEFAULT_LADDER: Final[Ladder] = (
    (Level.WIDEN, timedelta(0)),
    (Level.OUTSIDE, timedelta(minutes=3)),
)


def escalation_times(
    order: Order, ladder: Ladder = DEFAULT_LADDER, catalogue: Catalogue = CATALOGUE
) -> list[tuple[Level, datetime]]:
    """When each level falls due for an urgent order (empty for the other kinds)."""
    if not catalogue[order.kind].urgent:
        return []
    accept_by = deadlines(order, catalogue).accept_by
    return [(level, accept_by + after) for level, after in ladder]


def escalations_due(
    order: Order,
    now: datetime,
    recorded: int,
    ladder: Ladder = DEFAULT_LADDER,
    catalogue: Catalogue = CATALOGUE,
) -> list[int]:
    """Levels due at ``now`` above ``recorded`` (the highest already recorded), lowest
    first; none once a caregiver has accepted or the order has ended."""
    if order.state in TAKEN or order.state in TERMINAL:
        return []
    return [
        int(level)
        for level, at in escalation_times(order, ladder, catalogue)
        if level > recorded and now >= at
    ]


def next_check(
    order: Order,
    now: datetime,
    recorded: int = 0,
    ladder: Ladder = DEFAULT_LADDER,
    catalogue: Catalogue = CATALOGUE,
) -> datetime | None:
    """The next instant after ``now`` at which something may fall due for ``order``
    (a deadline, the offer's expiry, an escalation level); None when nothing can."""
    if order.state in TERMINAL:
        return None
    d = deadlines(order, catalogue)
    times: list[datetime] = []
    if _accepted_at(order) is None:
        times.append(d.accept_by)
        times += [
            at for level, at in escalation_times(order, ladder, catalogue) if level > recorded
        ]
    if order.arrived_at is None:
        times.append(d.arrive_by)
    offer = offer_due(order, catalogue)
    if offer is not None:
        times.append(offer)
    future = [t for t in times if t > now]
    return min(future) if future else None
