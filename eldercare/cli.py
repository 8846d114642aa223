"""``eldercare``: one command for the demo, the services, the simulator and the benchmarks."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from eldercare.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold credentials
    help="杏北 Care elder-care backend.",
)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (figures as rates and ratios).")
evaluate_app = typer.Typer(
    no_args_is_help=True, help="Detection quality on real and simulated data."
)
app.add_typer(bench_app, name="bench")
app.add_typer(evaluate_app, name="evaluate")
console = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]{message}[/red]")
    return typer.Exit(2)


def _shown(broker_url: str) -> str:
    """The broker's address without its password, for the console and logs."""
    from eldercare.broker_address import BrokerAddress

    return BrokerAddress.parse(broker_url).url


def _logging(verbose: bool) -> None:
    from eldercare.logs import configure

    try:
        fmt = load_settings().log_format
    except SettingsError:  # the command's own settings load reports it
        fmt = "text"
    configure(fmt, logging.INFO if verbose else logging.WARNING)


@app.command()
def migrate(verbose: bool = False) -> None:
    """Apply pending database migrations (also done at every start)."""
    _logging(verbose)
    from eldercare.runtime import bring_up

    try:
        rt = bring_up(_settings(), broker=False)
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    done = ", ".join(rt.applied_migrations) or "nothing to do, schema is current"
    console.print(f"[green]migrated[/green]: {done}")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Listen address (default from settings).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default from settings).")] = None,
    ingest: Annotated[bool, typer.Option(help="Run the MQTT ingest in this process.")] = True,
    detect: Annotated[bool, typer.Option(help="Run detection on what the ingest stores.")] = True,
    verbose: bool = False,
) -> None:
    """Run the API, dashboard and (by default) the ingest with detection."""
    _logging(verbose)
    settings = _settings()
    _check_port(host or settings.api_host, port or settings.api_port)
    from eldercare.runtime import bring_up

    try:
        rt = bring_up(settings, broker=ingest)
    except (SettingsError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    service = _start_ingest(settings, rt, detect=detect) if ingest else None
    try:
        _run_api(settings, rt.database_url, service, host, port)
    finally:
        if service is not None:
            service.stop()
        rt.close()


@app.command("ingest")
def ingest_command(
    detect: Annotated[bool, typer.Option(help="Run detection on what is stored.")] = True,
    verbose: bool = False,
) -> None:
    """Run only the MQTT ingest (scale it out, or restart it apart from the API)."""
    _logging(verbose)
    settings = _settings()
    from eldercare.runtime import bring_up

    try:
        rt = bring_up(settings)
    except (SettingsError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    service = _start_ingest(settings, rt, detect=detect)
    from cluster.live_feed import CommitAnnouncer

    # No API in this process: the live map of every API node hears it over NOTIFY.
    service.on_commit = CommitAnnouncer(rt.database_url, settings.live_interval_s)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(f"ingest running: broker {_shown(rt.broker_url)}, Ctrl-C to stop")
    try:
        while not stop.wait(10):
            console.print(f"ingest: {json.dumps(service.stats.as_dict(), ensure_ascii=False)}")
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
        rt.close()


@app.command("worker")
def worker_command(
    partitions: Annotated[
        str,
        typer.Option(
            "--partitions", help="Home partitions, e.g. 0-3,7 or all (of ELDERCARE_PARTITIONS)."
        ),
    ] = "all",
    standby: Annotated[
        bool, typer.Option(help="Also stand by for every other partition (failover).")
    ] = True,
    name: Annotated[str | None, typer.Option(help="Worker name (default: host-pid).")] = None,
    trace: Annotated[
        Path | None, typer.Option(help="Append each batch's fed (device, seq) as JSON lines.")
    ] = None,
    verbose: bool = False,
) -> None:
    """Consume partitions from RabbitMQ: store, detect, alert (scale out past one process)."""
    import os
    import socket

    from cluster.partitioning import parse_partitions
    from cluster.worker import Worker

    _logging(verbose)
    settings = _settings()
    try:
        home = parse_partitions(partitions, settings.partitions)
    except ValueError as exc:
        raise _fail(f"--partitions: {exc}") from None
    from eldercare.runtime import bring_up

    try:
        rt = bring_up(settings, broker=False)
    except (SettingsError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    worker = Worker(
        settings,
        rt.database_url,
        home=home,
        standby=list(range(settings.partitions)) if standby else [],
        name=name or f"{socket.gethostname()}-{os.getpid()}",
        trace=trace,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    console.print(f"worker {worker.name}: home partitions {home or 'none'}, Ctrl-C to stop")

    def report() -> None:
        while not stop.wait(10):
            console.print(f"worker: {json.dumps(worker.stats.as_dict())}")

    threading.Thread(target=report, name="worker-report", daemon=True).start()
    try:
        worker.run(stop)
    finally:
        console.print(f"worker stopped: {json.dumps(worker.stats.as_dict())}")
        rt.close()


@app.command("bridge")
def bridge_command(verbose: bool = False) -> None:
    """Terminate device MQTT and publish each message into its partition's RabbitMQ queue."""
    _logging(verbose)
    settings = _settings()
    from cluster.bridge import Bridge
    from eldercare.runtime import bring_up

    try:
        rt = bring_up(settings)
    except (SettingsError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    assert rt.broker_url is not None
    bridge = Bridge(settings, rt.broker_url, mqtt_v5=rt.mqtt_v5)
    try:
        bridge.start()
    except Exception as exc:
        rt.close()
        raise _fail(
            f"bridge cannot start ({exc}); check ELDERCARE_BROKER_URL and ELDERCARE_AMQP_URL"
        ) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(f"bridge running: {_shown(rt.broker_url)} -> RabbitMQ, Ctrl-C to stop")
    try:
        while not stop.wait(10):
            console.print(f"bridge: {bridge.forwarded} messages forwarded")
    except KeyboardInterrupt:
        pass
    finally:
        bridge.stop()
        rt.close()


def _start_ingest(settings: Settings, rt: Any, *, detect: bool = True) -> Any:
    from ingest.detection import DetectionWorker
    from ingest.service import IngestService

    service = IngestService(
        settings,
        rt.database_url,
        rt.broker_url,
        mqtt_v5=rt.mqtt_v5,
        detection=DetectionWorker(
            rt.database_url,
            tick_s=settings.detection_tick_s,
            snapshot_s=settings.detection_snapshot_s,
        )
        if detect
        else None,
    )
    try:
        service.start()
    except (OSError, RuntimeError) as exc:
        rt.close()
        raise _fail(
            f"cannot connect to the MQTT broker at {_shown(rt.broker_url)} ({exc}); check"
            " ELDERCARE_BROKER_URL or unset it to start a private broker"
        ) from None
    return service


def _unwind(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _check_port(host: str, port: int) -> None:
    """Fail before starting anything else when the API's port is taken."""
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise _fail(
                f"cannot listen on {host}:{port} ({exc.strerror}); another program (or another"
                " eldercare) uses it: stop it, or choose --port / ELDERCARE_API_PORT"
            ) from None


def _run_api(
    settings: Settings, database_url: str, service: Any, host: str | None, port: int | None
) -> None:
    import uvicorn

    from api.app import create_app

    api = create_app(settings, database_url, ingest=service)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal
    # to the previous handler; make that handler unwind the stack, so the callers'
    # `finally` blocks stop the ingest, the broker and the embedded database.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _unwind)
    uvicorn.run(
        api,
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level="warning",
        log_config=None,  # uvicorn's records go through eldercare.logs like the rest
        ws_ping_interval=20,
    )


@app.command()
def status(
    url: Annotated[
        str | None, typer.Option(help="The API's base URL (default from settings).")
    ] = None,
    as_json: JsonOpt = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.")] = 5.0,
) -> None:
    """The health of every part; exit code 1 when anything is unhealthy."""
    from eldercare.status import assess, probe

    if url is None:
        settings = _settings()
        host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host
        url = f"http://{host}:{settings.api_port}"
    report = assess(url, probe(url, timeout))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        from rich.table import Table

        table = Table(title=f"杏北 Care 状态 status — {url}")
        for column in ("部分 Part", "状态 State", "详情 Detail"):
            table.add_column(column)
        for c in report.checks:
            state = "[green]正常 OK[/green]" if c.ok else "[red]异常 FAIL[/red]"
            table.add_row(c.label, state, c.detail)
        Console().print(table)
    raise typer.Exit(0 if report.healthy else 1)


@app.command()
def simulate(
    devices: Annotated[int, typer.Option(min=1, help="How many elders/wearables.")] = 50,
    speed: Annotated[
        float, typer.Option(min=0, help="Simulated seconds per second; 0 = flat out.")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Same seed, same community and streams.")] = 1,
    duration: Annotated[
        float | None, typer.Option(help="Simulated seconds (default: until Ctrl-C).")
    ] = None,
    scenario: Annotated[
        list[str] | None, typer.Option(help="Inject: fall, sos, ... or all.")
    ] = None,
    truth: Annotated[Path | None, typer.Option(help="Write ground truth JSON lines here.")] = None,
    interval: Annotated[
        float | None, typer.Option(help="Vitals reporting interval, seconds.")
    ] = None,
    enrol: Annotated[
        bool, typer.Option(help="Enrol the simulated elders in the database first.")
    ] = True,
) -> None:
    """Publish realistic wearable streams for a simulated 杏北社区 through the broker."""
    settings = _settings()
    from simulator.cli import run_simulation

    broker_url = settings.broker_url
    if broker_url is None:
        raise _fail(
            "simulate publishes to a running broker: set ELDERCARE_BROKER_URL"
            " (eldercare demo runs the simulator with its own broker)"
        )
    if enrol:
        from eldercare.runtime import bring_up

        try:
            rt = bring_up(settings, broker=False)
        except SettingsError as exc:
            raise _fail(str(exc)) from None
        _enrol(rt.database_url, devices, seed, interval)
    summary = run_simulation(
        broker_url, devices, speed, seed, duration, scenario or [], truth, interval
    )
    console.print(summary)


def _enrol(database_url: str, devices: int, seed: int, interval_s: float | None) -> int:
    import psycopg

    from simulator.community import COMMUNITY_NAME, build_roster, community_geojson
    from simulator.geo import CENTRE_LAT, CENTRE_LON
    from storage.enrol import enrol

    roster = build_roster(devices, seed, report_interval_s=interval_s or 60.0)
    with psycopg.connect(database_url) as conn:
        return enrol(
            conn,
            roster,
            community=COMMUNITY_NAME,
            center=(CENTRE_LAT, CENTRE_LON),
            geojson=community_geojson(),
        )


@app.command()
def demo(
    devices: Annotated[int, typer.Option(min=1, help="Simulated elders.")] = 200,
    seed: int = 1,
    port: Annotated[int | None, typer.Option(help="Dashboard port (default 8000).")] = None,
    verbose: bool = False,
) -> None:
    """Everything on embedded defaults: database, broker, ingest, simulator, dashboard."""
    _logging(verbose)
    settings = _settings()
    _check_port(settings.api_host, port or settings.api_port)
    from eldercare.runtime import bring_up

    console.print("[bold]杏北 Care demo[/bold] — starting database and broker…")
    try:
        rt = bring_up(settings)
    except (SettingsError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    n = _enrol(rt.database_url, devices, seed, DEMO_INTERVAL_S)
    service = _start_ingest(settings, rt)
    sim = threading.Thread(
        target=_demo_simulator, args=(rt.broker_url, devices, seed), name="simulator", daemon=True
    )
    sim.start()
    host = settings.api_host
    port = port or settings.api_port
    console.print(
        f"[green]ready[/green]: {n} elders, broker {_shown(rt.broker_url)}, database "
        f"{'embedded' if settings.uses_embedded_database else 'external'}\n"
        f"  dashboard  [bold]http://{host}:{port}/[/bold]\n"
        f"  API docs   http://{host}:{port}/docs\n"
        "  Ctrl-C to stop"
    )
    _demo_logins(settings, rt.database_url, f"http://{host}:{port}")
    try:
        _run_api(settings, rt.database_url, service, host, port)
    finally:
        service.stop()
        rt.close()


DEMO_INTERVAL_S = 15.0  # livelier than a real watch's minute, so the demo map moves


def _demo_logins(settings: Settings, database_url: str, base_url: str) -> None:
    """One account per role on the first start; say how to sign in."""
    from eldercare.demo_accounts import ensure_demo_accounts
    from simulator.community import COMMUNITY_NAME

    path, made = ensure_demo_accounts(database_url, settings.home, COMMUNITY_NAME, base_url)
    if made is None:
        console.print(f"  sign in    {base_url}/login/ with the logins in [bold]{path}[/bold]")
        return
    console.print(f"  sign in    [bold]{base_url}/login/[/bold] (登录) as:")
    for x in made:
        console.print(f"    {x.role:<10} {x.login:<16} password [bold]{x.password}[/bold]")
    console.print(f"  (also saved, owner-only, in {path}; delete it for new passwords)")


def _demo_simulator(broker_url: str, devices: int, seed: int) -> None:
    from simulator.cli import run_simulation

    time.sleep(1.0)  # let the ingest subscribe first
    try:
        run_simulation(
            broker_url, devices, 1.0, seed, None, ["all"], None, DEMO_INTERVAL_S, progress=False
        )
    except Exception:  # the demo goes on without live data rather than dying
        logging.getLogger("eldercare.demo").exception("simulator stopped")


@bench_app.command("ingest")
def bench_ingest(
    messages: Annotated[int, typer.Option(min=100, help="Messages per measured run.")] = 30000,
    array: Annotated[int, typer.Option(min=1, help="Samples per message in the array run.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Ceiling (bare paho subscriber) vs the full ingest path, in the same run."""
    from bench.ingest import render, run

    settings = _settings()
    result = run(settings, messages=messages, array=array, progress=not as_json)
    typer.echo(json.dumps(result, indent=2) if as_json else render(result))


@bench_app.command("detect")
def bench_detect(
    elders: Annotated[int, typer.Option(min=1, help="Elders in the core run.")] = 5000,
    hours: Annotated[float, typer.Option(min=0.1, help="Simulated hours in the core run.")] = 2.0,
    messages: Annotated[int, typer.Option(min=100, help="Messages per ingest run.")] = 20000,
    rounds: Annotated[
        int, typer.Option(min=1, help="Alternating off/on ingest rounds (median taken).")
    ] = 2,
    only: Annotated[str | None, typer.Option(help="Run one part only: 'core' or 'ratio'.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Readings/s through the detection core, and ingest with detection on vs off."""
    from bench.detect import render_core, run_core
    from bench.ingest import detection_overhead

    if only not in (None, "core", "ratio"):
        raise _fail(f"--only takes 'core' or 'ratio', not {only!r}")
    settings = _settings()
    core = run_core(elders, hours, seed=1) if only != "ratio" else None
    overhead = (
        detection_overhead(settings, messages=messages, rounds=rounds, progress=not as_json)
        if only != "core"
        else None
    )
    result = {
        "core": core,
        "ingest": overhead,
        "core_readings_per_s": core["core_readings_per_s"] if core else None,
        "ratio": overhead["ratio"] if overhead else None,
    }
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    if core is not None:
        typer.echo(render_core(core))
    if overhead is None:
        return
    typer.echo(
        f"ingest with detection off {overhead['ingest_msgs_per_s_detection_off']:,.0f} msgs/s,"
        f" on {overhead['ingest_msgs_per_s_detection_on']:,.0f} msgs/s:"
        f" ratio {overhead['ratio']:.2f} (floor 0.8:"
        f" {'met' if overhead['ratio'] >= 0.8 else 'MISSED'})"
    )


@bench_app.command("system")
def bench_system(
    sizes: Annotated[
        str, typer.Option(help="Community sizes, comma-separated, each at its real rate.")
    ] = "1000,5000,20000",
    duration: Annotated[float, typer.Option(min=1, help="Measured seconds per step.")] = 60.0,
    warmup: Annotated[
        float, typer.Option(min=0, help="Seconds per step before measuring (steady state).")
    ] = 15.0,
    clients: Annotated[int, typer.Option(min=1, help="Dashboards on /ws/live.")] = 10,
    sos_every: Annotated[float, typer.Option(min=0.1, help="Seconds between SOS presses.")] = 2.0,
    flat_messages: Annotated[
        int, typer.Option(min=100, help="Messages in the ceiling and flat-out runs.")
    ] = 30000,
    out: Annotated[Path | None, typer.Option(help="Write cost_per_reading.csv/.png here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The whole system (broker, serve, dashboards) under growing communities, then flat out."""
    from bench.system import run
    from bench.system_report import floors, table, write_curve

    try:
        steps = [int(x) for x in sizes.split(",") if x.strip()]
    except ValueError:
        raise _fail(f"--sizes takes whole numbers separated by commas, not {sizes!r}") from None
    if not steps or min(steps) < 1:
        raise _fail("--sizes needs at least one size >= 1")
    result = run(
        _settings(),
        sizes=steps,
        duration_s=duration,
        clients=clients,
        sos_every_s=sos_every,
        flat_messages=flat_messages,
        warmup_s=warmup,
        progress=not as_json,
    )
    if out is not None:
        result["files"] = write_curve(result, out)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    stdout = Console()
    stdout.print(table(result))
    stdout.print(f"ceiling (bare paho subscriber): {result['ceiling_msgs_per_s']:,.0f} msgs/s")
    for line in floors(result):
        stdout.print(line)


@bench_app.command("dispatch")
def bench_dispatch(
    caregivers: Annotated[int, typer.Option(min=1, help="Caregivers.")] = 500,
    elders: Annotated[int, typer.Option(min=1, help="Elders.")] = 5000,
    decisions: Annotated[int, typer.Option(min=10, help="Timed dispatch decisions.")] = 5000,
    lifecycles: Annotated[int, typer.Option(min=10, help="Whole orders through the DB.")] = 1000,
    workers: Annotated[int, typer.Option(min=1, help="Database connections.")] = 4,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="Server for the scratch database (default: ELDERCARE_DATABASE_URL"
            " or the embedded one)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Dispatch decision latency (p99 floor 5 ms) and order steps/s through PostgreSQL."""
    from bench.dispatch import render, run
    from eldercare.runtime import database_url as server_url
    from eldercare.runtime import migration_options

    settings = _settings(**({"database_url": database_url} if database_url else {}))
    try:
        admin = server_url(settings)
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    result = run(
        admin,
        migration_options(settings),
        caregivers=caregivers,
        elders=elders,
        decisions=decisions,
        lifecycles=lifecycles,
        workers=workers,
    )
    typer.echo(json.dumps(result, indent=2) if as_json else render(result))


@bench_app.command("scale")
def bench_scale(
    devices: Annotated[int, typer.Option(min=10, help="Simulated devices.")] = 2000,
    rounds: Annotated[int, typer.Option(min=1, help="Readings per device in the backlog.")] = 30,
    workers: Annotated[str, typer.Option(help="Worker counts to run, e.g. 1,2,4.")] = "1,2,4",
    partitions: Annotated[int, typer.Option(min=1, help="Partitions of the runs.")] = 8,
    alarms: Annotated[int, typer.Option(min=1, help="SOS alarms timed per run.")] = 20,
    repeat: Annotated[
        int, typer.Option(min=1, help="Interleaved runs per worker count (median).")
    ] = 3,
    database_url: Annotated[
        str | None, typer.Option(help="PostgreSQL server for the scratch databases.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Readings/s and alarm latency with 1, 2 and 4 workers over RabbitMQ, same run."""
    from bench.scale import render, run
    from eldercare.runtime import database_url as server_url
    from eldercare.runtime import migration_options

    settings = _settings(**({"database_url": database_url} if database_url else {}))
    try:
        counts = tuple(int(w) for w in workers.split(","))
    except ValueError:
        raise _fail(f"--workers takes counts like 1,2,4, not {workers!r}") from None
    try:
        admin = server_url(settings)
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    result = run(
        settings,
        admin,
        migration_options(settings),
        devices=devices,
        rounds=rounds,
        workers=counts,
        partitions=partitions,
        alarms=alarms,
        repeat=repeat,
        log=None if as_json else console.print,
    )
    typer.echo(json.dumps(result, indent=2) if as_json else render(result))


@evaluate_app.command("falls")
def evaluate_falls(
    sisfall: Annotated[Path, typer.Option(help="SisFall folder (or its .tar.xz) as published.")],
    as_json: JsonOpt = False,
) -> None:
    """Fall confirmation on SisFall, subject-wise: sensitivity, specificity, per activity."""
    from evaluation.falls import render_table, run

    if not sisfall.exists():
        raise _fail(f"no such file or folder: {sisfall}")
    result = run(sisfall)
    _emit(result, render_table, as_json)


@evaluate_app.command("hr")
def evaluate_hr(
    data: Annotated[Path, typer.Option(help="Folder of <USER>_hr.csv.zip / _steps.csv.zip files.")],
    as_json: JsonOpt = False,
) -> None:
    """Heart-rate rules on real smartwatch recordings: alerts per person-day, per rule."""
    from evaluation.hr import render_table, run

    if not data.is_dir():
        raise _fail(f"no such folder: {data}")
    result = run(data)
    _emit(result, render_table, as_json)


@evaluate_app.command("scenarios")
def evaluate_scenarios(
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 1,
    elders: Annotated[int, typer.Option(min=1, help="Simulated elders.")] = 200,
    days: Annotated[float, typer.Option(min=0.1, help="Simulated days.")] = 3.0,
    workers: Annotated[int | None, typer.Option(help="Processes (default: one per CPU).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every rule on the simulator's injected incidents: recall, precision, delay, false alerts."""
    from evaluation.scenarios import render_table, run

    _emit(run(seed, elders=elders, days=days, workers=workers), render_table, as_json)


def _emit(result: dict[str, Any], render: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    else:
        Console().print(render(result))


user_app = typer.Typer(no_args_is_help=True, help="People who sign in.")
app.add_typer(user_app, name="user")


@user_app.command("create")
def user_create(
    login: Annotated[str, typer.Option(help="Login name (unique, case-insensitive).")],
    role: Annotated[str, typer.Option(help="admin, staff, caregiver or family.")],
    community: Annotated[
        str | None, typer.Option(help="Community name or id (required except for admin).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name (default: the login).")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an account, e.g. the first administrator."""
    import asyncio
    import sys

    from auth.names import display_name_problem, login_problem
    from auth.passwords import hash_password, password_problem
    from auth.roles import Role, needs_community

    try:
        the_role = Role(role)
    except ValueError:
        raise _fail(f"--role must be one of {', '.join(r.value for r in Role)}") from None
    if problem := login_problem(login) or display_name_problem(name or login):
        raise _fail(problem)
    if needs_community(the_role) and community is None:
        raise _fail(f"--community is required for a {the_role.value} account")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if problem := password_problem(password):
        raise _fail(problem)
    settings = _settings()
    from eldercare.runtime import bring_up

    try:
        rt = bring_up(settings, broker=False)
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    try:
        user = asyncio.run(
            _create_user(
                rt.database_url, login, name or login, the_role, community, hash_password(password)
            )
        )
    except LookupError as exc:  # no such community
        raise _fail(str(exc).strip("'\"")) from None
    except ValueError as exc:  # login taken
        raise _fail(str(exc)) from None
    finally:
        rt.close()
    console.print(
        f"[green]created[/green] {the_role.value} ({the_role.label_zh}) {user['login']!r},"
        f" id {user['id']}.\n  Sign in: POST /api/v1/auth/login with form fields username and"
        f" password, or the Authorize button at"
        f" http://{settings.api_host}:{settings.api_port}/docs"
    )


async def _create_user(
    database_url: str, login: str, name: str, role: Any, community: str | None, pw_hash: str
) -> dict[str, Any]:
    import psycopg

    from storage import accounts

    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cid = await accounts.community_id(conn, community) if community is not None else None
        return await accounts.create_user(
            conn,
            login=login,
            display_name=name,
            role=role.value,
            community_id=cid,
            password_hash=pw_hash,
        )


retention_app = typer.Typer(no_args_is_help=True, help="Time-series retention.")
app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def retention_run(json_out: JsonOpt = False) -> None:
    """Delete time series and quarantine older than ELDERCARE_RETENTION_DAYS now (the
    API also does this every ELDERCARE_RETENTION_INTERVAL_S)."""
    from dataclasses import asdict
    from datetime import UTC, datetime

    import psycopg

    from eldercare.runtime import bring_up
    from storage.retention import prune

    settings = _settings()
    try:
        rt = bring_up(settings, broker=False)
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    try:
        with psycopg.connect(rt.database_url) as conn:
            done = prune(conn, now=datetime.now(UTC), retention_days=settings.retention_days)
    finally:
        rt.close()
    if json_out:
        typer.echo(json.dumps(asdict(done), default=str))
    elif done.skipped:
        console.print(f"[yellow]retention skipped[/yellow]: {done.skipped}")
    elif done.cutoff is None:
        console.print("retention: ELDERCARE_RETENTION_DAYS=0, everything is kept")
    else:
        console.print(
            f"[green]retention[/green]: removed what is older than {done.cutoff.isoformat()}:"
            f" rows {done.rows}, partitions/chunks dropped {done.dropped}"
        )


@app.command("report")
def report_command(
    month: Annotated[
        str | None, typer.Option(help="YYYY-MM, Asia/Shanghai (default: this month).")
    ] = None,
    by: Annotated[str, typer.Option(help="elder or caregiver.")] = "elder",
    output: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    database_url: Annotated[
        str | None, typer.Option(help="PostgreSQL URL (default: from the settings).")
    ] = None,
) -> None:
    """The month's 六助 usage per elder (services, minutes, targets, plan and extra cost)
    or per caregiver (orders, minutes, targets met, rejects)."""
    import asyncio
    import sys
    from datetime import UTC, datetime

    from orders.plans import Month
    from orders.report import csv_text, parse_month, text_table

    if by not in ("elder", "caregiver"):
        raise _fail(f"--by is elder or caregiver, not {by!r}")
    if output not in ("table", "json", "csv"):
        raise _fail(f"--format is table, json or csv, not {output!r}")
    now = datetime.now(UTC)
    try:
        m = Month.of(now) if month is None else parse_month(month)
    except ValueError as exc:
        raise _fail(f"--month: {exc}") from None
    rt = None
    if database_url is None:
        from eldercare.runtime import bring_up

        try:
            rt = bring_up(_settings(), broker=False)
        except SettingsError as exc:
            raise _fail(str(exc)) from None
        database_url = rt.database_url
    try:
        rep = asyncio.run(_report(database_url, m, by, now))
    finally:
        if rt is not None:
            rt.close()
    if output == "json":
        typer.echo(json.dumps(rep, indent=2, ensure_ascii=False))
    elif output == "csv":  # with a BOM, so that Excel reads the Chinese as UTF-8
        sys.stdout.buffer.write(("\ufeff" + csv_text(rep)).encode("utf-8"))
        sys.stdout.buffer.flush()
    else:
        Console(width=200).print(text_table(rep))


async def _report(database_url: str, month: Any, by: str, now: Any) -> dict[str, Any]:
    import psycopg

    from storage.reports import usage_report

    try:
        conn = await psycopg.AsyncConnection.connect(database_url, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise _fail(f"cannot connect to the database: {exc}") from None
    async with conn:
        return await usage_report(conn, month, by, now)


def main() -> None:  # pragma: no cover
    app()
