"""Parked twins of the event rules (``alerts.sos``, ``alerts.fall``) between events.

Both rules are silent until an event: the SOS rule keeps no state at all, and the
fall rule, with no fall episode open, only remembers the latest step count (so that
it can count steps *after* a fall).  Parked here, a vitals sample is one vectorised
assignment and a tick costs nothing; an ``sos`` or ``fall`` event wakes the rule
object, which then judges it as usual.

These rules belong to other modules, so the twins hold their state only through the
rules' public ``snapshot``/``restore`` format, and take an elder's rule only if that
format is the one described here: a rule that grows new state is simply left to
the plain path.  ``tests/test_fastpath.py`` checks the twins against the rules.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from alerts.fall import FallRule
from alerts.fastpath import EVENT, EVENTS, VITALS, Samples, StateTwin, Table
from alerts.sos import SosRule

_FALL_STATE: Final = frozenset({"steps", "steps_t", "episode"})


class SosGroup(StateTwin):
    """``SosRule`` reacts to ``sos`` events only and keeps no state."""

    MIRRORS = (SosRule,)
    FINGERPRINT = "6d8d902c2becfed0"

    name = "sos"
    kinds = frozenset({EVENT})
    events = frozenset({"sos"})  # the one reading it speaks on: the object judges it

    def columns(self) -> Table:
        return Table()

    def pick(self, rules: list[Any]) -> tuple[tuple[Any, ...], int] | None:
        mine = [(i, r) for i, r in enumerate(rules) if type(r) is SosRule]
        if len(mine) != 1 or mine[0][1].snapshot() != {}:
            return None
        return (mine[0][1],), 1 << mine[0][0]

    def load(self, slot: int, t: float) -> bool:
        picked = self.rules[slot]
        return picked is not None and picked[0].snapshot() == {}

    def state(self, slot: int) -> dict[str, Any]:
        return {}


class FallGroup(StateTwin):
    """``FallRule`` with no fall episode: it tracks the step count, nothing else."""

    MIRRORS = (FallRule,)
    FINGERPRINT = "f1d5df5658d0b0ca"

    name = "fall"
    kinds = frozenset({VITALS, EVENT})
    events = frozenset({"fall", "cancel"})

    def columns(self) -> Table:
        return Table(
            steps=((), np.int64, 0),
            has_steps=((), np.bool_, False),
            steps_t=((), np.float64, np.nan),  # NaN: None
        )

    def pick(self, rules: list[Any]) -> tuple[tuple[Any, ...], int] | None:
        mine = [(i, r) for i, r in enumerate(rules) if type(r) is FallRule]
        if len(mine) != 1 or set(mine[0][1].snapshot()) != _FALL_STATE:
            return None
        return (mine[0][1],), 1 << mine[0][0]

    def on_events(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        return s.event == EVENTS["cancel"]  # withdraws nothing when no fall is open

    def on_vitals(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        c = self.cols
        last_t = c.steps_t[rows]
        # FallRule._on_steps: a count older than the last one known is ignored.
        take = ~np.isnan(s.steps) & ~(last_t > s.t)
        r = rows[take]
        c.steps[r] = s.steps[take].astype(np.int64)
        c.has_steps[r] = True
        c.steps_t[r] = s.t[take]
        return np.ones(rows.size, bool)

    def load(self, slot: int, t: float) -> bool:
        picked = self.rules[slot]
        if picked is None:
            return False
        state = picked[0].snapshot()
        steps, steps_t = state.get("steps"), state.get("steps_t")
        if (
            set(state) != _FALL_STATE
            or state["episode"] is not None
            or (steps is not None and type(steps) is not int)
            or (steps_t is not None and type(steps_t) is not float)
            or (steps is None) != (steps_t is None)
        ):
            return False
        c = self.cols
        c.has_steps[slot] = steps is not None
        c.steps[slot] = steps or 0
        c.steps_t[slot] = math.nan if steps_t is None else steps_t
        return True

    def state(self, slot: int) -> dict[str, Any]:
        c = self.cols
        has = bool(c.has_steps[slot])
        return {
            "steps": int(c.steps[slot]) if has else None,
            "steps_t": float(c.steps_t[slot]) if has else None,
            "episode": None,
        }
