"""``eldercare bench scale``: readings/s and alarm latency with 1, 2 and 4 workers.

Each run gets a scratch database and its own queues, and starts that many real
``eldercare worker`` processes (one partition list each, no standby, so the split
is exact).  After a warm-up round (every partition taken, the rule kernels
compiled), a backlog of ``rounds`` vitals samples from every device is published
into the partition queues as fast as RabbitMQ confirms, and the clock runs until
the last reading is stored and judged: readings/s.  The workers' CPU over that
phase, per 1,000 readings, says whether a worker's cost stays flat as workers are
added.  Then, under a steady stream of one round a second, an SOS from a different
elder every 0.2 s; the latency is from the publish to the alert's NOTIFY (what
every API node hears).  The counts are run ``repeat`` times, interleaved (1, 2, 4, 1,
2, 4, …), and each figure's median per count is reported, so that a busy spell of a shared
machine does not decide a ratio; the ratios compare runs of the same invocation.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.dispatch import scratch_database
from cluster import topology
from cluster.loadgen import enrol_many, event, vitals_round
from cluster.partitioning import partition_of, queue_name, spread
from cluster.publisher import PartitionPublisher
from eldercare.settings import Settings
from ingest.detection_notify import CHANNEL, decode_payload
from storage.migrate import Options


def run(
    settings: Settings,
    admin_url: str,
    opts: Options,
    *,
    devices: int = 2000,
    rounds: int = 30,
    workers: tuple[int, ...] = (1, 2, 4),
    partitions: int = 8,
    alarms: int = 20,
    repeat: int = 3,
    log: Any = None,
) -> dict[str, Any]:
    samples: dict[int, list[dict[str, Any]]] = {w: [] for w in workers}
    for i in range(repeat):  # interleaved, so a busy spell of the machine hits every count
        for w in workers:
            if log:
                log(f"round {i + 1}/{repeat}: {w} worker(s)…")
            samples[w].append(
                _one(settings, admin_url, opts, w, devices, rounds, partitions, alarms)
            )
    runs = [_median_run(w, samples[w]) for w in workers]
    base = runs[0]["readings_per_s"]
    for r in runs:
        r["scaling"] = round(r["readings_per_s"] / base, 2)
        r["cpu_ms_per_1k_vs_1"] = round(
            r["cpu_ms_per_1k_readings"] / runs[0]["cpu_ms_per_1k_readings"], 2
        )
    return {
        "devices": devices,
        "rounds": rounds,
        "repeat": repeat,
        "partitions": partitions,
        "cpus": os.cpu_count(),
        "runs": runs,
        "ratio_2_vs_1": next((r["scaling"] for r in runs if r["workers"] == 2), None),
        "ratio_4_vs_1": next((r["scaling"] for r in runs if r["workers"] == 4), None),
    }


def _median_run(workers: int, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the runs (the worst alarm: the maximum), and every
    run's readings/s and CPU beside them."""

    def median(key: str) -> float:
        return round(statistics.median(r[key] for r in samples), 1)

    return {
        "workers": workers,
        "readings": samples[0]["readings"],
        "readings_per_s": round(median("readings_per_s")),
        "cpu_ms_per_1k_readings": median("cpu_ms_per_1k_readings"),
        "alarm_ms_p50": median("alarm_ms_p50"),
        "alarm_ms_max": max(r["alarm_ms_max"] for r in samples),
        "readings_per_s_all": [r["readings_per_s"] for r in samples],
        "cpu_ms_per_1k_all": [r["cpu_ms_per_1k_readings"] for r in samples],
    }


