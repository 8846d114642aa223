"""``eldercare bench system``: the whole system under growing communities.

Method (one run, one private Mosquitto, one scratch database):
1. the broker's ceiling is measured first with the bare paho subscriber of
   ``bench ingest`` (same code, preloaded backlog), before anything else runs;
2. the simulated community (the largest step) is enrolled in bulk, ``eldercare serve``
   (API + ingest + detection child) starts as a subprocess, and ``clients`` dashboards
   connect to ``/ws/live``;
3. each step runs the simulator for N elders at speed 1 (each watch's real reporting
   rate: vitals every 60 s, fixes by movement) in a child process; after ``warmup_s``
   (all watches switched on at once, new detectors built) it measures ``duration_s``,
   while an SOS is pressed every ``sos_every_s`` on a device not used before; the alarm
   latency is from that publish to the alert's arrival at each dashboard;
4. the flat-out step publishes ``bench ingest``'s preloaded messages as fast as a
   publisher process can, into the running system, and takes the ingest's rate as a
   share of the ceiling of step 1.

Rates come from the ingest's own counters (``/api/v1/health``) and the rows in the
time-series tables at the step's start and end; CPU and RSS
from psutil over the step.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psutil
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console

from auth.passwords import hash_password
from bench.ingest import _BareSubscriber, _payloads, _preload, _publish, _scratch_database
from bench.system_dashboards import Dashboards, SosProbe, latencies
from eldercare import private_broker
from eldercare.broker_address import BrokerAddress
from eldercare.settings import Settings

console = Console(stderr=True)
DEVICE_PREFIX = "sys-"
SEED = 11
REALISTIC_P99_MS = 250.0  # floor: 5,000 elders at their realistic rate
SATURATED_P99_MS = 1000.0  # floor: flat out
SATURATED_SHARE = 0.8  # floor: ingest keeps >= 80 % of the ceiling flat out


def http(base_url: str) -> httpx.Client:
    """The one place an HTTP client to the API is made."""
    return httpx.Client(base_url=base_url, timeout=10)


def _simulate(broker_url: str, devices: int, duration_s: float) -> None:
    """Child process: the simulator at the watches' real pace."""
    from simulator.cli import run_simulation

    run_simulation(
        broker_url,
        devices,
        1.0,
        SEED,
        duration_s,
        [],
        None,
        None,
        device_prefix=DEVICE_PREFIX,
        progress=False,
    )


def _enrol(db_url: str, elders: int) -> dict[str, int]:
    from simulator.community import COMMUNITY_NAME, build_roster, community_geojson
    from simulator.geo import CENTRE_LAT, CENTRE_LON
    from storage.enrol import enrol

    roster = build_roster(elders, SEED, report_interval_s=60.0, device_prefix=DEVICE_PREFIX)
    with psycopg.connect(db_url) as conn:
        enrol(
            conn,
            roster,
            community=COMMUNITY_NAME,
            center=(CENTRE_LAT, CENTRE_LON),
            geojson=community_geojson(),
        )
        rows = conn.execute(
            "SELECT id, elder_id FROM devices WHERE id LIKE %s", (DEVICE_PREFIX + "%",)
        ).fetchall()
    return {d: e for d, e in rows}


def _ceiling(broker_url: str, receive_max: int, messages: int) -> float:
    bare = _BareSubscriber(broker_url, receive_max)
    bare.register()
    _preload(broker_url, _payloads(messages, 1, seed=9001))
    rate = messages / bare.drain(messages)
    # End its persistent session, or the broker would queue the whole run for it.
    addr = BrokerAddress.parse(broker_url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=bare.client_id, protocol=mqtt.MQTTv5)
    c.connect(addr.host, addr.port, clean_start=True)
    c.disconnect()
    return rate


