"""Which devices exist and whom they are paired to, cached for the ingest hot path."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg


class DeviceDirectory:
    """device id -> elder id (None when enrolled but unpaired), refreshed in bulk.

    Unknown ids are looked up once per batch, and remembered as unknown for
    ``negative_ttl`` seconds so that a flood from an unenrolled device costs one
    query, not one per message.
    """

    def __init__(self, refresh_s: float = 10.0, negative_ttl: float = 10.0) -> None:
        self.refresh_s = refresh_s
        self.negative_ttl = negative_ttl
        self._known: dict[str, int | None] = {}
        self._unknown_until: dict[str, float] = {}
        self._loaded_at = float("-inf")

    def lookup(self, device_id: str) -> tuple[bool, int | None]:
        if device_id in self._known:
            return True, self._known[device_id]
        return False, None

    def refresh_if_due(self, conn: psycopg.Connection, now: float) -> None:
        if now - self._loaded_at < self.refresh_s:
            return
        self._known = dict(conn.execute("SELECT id, elder_id FROM devices").fetchall())
        self._unknown_until.clear()
        self._loaded_at = now

    def resolve(self, conn: psycopg.Connection, device_ids: Iterable[str], now: float) -> None:
        """Make sure every id in ``device_ids`` is either known or recently confirmed unknown."""
        missing = [
            d
            for d in set(device_ids)
            if d not in self._known and self._unknown_until.get(d, 0.0) < now
        ]
        if not missing:
            return
        found = dict(
            conn.execute(
                "SELECT id, elder_id FROM devices WHERE id = ANY(%s)", (missing,)
            ).fetchall()
        )
        self._known.update(found)
        for d in missing:
            if d not in found:
                self._unknown_until[d] = now + self.negative_ttl