def _one(
    settings: Settings,
    admin_url: str,
    opts: Options,
    n_workers: int,
    devices: int,
    rounds: int,
    partitions: int,
    alarms: int,
) -> dict[str, Any]:
    url, drop = scratch_database(admin_url, opts)
    prefix = f"xbbench.{uuid.uuid4().hex[:8]}"
    amqp = settings.amqp_url
    procs: list[subprocess.Popen[bytes]] = []
    logs = Path(tempfile.mkdtemp(prefix="eldercare-bench-scale-"))
    try:
        with psycopg.connect(url) as conn:
            pairs = enrol_many(conn, devices, "bs")
        ids = [d for d, _ in pairs]
        elder_of = dict(pairs)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}
        env.update(
            ELDERCARE_DATABASE_URL=url,
            ELDERCARE_AMQP_URL=amqp,
            ELDERCARE_PARTITIONS=str(partitions),
            ELDERCARE_PARTITION_PREFIX=prefix,
            ELDERCARE_HOME=str(logs),
        )
        for i in range(n_workers):
            home = ",".join(map(str, spread(i, n_workers, partitions)))
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "eldercare",
                        "worker",
                        "--partitions",
                        home,
                        "--no-standby",
                        "--name",
                        f"bench{i}",
                    ],
                    env=env,
                    stdout=(logs / f"worker-{i}.log").open("wb"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        _wait(lambda: _consumers(amqp, prefix, partitions) == [1] * partitions, 120, procs, logs)
        publisher = PartitionPublisher(amqp, prefix, partitions)
        publisher.open()
        start = datetime.now(UTC) - timedelta(seconds=rounds + 120)
        t = lambda k: start + timedelta(seconds=k)  # noqa: E731
        with psycopg.connect(url, autocommit=True) as conn:
            publisher.publish(vitals_round(ids, 0, t(0)))  # warm-up: takeovers, JIT
            _wait(lambda: _stored(conn) >= devices, 180, procs, logs)
            cpu0 = _cpu(procs)
            t0 = time.perf_counter()
            for k in range(1, rounds + 1):
                publisher.publish(vitals_round(ids, k, t(k)))
            publish_s = time.perf_counter() - t0
            _wait(lambda: _stored(conn) >= devices * (rounds + 1), 900, procs, logs, 0.05)
            elapsed = time.perf_counter() - t0
            cpu = _cpu(procs) - cpu0
            readings = devices * rounds
            latencies = _alarm_latency(
                conn, publisher, ids, elder_of, partitions, rounds, t, alarms
            )
        publisher.close()
        return {
            "workers": n_workers,
            "readings": readings,
            "seconds": round(elapsed, 2),
            "publish_s": round(publish_s, 2),
            "readings_per_s": round(readings / elapsed),
            "cpu_ms_per_1k_readings": round(cpu * 1e6 / readings, 1),
            "alarm_ms_p50": round(statistics.median(latencies), 1),
            "alarm_ms_max": round(max(latencies), 1),
        }
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        with contextlib.suppress(Exception):
            topology.delete(amqp, prefix, partitions)
        drop()


def _alarm_latency(
    conn: psycopg.Connection,
    publisher: PartitionPublisher,
    ids: list[str],
    elder_of: dict[str, int],
    partitions: int,
    rounds: int,
    t: Any,
    alarms: int,
) -> list[float]:
    """SOS publish -> alert NOTIFY, under a steady round a second from every device."""
    conn.execute(f"LISTEN {CHANNEL}")
    stop = threading.Event()
    lock = threading.Lock()

    def stream() -> None:
        k = rounds + 1
        while not stop.wait(1.0):
            with lock:
                publisher.publish(vitals_round(ids, k, t(k)))
            k += 1

    background = threading.Thread(target=stream, daemon=True)
    background.start()
    # One device per partition in turn, so every worker is measured.
    chosen = [d for n in range(partitions) for d in ids if partition_of(d, partitions) == n][::97]
    latencies: list[float] = []
    try:
        for i in range(alarms):
            dev = chosen[i % len(chosen)] if chosen else ids[i]
            sent = time.perf_counter()
            with lock:
                publisher.publish([event(dev, 1_000_000 + i, datetime.now(UTC), {"type": "sos"})])
            deadline = sent + 30
            got = False
            while not got and time.perf_counter() < deadline:
                for note in conn.notifies(timeout=max(0.01, deadline - time.perf_counter())):
                    alert = decode_payload(note.payload)
                    if isinstance(alert, dict) and alert.get("elder_id") == elder_of[dev]:
                        latencies.append((time.perf_counter() - sent) * 1000)
                        got = True
                        break
            if not got:
                raise RuntimeError(f"no alert within 30 s for the SOS of {dev}")
            time.sleep(0.2)
    finally:
        stop.set()
        background.join(5)
    return latencies


def _consumers(amqp: str, prefix: str, partitions: int) -> list[int]:
    with contextlib.closing(topology.connect(amqp)) as c, contextlib.suppress(Exception):
        ch = c.channel()
        return [
            ch.queue_declare(
                queue_name(prefix, n),
                passive=True,
                durable=True,
                arguments=topology.QUEUE_ARGUMENTS,
            ).method.consumer_count
            for n in range(partitions)
        ]
    return []


def _stored(conn: psycopg.Connection) -> int:
    (n,) = conn.execute("SELECT count(*) FROM vitals").fetchone()  # type: ignore[misc]
    return int(n)


def _cpu(procs: list[subprocess.Popen[bytes]]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            c = psutil.Process(p.pid).cpu_times()
            total += c.user + c.system
    return total


def _wait(
    check: Any,
    timeout: float,
    procs: list[subprocess.Popen[bytes]],
    logs: Path,
    interval: float = 0.2,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        for i, p in enumerate(procs):
            if p.poll() is not None:
                tail = (logs / f"worker-{i}.log").read_text()[-2000:]
                raise RuntimeError(f"worker {i} exited ({p.returncode}):\n{tail}")
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f} s (worker logs in {logs})")


def render(r: dict[str, Any]) -> str:
    lines = [
        f"{r['devices']:,} devices, {r['rounds']} rounds, {r['partitions']} partitions,"
        f" {r['cpus']} CPUs; median of {r['repeat']} interleaved runs",
        f"{'workers':>8} {'readings/s':>11} {'scaling':>8} {'CPU ms/1k':>10} {'vs 1':>5}"
        f" {'alarm p50':>10} {'alarm max':>10}",
    ]
    for x in r["runs"]:
        lines.append(
            f"{x['workers']:>8} {x['readings_per_s']:>11,} {x['scaling']:>8.2f}"
            f" {x['cpu_ms_per_1k_readings']:>10.1f} {x['cpu_ms_per_1k_vs_1']:>5.2f}"
            f" {x['alarm_ms_p50']:>8.0f}ms {x['alarm_ms_max']:>8.0f}ms"
            f"   (runs: {', '.join(f'{v:,}' for v in x['readings_per_s_all'])})"
        )
    return "\n".join(lines)
