"""Who is asking: the ``X-Eldercare-Actor`` header, until accounts exist.

The header reads ``<role>:<id>`` (``caregiver:12``, ``staff:1``, ``system``); a request
without it is the dashboard, ``staff:0``.  Issue 5 replaces this one dependency with the
logged-in user, so every route that needs to know who acts asks for :data:`ActorDep`
and nothing else reads the header.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from fastapi import Depends, Header, HTTPException

from orders.lifecycle import Actor, Role

HEADER: Final = "X-Eldercare-Actor"
DASHBOARD: Final = Actor(Role.STAFF, 0)
_FORM: Final = re.compile(r"^(?P<role>[a-z]+)(?::(?P<id>\d{1,18}))?$")


def parse_actor(value: str | None) -> Actor:
    """The actor a header value names; ``ValueError`` saying what is wrong otherwise.

    >>> parse_actor("caregiver:12"), parse_actor(None) == DASHBOARD
    (Actor(role=<Role.CAREGIVER: 'caregiver'>, id=12), True)
    >>> parse_actor("system").id is None
    True
    """
    if value is None:
        return DASHBOARD
    m = _FORM.match(value.strip())
    roles = ", ".join(r.value for r in Role)
    if m is None:
        raise ValueError(f"{HEADER} must be <role>:<id> with role one of {roles}, not {value!r}")
    try:
        role = Role(m["role"])
    except ValueError:
        raise ValueError(f"{HEADER}: unknown role {m['role']!r} (one of {roles})") from None
    ident = None if m["id"] is None else int(m["id"])
    if ident is None and role is not Role.SYSTEM:
        raise ValueError(f"{HEADER}: a {role.value} needs an id, e.g. {role.value}:12")
    return Actor(role, ident)


def actor(
    x_eldercare_actor: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description="<role>:<id>, role one of staff, caregiver, family, elder, system;"
            " absent = staff:0 (the dashboard)",
        ),
    ] = None,
) -> Actor:
    try:
        return parse_actor(x_eldercare_actor)
    except ValueError as exc:
        # Shaped like FastAPI's own validation errors, so clients read one format.
        raise HTTPException(
            422, [{"loc": ["header", HEADER], "msg": str(exc), "type": "value_error"}]
        ) from None


ActorDep = Annotated[Actor, Depends(actor)]