def _rows_inserted(db_url: str) -> int:
    """Rows in the time-series tables (the statistics collector lags too much to use)."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM vitals) + (SELECT count(*) FROM positions)"
            " + (SELECT count(*) FROM device_events)"
        ).fetchone()
    return int(row[0]) if row else 0


def _warm_up(base_url: str, seconds: float) -> None:
    time.sleep(seconds)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with http(base_url) as c:
            d = c.get("/api/v1/health").json().get("detection") or {}
        if d.get("readings_done", 0) >= d.get("readings_submitted", 0):
            return
        time.sleep(0.2)


def _ingest_counters(base_url: str) -> tuple[int, int]:
    with http(base_url) as c:
        ingest = c.get("/api/v1/health").json()["ingest"]
    return int(ingest["messages"]), int(sum(ingest["samples"].values()))


class _Usage:
    """CPU % (of one core) and peak RSS per named process over a step."""

    def __init__(self, named: dict[str, psutil.Process]) -> None:
        self.named = named
        self.rss: dict[str, float] = {n: 0.0 for n in named}
        self.t0 = time.monotonic()
        self.cpu0 = {n: self._cpu(p, 0.0) for n, p in named.items()}
        self.cpu = dict(self.cpu0)  # the newest reading: a process that ended keeps it

    @staticmethod
    def _cpu(p: psutil.Process, last: float) -> float:
        try:
            t = p.cpu_times()
            return max(last, t.user + t.system)
        except psutil.Error:
            return last

    def sample(self) -> None:
        for n, p in self.named.items():
            self.cpu[n] = self._cpu(p, self.cpu[n])
            with contextlib.suppress(psutil.Error):
                self.rss[n] = max(self.rss[n], p.memory_info().rss / 2**20)

    def result(self) -> dict[str, dict[str, float]]:
        self.sample()
        dt = time.monotonic() - self.t0
        return {
            n: {
                "cpu_pct": round((self.cpu[n] - self.cpu0[n]) / dt * 100, 1),
                "rss_mb": round(self.rss[n], 1),
            }
            for n in self.named
        }


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


class _System:
    def __init__(self, settings: Settings, home: Path, clients: int, max_elders: int) -> None:
        self.home = home
        self.broker = private_broker.start(home, kind="mosquitto")
        self.db_url, self._drop = _scratch_database(settings)
        self.devices = _enrol(self.db_url, max_elders)
        self.receive_max = settings.ingest_receive_max
        self.clients = clients
        self.serve: subprocess.Popen[bytes] | None = None
        self.dashboards: Dashboards | None = None
        self.probe: SosProbe | None = None

    def start_serve(self) -> None:
        port = private_broker.free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}
        env.update(
            ELDERCARE_DATABASE_URL=self.db_url,
            ELDERCARE_BROKER_URL=self.broker.url,
            ELDERCARE_API_PORT=str(port),
            ELDERCARE_HOME=str(self.home / "serve"),
            ELDERCARE_INGEST_CLIENT_ID=f"bench-system-{uuid.uuid4().hex[:6]}",
            ELDERCARE_INGEST_SESSION_EXPIRY_S="600",
            # The flat-out publisher stands in for many devices at once: where the ingest
            # limits each device's rate, lift it (as ``bench ingest`` does).
            ELDERCARE_FLOOD_RATE_PER_S="1e9",
            ELDERCARE_FLOOD_BURST="1000000000",
        )
        self.base_url = f"http://127.0.0.1:{port}"
        self.serve = subprocess.Popen(
            [sys.executable, "-m", "eldercare", "serve"],
            env=env,
            stdout=(self.home / "serve.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.serve.poll() is not None:
                raise RuntimeError(
                    f"eldercare serve exited: {(self.home / 'serve.log').read_text()}"
                )
            try:
                with http(self.base_url) as c:
                    h = c.get("/api/v1/health").json()
                if h.get("status") == "ok" and (h.get("detection") or {}).get("restored"):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("eldercare serve did not become healthy")
            time.sleep(0.3)
        self.dashboards = Dashboards(self.base_url, self.clients, self._staff_token())
        self.dashboards.start()
        self.probe = SosProbe(self.broker.url, self.devices, seed=SEED)

    def _staff_token(self) -> str:
        """An access token for the dashboards: a bench administrator made for this run
        (the scratch database goes when the run ends, and the account with it)."""
        password = secrets.token_urlsafe(16)
        with psycopg.connect(self.db_url) as conn:
            conn.execute(
                "INSERT INTO users (login, display_name, role, password_hash)"
                " VALUES ('bench.admin', '压测', 'admin', %s)",
                (hash_password(password),),
            )
        with http(self.base_url) as c:
            r = c.post("/api/v1/auth/login", data={"username": "bench.admin", "password": password})
            r.raise_for_status()
            return str(r.json()["access_token"])

    def processes(self, publisher_pid: int) -> dict[str, psutil.Process]:
        assert self.serve is not None and self.broker.process is not None
        serve = psutil.Process(self.serve.pid)
        named = {"broker": psutil.Process(self.broker.process.pid), "serve": serve}
        # The detection process, not multiprocessing's resource tracker beside it.
        children = [
            c
            for c in serve.children(recursive=True)
            if "resource_tracker" not in " ".join(c.cmdline())
        ]
        if children:
            named["detection"] = max(children, key=lambda c: c.memory_info().rss)
        named["publisher"] = psutil.Process(publisher_pid)
        named["bench"] = psutil.Process()  # the dashboards and the SOS probe
        return named

    def close(self) -> None:
        if self.probe is not None:
            self.probe.close()
        if self.dashboards is not None:
            self.dashboards.stop()
        if self.serve is not None and self.serve.poll() is None:
            self.serve.terminate()
            try:
                self.serve.wait(20)
            except subprocess.TimeoutExpired:
                self.serve.kill()
        self.broker.stop()
        self._drop()


def _step(
    system: _System,
    name: str,
    elders: int,
    duration_s: float,
    sos_every_s: float,
    target: Any,
    args: tuple[Any, ...],
    expect_messages: int | None = None,
    warmup_s: float = 0.0,
) -> dict[str, Any]:
    assert system.dashboards is not None
    console.print(f"[dim]step {name}: {elders:,} elders for {duration_s:g} s…[/dim]")
    among = [d for d in system.devices if int(d[len(DEVICE_PREFIX) :]) < elders] or list(
        system.devices
    )
    probe = system.probe
    assert probe is not None
    probe.sent = {}
    m0, s0 = _ingest_counters(system.base_url)
    first = m0
    rows0 = _rows_inserted(system.db_url)
    proc = mp.get_context("spawn").Process(target=target, args=args, daemon=True)
    proc.start()
    if warmup_s > 0:
        # A community switched on at once is not the steady state: every watch's first
        # message arrives together and the new elders' detectors are built.  Measure
        # after that (and after detection has caught up), as a running centre would be.
        _warm_up(system.base_url, warmup_s)
        m0, s0 = _ingest_counters(system.base_url)
        first = m0
        rows0 = _rows_inserted(system.db_url)
    usage = _Usage(system.processes(proc.pid))
    t0 = started = time.monotonic()
    # One SOS at once (so even a short step has one); flat out, once messages flow.
    next_sos = t0 if expect_messages is None else float("inf")
    while True:
        now = time.monotonic()
        running = proc.is_alive()
        if expect_messages is None and now - t0 >= duration_s:
            break
        if expect_messages is not None:
            # Flat out, the clock starts once the publisher's messages flow (not at
            # its process's start-up) and stops when all are stored.
            m, s = _ingest_counters(system.base_url)
            if m - first < 100:
                t0, m0, s0 = time.monotonic(), m, s
                usage = _Usage(usage.named)
                rows0 = _rows_inserted(system.db_url)
            elif next_sos == float("inf"):
                next_sos = now
            if m - first >= expect_messages or now - started > 600:
                break
        if now >= next_sos:
            probe.press(among)
            next_sos += sos_every_s
        usage.sample()
        time.sleep(0.2 if running else 0.05)
    elapsed = time.monotonic() - t0
    m1, s1 = _ingest_counters(system.base_url)
    rows1 = _rows_inserted(system.db_url)
    used_procs = usage.result()
    proc.join(120)
    if proc.is_alive():
        proc.terminate()
    # Every SOS must reach every dashboard; give the last ones time.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, lost = latencies(probe.sent, system.dashboards.arrivals)
        if lost == 0:
            break
        time.sleep(0.1)
    lat, lost = latencies(probe.sent, system.dashboards.arrivals)
    ms = [x * 1000 for x in lat]
    return {
        "step": name,
        "elders": elders,
        "duration_s": round(elapsed, 2),
        "msgs_per_s": round((m1 - m0) / elapsed, 1),
        "readings_per_s": round((s1 - s0) / elapsed, 1),
        "db_rows_per_s": round((rows1 - rows0) / elapsed, 1),
        "messages": m1 - m0,
        "readings": s1 - s0,
        "sos_sent": len(probe.sent),
        "sos_lost": lost,
        "alarm_latency_ms": {
            "samples": len(ms),
            "p50": round(statistics.median(ms), 1) if ms else None,
            "p99": round(_pct(ms, 0.99), 1) if ms else None,
            "max": round(max(ms), 1) if ms else None,
        },
        "processes": used_procs,
    }


def run(
    settings: Settings,
    *,
    sizes: list[int],
    duration_s: float = 60.0,
    clients: int = 10,
    sos_every_s: float = 2.0,
    flat_messages: int = 30000,
    warmup_s: float = 15.0,
    progress: bool = True,
) -> dict[str, Any]:
    if not progress:
        console.quiet = True
    home = Path(tempfile.mkdtemp(prefix="eldercare-bench-system-"))
    system = _System(settings, home, clients, max(sizes))
    try:
        console.print("[dim]ceiling: bare paho subscriber…[/dim]")
        ceiling = _ceiling(system.broker.url, system.receive_max, flat_messages)
        system.start_serve()
        steps = [
            _step(
                system,
                f"{n:,} elders",
                n,
                duration_s,
                sos_every_s,
                _simulate,
                (system.broker.url, n, duration_s + warmup_s),
                warmup_s=warmup_s,
            )
            for n in sizes
        ]
        flat = _step(
            system,
            "flat-out",
            max(sizes),
            0.0,
            sos_every_s,
            _publish,
            (system.broker.url, _payloads(flat_messages, 1, seed=9002)),
            expect_messages=flat_messages,
        )
        steps.append(flat)
        reconnects = system.dashboards.reconnects if system.dashboards else 0
    finally:
        system.close()
    share = flat["msgs_per_s"] / ceiling if ceiling else 0.0
    realistic = next((s for s in steps if s["elders"] == 5000 and s["step"] != "flat-out"), None)
    floors = []
    if realistic is not None:
        p99 = realistic["alarm_latency_ms"]["p99"]
        floors.append(
            {
                "name": "5,000 elders realistic: alarm p99 <= 250 ms",
                "value": p99,
                "met": p99 is not None and p99 <= REALISTIC_P99_MS,
            }
        )
    fp99 = flat["alarm_latency_ms"]["p99"]
    floors += [
        {
            "name": "flat out: alarm p99 <= 1 s",
            "value": fp99,
            "met": fp99 is not None and fp99 <= SATURATED_P99_MS,
        },
        {
            "name": "flat out: ingest >= 80 % of the ceiling",
            "value": round(share, 3),
            "met": share >= SATURATED_SHARE,
        },
    ]
    return {
        "ceiling_msgs_per_s": round(ceiling, 1),
        "flat_out_share_of_ceiling": round(share, 3),
        "dashboards": clients,
        "dashboard_reconnects": reconnects,
        "sos_every_s": sos_every_s,
        "warmup_s": warmup_s,
        "steps": steps,
        "floors": floors,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
