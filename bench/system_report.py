"""``bench system`` output: the rich table, and the cost-per-reading curve as CSV and PNG."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from rich.table import Table

CSV_FIELDS = (
    "step",
    "elders",
    "readings_per_s",
    "cpu_s_per_s",
    "cpu_us_per_reading",
    "rss_mb_total",
)


def table(result: dict[str, Any]) -> Table:
    t = Table(title="bench system (alarm latency = SOS publish -> dashboard WebSocket)")
    for col in (
        "step",
        "msgs/s",
        "readings/s",
        "rows/s",
        "alarm ms p50/p99/max",
        "SOS sent/lost",
        "CPU % brk/srv/det/pub",
        "RSS MB brk/srv/det/pub",
    ):
        t.add_column(col, justify="right")
    for s in result["steps"]:
        lat = s["alarm_latency_ms"]
        p = s["processes"]
        names = ("broker", "serve", "detection", "publisher")
        t.add_row(
            s["step"],
            f"{s['msgs_per_s']:,.0f}",
            f"{s['readings_per_s']:,.0f}",
            f"{s['db_rows_per_s']:,.0f}",
            f"{lat['p50']:.0f}/{lat['p99']:.0f}/{lat['max']:.0f}",
            f"{s['sos_sent']}/{s['sos_lost']}",
            "/".join(f"{p.get(n, {}).get('cpu_pct', 0):.0f}" for n in names),
            "/".join(f"{p.get(n, {}).get('rss_mb', 0):.0f}" for n in names),
        )
    return t


def floors(result: dict[str, Any]) -> list[str]:
    out = []
    for f in result["floors"]:
        out.append(f"{f['name']}: {f['value']} ({'met' if f['met'] else 'MISSED'})")
    return out


SYSTEM = ("broker", "serve", "detection")  # what the centre runs; not the load generators


def cost_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for s in result["steps"]:
        ours = [p for n, p in s["processes"].items() if n in SYSTEM]
        cpu = sum(p["cpu_pct"] for p in ours) / 100.0  # cores busy
        rps = s["readings_per_s"]
        rows.append(
            {
                "step": s["step"],
                "elders": s["elders"],
                "readings_per_s": round(rps, 1),
                "cpu_s_per_s": round(cpu, 3),
                "cpu_us_per_reading": round(cpu / rps * 1e6, 1) if rps > 0 else None,
                "rss_mb_total": round(sum(p["rss_mb"] for p in ours), 1),
            }
        )
    return rows


def write_curve(result: dict[str, Any], out: Path) -> dict[str, str]:
    """``cost_per_reading.csv`` and ``cost_per_reading.png`` in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    rows = cost_rows(result)
    csv_path, png_path = out / "cost_per_reading.csv", out / "cost_per_reading.png"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        w.writeheader()
        w.writerows(rows)
    sized = [r for r in rows if r["step"] != "flat-out" and r["cpu_us_per_reading"] is not None]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(
        [r["elders"] for r in sized],
        [r["cpu_us_per_reading"] for r in sized],
        "o-",
        label="realistic rate",
    )
    flat = [r for r in rows if r["step"] == "flat-out" and r["cpu_us_per_reading"] is not None]
    if flat:
        ax.axhline(flat[0]["cpu_us_per_reading"], linestyle="--", color="grey", label="flat out")
    ax.set_xlabel("elders in the community")
    ax.set_ylabel("CPU µs per stored reading (broker + serve + detection)")
    ax.set_title("Cost per reading as the community grows")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return {"csv": str(csv_path), "png": str(png_path)}
