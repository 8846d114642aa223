"""Is everything up?  For people, load balancers and ``eldercare status``."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Request, Response

from api.models import DetectionHealth, Health

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(request: Request, response: Response) -> Health:
    state = request.app.state
    db_ok, version, timescale = True, 0, False
    try:
        async with state.pool.connection(timeout=2) as conn:
            cur = await conn.execute("SELECT max(version) FROM schema_migrations")
            version = (await cur.fetchone())[0] or 0
            cur = await conn.execute("SELECT timescale FROM storage_flavour")
            row = await cur.fetchone()
            timescale = bool(row and row[0])
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
    )


def _detection(ingest: object) -> DetectionHealth | None:
    worker = getattr(ingest, "detection", None)
    if worker is None:
        return None
    return DetectionHealth(
        ready=worker.ready,
        restored=worker.restored,
        readings_submitted=worker.readings_submitted,
        readings_done=worker.readings_done,
        alerts_recorded=worker.alerts_recorded,
        errors=worker.errors,
    )
