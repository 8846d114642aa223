"""Dashboards for ``bench system``: WebSocket clients on ``/ws/live`` that note when each
SOS alert reaches them, and the probe that presses SOS on real device topics.

Every socket is opened through :func:`open_live_ws`, so signing in later is one edit.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from websockets.asyncio.client import ClientConnection, connect

from eldercare.broker_address import BrokerAddress

SOS_SEQ_BASE = 10**12  # far above any simulated device's counter


def live_ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/ws/live"


def open_live_ws(base_url: str, token: str) -> Any:
    """The one place a ``/ws/live`` connection is opened (an async context manager),
    signed in with the access ``token``."""
    return connect(
        live_ws_url(base_url),
        max_size=None,
        open_timeout=10,
        additional_headers={"Authorization": f"Bearer {token}"},
    )


class Dashboards:
    """``count`` connected dashboards on a private event loop in a thread.

    ``arrivals[client][elder_id]`` is the wall time the first SOS alert for that elder
    reached that client; a dropped socket reconnects (and is counted)."""

    def __init__(self, base_url: str, count: int, token: str) -> None:
        self.base_url = base_url
        self.count = count
        self.token = token
        self.arrivals: list[dict[int, float]] = [{} for _ in range(count)]
        self.reconnects = 0
        self.connected = 0
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="dashboards", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while self.connected < self.count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.connected}/{self.count} dashboards connected")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        tasks = [asyncio.create_task(self._client(i)) for i in range(self.count)]
        await self._stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _client(self, i: int) -> None:
        first = True
        while True:
            try:
                async with open_live_ws(self.base_url, self.token) as ws:
                    self.connected += 1
                    if not first:
                        self.reconnects += 1
                    first = False
                    try:
                        await self._listen(ws, self.arrivals[i])
                    finally:
                        self.connected -= 1
            except Exception:
                await asyncio.sleep(0.5)

    @staticmethod
    async def _listen(ws: ClientConnection, seen: dict[int, float]) -> None:
        async for raw in ws:
            now = time.time()
            if '"alert"' not in raw:  # map updates: not what is timed here
                continue
            msg = json.loads(raw)
            alert = msg.get("alert") if msg.get("type") == "alert" else None
            if alert and alert.get("kind") == "sos":
                seen.setdefault(int(alert["elder_id"]), now)


class SosProbe:
    """Presses SOS on devices never used before in this run, noting the publish time."""

    def __init__(self, broker_url: str, devices: dict[str, int], seed: int = 7) -> None:
        addr = BrokerAddress.parse(broker_url)
        self.devices = devices  # device id -> elder id
        self.sent: dict[int, float] = {}  # elder id -> wall time of publish
        self._rng = random.Random(seed)
        self._unused = list(devices)
        self._rng.shuffle(self._unused)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-sos-{uuid.uuid4().hex[:6]}"
        )
        self._client.connect(addr.host, addr.port)
        self._client.loop_start()

    def press(self, among: Sequence[str]) -> None:
        pool = set(among)
        for i, dev in enumerate(self._unused):
            if dev in pool:
                del self._unused[i]
                break
        else:
            raise RuntimeError("every device has pressed SOS already")
        elder = self.devices[dev]
        t = time.time()
        body = json.dumps(
            {"ts": int(t * 1000), "seq": SOS_SEQ_BASE + len(self.sent), "type": "sos"}
        )
        self.sent[elder] = t
        self._client.publish(f"eldercare/v1/devices/{dev}/event", body, qos=1)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def latencies(sent: dict[int, float], arrivals: list[dict[int, float]]) -> tuple[list[float], int]:
    """Publish-to-arrival seconds for each (SOS, dashboard) pair, and the SOS some
    dashboard never got."""
    out: list[float] = []
    lost = 0
    for elder, t0 in sent.items():
        got = [seen[elder] - t0 for seen in arrivals if elder in seen]
        out.extend(got)
        if len(got) < len(arrivals):
            lost += 1
    return out, lost
