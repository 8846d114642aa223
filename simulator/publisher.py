"""The imperative shell: pace a message stream onto a real MQTT broker.

A few shared paho-mqtt 2.x connections carry every device (a device always rides the
same connection, so its messages stay in order), QoS 1, with a bounded number of
unacknowledged publishes per connection.  Messages go out when the wall clock reaches
``start_wall + (sim_time - sim_start) / speed`` and never before their own
``sim_time``: accelerated time catches up with the present and then runs live.

>>> parse_broker_url("mqtt://sim:secret@broker.local:1884")
BrokerAddress(host='broker.local', port=1884, username='sim', password='secret')
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote, urlparse

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocol.topics import topic as topic_name
from simulator.stream import Message, samples_in

MAX_AGE = timedelta(hours=71)  # ingest quarantines readings older than 72 h: keep a margin
LIVE_BACKFILL = timedelta(hours=24)  # accelerated runs without end first replay this much


class PublishError(RuntimeError):
    """The broker cannot be reached or stopped acknowledging."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://[user[:pass]@]host[:port]`` (``tcp://`` too); port 1883 by default."""
    u = urlparse(url)
    if u.scheme not in ("mqtt", "tcp") or not u.hostname:
        raise ValueError(f"broker URL must look like mqtt://host:1883, got {url!r}")
    return BrokerAddress(
        u.hostname,
        u.port or 1883,
        unquote(u.username) if u.username else None,
        unquote(u.password) if u.password else None,
    )


def default_window(
    speed: float, duration: timedelta | None, now: datetime
) -> tuple[datetime, timedelta | None, str | None]:
    """Where simulated time starts, the (possibly clamped) duration, and a note if clamped.

    Simulated time must neither run ahead of the wall clock (ingest quarantines readings
    from the future) nor lag it by 72 h or more (too old).  At speed 1 or slower it
    starts now; faster (or 0 = as fast as possible) it ends now.

    >>> now = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    >>> start, dur, note = default_window(60, timedelta(hours=2), now)
    >>> start.isoformat(), dur, note
    ('2026-11-28T06:00:00+00:00', datetime.timedelta(seconds=7200), None)
    >>> default_window(0, timedelta(days=5), now)[1:]
    (datetime.timedelta(days=2, seconds=82800), 'duration clamped to 71 h: ingest rejects readings older than 72 h')
    """
    if speed < 0:
        raise ValueError("speed must be >= 0")
    note = None
    if duration is None:
        if speed == 1 or 0 < speed < 1:
            return now, None, None
        return now - LIVE_BACKFILL, None, None
    if 0 < speed <= 1:
        # Slow motion: simulated time falls behind; the last message is the oldest.
        lag = duration * (1 / speed - 1)
        if lag > MAX_AGE:
            duration = MAX_AGE / (1 / speed - 1)
            note = (
                f"duration clamped to {duration.total_seconds() / 3600:.1f} h: at speed "
                f"{speed:g} later readings would arrive more than 72 h old"
            )
        return now, duration, note
    if duration > MAX_AGE:
        duration = MAX_AGE
        note = "duration clamped to 71 h: ingest rejects readings older than 72 h"
    return now - duration, duration, note


