"""The fall judge: a logistic regression over five physical features of the burst.

Why this model: five physically meaningful inputs (``alerts.fall_features``) and a
linear score on them (logarithms where they span decades), so every weight can be
read and argued about, the whole model is sixteen numbers in ``fall_model.json``, and
it scores a burst in microseconds.  Gradient boosting and random forests over the
same and more features did no better held out subject by subject (see
``evaluation.falls``), so the simpler model stays.

The parameters are trained by ``python -m evaluation.fall_training SISFALL_DIR``
(reproducible: the same data gives the same file) on every subject of the folder; the
evaluation never scores a subject with a model that saw it.

>>> m = FallModel.load()
>>> m.features == FEATURE_NAMES
True
>>> 0.0 < m.threshold < 1.0
True
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from alerts.fall_features import FEATURE_NAMES, FallFeatures

MODEL_FILE: Final = "fall_model.json"

# How each feature enters the linear score: logs for quantities spread over decades
# (impact 1.5-15 g; stillness 0.005-1 g), the small offsets keep a perfectly still
# window finite.
TRANSFORMS: Final[Mapping[str, Callable[[float], float]]] = {
    "peak_g": lambda v: math.log(max(v, 1e-3)),
    "impact_ms": lambda v: math.log(v + 0.1),
    "orientation_deg": lambda v: v / 90.0,
    "post_motion_g": lambda v: math.log10(v + 0.005),
    "pre_motion_g": lambda v: math.log10(v + 0.005),
}


def transform(f: FallFeatures, names: Sequence[str] = FEATURE_NAMES) -> list[float]:
    """The model's inputs for one burst, in ``names`` order."""
    return [TRANSFORMS[n](getattr(f, n)) for n in names]


@dataclass(frozen=True, slots=True)
class FallModel:
    """Standardise, weigh, squash: ``p = 1 / (1 + exp(-(b + sum(w * (x - mean) / scale))))``."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float = 0.5  # p at or above: confirmed (classes weighed equally in training)
    version: str = "untrained"
    trained_on: tuple[str, ...] = ()  # subject ids (the evaluation must not score these)

    def probability(self, f: FallFeatures) -> float:
        """How fall-like the burst is, 0..1."""
        x = transform(f, self.features)
        z = self.intercept + sum(
            w * (v - m) / s for w, v, m, s in zip(self.coef, x, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FallModel:
        features = tuple(str(n) for n in data["features"])
        unknown = [n for n in features if n not in TRANSFORMS]
        if unknown:
            raise ValueError(f"fall model uses unknown features: {unknown}")
        m = cls(
            features=features,
            mean=tuple(float(v) for v in data["mean"]),
            scale=tuple(float(v) for v in data["scale"]),
            coef=tuple(float(v) for v in data["coef"]),
            intercept=float(data["intercept"]),
            threshold=float(data.get("threshold", 0.5)),
            version=str(data.get("version", "unknown")),
            trained_on=tuple(str(s) for s in data.get("trained_on", ())),
        )
        if not len(m.mean) == len(m.scale) == len(m.coef) == len(features):
            raise ValueError("fall model: features, mean, scale and coef differ in length")
        return m

    @classmethod
    def load(cls) -> FallModel:
        """The model shipped beside this module (``alerts/fall_model.json``)."""
        # Beside this file; ``alerts`` is a namespace package, which importlib.resources
        # handles poorly on Python 3.11.
        text = Path(__file__).with_name(MODEL_FILE).read_text(encoding="utf-8")
        return cls.from_json(json.loads(text))


@functools.cache
def default_model() -> FallModel:
    """The shipped model, read once per process (every elder's rule shares it)."""
    return FallModel.load()
