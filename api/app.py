"""The application factory: settings, database and (optionally) the ingest come in
from outside, so the demo, ``serve`` and the tests compose it the same way."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from psycopg_pool import AsyncConnectionPool

from alerts.seams import AuditOnlyOrders
from api.alert_feed import AlertingHub
from api.escalator import Escalator
from api.live import LiveHub
from api.routes import alerts, health, live, quarantine, readings, registry
from eldercare.settings import Settings
from ingest.batch import Assembled
from storage import readings as stored_readings
from storage import registry as stored_registry
from storage.registry import Conflict, NotFound


def create_app(settings: Settings, database_url: str, *, ingest: Any | None = None) -> FastAPI:
    """Build the API.  When ``ingest`` is given, its commits feed the live map."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(
            database_url, min_size=1, max_size=10, open=False, kwargs={"connect_timeout": 5}
        )
        await pool.open(wait=True, timeout=30)
        app.state.pool = pool

        async def names(ids: list[int]) -> dict[int, str]:
            async with pool.connection() as conn:
                return await stored_registry.elder_names(conn, ids)

        hub = AlertingHub(settings.live_interval_s, resolve_names=names)
        async with pool.connection() as conn:
            hub.prime(await stored_readings.latest_all(conn))
        app.state.hub = hub
        if ingest is not None:
            ingest.on_commit = lambda a: _feed(hub, a)
            if getattr(ingest, "detection", None) is not None:
                ingest.detection.on_alert = hub.publish_alert
        task = asyncio.create_task(hub.run(), name="live-hub")
        escalator = asyncio.create_task(Escalator(pool, hub.publish_alert).run(), name="escalator")
        try:
            yield
        finally:
            if ingest is not None:
                ingest.on_commit = None
                if getattr(ingest, "detection", None) is not None:
                    ingest.detection.on_alert = None
            task.cancel()
            escalator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(asyncio.CancelledError):
                await escalator
            await pool.close()

    app = FastAPI(
        title="杏北 Care API",
        version="0.1.0",
        description="Smart elder-care backend: wearables, live map, alerts, 六助 services.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.ingest = ingest
    app.state.emergency_orders = AuditOnlyOrders()  # the 六助 order module replaces it
    for r in (health.router, registry.router, readings.router, quarantine.router, live.router):
        app.include_router(r)
    app.include_router(alerts.router)
    _errors(app)
    _dashboard(app)
    return app


def _feed(hub: LiveHub, assembled: Assembled) -> None:
    if assembled.live:
        hub.publish({e: {k: v for k, v in f.items()} for e, f in assembled.live.items()})


def _errors(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(psycopg.errors.IntegrityError)
    async def integrity(_: Request, exc: psycopg.errors.IntegrityError) -> JSONResponse:
        diag = exc.diag
        what = diag.constraint_name or diag.column_name or "a constraint"
        return JSONResponse(
            {"detail": f"rejected by {what}: {diag.message_primary or 'invalid value'}"},
            status_code=409 if isinstance(exc, psycopg.errors.UniqueViolation) else 422,
        )


def _dashboard(app: FastAPI) -> None:
    try:
        import dashboard
    except ImportError:  # pragma: no cover - the package ships with the project
        return
    if dashboard.STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")

        @app.get("/", include_in_schema=False)
        async def index() -> FileResponse:
            return FileResponse(dashboard.INDEX_HTML)