class _Connection:
    """One paho client with a bound on publishes awaiting PUBACK."""

    def __init__(self, address: BrokerAddress, client_id: str, max_inflight: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if address.username is not None:
            self.client.username_pw_set(address.username, address.password)
        self.client.max_inflight_messages_set(max_inflight)
        self.slots = threading.BoundedSemaphore(max_inflight)
        self.connected = threading.Event()
        self.refused: str | None = None
        self.acked = 0
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.address = address

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        else:
            self.connected.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.connected.clear()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        # Runs on the network thread: count and free a slot, nothing more.
        self.acked += 1
        with contextlib.suppress(ValueError):  # a resend acknowledged twice
            self.slots.release()

    def start(self) -> None:
        try:
            self.client.connect(self.address.host, self.address.port, keepalive=30)
        except OSError as exc:
            raise PublishError(
                f"cannot reach the MQTT broker at {self.address.host}:{self.address.port}: {exc}"
            ) from exc
        self.client.loop_start()

    def publish(self, msg: Message, stall_s: float) -> None:
        if not self.slots.acquire(timeout=stall_s):
            raise PublishError(f"no PUBACK from the broker for {stall_s:g} s")
        self.client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Publisher:
    """A few shared broker connections for many devices.

    >>> Publisher(parse_broker_url("mqtt://127.0.0.1"), connections=3).route("x/y/z/dev-1/vitals")
    2
    """

    def __init__(
        self,
        address: BrokerAddress,
        *,
        connections: int = 4,
        max_inflight: int = 200,
        client_prefix: str = "xb-sim",
        stall_s: float = 30.0,
    ) -> None:
        run = uuid.uuid4().hex[:8]  # two simulators must not kick each other off the broker
        self.address = address
        self.stall_s = stall_s
        self.max_inflight = max_inflight
        self._conns = [
            _Connection(address, f"{client_prefix}-{run}-{i}", max_inflight)
            for i in range(max(1, connections))
        ]
        self._route: dict[str, int] = {}
        self.published = 0

    def route(self, topic: str) -> int:
        """Which connection carries a topic: fixed per device, so each device stays in order."""
        i = self._route.get(topic)
        if i is None:
            device = topic.split("/")[3]
            i = self._route[topic] = zlib.crc32(device.encode()) % len(self._conns)
        return i

    def connect(self, timeout: float = 10.0) -> None:
        for c in self._conns:
            c.start()
        deadline = time.monotonic() + timeout
        for c in self._conns:
            while not c.connected.wait(0.05):
                if c.refused is not None:
                    self.close()
                    raise PublishError(f"the MQTT broker refused the connection: {c.refused}")
                if time.monotonic() > deadline:
                    self.close()
                    raise PublishError(
                        f"no CONNACK from {self.address.host}:{self.address.port} in {timeout:g} s"
                    )

    def publish(self, msg: Message) -> None:
        self._conns[self.route(msg.topic)].publish(msg, self.stall_s)
        self.published += 1

    @property
    def acked(self) -> int:
        return sum(c.acked for c in self._conns)

    def drain(self, timeout: float) -> bool:
        """Wait until every publish is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.acked < self.published:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        for c in self._conns:
            with contextlib.suppress(Exception):
                c.stop()

    def __enter__(self) -> Publisher:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(slots=True)
class _TruthWriter:
    """Writes each ground-truth line once simulated time has reached its start."""

    records: list[dict[str, str]]
    fh: TextIO | None
    written: int = 0

    def upto(self, sim: datetime) -> None:
        while self.written < len(self.records):
            rec = self.records[self.written]
            if datetime.fromisoformat(rec["start"]) > sim:
                break
            if self.fh is not None:
                self.fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                self.fh.flush()  # a live run's truth is readable while it runs
            self.written += 1


def publish_stream(
    messages: Iterable[Message],
    address: BrokerAddress,
    *,
    speed: float,
    sim_start: datetime,
    sim_duration: timedelta | None = None,
    connections: int = 4,
    max_inflight: int = 200,
    truth: Sequence[dict[str, str]] = (),
    truth_path: Path | None = None,
    offline_devices: Sequence[str] = (),
    progress: bool = True,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Publish ``messages`` paced at ``speed`` and return a summary.

    ``speed`` is simulated seconds per wall second (0 = as fast as the broker takes
    them).  ``offline_devices`` get a retained ``offline`` status at the end, standing
    in for the MQTT will a real device would have (shared connections cannot carry one
    per device).  Ctrl-C (or ``stop``) ends the run cleanly; the summary says so.
    """
    sim0 = sim_start.timestamp()
    wall0 = clock()
    pub = Publisher(address, connections=connections, max_inflight=max_inflight)
    pub.connect()
    n_msgs = n_samples = 0
    last_sim = sim_start
    interrupted = False
    fh = truth_path.open("w", encoding="utf-8") if truth_path is not None else None
    writer = _TruthWriter(sorted(truth, key=lambda r: r["start"]), fh)
    bar = _Progress(sim_duration, enabled=progress)
    try:
        with bar:
            for msg in messages:
                if stop is not None and stop.is_set():
                    interrupted = True
                    break
                s = msg.sim_time.timestamp()
                due = s if speed == 0 else max(wall0 + (s - sim0) / speed, s)
                wait = due - clock()
                if wait > 0.002:
                    if stop is not None:
                        if stop.wait(wait):
                            interrupted = True
                            break
                    else:
                        time.sleep(wait)
                pub.publish(msg)
                n_msgs += 1
                n_samples += samples_in(msg.payload) if msg.payload[:1] in (b"{", b"[") else 0
                last_sim = msg.sim_time
                writer.upto(last_sim)
                if n_msgs % 256 == 0:
                    bar.update(last_sim - sim_start, n_msgs, clock() - wall0)
            bar.update(last_sim - sim_start, n_msgs, clock() - wall0)
    except KeyboardInterrupt:
        interrupted = True
    try:
        if sim_duration is not None and not interrupted:
            writer.upto(sim_start + sim_duration)
        end_ms = int(last_sim.timestamp() * 1000)
        for dev in offline_devices:
            body = msgspec.json.encode({"state": "offline", "ts": end_ms})
            pub.publish(Message(last_sim, topic_name(dev, "status"), body, 1, True))
            n_msgs += 1
        all_acked = pub.drain(timeout=10.0 if not interrupted else 3.0)
    finally:
        pub.close()
        if fh is not None:
            fh.close()
    elapsed = clock() - wall0
    return {
        "messages": n_msgs,
        "samples": n_samples,
        "acked": pub.acked,
        "all_acked": all_acked,
        "elapsed_s": round(elapsed, 3),
        "rate_msg_s": round(n_msgs / elapsed, 1) if elapsed > 0 else None,
        "sim_start": sim_start.astimezone(UTC).isoformat(),
        "sim_end": last_sim.astimezone(UTC).isoformat(),
        "truth_written": writer.written,
        "interrupted": interrupted,
    }


class _Progress:
    """A rich progress line on stderr (simulated time done, messages, rate)."""

    def __init__(self, duration: timedelta | None, *, enabled: bool) -> None:
        self.enabled = enabled
        self.total = duration.total_seconds() if duration is not None else None
        self._p: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._p = Progress(
                TextColumn("[bold]simulating"),
                BarColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._p.__enter__()
            self._task = self._p.add_task("", total=self.total)
        return self

    def update(self, sim_done: timedelta, n: int, wall: float) -> None:
        if self._p is None:
            return
        rate = n / wall if wall > 0 else 0.0
        self._p.update(
            self._task,
            completed=sim_done.total_seconds(),
            description=f"sim {sim_done} · {n:,} msgs · {rate:,.0f}/s",
        )

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.__exit__(None, None, None)
