"""Reader for the smartwatch recordings (``/work/shared/data/smartwatch-hr``).

Files, one pair per person (data/README.md): ``<USER>_hr.csv.zip`` with rows
``,user,datetime,heartrate`` (local time, a sample every few seconds to a minute) and
``<USER>_steps.csv.zip`` with rows ``,user,datetime,steps`` (steps per minute).  Plain
``.csv`` files are read too.

The recordings carry local wall-clock times and no zone.  We replay them as if the
person lived on our elders' clock (UTC+8 by default): local time minus the offset is
the UTC ``ts`` of the reading, so an hour-of-day rule set to the same offset sees the
person's own hours, and "steps today" resets at their local midnight.

>>> import numpy as np
>>> minute = np.array([0, 60, 120, 86400, 86460], dtype=np.int64)
>>> steps_today(minute, np.array([5.0, 0.0, 7.0, 3.0, 4.0])).tolist()
[5, 5, 12, 3, 7]
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from protocol.messages import Vitals

DAY = 86400


@dataclass(frozen=True, slots=True)
class Series:
    """One recording: local-clock epoch seconds (naive, int64) and values, time-sorted."""

    t: np.ndarray
    v: np.ndarray

    def __len__(self) -> int:
        return int(self.t.shape[0])


def _text(path: Path) -> str:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith(".csv")]
            if not names:
                raise ValueError(f"{path}: no .csv inside")
            return z.read(names[0]).decode("utf-8")
    return path.read_text(encoding="utf-8")


def read_series(path: Path) -> Series:
    """Read one ``,user,datetime,value`` file; rows with an unreadable value are skipped."""
    rows = csv.reader(io.StringIO(_text(path)))
    header = next(rows, None)
    if header is None:
        return Series(np.zeros(0, np.int64), np.zeros(0))
    stamps: list[str] = []
    values: list[float] = []
    for row in rows:
        if len(row) < 4:
            continue
        try:
            values.append(float(row[3]))
        except ValueError:
            continue
        stamps.append(row[2])
    # numpy parses "YYYY-MM-DD HH:MM:SS" in C, ~30x faster than strptime per row.
    t = np.array(stamps, dtype="datetime64[s]").astype(np.int64)
    v = np.array(values, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    return Series(t[order], v[order])


def find_users(data_dir: Path) -> list[str]:
    """People with both a heart-rate and a steps file in ``data_dir``, sorted."""
    users = []
    for p in sorted(data_dir.glob("*_hr.csv*")):
        user = p.name.split("_hr.csv")[0]
        if any(data_dir.glob(f"{user}_steps.csv*")):
            users.append(user)
    return users


def _file(data_dir: Path, user: str, what: str) -> Path:
    for suffix in (".csv.zip", ".csv"):
        p = data_dir / f"{user}_{what}{suffix}"
        if p.exists():
            return p
    raise FileNotFoundError(f"{data_dir}/{user}_{what}.csv[.zip]")


def load_user(data_dir: Path, user: str) -> tuple[Series, Series]:
    """Heart-rate and steps series of one person."""
    return read_series(_file(data_dir, user, "hr")), read_series(_file(data_dir, user, "steps"))


def steps_today(minute_t: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Cumulative steps since local midnight, per step-minute (the protocol's ``steps``)."""
    if minute_t.size == 0:
        return np.zeros(0, np.int64)
    counts = np.rint(np.clip(steps, 0, None)).astype(np.int64)
    total = np.cumsum(counts)
    day = minute_t // DAY
    new_day = np.r_[True, day[1:] != day[:-1]]
    first = np.flatnonzero(new_day)  # first minute of each day
    before = np.r_[0, total[first[1:] - 1]]  # running total when each day starts
    out: np.ndarray = total - before[np.cumsum(new_day) - 1]
    return out


def steps_at(hr_t: np.ndarray, steps: Series, *, stale_s: int = 300) -> np.ndarray:
    """The cumulative "steps today" a watch would report at each heart-rate time.

    A step minute is known once it has ended.  -1 where no step count is known (the
    steps file does not cover that time, or its last minute is older than ``stale_s``).
    """
    out = np.full(hr_t.shape, -1, dtype=np.int64)
    if len(steps) == 0:
        return out
    cum = steps_today(steps.t, steps.v)
    ends = steps.t + 60
    idx = np.searchsorted(ends, hr_t, side="right") - 1
    ok = idx >= 0
    j = np.where(ok, idx, 0)
    fresh = ok & (hr_t - ends[j] <= stale_s)
    same_day = (steps.t[j] // DAY) == (hr_t // DAY)
    out[fresh & same_day] = cum[j][fresh & same_day]
    out[fresh & ~same_day] = 0  # the first minutes after midnight: a new day, no steps yet
    return out


def vitals_stream(
    user: str, hr: Series, steps: Series, *, utc_offset_hours: float = 8.0
) -> Iterator[Vitals]:
    """One ``Vitals`` per heart-rate sample, with the step count known at that time."""
    offset = int(utc_offset_hours * 3600)
    counts = steps_at(hr.t, steps).tolist()
    utc = (hr.t - offset).tolist()
    for seq, (t, v, c) in enumerate(zip(utc, hr.v.tolist(), counts, strict=True)):
        yield Vitals(
            device_id=user,
            seq=seq,
            ts=datetime.fromtimestamp(t, UTC),
            hr=v,
            steps=c if c >= 0 else None,
        )
