"""What a route asks for to be authorised: the signed-in user's :class:`~auth.scope.Scope`
after a permission check, and the one way to say "outside your scope".

A route lists ``scope: Annotated[Scope, Depends(scoped(Permission.x))]``: no token is a
401, a role without ``x`` a 403, and an object the scope does not reach is reported by
:func:`visible` as the same 404 an unknown id gets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request, status

from api.auth_deps import CurrentUser, CurrentUserDep, now
from api.deps import ConnDep
from auth.roles import Permission, can
from auth.scope import Scope
from storage.registry import NotFound
from storage.scope import load_scope


async def scope_of(conn: ConnDep, user: CurrentUser, request: Request) -> Scope:
    return await load_scope(
        conn,
        role=user.role,
        user_id=user.id,
        community_id=user.community_id,
        caregiver_id=user.caregiver_id,
        now=now(request),
    )


def forbidden(user: CurrentUser, permission: Permission) -> HTTPException:
    return HTTPException(
        status.HTTP_403_FORBIDDEN,
        detail=f"a {user.role.value} may not do this (needs {permission.value})",
    )


def scoped(*permissions: Permission) -> Callable[..., Awaitable[Scope]]:
    """A dependency: the caller's scope if their role has any of ``permissions``
    (none given: any signed-in user), else 403."""

    async def check(request: Request, conn: ConnDep, user: CurrentUserDep) -> Scope:
        if permissions and not any(can(user.role, p) for p in permissions):
            raise forbidden(user, permissions[0])
        return await scope_of(conn, user, request)

    return check


def visible(ok: bool, what: str, ident: object) -> None:
    """Raise the 404 an unknown ``what`` gets unless ``ok``: outside the caller's scope
    looks exactly like not there."""
    if not ok:
        raise NotFound(f"{what} {ident} does not exist")
