"""The escalation timer: every ``interval_s``, record the escalation levels now due on
unacknowledged alerts and push the alerts that climbed.  The shell around the pure
``alerts.escalation.due``; the clock is injected so tests can walk time forward.

Several API nodes may run it at once: each level is recorded once (row locks and the
recorded ``escalation_level`` decide), and a failing tick is logged and retried on the
next one -- a database blip must not end escalation for good.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from alerts.escalation import DEFAULT_LADDER, Ladder
from storage import alerts as stored_alerts

log = logging.getLogger("eldercare.escalator")
Publish = Callable[[dict[str, Any]], None]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class Escalator:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        publish: Publish,
        *,
        clock: Callable[[], datetime] = _wall_clock,
        interval_s: float = 10.0,
        ladder: Ladder = DEFAULT_LADDER,
    ) -> None:
        self.pool = pool
        self.publish = publish
        self.clock = clock
        self.interval_s = interval_s
        self.ladder = ladder

    async def tick(self) -> list[dict[str, Any]]:
        """One pass: record what is due, commit, then push; return the alerts that climbed."""
        async with self.pool.connection() as conn:  # commits on leaving the block
            climbed = await stored_alerts.escalate_due(conn, self.clock(), self.ladder)
        for alert in climbed:
            self.publish(alert)
        return climbed

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("escalation pass failed; retrying in %.0f s", self.interval_s)
            await asyncio.sleep(self.interval_s)
