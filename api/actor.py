"""Who acts on an order: the signed-in user, as the order lifecycle names people.

A caregiver's account acts as their caregiver (``caregiver:12``), staff and
administrators as ``staff:<user id>``, a family member as ``family:<user id>``.  Nothing
an HTTP client sends can make it someone else; ``system`` is for the dispatcher and
timers inside the process only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.auth_deps import CurrentUser, CurrentUserDep
from auth.roles import Role as UserRole
from orders.lifecycle import Actor, Role


def actor_of(user: CurrentUser) -> Actor:
    """
    >>> from api.auth_deps import CurrentUser
    >>> u = CurrentUser(id=5, login="li", display_name="李", role="caregiver",
    ...                 community_id=1, caregiver_id=12, session_id=1)
    >>> actor_of(u)
    Actor(role=<Role.CAREGIVER: 'caregiver'>, id=12)
    >>> actor_of(u.model_copy(update={"role": UserRole.admin})).role.value
    'staff'
    """
    if user.role is UserRole.caregiver:
        return Actor(Role.CAREGIVER, user.caregiver_id)
    if user.role is UserRole.family:
        return Actor(Role.FAMILY, user.id)
    return Actor(Role.STAFF, user.id)


def actor(user: CurrentUserDep) -> Actor:
    return actor_of(user)


ActorDep = Annotated[Actor, Depends(actor)]
