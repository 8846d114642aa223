"""Which objects a signed-in user may see: one policy for REST and the live WebSocket.

A role says which verbs a user has (:mod:`auth.roles`); the scope says which elders,
orders, alerts and caregivers those verbs reach.  The sets come from the database
(``storage.scope``); the decisions here are pure.

=========  ===========================================================================
admin      everything
staff      the elders of their community, and those elders' devices, alerts, orders;
           the caregivers of their community
caregiver  their own orders (any not cancelled, open or from today) and those orders'
           elders with their alerts; themselves among the caregivers
family     the elders linked to them through an unrevoked, consented family link, and
           those elders' alerts and orders; no caregivers, no devices
=========  ===========================================================================

Something outside the scope is reported as *not found*, the same answer as for an id
that does not exist, so an id cannot be probed for existence.

>>> s = Scope(Role.family, user_id=7, community_id=1, caregiver_id=None,
...           elder_ids=frozenset({3}), caregiver_ids=frozenset())
>>> s.sees_elder(3), s.sees_elder(4), s.sees_order(3, caregiver_id=9), s.sees_caregiver(9)
(True, False, True, False)
>>> c = Scope(Role.caregiver, user_id=8, community_id=1, caregiver_id=9,
...           elder_ids=frozenset({3}), caregiver_ids=frozenset({9}))
>>> c.sees_order(3, caregiver_id=9), c.sees_order(3, caregiver_id=10), c.sees_alert(3)
(True, False, True)
>>> ADMIN = Scope(Role.admin, 1, None, None, None, None)
>>> ADMIN.sees_elder(12345), ADMIN.sees_device(None), ADMIN.elder_filter() is None
(True, True, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auth.roles import Role


@dataclass(frozen=True, slots=True)
class Scope:
    role: Role
    user_id: int
    community_id: int | None
    caregiver_id: int | None
    elder_ids: frozenset[int] | None  # None: every elder (an administrator)
    caregiver_ids: frozenset[int] | None  # None: every caregiver

    def sees_elder(self, elder_id: int) -> bool:
        return self.elder_ids is None or elder_id in self.elder_ids

    def sees_alert(self, elder_id: int) -> bool:
        return self.sees_elder(elder_id)

    def sees_order(self, elder_id: int, *, caregiver_id: int | None) -> bool:
        """A caregiver sees only the orders that are theirs, not every order of their
        elders; everyone else sees the orders of the elders they see."""
        if self.role is Role.caregiver:
            return caregiver_id is not None and caregiver_id == self.caregiver_id
        return self.sees_elder(elder_id)

    def sees_caregiver(self, caregiver_id: int) -> bool:
        return self.caregiver_ids is None or caregiver_id in self.caregiver_ids

    def sees_device(self, elder_id: int | None) -> bool:
        """Devices are the centre's: staff see those worn in their community."""
        if self.role is Role.admin:
            return True
        return self.role is Role.staff and elder_id is not None and self.sees_elder(elder_id)

    def sees_message(self, kind: str, body: Mapping[str, Any]) -> bool:
        """Whether a live message (``{"type": kind, kind: body}``) is for this user; a
        kind this policy does not know goes to administrators only.

        >>> s = Scope(Role.staff, 2, 1, None, frozenset({3}), frozenset({9}))
        >>> s.sees_message("order", {"elder_id": 3, "caregiver_id": 4})
        True
        >>> s.sees_message("caregiver", {"id": 10}), s.sees_message("news", {"id": 1})
        (False, False)
        """
        if kind == "alert":
            return self.sees_alert(int(body["elder_id"]))
        if kind == "order":
            return self.sees_order(int(body["elder_id"]), caregiver_id=body.get("caregiver_id"))
        if kind == "caregiver":
            return self.sees_caregiver(int(body["id"]))
        return self.role is Role.admin

    def elder_filter(self) -> list[int] | None:
        """For a list query: the elder ids to restrict to, or ``None`` for no restriction."""
        return None if self.elder_ids is None else sorted(self.elder_ids)

    def order_caregiver_filter(self) -> int | None:
        """For an order list: a caregiver's lists hold only their own orders."""
        if self.role is Role.caregiver:
            return -1 if self.caregiver_id is None else self.caregiver_id
        return None
