"""What routes ask for, by name: a database connection, the live hub, the settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.live import LiveHub
from eldercare.settings import Settings


async def _conn(request: Request) -> AsyncIterator[AsyncConnection]:
    pool: AsyncConnectionPool = request.app.state.pool
    async with pool.connection() as conn:  # commits when the route returns, rolls back on error
        yield conn


def _hub(request: Request) -> LiveHub:
    return request.app.state.hub


def _settings(request: Request) -> Settings:
    return request.app.state.settings


# scope="function": commit before the response is sent, so a client that acts on a
# 201 at once (create elder, then pair a device to it) finds the row.
ConnDep = Annotated[AsyncConnection, Depends(_conn, scope="function")]
HubDep = Annotated[LiveHub, Depends(_hub)]
SettingsDep = Annotated[Settings, Depends(_settings)]
