"""The one settings object. Every knob is an ``ELDERCARE_*`` environment variable
(or a line in ``eldercare.env``); nothing else reads the environment.

>>> s = Settings(_env_file=None, database_url="postgresql://db.example/care")
>>> s.database_url
'postgresql://db.example/care'
>>> s.uses_embedded_database
False
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(ValueError):
    """A setting that cannot work; the message says which and how to fix it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ELDERCARE_", env_file="eldercare.env", extra="ignore"
    )

    # --- where things live -------------------------------------------------
    home: Path = Field(
        default=Path(".eldercare"),
        description="Folder for the embedded database, broker config and logs (kept between runs).",
    )
    database_url: str | None = Field(
        default=None,
        description="postgresql:// URL of an external database; empty = embedded PostgreSQL.",
    )
    broker_url: str | None = Field(
        default=None,
        description="mqtt://[user:pass@]host:port of an external broker; empty = private broker.",
    )
    mqtt_version: Literal["5", "3.1.1"] = Field(
        default="5", description="MQTT version the backend speaks to an external broker."
    )
    private_broker_port: int = Field(
        default=0, ge=0, le=65535, description="Port of the private broker (0 = any free port)."
    )
    broker_kind: Literal["auto", "mosquitto", "amqtt"] = Field(
        default="auto",
        description="Private broker: Mosquitto when on PATH (auto), else the pure-Python amqtt.",
    )

    # --- API and dashboard ---------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    tile_url: str = Field(
        default="",
        description="Leaflet tile URL template for the map ({z}/{x}/{y}); empty = no tiles, outline only.",
    )
    tile_crs: Literal["wgs84", "gcj02"] = Field(
        default="wgs84",
        description="Coordinate system of the tiles: wgs84 (Tianditu, OSM) or gcj02 (AMap, Tencent).",
    )
    live_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="How often coalesced live updates go to dashboards."
    )

    # --- ingest -------------------------------------------------------------
    ingest_client_id: str = "eldercare-ingest"
    ingest_session_expiry_s: int = Field(
        default=7 * 24 * 3600, ge=0, description="How long the broker keeps the ingest's queue."
    )
    ingest_batch_max: int = Field(default=2000, ge=1)
    ingest_linger_ms: int = Field(default=20, ge=0)
    ingest_receive_max: int = Field(
        default=4000,
        ge=1,
        le=65535,
        description="Unacknowledged QoS 1 messages the broker may send.",
    )
    max_payload_bytes: int = Field(default=256 * 1024, ge=1024)
    quarantine_raw_bytes: int = Field(default=4096, ge=0)
    max_backfill_hours: float = Field(
        default=72, gt=0, description="Readings older than this are quarantined as a bad clock."
    )
    max_future_s: float = Field(default=300, ge=0)

    # --- detection ------------------------------------------------------------
    detection_tick_s: float = Field(
        default=5.0, gt=0, le=300, description="How often silence-based rules are checked."
    )
    detection_snapshot_s: float = Field(
        default=60.0, gt=0, description="How often rule state is saved for a restart."
    )

    # --- storage ------------------------------------------------------------
    timescale: Literal["auto", "on", "off"] = Field(
        default="auto", description="Use TimescaleDB when the extension is installed (auto)."
    )
    retention_days: int = Field(
        default=400,
        ge=0,
        description="Days time series (vitals, positions, device events, quarantine) are kept;"
        " 0 = forever.",
    )
    partitions_ahead_days: int = Field(default=3, ge=1)

    # --- people and access ----------------------------------------------------
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs access tokens (at least 32 characters); empty = generated at"
        " first start into <home>/secret_key, readable by the owner only.",
    )
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=14, ge=1, le=365)
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed logins per login name within the window."
    )
    login_max_failures_per_address: int = Field(
        default=20, ge=1, description="Failed logins per client address within the window."
    )
    login_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    broker_auth: bool = Field(
        default=False,
        description="Private Mosquitto: devices sign in with their own credentials and may"
        " publish only under their own id (ACL); off = anonymous, as before.",
    )
    broker_service_user: str = Field(
        default="eldercare.service",
        max_length=64,
        # A dot, which no device id may contain, so the account never shares a name with a device.
        pattern=r"^[A-Za-z0-9_-]*\.[A-Za-z0-9_.-]*$",
        description="MQTT account of the ingest and backend (subscribes to every device).",
    )

    # --- retention ------------------------------------------------------------
    # Enforced by every API process (storage/retention.py) and `eldercare retention run`;
    # the period itself is ``retention_days`` above.
    retention_interval_s: float = Field(
        default=3600, gt=0, description="How often the API prunes data past the retention period."
    )

    # --- observability and flood control --------------------------------------
    metrics_enabled: bool = Field(
        default=True,
        description="Serve Prometheus metrics at /metrics (unauthenticated, by Prometheus"
        " convention: in production bind or filter it at the reverse proxy).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as text, or as JSON objects (one per line)."
    )
    flood_rate_per_s: float = Field(
        default=5.0,
        gt=0,
        description="Messages a second one device may send, sustained; beyond it (and the"
        " burst) messages are quarantined as rate_limited. One buffered array is one message.",
    )
    flood_burst: int = Field(
        default=50, ge=1, description="Messages one device may send at once before the limit."
    )

    # --- notifications (api/notifier.py) ------------------------------------
    notify_enabled: bool = Field(
        default=True,
        description="Send alerts and order offers to people's channels (apprise URLs).",
    )
    # Reminders and escalation steps are due by the clock: a pass at least this often.
    notify_tick_s: float = Field(default=5.0, gt=0, le=300)
    # Older unacknowledged alerts are left to the dashboard: no burst of stale messages
    # after a long outage or on first start.
    notify_lookback_h: float = Field(default=6.0, gt=0, le=72)
    # One send (one channel, one person) longer than this counts as failed: next channel.
    notify_send_timeout_s: float = Field(default=15.0, gt=0, le=120)
    # Plain e-mail addresses and phone numbers (the family page's channels) need the
    # centre's own way out; without one those channels are skipped, the others used.
    notify_email_via: SecretStr | None = Field(
        default=None,
        description="apprise URL of the outgoing mail server, e.g."
        " mailtos://user:pass@smtp.example.com (the address is added as ?to=).",
    )
    notify_sms_via: SecretStr | None = Field(
        default=None,
        description="apprise URL of the SMS gateway with {to} where the number goes.",
    )

    @field_validator("database_url", "broker_url", "secret_key", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @model_validator(mode="after")
    def _check_urls(self) -> Settings:
        if self.database_url is not None:
            try:
                conninfo_to_dict(self.database_url)
            except psycopg.ProgrammingError as exc:
                raise SettingsError(
                    f"ELDERCARE_DATABASE_URL is not a PostgreSQL URL or conninfo ({str(exc).strip()});"
                    " e.g. postgresql://user@host:5432/eldercare, or leave it empty to use"
                    " the embedded PostgreSQL"
                ) from None
        if self.broker_url is not None:
            u = urlparse(self.broker_url)
            if u.scheme not in ("mqtt", "tcp") or not u.hostname:
                raise SettingsError(
                    "ELDERCARE_BROKER_URL must look like mqtt://host:1883 "
                    f"(got {self.broker_url!r}); leave it empty to start a private broker"
                )
        if self.secret_key is not None and len(self.secret_key.get_secret_value()) < 32:
            raise SettingsError(
                "ELDERCARE_SECRET_KEY must be at least 32 characters (e.g. the output of"
                " `python -c 'import secrets; print(secrets.token_urlsafe(48))'`), or leave it"
                " empty to have one generated into the data folder"
            )
        if self.retention_days and self.max_backfill_hours * 3600 > self.retention_days * 86400:
            raise SettingsError("ELDERCARE_MAX_BACKFILL_HOURS cannot exceed the retention period")
        return self

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def uses_private_broker(self) -> bool:
        return self.broker_url is None

    # --- past one machine: partitions over RabbitMQ (cluster/) ---------------------
    amqp_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672/%2F",
        pattern=r"^amqps?://",
        description="RabbitMQ of `eldercare bridge` and `eldercare worker`.",
    )
    partitions: int = Field(
        default=12, ge=1, le=1024, description="Partitions of the readings (fixed per deployment)."
    )
    partition_prefix: str = Field(
        default="eldercare.readings",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Name of the exchange, and prefix of the partition queues (`….p{n}`).",
    )
    partition_queue_type: Literal["classic", "quorum"] = Field(
        default="classic",
        description="`quorum` replicates the partition queues over a RabbitMQ cluster.",
    )
    worker_prefetch: int = Field(
        default=20, ge=1, le=10_000, description="Unacknowledged messages per partition."
    )
    worker_linger_s: float = Field(
        default=0.02, gt=0, le=1, description="How long a worker gathers deliveries per batch."
    )
    worker_standby_delay_s: float = Field(
        default=3.0, ge=0, le=300, description="Wait before standing by for other partitions."
    )
    worker_replay_window_s: float = Field(
        default=900.0, ge=0, description="Furthest back a takeover replays stored readings."
    )
    bridge_client_id: str = Field(
        default="eldercare-bridge", description="The bridge's persistent MQTT session."
    )


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's error into one readable line per problem."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = " ".join(err["msg"].removeprefix("Value error, ").split())
            lines.append(f"ELDERCARE_{loc.upper()}: {msg}" if loc else msg)
        raise SettingsError("unusable settings:\n  " + "\n  ".join(lines)) from None
