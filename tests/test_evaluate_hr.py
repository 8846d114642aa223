"""The heart-rate evaluation on a subset of the real smartwatch recordings.

Two people's zips are unpacked to a temporary folder (never into the repo) and the
evaluation runs on them: the report's keys, its arithmetic, and the false-alarm floor.
"""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from evaluation import hr as evaluate_hr
from evaluation.smartwatch import find_users, read_series, steps_at

DATA = Path(os.environ.get("ELDERCARE_SMARTWATCH_DATA", "/work/shared/data/smartwatch-hr"))
# Two people with one-minute heart-rate sampling: small enough to replay in seconds,
# and one of them (A4G0044) with a drift of the resting pulse during the recording.
SUBSET = ("A3OU183", "A4G0044")


@pytest.fixture(scope="module")
def subset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smartwatch")
    for user in SUBSET:
        for what in ("hr", "steps"):
            with zipfile.ZipFile(DATA / f"{user}_{what}.csv.zip") as z:
                z.extractall(out)
    return out


@pytest.fixture(scope="module")
def result(subset_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    r = evaluate_hr.run(subset_dir, workers=1)
    r["_elapsed"] = time.perf_counter() - started
    return r


def test_reader_on_unpacked_csv(subset_dir: Path) -> None:
    assert find_users(subset_dir) == list(SUBSET)
    hr = read_series(subset_dir / "A3OU183_hr.csv")
    steps = read_series(subset_dir / "A3OU183_steps.csv")
    assert len(hr) > 70_000 and len(steps) > 100_000
    assert (hr.t[1:] >= hr.t[:-1]).all()
    assert hr.v.min() >= 30 and hr.v.max() <= 220
    counts = steps_at(hr.t, steps)
    known = counts[counts >= 0]
    assert known.size > 0.9 * counts.size
    assert known.max() < 60_000  # a day's total, not the whole recording's


def test_report_keys_and_arithmetic(result: dict[str, Any]) -> None:
    for key in (
        "person_days",
        "alerts_per_person_day",
        "alerts",
        "per_rule",
        "per_person",
        "floor",
        "meets_floor",
        "runtime_s",
        "worn_days",
        "readings",
    ):
        assert key in result, key
    assert result["users"] == list(SUBSET)
    assert set(evaluate_hr.HR_KINDS) <= set(result["per_rule"])
    days = sum(p["person_days"] for p in result["per_person"].values())
    assert result["person_days"] == days > 150
    alerts = sum(result["per_rule"][k]["alerts"] for k in evaluate_hr.HR_KINDS)
    assert result["alerts"] == alerts
    assert result["alerts_per_person_day"] == pytest.approx(alerts / days, abs=1e-4)
    for user, p in result["per_person"].items():
        assert user in SUBSET
        assert set(p["per_rule"]) == set(evaluate_hr.HR_KINDS)
        assert len(p["episodes"]) == p["alerts"]
        for e in p["episodes"]:
            assert e["kind"] in evaluate_hr.HR_KINDS
            assert e["date"] and e["message"] and e["value"] is not None


def test_floor_on_the_subset(result: dict[str, Any]) -> None:
    assert result["alerts_per_person_day"] <= evaluate_hr.FLOOR
    assert result["meets_floor"] is True


def test_fast_enough(result: dict[str, Any]) -> None:
    assert result["_elapsed"] < 60


def test_render_table(result: dict[str, Any]) -> None:
    console = Console(record=True, width=160)
    console.print(evaluate_hr.render_table(result))
    text = console.export_text()
    assert "news2_hr" in text and "baseline_drift" in text and "A4G0044" in text
