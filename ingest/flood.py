"""Per-device flood control: a token bucket per device, and the quarantine rows of what
it refuses.

Pure: the clock comes in as each message's arrival time, so tests drive it by hand.
The bucket counts *messages*, never readings: a day of buffered readings uploaded as
one JSON array is one message and costs one token.

A refused message is not dropped silently: it is acknowledged (so the broker stops
redelivering it) after a quarantine row naming it is committed, and counted.  To keep a
flood from becoming a flood of quarantine rows, the refusals of one device within one
second of arrival (within one batch) collapse into one row: the first refused message's
bytes as the sample, and the number refused in the detail.  Every refusal is counted in
the ingest statistics and the ``rate_limited`` quarantine metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from protocol.decode import Reason

NO_DEVICE = ""  # the bucket shared by messages whose topic names no device
PRUNE_ABOVE = 10_000  # buckets kept before the full (idle) ones are forgotten


def bucket_key(device_id: str, channel: str) -> str:
    """Events (SOS, fall, cancel) draw on a bucket of their own: a watch whose vitals
    run away must still get its wearer's SOS through.

    >>> bucket_key("w-1", "vitals") == bucket_key("w-1", "location"), bucket_key("w-1", "event")
    (True, 'w-1/event')
    """
    return f"{device_id}/event" if channel == "event" else device_id


@dataclass(slots=True)
class FloodGate:
    """Token bucket per device: ``rate`` messages a second sustained, ``burst`` at once."""

    rate: float
    burst: float
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, at

    def admit(self, device_id: str, now: float) -> bool:
        tokens, at = self._buckets.get(device_id, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        admitted = tokens >= 1.0
        # Time only moves forward here: a clock stepped back must not refill on its return.
        self._buckets[device_id] = (tokens - 1.0 if admitted else tokens, max(at, now))
        if len(self._buckets) > PRUNE_ABOVE:
            self._prune(now)
        return admitted

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled: they behave exactly like a new one."""
        full_after = self.burst / self.rate if self.rate > 0 else float("inf")
        for device, (_, at) in list(self._buckets.items()):
            if now - at >= full_after:
                del self._buckets[device]


@dataclass(frozen=True, slots=True)
class Refused:
    received_at: datetime
    topic: str
    device_id: str | None
    payload: bytes


def quarantine_rows(
    refused: list[Refused], rate: float, burst: float, raw_limit: int
) -> list[tuple[object, ...]]:
    """One quarantine row per device and second of arrival (writer's column order)."""
    groups: dict[tuple[str | None, int], list[Refused]] = {}
    for r in refused:
        groups.setdefault((r.device_id, int(r.received_at.timestamp())), []).append(r)
    rows: list[tuple[object, ...]] = []
    for (device_id, _), members in groups.items():
        first = members[0]
        detail = (
            f"{len(members)} message(s) refused: over {rate:g}/s sustained"
            f" (burst {burst:g}) from this device; the first one is kept here"
        )
        rows.append(
            (
                first.received_at,
                first.topic[:300],
                device_id,
                str(Reason.RATE_LIMITED),
                detail,
                None,
                first.payload[:raw_limit],
                len(first.payload),
            )
        )
    return rows
