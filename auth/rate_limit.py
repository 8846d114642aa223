"""How many failed logins are tolerated, and how long to wait after too many.

Counted per login name (guessing one person's password) and per client address
(trying many names); a success clears the per-login count.  The per-address limit is
higher than the per-login one because a whole service centre may share one address.

>>> from datetime import UTC, datetime, timedelta
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> p = LoginPolicy(max_failures=2, window=timedelta(minutes=15))
>>> decide([t0, t0 + timedelta(minutes=1)], now=t0 + timedelta(minutes=2), max_failures=2,
...        window=p.window)
Blocked(retry_after_s=780)
>>> decide([t0], now=t0 + timedelta(minutes=2), max_failures=2, window=p.window) is None
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    max_failures: int = 5
    max_failures_per_address: int = 20
    window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Blocked:
    retry_after_s: int


def decide(
    failures: Sequence[datetime], *, now: datetime, max_failures: int, window: timedelta
) -> Blocked | None:
    """Blocked until enough of the failures inside the window have aged out, else None."""
    recent = sorted(t for t in failures if now - window < t <= now)
    if len(recent) < max_failures:
        return None
    # The attempt becomes allowed once the (n - max + 1)-th newest failure leaves the window.
    frees_at = recent[len(recent) - max_failures] + window
    return Blocked(max(1, math.ceil((frees_at - now).total_seconds())))


def check_login(
    *,
    login_failures: Sequence[datetime],
    address_failures: Sequence[datetime],
    now: datetime,
    policy: LoginPolicy,
) -> Blocked | None:
    """The longer of the two waits, or None when both limits allow another attempt."""
    blocks = [
        b
        for b in (
            decide(login_failures, now=now, max_failures=policy.max_failures, window=policy.window),
            decide(
                address_failures,
                now=now,
                max_failures=policy.max_failures_per_address,
                window=policy.window,
            ),
        )
        if b is not None
    ]
    return max(blocks, key=lambda b: b.retry_after_s) if blocks else None
