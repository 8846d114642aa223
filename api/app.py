"""The application factory: settings, database and (optionally) the ingest come in
from outside, so the demo, ``serve`` and the tests compose it the same way."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from alerts.seams import default_orders
from api import notifier as notifier_task
from api.alert_feed import AlertListener
from api.auth_deps import signing_key
from api.dispatcher import Dispatcher
from api.escalator import Escalator
from api.live import LiveHub
from api.metrics import Metrics
from api.metrics import router as metrics_router
from api.order_feed import ServiceHub
from api.routes import alerts, health, live, quarantine, readings, registry
from api.routes import audit as audit_routes
from api.routes import auth as auth_routes
from api.routes import caregivers as caregiver_routes
from api.routes import device_credentials as device_credential_routes
from api.routes import family as family_routes
from api.routes import notifications as notification_routes
from api.routes import orders as order_routes
from api.routes import reports as report_routes
from api.routes import service_plans as service_plan_routes
from cluster.live_feed import LiveListener
from eldercare.settings import Settings
from ingest.batch import Assembled
from storage import readings as stored_readings
from storage import registry as stored_registry
from storage.registry import Conflict, NotFound
from storage.retention import RetentionJob


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

        hub = ServiceHub(settings.live_interval_s, resolve_names=names)  # + 六助 orders
        async with pool.connection() as conn:
            hub.prime(await stored_readings.latest_all(conn))
        app.state.hub = hub
        hub.alerts.on_sent = metrics.message_sent
        if ingest is not None:
            ingest.on_commit = lambda a: _feed(hub, a)
            ingest.stats.observer = metrics
        # Readings stored by other processes (workers, a separate ingest) reach the map too.
        live_listener = LiveListener(database_url, hub) if ingest is None else None
        if live_listener is not None:
            await live_listener.start()
        # Alerts from the detection process and the other API nodes (PostgreSQL NOTIFY).
        listener = AlertListener(database_url, hub, pool)
        await listener.start()
        task = asyncio.create_task(hub.run(), name="live-hub")
        escalator = asyncio.create_task(Escalator(pool, hub.publish_alert).run(), name="escalator")
        dispatcher = Dispatcher(
            database_url,
            publish_order=hub.publish_order,
            publish_alert=hub.publish_alert,
            publish_caregiver=hub.publish_caregiver,
            # retention_days 0 keeps everything: a century is "forever" for a trim.
            position_retention=timedelta(days=settings.retention_days or 36_500),
            max_backfill=timedelta(hours=settings.max_backfill_hours),
        )
        app.state.dispatcher = dispatcher
        dispatching = asyncio.create_task(dispatcher.run(), name="dispatcher")
        app.state.retention = RetentionJob(
            database_url,
            retention_days=settings.retention_days,
            interval_s=settings.retention_interval_s,
        )
        pruning = asyncio.create_task(app.state.retention.run(), name="retention")
        notifying = notifier_task.start(app, database_url)  # alerts and offers to people
        try:
            yield
        finally:
            if ingest is not None:
                ingest.on_commit = None
                ingest.stats.observer = None
            await listener.stop()
            if live_listener is not None:
                await live_listener.stop()
            await notifier_task.stop(notifying)
            task.cancel()
            escalator.cancel()
            dispatching.cancel()
            pruning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(asyncio.CancelledError):
                await escalator
            with contextlib.suppress(asyncio.CancelledError):
                await dispatching
            with contextlib.suppress(asyncio.CancelledError):
                await pruning
            await pool.close()

    app = FastAPI(
        title="杏北 Care API",
        version="0.1.0",
        description="Smart elder-care backend: wearables, live map, alerts, 六助 services.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.ingest = ingest
    metrics = Metrics(CollectorRegistry())
    app.state.metrics = metrics
    if settings.metrics_enabled:  # outside /api/v1: unauthenticated, filtered at the proxy
        app.include_router(metrics_router)
    app.state.emergency_orders = default_orders()  # a critical alert creates a 助急 order
    for r in (health.router, registry.router, readings.router, quarantine.router, live.router):
        app.include_router(r)
    app.include_router(alerts.router)
    for r in (order_routes.router, caregiver_routes.router, service_plan_routes.router):
        app.include_router(r)  # 六助 services
    app.include_router(report_routes.router)
    # Read (or generated into the data folder) now, so a bad secret stops the start.
    app.state.signing_key = signing_key(settings)
    app.include_router(auth_routes.router)
    app.include_router(device_credential_routes.router)
    app.include_router(family_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(notification_routes.router)
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
        message = f"rejected by {what}: {diag.message_primary or 'invalid value'}"
        if isinstance(exc, psycopg.errors.UniqueViolation):
            return JSONResponse({"detail": message}, status_code=409)
        return _invalid(message)

    @app.exception_handler(psycopg.DataError)
    async def bad_data(_: Request, exc: psycopg.DataError) -> JSONResponse:
        # A value our models let through but PostgreSQL cannot hold (a NUL character in
        # text, a number out of the column's range): the caller's input, not our fault.
        return _invalid(str(exc).strip())


def _invalid(message: str) -> JSONResponse:
    """A 422 in FastAPI's validation-error shape, which is what every 422 is documented as."""
    problem = {"loc": ["body"], "msg": message, "type": "value_error"}
    return JSONResponse({"detail": [problem]}, status_code=422)


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

        # The caregiver's phone page (signed in as a caregiver); "/caregiver" redirects here.
        @app.get("/caregiver/", include_in_schema=False)
        async def caregiver_page() -> FileResponse:
            return FileResponse(dashboard.CAREGIVER_HTML)

        # Pages are public files: the data behind them needs a token, which this gives.
        @app.get("/login/", include_in_schema=False)
        async def login_page() -> FileResponse:
            return FileResponse(dashboard.LOGIN_HTML)

        # The family member's phone page; it signs in itself.
        @app.get("/family/", include_in_schema=False)
        async def family_page() -> FileResponse:
            return FileResponse(dashboard.FAMILY_HTML)
