"""``eldercare bench system`` end to end at a tiny size: every figure is there and sane,
every SOS reached every dashboard, and the cost curve is written as CSV and PNG."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

PROCESSES = ("broker", "serve", "detection", "publisher")


def test_bench_system_reports_every_figure_and_loses_no_alarm(
    pg_admin_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}
    env.update(ELDERCARE_DATABASE_URL=pg_admin_url, ELDERCARE_HOME=str(tmp_path / "home"))
    out = tmp_path / "curve"
    run = subprocess.run(
        [sys.executable, "-m", "eldercare", "bench", "system", "--sizes", "50,120",
         "--duration", "5", "--warmup", "2", "--clients", "2", "--sos-every", "1.5",
         "--flat-messages", "3000", "--out", str(out), "--json"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)

    assert result["ceiling_msgs_per_s"] > 0
    assert [s["step"] for s in result["steps"]] == ["50 elders", "120 elders", "flat-out"]
    for step in result["steps"]:
        assert step["sos_sent"] >= 1, step
        assert step["sos_lost"] == 0, step
        lat = step["alarm_latency_ms"]
        assert lat["samples"] == step["sos_sent"] * result["dashboards"]
        assert 0 < lat["p50"] <= lat["p99"] <= lat["max"]
        assert step["msgs_per_s"] > 0 and step["readings_per_s"] > 0
        assert step["db_rows_per_s"] > 0
        for name in PROCESSES:
            assert step["processes"][name]["rss_mb"] > 0, (step["step"], name)
            assert step["processes"][name]["cpu_pct"] >= 0
    flat = result["steps"][-1]
    # Flat out, the clock (and the count) starts once the first 100 messages are in:
    # the readings of the other 2,900+ are all in the step.
    assert flat["readings"] >= 3000 - 100
    assert result["flat_out_share_of_ceiling"] > 0
    assert {f["name"] for f in result["floors"]} >= {
        "flat out: alarm p99 <= 1 s",
        "flat out: ingest >= 80 % of the ceiling",
    }

    rows = list(csv.DictReader((out / "cost_per_reading.csv").open(encoding="utf-8")))
    assert [r["step"] for r in rows] == [s["step"] for s in result["steps"]]
    assert all(float(r["cpu_us_per_reading"]) > 0 for r in rows)
    assert (out / "cost_per_reading.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
