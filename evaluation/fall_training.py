"""Train the fall judge (``alerts/fall_model.json``) from SisFall recordings.

Command (reproducible: the same folder gives the same file, byte for byte)::

    python -m evaluation.fall_training SISFALL_DIR [--out alerts/fall_model.json]

SISFALL_DIR is the unpacked archive (or the ``.tar.xz`` itself).  Every subject in it
is trained on; the model records their ids in ``trained_on`` so the evaluation knows
never to score them with it.

Fit: L2-regularised logistic regression by Newton's method (IRLS) on standardised
inputs, falls and non-falls weighed equally (there are fewer fall bursts than
activity bursts, and a missed fall costs more than a dismissed jog).

>>> import numpy as np
>>> x = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0.0, 0.0, 1.0, 1.0])
>>> mean, scale, coef, b = fit_logistic(x, y)
>>> bool(coef[0] > 0), abs(b) < 1e-9
(True, True)
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from alerts.fall_features import FEATURE_NAMES, FallFeatures
from alerts.fall_model import MODEL_FILE, FallModel, transform
from evaluation.fall_data import play_all, training_set
from evaluation.sisfall import find_trials, unpacked

L2: Final = 1.0  # on standardised inputs: a mild pull towards zero, for stability only
VERSION: Final = "lr5-sisfall-v1"


def fit_logistic(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], l2: float = L2, iters: int = 100
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], float]:
    """Class-balanced, L2-penalised logistic regression: ``(mean, scale, coef, intercept)``."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
    w = np.where(y > 0.5, n_neg / max(n_pos, 1.0), 1.0)
    penalty = np.diag(np.r_[np.full(x.shape[1], l2), 0.0])  # the intercept is not penalised
    beta = np.zeros(z.shape[1])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -60, 60)))
        grad = z.T @ (w * (p - y)) + penalty @ beta
        hess = (z * (w * p * (1.0 - p))[:, None]).T @ z + penalty
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    return mean, scale, beta[:-1], float(beta[-1])


def train(
    features: Sequence[FallFeatures],
    labels: Sequence[bool],
    trained_on: Sequence[str] = (),
    version: str = VERSION,
) -> FallModel:
    """A ``FallModel`` fitted to judgeable bursts and their fall / not-fall labels."""
    if not any(labels) or all(labels):
        raise ValueError("training needs both fall and non-fall bursts")
    x = np.array([transform(f, FEATURE_NAMES) for f in features], dtype=np.float64)
    y = np.array(labels, dtype=np.float64)
    mean, scale, coef, intercept = fit_logistic(x, y)

    def r(v: npt.NDArray[np.float64]) -> tuple[float, ...]:
        return tuple(round(float(a), 6) for a in v)

    return FallModel(
        features=FEATURE_NAMES,
        mean=r(mean),
        scale=r(scale),
        coef=r(coef),
        intercept=round(intercept, 6),
        threshold=0.5,
        version=version,
        trained_on=tuple(sorted(trained_on)),
    )


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sisfall", type=Path, help="unpacked SisFall folder, or its .tar.xz")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent.parent / "alerts" / MODEL_FILE
    )
    args = ap.parse_args(argv)
    with unpacked(args.sisfall) as root:
        feats, labels, subjects = training_set(play_all(find_trials(root)))
    model = train(feats, labels, subjects)
    args.out.write_text(json.dumps(model.to_json(), indent=2) + "\n", encoding="utf-8")
    print(
        f"{args.out}: {sum(labels)} fall and {len(labels) - sum(labels)} other bursts, "
        f"{len(subjects)} subjects"
    )


if __name__ == "__main__":
    main()
