"""A dashboard in Python that follows ``dashboard/static/js/live.js`` and ``alerts.js``:
on every (re)connect open ``/ws/live``, then re-read the map snapshot and the active
alerts over REST; alerts are kept by id (newest version), pushes and re-reads alike;
a dropped socket is retried with a doubling backoff.

Every socket and HTTP client is opened through :func:`open_live_ws` and :func:`http`,
so signing in is a one-line change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from datetime import datetime
from typing import Any

import httpx
from websockets.asyncio.client import connect

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 4.0  # live.js: 30 s; a test need not wait that long
ACTIVE_PATH = "/api/v1/alerts?state=active&limit=500"


def http(base_url: str, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=10, headers=headers)


def open_live_ws(base_url: str, headers: dict[str, str]) -> Any:
    url = base_url.replace("http://", "ws://", 1) + "/ws/live"
    return connect(url, max_size=None, open_timeout=5, additional_headers=headers)


class LiveDashboard:
    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        """``headers``: a signed-in user's ``Authorization`` (conftest's helpers)."""
        self.base_url = base_url
        self.headers = headers
        self.alerts: dict[int, dict[str, Any]] = {}  # id -> newest version
        self.pushed: list[dict[str, Any]] = []  # every alert message, in order
        self.connects = 0
        self.caught_up = 0  # connections whose snapshot and alert re-read succeeded
        self.open = False
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LiveDashboard:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def sos_alerts(self, elder_id: int) -> list[dict[str, Any]]:
        return [a for a in self.alerts.values() if a["elder_id"] == elder_id and a["kind"] == "sos"]

    def _keep(self, alert: dict[str, Any]) -> None:
        old = self.alerts.get(alert["id"])
        if old is None or _at(alert) >= _at(old):
            self.alerts[alert["id"]] = alert

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()
        task = self._loop.create_task(self._connect_forever())
        self._loop.run_until_complete(self._stop.wait())
        task.cancel()
        with contextlib.suppress(BaseException):
            self._loop.run_until_complete(task)

    async def _connect_forever(self) -> None:
        attempt = 0
        while True:
            try:
                async with open_live_ws(self.base_url, self.headers) as ws:
                    self.connects += 1
                    await asyncio.to_thread(self._catch_up)
                    self.caught_up += 1
                    self.open = True
                    attempt = 0
                    async for raw in ws:
                        msg = json.loads(raw)
                        if msg.get("type") == "alert" and msg.get("alert"):
                            self.pushed.append(msg["alert"])
                            self._keep(msg["alert"])
            except Exception:
                pass
            self.open = False
            await asyncio.sleep(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2**attempt))
            attempt += 1

    def _catch_up(self) -> None:
        with http(self.base_url, self.headers) as c:
            c.get("/api/v1/latest").raise_for_status()
            r = c.get(ACTIVE_PATH)
            r.raise_for_status()
        for alert in r.json()["data"]:
            self._keep(alert)


def _at(alert: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(alert["updated_at"])


def wait_for(check: Any, timeout: float, what: str) -> float:
    """Seconds until ``check()`` is truthy (deadline-bounded; no tight timing asserted)."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - t0
