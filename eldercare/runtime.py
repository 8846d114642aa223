"""Bring up what the settings ask for: the external database and broker, or our own.

The same code path serves both: the rest of the system only ever sees a database
URL and a broker URL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg

from eldercare import embedded_postgres, private_broker
from eldercare.private_broker import PrivateBroker
from eldercare.settings import Settings, SettingsError
from storage.migrate import Options, migrate

log = logging.getLogger("eldercare.runtime")


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    broker_url: str | None = None
    mqtt_v5: bool = True
    broker: PrivateBroker | None = None
    applied_migrations: list[str] = field(default_factory=list)

    def close(self) -> None:
        if self.broker is not None:
            self.broker.stop()


def database_url(settings: Settings) -> str:
    """The database to use, starting the embedded one when none is configured."""
    if settings.database_url is not None:
        _check_database(settings.database_url)
        return settings.database_url
    return embedded_postgres.start(settings.home)


def _check_database(url: str) -> None:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SettingsError(
            f"cannot reach the database at ELDERCARE_DATABASE_URL ({first}); fix the URL,"
            " start that server, or unset it to use the embedded PostgreSQL"
        ) from None


def migration_options(settings: Settings) -> Options:
    return Options(
        timescale_mode=settings.timescale,
        retention_days=settings.retention_days,
        back_days=int(settings.max_backfill_hours // 24) + 1,
        ahead_days=settings.partitions_ahead_days,
    )


def bring_up(settings: Settings, *, broker: bool = True) -> Runtime:
    """Database (migrated) and, if asked, a broker."""
    url = database_url(settings)
    applied = migrate(url, migration_options(settings))
    rt = Runtime(settings, url, applied_migrations=applied)
    if not broker:
        return rt
    if settings.broker_url is not None:
        rt.broker_url = settings.broker_url
        rt.mqtt_v5 = settings.mqtt_version == "5"
    else:
        if settings.broker_auth:
            _write_broker_files(settings, url)
        b = private_broker.start(
            settings.home,
            kind=settings.broker_kind,
            port=settings.private_broker_port,
            auth=settings.broker_auth,
        )
        rt.broker, rt.broker_url, rt.mqtt_v5 = b, b.url, b.mqtt_v5
        if settings.broker_auth:
            rt.broker_url = _service_url(settings, b)
    return rt


def _write_broker_files(settings: Settings, database_url: str) -> None:
    """The password and ACL files from the database, before Mosquitto reads them."""
    from broker_auth.apply import write_files
    from storage.device_credentials import active_hashes_sync

    with psycopg.connect(database_url) as conn:
        hashes = active_hashes_sync(conn)
    write_files(
        (settings.home / "broker").resolve(), hashes, service_user=settings.broker_service_user
    )


def _service_url(settings: Settings, broker: PrivateBroker) -> str:
    """The broker URL with the backend's own account, for the ingest."""
    from urllib.parse import quote

    from broker_auth.apply import service_secret

    secret = quote(service_secret(broker.folder), safe="")
    return f"mqtt://{quote(settings.broker_service_user, safe='')}:{secret}@127.0.0.1:{broker.port}"
