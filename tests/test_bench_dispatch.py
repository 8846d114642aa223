"""``eldercare bench dispatch`` as a user runs it: decision latency and order steps/s
through a scratch database that is gone afterwards."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg


def _bench_databases(admin_url: str) -> set[str]:
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'eldercare_bench_%'"
        ).fetchall()
    return {r[0] for r in rows}


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eldercare", "bench", "dispatch", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_the_bench_reports_decisions_and_whole_lifecycles_through_the_database(
    pg_admin_url: str,
) -> None:
    before = _bench_databases(pg_admin_url)
    out = bench(
        "--json",
        "--database-url",
        pg_admin_url,
        "--caregivers",
        "60",
        "--elders",
        "300",
        "--decisions",
        "300",
        "--lifecycles",
        "60",
        "--workers",
        "2",
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["decision"]["decisions"] == 300 and r["decision"]["identical_decisions"]
    assert r["decision_p99_us"] > 0 and r["decision"]["floor_p99_us"] == 5000
    db = r["database"]
    assert db["steps"] == 60 * 6 and db["transitions_per_s"] > 0
    assert set(db["per_step"]) == {"create", "assign", "accept", "depart", "arrive", "complete"}
    assert all(0 < v["p50_ms"] <= v["p99_ms"] for v in db["per_step"].values())
    assert db["completed_orders"] == 200 + 60  # the warm-up's and the measured ones, all done
    assert _bench_databases(pg_admin_url) == before  # the scratch database is dropped


def test_an_unreachable_database_is_a_clear_error(pg_admin_url: str) -> None:
    out = bench("--database-url", "postgresql://nobody@127.0.0.1:1/none", "--decisions", "10")
    assert out.returncode == 2
    assert "cannot reach the database" in out.stderr and "Traceback" not in out.stderr
