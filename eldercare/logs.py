"""Logging, configured once by the command-line entry points.

``text``: one readable line per record.  ``json``: one JSON object per line with ``ts``
(UTC, ISO 8601), ``level``, ``logger``, ``message`` and whatever the call passed in
``extra`` (``elder_id``, ``device_id``, ``alert_id`` ...), for a log shipper to index.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_current: Literal["text", "json"] = "text"


class _UtcJsonFormatter(JsonFormatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def json_formatter() -> logging.Formatter:
    return _UtcJsonFormatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
        json_ensure_ascii=False,  # 中文 stays readable
    )


def current_format() -> Literal["text", "json"]:
    """What :func:`configure` set last (a child process is configured the same way)."""
    return _current


def configure(
    fmt: Literal["text", "json"] = "text",
    level: int = logging.WARNING,
    text_format: str = TEXT_FORMAT,
) -> None:
    """Send every logger's records to stderr in ``fmt``; replaces earlier handlers."""
    global _current
    _current = fmt
    handler = logging.StreamHandler()
    handler.setFormatter(json_formatter() if fmt == "json" else logging.Formatter(text_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
