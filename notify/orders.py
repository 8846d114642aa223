"""Who hears about a 六助 order, and when.  Pure.

* A caregiver hears of an order the moment it is offered to them (``assigned``): one
  notice per offer, through their channels in order (a failure falls through to the
  next one), and in their in-app inbox.
* The on-duty staff hear of a 助急 order nobody can take (the dispatcher found no one
  and noted why); with nobody on duty, the supervisors.

A missed target is already a ``service_late`` alert, and so climbs the alert ladder.
Quiet hours hold back everything but 助急.

>>> from datetime import UTC, datetime
>>> from notify.ladder import Channel, Person
>>> t = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
>>> wang = Person("user:9", "王护理员", 9, (Channel("webhook", "json://phone.example/x"),))
>>> o = OrderFacts(12, "meal", "assigned", assign_step=31, unstaffed=False)
>>> [(d.notice, d.step, d.person.name) for d in order_plan(o, wang, (), (), [], t).due]
[('order:12/assign:31', 'caregiver', '王护理员')]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from notify.ladder import STALE_S, Attempt, Due, InboxNote, Person, Plan, person_due

AWAITING = frozenset({"requested", "rejected"})


@dataclass(frozen=True, slots=True)
class OrderFacts:
    id: int
    kind: str
    state: str
    assign_step: int | None  # the order_steps id of the newest offer, if offered
    unstaffed: bool  # the dispatcher noted that nobody could be found

    @property
    def emergency(self) -> bool:
        return self.kind == "emergency"


def order_plan(
    order: OrderFacts,
    caregiver: Person | None,
    duty: Sequence[Person],
    supervisors: Sequence[Person],
    attempts: Iterable[Attempt],
    now: datetime,
    *,
    stale_s: float = STALE_S,
) -> Plan:
    """The attempts due at ``now`` about ``order``, and its in-app notes."""
    tries: dict[tuple[str, str], list[Attempt]] = {}
    for a in attempts:
        tries.setdefault((a.notice, a.recipient), []).append(a)
    targets: list[tuple[str, str, Person]] = []
    if order.state == "assigned" and caregiver is not None and order.assign_step is not None:
        targets.append((f"order:{order.id}/assign:{order.assign_step}", "caregiver", caregiver))
    if order.emergency and order.unstaffed and order.state in AWAITING:
        staff = [("duty", p) for p in duty] or [("supervisor", p) for p in supervisors]
        targets += [(f"order:{order.id}/unstaffed", step, p) for step, p in staff]
    due: list[Due] = []
    inbox: list[InboxNote] = []
    for notice, step, person in targets:
        if person.user_id is not None:
            inbox.append(InboxNote(person.user_id, notice, step))
        d = person_due(
            notice,
            step,
            None,
            0,
            person,
            tries.get((notice, person.key), []),
            now,
            critical=order.emergency,
            stale_s=stale_s,
        )
        if d is not None:
            due.append(d)
    return Plan(tuple(due), tuple(inbox))
