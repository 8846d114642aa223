"""Settings: one object, ELDERCARE_* variables, and unusable values fail fast with a fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from conftest import eldercare_env, fresh_database
from eldercare.settings import Settings, SettingsError, load_settings


def test_defaults_mean_embedded_database_and_private_broker() -> None:
    s = Settings(_env_file=None)
    assert s.uses_embedded_database and s.uses_private_broker
    assert s.api_port == 8000 and s.tile_crs == "wgs84"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELDERCARE_BROKER_URL", "mqtt://broker.example:1884")
    monkeypatch.setenv("ELDERCARE_RETENTION_DAYS", "90")
    s = load_settings(_env_file=None)
    assert s.broker_url == "mqtt://broker.example:1884" and s.retention_days == 90


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"database_url": "mysql://x"}, "ELDERCARE_DATABASE_URL"),
        ({"broker_url": "http://x"}, "ELDERCARE_BROKER_URL must look like mqtt://"),
        ({"api_port": 70000}, "ELDERCARE_API_PORT"),
        ({"tile_crs": "bd09"}, "ELDERCARE_TILE_CRS"),
        ({"max_backfill_hours": 24 * 500}, "ELDERCARE_MAX_BACKFILL_HOURS"),
    ],
)
def test_unusable_settings_say_what_to_fix(overrides: dict, fragment: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(_env_file=None, **overrides)
    assert fragment in str(err.value)


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eldercare", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_unreachable_database_fails_fast_with_a_message(broker_url: str) -> None:
    env = eldercare_env("postgresql://nobody@127.0.0.1:1/none", broker_url)
    r = run_cli(["migrate"], env)
    assert r.returncode == 2
    assert "cannot reach the database" in r.stderr and "ELDERCARE_DATABASE_URL" in r.stderr


def test_unreachable_broker_fails_fast_with_a_message(database_url: str) -> None:
    env = eldercare_env(database_url, "mqtt://127.0.0.1:1")
    r = run_cli(["ingest"], env)
    assert r.returncode == 2
    assert "cannot connect to the MQTT broker" in r.stderr


def test_migrate_command_applies_then_reports_current(pg_admin_url: str, broker_url: str) -> None:
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS xb_cli_migrate WITH (FORCE)")
        conn.execute("CREATE DATABASE xb_cli_migrate")
    url = psycopg.conninfo.make_conninfo(pg_admin_url, dbname="xb_cli_migrate")
    try:
        env = eldercare_env(url, broker_url)
        first = run_cli(["migrate"], env)
        assert (
            first.returncode == 0
            and "0001_core" in first.stderr
            and "0002_timeseries" in first.stderr
        )
        again = run_cli(["migrate"], env)
        assert again.returncode == 0 and "schema is current" in again.stderr
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS xb_cli_migrate WITH (FORCE)")


def test_fresh_database_helper_is_migrated(pg_admin_url: str) -> None:
    with fresh_database(pg_admin_url) as url, psycopg.connect(url) as conn:
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] >= 2


def test_settings_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "eldercare.env").write_text(
        "ELDERCARE_TILE_URL=https://tiles.example/{z}/{x}/{y}.png\n"
    )
    monkeypatch.chdir(tmp_path)
    assert Settings().tile_url == "https://tiles.example/{z}/{x}/{y}.png"
