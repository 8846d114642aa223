"""Parked twin of the fever rule (``alerts.fever``) with no fever episode open.

Between episodes ``FeverRule`` keeps the wear state, the last temperature judged and
the febrile run (when it started, its highest reading).  Every vitals sample reaches
it, though only one in five carries a temperature: parked here, a batch of them is
a few vectorised ``where`` per elder instead of a Python call per sample.  The one
reading that could make the rule speak -- a febrile temperature that completes a
sustained run -- wakes the rule object first, which then judges it as usual; with an
episode open the object keeps the elder.

The rule belongs to another module, so the twin reads and writes it only through its
public ``snapshot``/``restore`` state, and takes an elder's rule only if that state
has the keys described here.  ``tests/test_fastpath.py`` checks it against the rule.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from alerts.fastpath import EVENT, EVENTS, VITALS, Samples, StateTwin, Table
from alerts.fever import FeverRule, FeverSettings, _worn_change

_KEYS: Final = frozenset({"worn", "last_t", "last_c", "run", "normal_since", "open"})


def _fl(v: float | None) -> float:
    return math.nan if v is None else v


def _opt(v: float) -> float | None:
    return None if v != v else v


class FeverGroup(StateTwin):
    """``FeverRule`` between episodes: wear state, last temperature, febrile run."""

    MIRRORS = (FeverRule, FeverSettings, _worn_change)
    FINGERPRINT = "da1ac107162804c3"

    name = "fever"
    kinds = frozenset({VITALS, EVENT})
    events = frozenset({"off_wrist", "on_wrist"})  # other events: ``update`` returns []

    def columns(self) -> Table:
        nan = ((), np.float64, np.nan)
        return Table(
            worn=((), np.bool_, True),
            last_t=nan,
            last_c=nan,
            run_t=nan,  # NaN: no run
            run_max=nan,
            fever_c=((), np.float64, 38.0),
            break_c=((), np.float64, 37.5),
            gap_s=((), np.float64, 90 * 60.0),
            sustain_s=((), np.float64, 30 * 60.0),
        )

    def pick(self, rules: list[Any]) -> tuple[tuple[Any, ...], int] | None:
        mine = [(i, r) for i, r in enumerate(rules) if type(r) is FeverRule]
        if len(mine) != 1 or set(mine[0][1].snapshot()) != _KEYS:
            return None
        return (mine[0][1],), 1 << mine[0][0]

    def bind(self, slot: int, rules: list[Any]) -> None:
        super().bind(slot, rules)
        if self.rules[slot] is not None:
            s, c = self.rules[slot][0].settings, self.cols
            c.fever_c[slot], c.break_c[slot] = s.fever_c, s.break_c
            c.gap_s[slot], c.sustain_s[slot] = s.max_gap_minutes * 60, s.sustain_minutes * 60

    def on_events(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        self._wear(rows, s.event == EVENTS["off_wrist"], s.event == EVENTS["on_wrist"])
        return np.ones(rows.size, bool)

    def _wear(self, rows: np.ndarray, off: np.ndarray, on: np.ndarray) -> None:
        """``_worn_change``: off the wrist forgets the run and the last reading."""
        c = self.cols
        r = rows[off]
        c.worn[r] = False
        c.last_t[r] = c.last_c[r] = c.run_t[r] = c.run_max[r] = np.nan
        c.worn[rows[on]] = True

    def on_vitals(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        c = self.cols
        quiet = np.ones(rows.size, bool)
        # Only quiet rows change: a reading that wakes the rule is fed to it again,
        # wear change and all.
        t, temp = s.t, s.temp
        last_t = c.last_t[rows]
        off = s.worn == 0.0
        worn = np.where(off, False, np.where(s.worn == 1.0, True, c.worn[rows]))
        judge = worn & (temp == temp) & ~(t < last_t)
        if not judge.any():
            self._wear(rows, off, s.worn == 1.0)
            return quiet
        j = np.flatnonzero(judge)
        r, tj, cj = rows[j], t[j], temp[j]
        lt = last_t[j]
        gap = (lt == lt) & (tj - lt > c.gap_s[r])
        run_t = np.where(gap, np.nan, c.run_t[r])
        run_max = np.where(gap, np.nan, c.run_max[r])
        fever = cj >= c.fever_c[r]
        no_run = run_t != run_t
        run_max = np.where(fever, np.where(no_run, cj, np.fmax(run_max, cj)), run_max)
        run_t = np.where(fever & no_run, tj, run_t)
        broken = cj < c.break_c[r]
        run_t = np.where(broken, np.nan, run_t)
        run_max = np.where(broken, np.nan, run_max)
        opens = fever & (run_t == run_t) & (tj - run_t >= c.sustain_s[r])
        quiet[j] = ~opens
        self._wear(rows[quiet], off[quiet], (s.worn == 1.0)[quiet])
        k = ~opens
        rk = r[k]
        c.last_t[rk], c.last_c[rk] = tj[k], cj[k]
        c.run_t[rk], c.run_max[rk] = run_t[k], run_max[k]
        return quiet

    def load(self, slot: int, t: float) -> bool:
        picked = self.rules[slot]
        if picked is None:
            return False
        st = picked[0].snapshot()
        run = st["run"]
        if set(st) != _KEYS or st["open"] is not None or st["normal_since"] is not None:
            return False
        if type(st["worn"]) is not bool or not _floats(st["last_t"], st["last_c"]):
            return False
        if run is not None and (
            type(run) is not list or len(run) != 2 or not _floats(*run) or None in run
        ):
            return False
        c = self.cols
        c.worn[slot] = st["worn"]
        c.last_t[slot], c.last_c[slot] = _fl(st["last_t"]), _fl(st["last_c"])
        c.run_t[slot], c.run_max[slot] = run if run is not None else (np.nan, np.nan)
        return True

    def state(self, slot: int) -> dict[str, Any]:
        c = self.cols
        run_t = float(c.run_t[slot])
        return {
            "worn": bool(c.worn[slot]),
            "last_t": _opt(float(c.last_t[slot])),
            "last_c": _opt(float(c.last_c[slot])),
            "run": None if run_t != run_t else [run_t, float(c.run_max[slot])],
            "normal_since": None,
            "open": None,
        }


def _floats(*values: Any) -> bool:
    """Every value a float or None: what the twin holds (ints would come back as floats)."""
    return all(v is None or type(v) is float for v in values)
