"""``eldercare bench dispatch``: the dispatch decision, and order steps through the database.

Method:

1. **Decisions** -- :func:`bench.dispatch_core.run`: ``caregivers`` × ``elders``
   (500 × 5,000 by default), p50/p99 of ``orders.dispatch.choose`` against the
   issue's floor (p99 ≤ 5 ms).  No database: the policy alone.
2. **Transitions** -- a fresh scratch database on the configured server (migrated as
   at every start; dropped afterwards), ``elders`` elders and ``caregivers`` caregivers
   on shift.  ``workers`` threads, each on its own connection, run ``lifecycles``
   whole orders between them: create, then ``assign → accept → depart → arrive →
   complete``, each step through ``storage.orders.apply_step_sync`` -- the same
   locked read, pure transition and write of row and step, one transaction and one
   commit each, that the API and the dispatcher use.  Reported: steps per second
   over the whole run (wall clock, creation included as a step), and p50/p99 of each
   kind of step.  Another few hundred orders are made beforehand to warm up caches
   and are not counted.
"""

from __future__ import annotations

import os
import platform
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import psycopg
from psycopg import sql

from bench import dispatch_core
from orders.lifecycle import SYSTEM, Actor
from storage import orders as store
from storage.migrate import Options, migrate

STEPS: Final = ("create", "assign", "accept", "depart", "arrive", "complete")
WARMUP: Final = 200


def scratch_database(admin_url: str, opts: Options) -> tuple[str, Callable[[], None]]:
    """A new migrated database on ``admin_url``'s server, and how to drop it."""
    name = f"eldercare_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    try:
        migrate(url, opts)
    except BaseException:
        drop()
        raise
    return url, drop


def _populate(url: str, elders: int, caregivers: int, now: datetime) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO elders (name, home_lat, home_lon)"
            " SELECT 'bench ' || g, 34.867, 110.447 FROM generate_series(1, %s) g",
            (elders,),
        )
        conn.execute(
            "INSERT INTO caregivers (name, skills, max_load)"
            " SELECT 'carer ' || g, ARRAY['meal_delivery', 'first_aid'], 50"
            " FROM generate_series(1, %s) g",
            (caregivers,),
        )
        conn.execute(
            "INSERT INTO caregiver_shifts (caregiver_id, starts_at, ends_at)"
            " SELECT id, %s, %s FROM caregivers",
            (now - timedelta(hours=1), now + timedelta(hours=12)),
        )


def _lifecycle(
    conn: psycopg.Connection,
    n: int,
    elders: int,
    caregivers: int,
    t: datetime,
    ns: dict[str, list[int]],
) -> None:
    """One whole order; the time of each step (its commit included) goes into ``ns``."""
    elder, carer = n % elders + 1, n % caregivers + 1
    me = Actor("caregiver", carer)

    def timed(name: str, call: Callable[[], Any]) -> Any:
        start = time.perf_counter_ns()
        out = call()
        conn.commit()
        ns[name].append(time.perf_counter_ns() - start)
        return out

    order_id, _ = timed(
        "create",
        lambda: store.create_order_sync(
            conn, elder_id=elder, kind="meal", actor=Actor("family", 1), at=t
        ),
    )
    timed(
        "assign",
        lambda: store.apply_step_sync(conn, order_id, "assign", SYSTEM, t, caregiver_id=carer),
    )
    for action in STEPS[2:]:
        timed(action, lambda a=action: store.apply_step_sync(conn, order_id, a, me, t))


def transitions(
    url: str, *, lifecycles: int, workers: int, elders: int, caregivers: int
) -> dict[str, Any]:
    """Whole lifecycles through the database (module docstring: how)."""
    now = datetime.now(UTC)
    _populate(url, elders, caregivers, now)
    with psycopg.connect(url) as conn:
        scratch: dict[str, list[int]] = {s: [] for s in STEPS}
        for n in range(WARMUP):
            _lifecycle(conn, n, elders, caregivers, now, scratch)
    per_worker: list[dict[str, list[int]]] = [{s: [] for s in STEPS} for _ in range(workers)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(workers + 1)

    def work(w: int) -> None:
        try:
            with psycopg.connect(url) as conn:
                barrier.wait()
                for n in range(w, lifecycles, workers):
                    _lifecycle(conn, WARMUP + n, elders, caregivers, now, per_worker[w])
        except BaseException as exc:  # reported, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(workers)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    ns = {s: [x for w in per_worker for x in w[s]] for s in STEPS}
    count = sum(len(v) for v in ns.values())
    per_step = {}
    for s in STEPS:
        p50, p99 = np.percentile(np.array(ns[s], dtype=np.float64), [50, 99]) / 1e6
        per_step[s] = {"p50_ms": round(float(p50), 2), "p99_ms": round(float(p99), 2)}
    with psycopg.connect(url) as conn:
        done = conn.execute("SELECT count(*) FROM orders WHERE state = 'completed'").fetchone()
    return {
        "lifecycles": lifecycles,
        "workers": workers,
        "steps": count,
        "seconds": round(wall, 3),
        "transitions_per_s": round(count / wall, 1),
        "lifecycles_per_s": round(lifecycles / wall, 1),
        "per_step": per_step,
        "completed_orders": int(done[0]) if done else 0,
    }


def run(
    admin_url: str,
    opts: Options,
    *,
    caregivers: int = 500,
    elders: int = 5000,
    decisions: int = 5000,
    lifecycles: int = 1000,
    workers: int = 4,
) -> dict[str, Any]:
    """Both measurements; the scratch database is dropped whatever happens."""
    core = dispatch_core.run(caregivers=caregivers, elders=elders, decisions=decisions)
    url, drop = scratch_database(admin_url, opts)
    try:
        db = transitions(
            url, lifecycles=lifecycles, workers=workers, elders=elders, caregivers=caregivers
        )
        with psycopg.connect(url) as conn:
            server = conn.execute("SHOW server_version").fetchone()
    finally:
        drop()
    return {
        "decision": core,
        "database": db,
        "decision_p99_us": core["p99_us"],
        "meets_floor": core["meets_floor"],
        "transitions_per_s": db["transitions_per_s"],
        "postgres": server[0] if server else None,
        "cpus": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }


def render(r: dict[str, Any]) -> str:
    c, d = r["decision"], r["database"]
    met = "met" if c["meets_floor"] else "MISSED"
    lines = [
        f"dispatch decision, {c['caregivers']:,} caregivers × {c['elders']:,} elders,"
        f" {c['decisions']:,} decisions:",
        f"  p50 {c['p50_us']:,.0f} µs, p99 {c['p99_us']:,.0f} µs wall"
        f" (CPU p99 {c['cpu_p99_us']:,.0f} µs; prebuilt roster p99 {c['roster_p99_us']:,.0f} µs)"
        f"  floor p99 <= {c['floor_p99_us'] / 1000:g} ms: {met}",
        f"order steps through PostgreSQL {r['postgres']}, {d['workers']} connections,"
        f" {d['lifecycles']:,} whole lifecycles:",
        f"  {d['transitions_per_s']:,.0f} steps/s ({d['lifecycles_per_s']:,.0f} lifecycles/s,"
        f" {d['steps']:,} steps in {d['seconds']:.1f} s; each its own transaction)",
    ]
    for s, v in d["per_step"].items():
        lines.append(f"  {s:9} p50 {v['p50_ms']:6.2f} ms   p99 {v['p99_ms']:6.2f} ms")
    lines.append(f"machine: {r['cpus']} CPUs, load average {r['load_average']}")
    return "\n".join(lines)
