"""Is everything up?  For people, load balancers and ``eldercare status``.

Public, so it reports counts and sizes only, never a name or a reading.
"""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Request, Response

from api.models import DetectionHealth, Health

router = APIRouter(prefix="/api/v1", tags=["health"])

# A partitioned table's size is its partitions' (pg_partition_tree lists a plain table alone).
_LARGEST_TABLES = """
SELECT c.relname,
       (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)
        FROM pg_partition_tree(c.oid) AS t)::bigint AS bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY bytes DESC, c.relname
LIMIT 6
"""
_QUARANTINE_LAST_HOUR = """
SELECT reason, count(*) FROM quarantine
WHERE received_at > now() - interval '1 hour' GROUP BY reason ORDER BY reason
"""
_OPEN_ALERTS = """
SELECT severity, count(*) FROM alerts WHERE state <> 'resolved' GROUP BY severity ORDER BY severity
"""


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(request: Request, response: Response) -> Health:
    state = request.app.state
    db_ok, version, timescale = True, 0, False
    size: int | None = None
    tables: dict[str, int] = {}
    quarantined: dict[str, int] = {}
    open_alerts: dict[str, int] = {}
    try:
        async with state.pool.connection(timeout=2) as conn:
            cur = await conn.execute("SELECT max(version) FROM schema_migrations")
            version = (await cur.fetchone())[0] or 0
            cur = await conn.execute("SELECT timescale FROM storage_flavour")
            row = await cur.fetchone()
            timescale = bool(row and row[0])
            cur = await conn.execute("SELECT pg_database_size(current_database())")
            size = int((await cur.fetchone())[0])
            tables = dict(await (await conn.execute(_LARGEST_TABLES)).fetchall())
            quarantined = dict(await (await conn.execute(_QUARANTINE_LAST_HOUR)).fetchall())
            open_alerts = dict(await (await conn.execute(_OPEN_ALERTS)).fetchall())
    except (psycopg.Error, TimeoutError, OSError):
        db_ok = False
    ingest = state.ingest
    broker_ok = ingest.connected if ingest is not None else None
    ok = db_ok and broker_ok is not False
    if not ok:
        response.status_code = 503
    return Health(
        status="ok" if ok else "degraded",
        database=db_ok,
        broker=broker_ok,
        schema_version=version,
        storage="timescaledb" if timescale else "postgresql",
        ingest=ingest.stats.as_dict() if ingest is not None else None,
        detection=_detection(ingest),
        live_clients=state.hub.client_count,
        database_bytes=size,
        largest_tables=tables,
        quarantine_last_hour=quarantined,
        open_alerts=open_alerts,
    )


def _detection(ingest: object) -> DetectionHealth | None:
    worker = getattr(ingest, "detection", None)
    if worker is None:
        return None
    submitted, done = worker.readings_submitted, worker.readings_done
    return DetectionHealth(
        ready=worker.ready,
        restored=worker.restored,
        readings_submitted=submitted,
        readings_done=done,
        alerts_recorded=worker.alerts_recorded,
        errors=worker.errors,
        backlog=max(0, submitted - done),
    )
