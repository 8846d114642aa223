"""Ingest counters, shared between the writer thread and whoever reports them.

An :class:`IngestObserver` (the Prometheus metrics, :mod:`api.metrics`) may be attached:
it hears every committed batch.  The ingest never imports a metrics library.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

RATE_WINDOW_S = 60.0  # rates in the health report are over this much recent time


class IngestObserver(Protocol):
    def batch_written(
        self,
        *,
        messages: int,
        stored: dict[str, int],
        rejected: dict[str, int],
        commit_s: float,
        lags_s: Sequence[float],
    ) -> None:
        """A batch was committed: ``lags_s`` are (a sample of) its readings' device
        time -> commit delays, ``commit_s`` the time its write took."""


@dataclass
class IngestStats:
    messages: int = 0
    samples: Counter[str] = field(default_factory=Counter)  # table -> rows stored
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)  # reason -> count
    batches: int = 0
    db_errors: int = 0
    broker_connects: int = 0
    last_commit_lag_s: float = 0.0  # arrival of a batch's oldest message -> its commit
    observer: IngestObserver | None = None
    _recent: deque[tuple[float, int, int]] = field(default_factory=deque, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(
        self,
        *,
        messages: int,
        stored: dict[str, int],
        duplicates: int,
        rejected: dict[str, int],
        lag_s: float,
        commit_s: float = 0.0,
        lags_s: Sequence[float] = (),
        now: float | None = None,
    ) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.messages += messages
            self.samples.update(stored)
            self.duplicates += duplicates
            self.quarantined.update(rejected)
            self.batches += 1
            self.last_commit_lag_s = lag_s
            self._recent.append((now, messages, sum(stored.values())))
            while self._recent and self._recent[0][0] < now - RATE_WINDOW_S:
                self._recent.popleft()
        observer = self.observer
        if observer is not None:
            observer.batch_written(
                messages=messages,
                stored=stored,
                rejected=rejected,
                commit_s=commit_s,
                lags_s=lags_s,
            )

    def rates(self, now: float | None = None) -> tuple[float, float]:
        """Messages and readings per second over the last ``RATE_WINDOW_S``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [r for r in self._recent if r[0] >= now - RATE_WINDOW_S]
        if not recent:
            return 0.0, 0.0
        return (
            sum(r[1] for r in recent) / RATE_WINDOW_S,
            sum(r[2] for r in recent) / RATE_WINDOW_S,
        )

    def as_dict(self) -> dict[str, Any]:
        messages_per_s, readings_per_s = self.rates()
        with self._lock:
            return {
                "messages": self.messages,
                "samples": dict(self.samples),
                "duplicates": self.duplicates,
                "quarantined": dict(self.quarantined),
                "batches": self.batches,
                "db_errors": self.db_errors,
                "broker_connects": self.broker_connects,
                "last_commit_lag_s": round(self.last_commit_lag_s, 4),
                "messages_per_s": round(messages_per_s, 2),
                "readings_per_s": round(readings_per_s, 2),
            }
