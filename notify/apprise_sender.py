"""Sending one message to one channel through apprise; the shell's only outside I/O.

apprise reports a failure as ``False`` and says why in its log, so each send runs in
its own worker thread and a handler keyed by that thread collects what apprise logged
for it: the recorded error is apprise's own words ("Internal Server Error - 500",
"A Connection error occurred ...").  A channel's URL is checked when it is saved
(:func:`check_url`, no I/O) and shown redacted (apprise's privacy form, query left off).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Final

import apprise

ERROR_MAX: Final = 1000
_log = logging.getLogger("eldercare.notify")


@dataclass(frozen=True, slots=True)
class Delivery:
    ok: bool
    error: str | None = None


class _PerThread(logging.Handler):
    """Collects apprise's warnings and errors per sending thread."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._lines: dict[int, list[str]] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self._lines[threading.get_ident()] = []

    def stop(self) -> list[str]:
        with self._lock:
            return self._lines.pop(threading.get_ident(), [])

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            lines = self._lines.get(record.thread or 0)
            if lines is not None:
                lines.append(record.getMessage())


_captured = _PerThread()
logging.getLogger("apprise").addHandler(_captured)


def check_url(url: str) -> str | None:
    """Why ``url`` cannot be used as a channel (None: apprise knows it)."""
    if apprise.Apprise.instantiate(url, suppress_exceptions=True) is None:
        return "not an apprise URL apprise can send to (e.g. wecombot://, dingtalk://, mailto://, json://)"
    return None


def redact(url: str) -> str:
    """The URL with its secrets masked, as apprise shows it, without the query.

    >>> redact("mailto://user:hunter2@example.com")
    'mailto://user:****@example.com/'
    """
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        return url.split("://", 1)[0] + "://…"
    return plugin.url(privacy=True).split("?", 1)[0]


def _send(url: str, title: str, body: str) -> Delivery:
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        return Delivery(False, "not an apprise URL")
    _captured.start()
    try:
        ok = plugin.notify(body=body, title=title)
    except Exception as exc:  # a plugin bug must not end the notifier
        _captured.stop()
        return Delivery(False, f"{type(exc).__name__}: {exc}"[:ERROR_MAX])
    lines = _captured.stop()
    if ok:
        return Delivery(True)
    return Delivery(False, ("; ".join(lines) or "apprise reported a failure")[:ERROR_MAX])


async def send(url: str, title: str, body: str, *, timeout_s: float = 15.0) -> Delivery:
    """Send one message; never raises.  A send taking longer than ``timeout_s`` counts as
    failed (its thread is left to finish: apprise's own timeouts end it)."""
    try:
        async with asyncio.timeout(timeout_s):  # not wait_for: it may swallow a cancel on 3.11
            return await asyncio.to_thread(_send, url, title, body)
    except TimeoutError:
        return Delivery(False, f"no answer within {timeout_s:g} s")
