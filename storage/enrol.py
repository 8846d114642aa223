"""Bulk enrolment of a community: the demo's simulated elders, or an import."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import psycopg
from psycopg.types.json import Jsonb


class RosterEntry(Protocol):
    key: str
    device_id: str
    name: str
    gender: str
    birth_year: int
    address: str
    home_lat: float
    home_lon: float
    report_interval_s: int


def enrol(
    conn: psycopg.Connection,
    roster: Iterable[RosterEntry],
    *,
    community: str,
    center: tuple[float, float],
    geojson: dict[str, Any],
) -> int:
    """Create or refresh the community, its elders (by ``external_key``) and their
    paired devices.  Idempotent: running the demo twice enrols nobody twice."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO communities (name, center_lat, center_lon, geojson) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (name) DO UPDATE SET center_lat = excluded.center_lat,"
            " center_lon = excluded.center_lon, geojson = excluded.geojson RETURNING id",
            (community, center[0], center[1], Jsonb(geojson)),
        ).fetchone()
        assert row is not None
        community_id = row[0]
        entries = list(roster)
        rows = conn.execute(
            "INSERT INTO elders (external_key, community_id, name, gender, birth_year, address,"
            " home_lat, home_lon)"
            " SELECT k, %s, n, g, b, a, la, lo FROM unnest(%s::text[], %s::text[], %s::text[],"
            " %s::int[], %s::text[], %s::float8[], %s::float8[]) AS u(k, n, g, b, a, la, lo)"
            " ON CONFLICT (external_key) DO UPDATE SET name = excluded.name,"
            " home_lat = excluded.home_lat, home_lon = excluded.home_lon"
            " RETURNING external_key, id",
            (
                community_id,
                [e.key for e in entries],
                [e.name for e in entries],
                [e.gender for e in entries],
                [e.birth_year for e in entries],
                [e.address for e in entries],
                [e.home_lat for e in entries],
                [e.home_lon for e in entries],
            ),
        ).fetchall()
        ids = dict(rows)
        devices = [e.device_id for e in entries]
        elders = [ids[e.key] for e in entries]
        conn.execute(
            "INSERT INTO devices (id, model, elder_id, report_interval_s)"
            " SELECT d, 'sim-watch', e, i FROM unnest(%s::text[], %s::bigint[], %s::int[])"
            " AS u(d, e, i) ON CONFLICT (id) DO UPDATE SET elder_id = excluded.elder_id",
            (devices, elders, [e.report_interval_s for e in entries]),
        )
        conn.execute(
            "INSERT INTO device_pairings (device_id, elder_id)"
            " SELECT d, e FROM unnest(%s::text[], %s::bigint[]) AS u(d, e)"
            " ON CONFLICT (device_id) WHERE unpaired_at IS NULL DO NOTHING",
            (devices, elders),
        )
    return len(entries)
