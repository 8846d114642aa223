"""``eldercare simulate`` in one plain function (the Typer command wraps it).

>>> import inspect
>>> list(inspect.signature(run_simulation).parameters)[:8]
['broker_url', 'devices', 'speed', 'seed', 'duration_s', 'scenarios', 'truth_path', 'interval_s']
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from simulator.community import DEVICE_PREFIX, build_roster
from simulator.publisher import default_window, parse_broker_url, publish_stream
from simulator.scenarios import normalise, schedule
from simulator.stream import generate

LIVE_HORIZON = timedelta(hours=12)  # without an end, scenarios are placed in this much time


def run_simulation(
    broker_url: str,
    devices: int,
    speed: float,
    seed: int,
    duration_s: float | None,
    scenarios: list[str],
    truth_path: Path | None,
    interval_s: float | None,
    *,
    device_prefix: str = DEVICE_PREFIX,
    connections: int = 4,
    progress: bool = True,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Simulate ``devices`` wearables onto the broker; return the run's summary.

    ``speed``: simulated seconds per wall second (1 = live, 0 = as fast as possible).
    ``duration_s`` None runs until Ctrl-C.  ``scenarios``: names from
    ``simulator.scenarios.SCENARIOS`` or ``all`` (each on a distinct elder); their ground
    truth goes to ``truth_path`` as JSON lines.  ``interval_s`` overrides the 60 s
    vital-sign interval.  The summary carries ``notes`` (e.g. a clamped duration) and the
    scenarios that did not fit the window, with why.

    Keyword-only extras: ``device_prefix`` keeps the ids of parallel runs (tests) apart,
    ``connections`` is the number of shared MQTT connections, ``progress`` shows a rich
    progress line on stderr, ``now`` fixes the wall-clock anchor (tests).
    """
    if devices < 1:
        raise ValueError("devices must be >= 1")
    if duration_s is not None and duration_s <= 0:
        raise ValueError("duration must be > 0 seconds")
    names = normalise(scenarios)
    address = parse_broker_url(broker_url)
    roster = build_roster(
        devices, seed, report_interval_s=interval_s or 60.0, device_prefix=device_prefix
    )
    now = now or datetime.now(UTC)
    duration = None if duration_s is None else timedelta(seconds=duration_s)
    start, duration, note = default_window(speed, duration, now)
    horizon = duration if duration is not None else (now - start) + LIVE_HORIZON
    plan = schedule(roster, start, horizon, seed, names)
    notes = [note] if note else []
    notes += [f"scenario {name} skipped: {why}" for name, why in plan.skipped]
    if progress and notes:
        from rich.console import Console

        console = Console(stderr=True)
        for n in notes:
            console.print(f"[yellow]note:[/] {n}")
    summary = publish_stream(
        generate(roster, start, duration, seed, plan.scenarios),
        address,
        speed=speed,
        sim_start=start,
        sim_duration=duration,
        connections=min(connections, devices),
        truth=plan.truth(),
        truth_path=truth_path,
        offline_devices=[e.device_id for e in roster],
        progress=progress,
    )
    summary.update(
        devices=devices,
        seed=seed,
        speed=speed,
        scenarios=[r["kind"] for r in plan.truth()],
        skipped=[{"scenario": n, "why": w} for n, w in plan.skipped],
        notes=notes,
        truth_path=str(truth_path) if truth_path is not None else None,
    )
    return summary
