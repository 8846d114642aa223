"""Ingest counters, shared between the writer thread and whoever reports them."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(
        self,
        *,
        messages: int,
        stored: dict[str, int],
        duplicates: int,
        rejected: dict[str, int],
        lag_s: float,
    ) -> None:
        with self._lock:
            self.messages += messages
            self.samples.update(stored)
            self.duplicates += duplicates
            self.quarantined.update(rejected)
            self.batches += 1
            self.last_commit_lag_s = lag_s

    def as_dict(self) -> dict[str, Any]:
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
            }
