"""Elder profiles (home, community outline, report interval, thresholds) for the rules.

Loaded in bulk: :meth:`ProfileLoader.preload` reads every elder in one query when
detection starts, so building a thousand elders' rule sets costs one round trip, not
a thousand.  An elder enrolled later, or whose profile was edited, is read on its own
(``forget`` drops the cached one so the next build reads it afresh).
"""

from __future__ import annotations

from typing import Any

import psycopg

from alerts.ruleset import ElderProfile

_PROFILE_SQL = (
    "SELECT e.id, e.home_lat, e.home_lon,"
    " (SELECT max(report_interval_s) FROM devices d WHERE d.elder_id = e.id),"
    " (SELECT thresholds FROM elder_settings s WHERE s.elder_id = e.id)"
    " FROM elders e"
)


class ProfileLoader:
    """A ``profile_for`` for :class:`~alerts.engine.DetectionEngine`, backed by the database."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self._outline: tuple[tuple[float, float], ...] | None = None
        self._outline_loaded = False
        self._cached: dict[int, ElderProfile] = {}
        self.queries = 0

    def preload(self) -> int:
        """Read every elder's profile in one query; return how many."""
        rows = self._fetch("", ())
        self._cached = {row[0]: self._profile(row) for row in rows}
        return len(self._cached)

    def forget(self, elder_id: int) -> None:
        self._cached.pop(elder_id, None)

    def __call__(self, elder_id: int) -> ElderProfile:
        cached = self._cached.pop(elder_id, None)  # used once: a rebuild reads afresh
        if cached is not None:
            return cached
        rows = self._fetch(" WHERE e.id = %s", (elder_id,))
        return self._profile(rows[0]) if rows else ElderProfile(elder_id)

    def outline(self) -> tuple[tuple[float, float], ...] | None:
        if not self._outline_loaded:
            row = self.conn.execute(
                "SELECT geojson FROM communities ORDER BY id LIMIT 1"
            ).fetchone()
            self.conn.commit()
            self._outline = _outline_of(row[0]) if row else None
            self._outline_loaded = True
        return self._outline

    def _fetch(self, where: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        rows = self.conn.execute(_PROFILE_SQL + where, params).fetchall()
        self.conn.commit()
        self.queries += 1
        return rows

    def _profile(self, row: tuple[Any, ...]) -> ElderProfile:
        elder_id, lat, lon, interval, thresholds = row
        return ElderProfile(
            elder_id,
            home=(lat, lon) if lat is not None and lon is not None else None,
            community_outline=self.outline(),
            report_interval_s=interval or 60,
            thresholds=thresholds or {},
        )


def _outline_of(geojson: dict[str, Any]) -> tuple[tuple[float, float], ...] | None:
    for f in geojson.get("features", []):
        if f.get("properties", {}).get("kind") == "outline" and f["geometry"]["type"] == "Polygon":
            return tuple((float(x), float(y)) for x, y in f["geometry"]["coordinates"][0])
    return None
