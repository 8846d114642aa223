"""SisFall trials played through the simulated wearable: the bursts it would send.

Shared by the fall evaluation (``evaluation.falls``) and the model training
(``evaluation.fall_training``), so both see exactly the same bursts, features and
labels.

Labels, per burst: in a fall trial the burst whose peak lies within half a second of
the recording's largest magnitude is *the fall* (``True``); other bursts of a fall trial
(a brisk step before the slip) are left unlabelled (``None``) and are not trained on;
every burst of a daily activity is ``False``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Final

import numpy as np

from alerts.fall_features import FallFeatures, burst_features
from evaluation.device import Burst, TriggerSettings, detect, downsample
from evaluation.sisfall import HZ as RAW_HZ
from evaluation.sisfall import Trial, read_adxl345

IMPACT_TOLERANCE_S: Final = 0.5


@dataclass(frozen=True, slots=True)
class PlayedBurst:
    burst: Burst
    features: FallFeatures | None  # None: too short to judge
    label: bool | None


@dataclass(frozen=True, slots=True)
class PlayedTrial:
    trial: Trial
    n_samples: int  # at the device rate
    impact_index: int  # the recording's largest magnitude (the fall, in a fall trial)
    bursts: tuple[PlayedBurst, ...]
    cut_off: int  # bursts the recording's end cut off before they were of use


def play_trial(trial: Trial, settings: TriggerSettings | None = None) -> PlayedTrial:
    """Read one recording and run the device trigger and feature extraction over it."""
    s = settings or TriggerSettings()
    g = downsample(read_adxl345(trial.path), round(RAW_HZ / s.hz))
    impact = int(np.argmax(np.linalg.norm(g, axis=1)))
    played = []
    bursts, cut_off = detect(g, s)
    for b in bursts:
        label: bool | None = False
        if trial.is_fall:
            label = True if abs(b.peak_index - impact) <= IMPACT_TOLERANCE_S * s.hz else None
        played.append(PlayedBurst(b, burst_features(b.g, s.hz), label))
    return PlayedTrial(trial, len(g), impact, tuple(played), cut_off)


def play_all(
    trials: Iterable[Trial], settings: TriggerSettings | None = None, workers: int | None = None
) -> list[PlayedTrial]:
    """``play_trial`` over many trials; file parsing dominates, so spread it over processes."""
    trials = list(trials)
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    if workers <= 1 or len(trials) < 50:
        return [play_trial(t, settings) for t in trials]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(play_trial, trials, [settings] * len(trials), chunksize=16))


def training_set(
    played: Iterable[PlayedTrial], exclude: frozenset[str] = frozenset()
) -> tuple[list[FallFeatures], list[bool], list[str]]:
    """Judgeable, labelled bursts of every subject not in ``exclude``: (features, labels, subjects)."""
    feats: list[FallFeatures] = []
    labels: list[bool] = []
    subjects: set[str] = set()
    for pt in played:
        if pt.trial.subject in exclude:
            continue
        subjects.add(pt.trial.subject)
        for pb in pt.bursts:
            if pb.label is not None and pb.features is not None:
                feats.append(pb.features)
                labels.append(pb.label)
    return feats, labels, sorted(subjects)
