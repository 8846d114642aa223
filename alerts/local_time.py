"""Local hour-of-day windows (Asia/Shanghai by default) on epoch seconds, for the rules.

Asia/Shanghai has kept UTC+8 with no daylight saving since 1991, so a local day is a
plain 24-hour block and a fixed offset is exact; no tz database is needed.  A
*window* is ``(start, end)`` in local hours, half open ``[start, end)``, wrapping
past midnight when ``start > end`` (``(21, 6)`` is the night); ``None`` (or
``start == end``) means "all day".

The rules that fire on silence ("worn off for 30 minutes in daytime") need one
answer: *when* did the condition fall due?  ``first_due`` gives it in closed form,
so a finding carries the same timestamp whether the engine called ``advance``
every second or once an hour.

>>> t = 1767571200.0  # 2026-01-05 00:00 UTC = 08:00 local
>>> local_hour(t), in_window(t, (8, 20)), in_window(t, (21, 6))
(8.0, True, False)
>>> (first_due(t - 3600, 3 * 3600, (8, 20), not_before=t) - t) / 3600  # counted from 08:00
3.0
"""

from __future__ import annotations

import math
from typing import Final

Window = tuple[float, float]  # local hours [start, end); start > end wraps midnight

SHANGHAI_OFFSET_H: Final = 8.0
_DAY: Final = 86_400.0
_HOUR: Final = 3_600.0


def local_hour(t: float, offset_h: float = SHANGHAI_OFFSET_H) -> float:
    """Hours since local midnight, ``0 <= h < 24``."""
    return ((t + offset_h * _HOUR) % _DAY) / _HOUR


def local_midnight(t: float, offset_h: float = SHANGHAI_OFFSET_H) -> float:
    """Epoch seconds of the local midnight at or before ``t``."""
    off = offset_h * _HOUR
    return math.floor((t + off) / _DAY) * _DAY - off


def _always(window: Window | None) -> bool:
    return window is None or window[0] == window[1]


def in_window(t: float, window: Window | None, offset_h: float = SHANGHAI_OFFSET_H) -> bool:
    """Whether local time at ``t`` lies inside ``window``."""
    if window is None or _always(window):
        return True
    start, end = window
    h = local_hour(t, offset_h)
    return start <= h < end if start < end else (h >= start or h < end)


def window_bounds(
    t: float, window: Window | None, offset_h: float = SHANGHAI_OFFSET_H
) -> tuple[float, float] | None:
    """``(start, end)`` epoch seconds of the occurrence of ``window`` containing ``t``.

    None when ``t`` is outside the window; an all-day window is unbounded.

    >>> t = 1767571200.0  # 08:00 local
    >>> [(b - t) / 3600 for b in window_bounds(t - 4 * 3600, (21, 6))]  # 04:00 local
    [-11.0, -2.0]
    """
    if window is None or _always(window):
        return -math.inf, math.inf
    if not in_window(t, window, offset_h):
        return None
    start, end = window
    midnight = local_midnight(t, offset_h)
    ws = midnight + start * _HOUR
    if ws > t:  # a wrapping window entered yesterday evening
        ws -= _DAY
    length = ((end - start) % 24) * _HOUR
    return ws, ws + length


def next_in_window(t: float, window: Window | None, offset_h: float = SHANGHAI_OFFSET_H) -> float:
    """The earliest instant at or after ``t`` inside ``window``."""
    if in_window(t, window, offset_h):
        return t
    assert window is not None
    ws = local_midnight(t, offset_h) + window[0] * _HOUR
    return ws if ws > t else ws + _DAY


def first_due(
    since: float,
    hold_s: float,
    window: Window | None,
    offset_h: float = SHANGHAI_OFFSET_H,
    *,
    not_before: float | None = None,
) -> float | None:
    """When a condition holding since ``since`` has lasted ``hold_s`` inside one window.

    Only time inside a single occurrence of the window counts: a watch taken off at
    20:45 with a 08:00-21:00 window and a 30-minute hold is due at 08:30 next morning,
    not at 21:15.  ``not_before`` asks for the earliest such instant at or after it
    (still inside a window).  None if the window is shorter than ``hold_s``.

    >>> t = 1767571200.0  # 08:00 local
    >>> (first_due(t + 12.75 * 3600, 1800, (8, 21)) - t) / 3600  # off at 20:45
    24.5
    """
    x = since if not_before is None else max(since, not_before)
    if window is None or _always(window):
        return max(x, since + hold_s)
    for _ in range(3):  # the occurrence holding x, then at most two more
        x = next_in_window(x, window, offset_h)
        bounds = window_bounds(x, window, offset_h)
        assert bounds is not None
        ws, we = bounds
        due = max(x, max(since, ws) + hold_s)
        if due < we:
            return due
        x = we
    return None
