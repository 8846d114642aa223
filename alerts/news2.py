"""NEWS2 band tables and scoring (Royal College of Physicians, 2017), as pure functions.

The chart scores each physiological parameter 0-3 by band and sums them.  A watch
cannot assess consciousness (ACVPU), so the sum we compute is labelled *partial
NEWS2*: it can only under-estimate the chart's score, never over-estimate it.

Bands are written as ``(upper_inclusive, score)`` steps so that non-integer values
(a median of samples, a temperature to two decimals) fall in exactly one band: the
chart's integer gaps (e.g. pulse 130 | 131) are closed upwards.

>>> score_parameter("hr", 135)
3
>>> score_parameter("spo2", 89), score_parameter("spo2", 89, hypercapnic=True)
(3, 0)
>>> p = partial_news2({"rr": 22, "spo2": 95, "sbp": 105, "hr": 112, "temp": 38.4})
>>> p.total, p.risk, p.label
(7, 'high', 'partial NEWS2')
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from alerts.core import Severity

Param = Literal["rr", "spo2", "sbp", "hr", "temp"]
PARAMS: Final[tuple[Param, ...]] = ("rr", "spo2", "sbp", "hr", "temp")
Bands = tuple[tuple[float, int], ...]  # ((upper_inclusive, score), ...), last upper = inf

_INF = math.inf

# RCP NEWS2 chart, 2017.  Each row: value <= upper -> score.
RR_BANDS: Final[Bands] = ((8, 3), (11, 1), (20, 0), (24, 2), (_INF, 3))
SPO2_SCALE1_BANDS: Final[Bands] = ((91, 3), (93, 2), (95, 1), (_INF, 0))
# Scale 2 (target 88-92 % for hypercapnic respiratory failure): on air, >= 88 scores 0;
# on oxygen, 93 % and above scores again because it means over-oxygenation.
SPO2_SCALE2_AIR_BANDS: Final[Bands] = ((83, 3), (85, 2), (87, 1), (_INF, 0))
SPO2_SCALE2_OXYGEN_BANDS: Final[Bands] = (
    (83, 3),
    (85, 2),
    (87, 1),
    (92, 0),
    (94, 1),
    (96, 2),
    (_INF, 3),
)
SBP_BANDS: Final[Bands] = ((90, 3), (100, 2), (110, 1), (219, 0), (_INF, 3))
PULSE_BANDS: Final[Bands] = ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (_INF, 3))
TEMP_BANDS: Final[Bands] = ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1), (_INF, 2))
OXYGEN_SCORE: Final = 2  # "air or oxygen?": any supplemental oxygen scores 2
SPO2_HIGH_AT: Final = 93  # scale 2 on oxygen: from here SpO2 is too high, not too low

# Centre of the 0-score band of each parameter: tells "too low" from "too high".
NORMAL_MID: Final[dict[str, float]] = {
    "rr": 16.0,
    "spo2": 100.0,  # SpO2 is only ever too low, except scale 2 on oxygen (handled below)
    "sbp": 165.0,
    "hr": 70.0,
    "temp": 37.0,
}


def band_score(value: float, bands: Bands) -> int:
    """Score of ``value`` in a band table.

    >>> band_score(130.0, PULSE_BANDS), band_score(130.5, PULSE_BANDS)
    (2, 3)
    """
    for upper, score in bands:
        if value <= upper:
            return score
    return bands[-1][1]  # unreachable with an inf last band; keeps mypy and NaN happy


def bands_for(param: Param, *, hypercapnic: bool = False, on_oxygen: bool = False) -> Bands:
    """The band table the RCP chart uses for ``param`` (SpO2 scale 1 or 2)."""
    if param == "spo2":
        if not hypercapnic:
            return SPO2_SCALE1_BANDS
        return SPO2_SCALE2_OXYGEN_BANDS if on_oxygen else SPO2_SCALE2_AIR_BANDS
    return {
        "rr": RR_BANDS,
        "sbp": SBP_BANDS,
        "hr": PULSE_BANDS,
        "temp": TEMP_BANDS,
    }[param]


def score_parameter(
    param: Param, value: float, *, hypercapnic: bool = False, on_oxygen: bool = False
) -> int:
    """NEWS2 score (0-3) of one observation."""
    return band_score(value, bands_for(param, hypercapnic=hypercapnic, on_oxygen=on_oxygen))


def direction(param: Param, value: float, *, hypercapnic: bool = False) -> Literal["low", "high"]:
    """Whether an abnormal ``value`` is on the low or the high side of the normal band.

    >>> direction("hr", 38), direction("temp", 39.5), direction("spo2", 97, hypercapnic=True)
    ('low', 'high', 'high')
    """
    if param == "spo2":
        # Only scale 2 scores high SpO2 (over-oxygenation while on oxygen).
        return "high" if hypercapnic and value >= SPO2_HIGH_AT else "low"
    return "low" if value < NORMAL_MID[param] else "high"


@dataclass(frozen=True, slots=True)
class PartialNews2:
    """An aggregate NEWS2 over the parameters a wearable measured."""

    total: int
    scores: dict[str, int]  # param -> 0..3, only for parameters that were present
    missing: tuple[str, ...]  # parameters with no value (always includes "consciousness")
    red: bool  # some single parameter scored 3
    on_oxygen: bool
    label: str = "partial NEWS2"

    @property
    def risk(self) -> Literal["low", "low-medium", "medium", "high"]:
        """RCP clinical risk band: >= 7 high, 5-6 medium, a single 3 low-medium."""
        if self.total >= 7:
            return "high"
        if self.total >= 5:
            return "medium"
        return "low-medium" if self.red else "low"


def partial_news2(
    values: Mapping[str, float | None], *, hypercapnic: bool = False, on_oxygen: bool = False
) -> PartialNews2:
    """Aggregate score of whatever parameters are present (consciousness never is).

    >>> partial_news2({"hr": 45, "spo2": 93}).total
    3
    >>> partial_news2({"hr": 45}).missing
    ('rr', 'spo2', 'sbp', 'temp', 'consciousness')
    """
    scores: dict[str, int] = {}
    missing: list[str] = []
    for param in PARAMS:
        v = values.get(param)
        if v is None:
            missing.append(param)
        else:
            scores[param] = score_parameter(param, v, hypercapnic=hypercapnic, on_oxygen=on_oxygen)
    missing.append("consciousness")
    total = sum(scores.values()) + (OXYGEN_SCORE if on_oxygen else 0)
    return PartialNews2(
        total=total,
        scores=scores,
        missing=tuple(missing),
        red=any(s == 3 for s in scores.values()),
        on_oxygen=on_oxygen,
    )


# --- severity mapping (documented in one place) ---------------------------------
#
# single parameter score 3 ("red score")  -> HIGH.  RCP asks for an urgent ward-based
#     review; an elder living alone has no ward nurse, so staff must act promptly.
# single parameter score 2 / 1             -> MEDIUM / LOW, only if an elder's settings
#     lower ``min_score`` (the chart itself does not trigger on them alone).
# aggregate >= 7                           -> CRITICAL (RCP: emergency response; may
#     open a 助急 order automatically downstream).
# aggregate 5-6                            -> MEDIUM (RCP: urgent response threshold).
# aggregate 1-4 with no red score          -> no aggregate finding.


def parameter_severity(score: int) -> Severity | None:
    """Severity of a sustained single-parameter score (None for 0).

    >>> parameter_severity(3), parameter_severity(0)
    (<Severity.HIGH: 'high'>, None)
    """
    return {3: Severity.HIGH, 2: Severity.MEDIUM, 1: Severity.LOW}.get(score)


def aggregate_severity(total: int, *, medium_at: int = 5, critical_at: int = 7) -> Severity | None:
    """Severity of a sustained partial-NEWS2 total (None below ``medium_at``).

    >>> aggregate_severity(7), aggregate_severity(6), aggregate_severity(4)
    (<Severity.CRITICAL: 'critical'>, <Severity.MEDIUM: 'medium'>, None)
    """
    if total >= critical_at:
        return Severity.CRITICAL
    if total >= medium_at:
        return Severity.MEDIUM
    return None
