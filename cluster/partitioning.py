"""Which partition a device's readings belong to, and the names that follow from it.

Pure.  The hash must be the same in every process and every Python release (the
bridge computes it, the workers' restore depends on it), so it is CRC-32 of the
device id, not ``hash()`` (salted per process).

>>> partition_of("w0001", 12) == partition_of("w0001", 12)
True
>>> parse_partitions("0-2,7", 12)
[0, 1, 2, 7]
>>> parse_partitions("all", 3)
[0, 1, 2]
"""

from __future__ import annotations

import zlib


def partition_of(device_id: str, partitions: int) -> int:
    return zlib.crc32(device_id.encode()) % partitions


def queue_name(prefix: str, partition: int) -> str:
    return f"{prefix}.p{partition}"


def exchange_name(prefix: str) -> str:
    return prefix


def parse_partitions(spec: str, partitions: int) -> list[int]:
    """``"0-3,7"`` or ``"all"`` (or empty: none) as sorted partition numbers.

    Raises ValueError with a readable message for anything else or out of range.
    """
    spec = spec.strip()
    if spec == "all":
        return list(range(partitions))
    chosen: set[int] = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ValueError(f"not a partition or range: {part!r} (use e.g. 0-3,7)") from None
        if not 0 <= first <= last < partitions:
            raise ValueError(f"partition {part!r} is outside 0-{partitions - 1}")
        chosen.update(range(first, last + 1))
    return sorted(chosen)


def spread(worker: int, workers: int, partitions: int) -> list[int]:
    """The home partitions of worker ``worker`` of ``workers`` (round robin)."""
    return [p for p in range(partitions) if p % workers == worker]
