"""The monthly usage report: the pure aggregation on hand-built orders, then the same
month stored in the real database and read through the API (JSON and CSV) and the
``eldercare report`` command.

One November 2026 (Asia/Shanghai) for two elders and four caregivers, written once as
scripts and played both through the pure lifecycle and through the store:

* 王淑芬 (the 100 元 plan): five lunches (four included, one charged), a cleaning the
  family cancelled, an SOS that 李建国 declined and 王秀兰 accepted a minute late;
* 李国华 (no plan): a bath 张桂英 let lapse before 王秀兰 took it, and a late-night meal
  on 30 November delivered after midnight -- November's order, December's bill.
"""

from __future__ import annotations

import csv
import doctest
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

import api.actor
import orders.report
from api.app import create_app
from conftest import as_admin, test_settings
from orders.lifecycle import SYSTEM, Actor, Order, request, transition
from orders.plans import BASIC_100, Month, Subscription
from orders.report import (
    ELDER_COLUMNS,
    Judgement,
    Outcome,
    by_caregiver,
    by_elder,
    judge,
    parse_month,
    report,
)
from storage.orders import apply_step_sync, create_order_sync

NOVEMBER = Month(2026, 11)
T0 = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)  # 10:00 in 杏北
NOW = datetime(2026, 12, 4, 0, 0, tzinfo=UTC)
STAFF = Actor("staff", 1)
ELDERS = {"wang": "王淑芬", "li": "李国华"}
CAREGIVERS = {"c1": "王秀兰", "c2": "李建国", "c3": "张桂英", "c4": "赵小红"}  # c4: idle


def m(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


@dataclass
class Script:
    elder: str
    kind: str
    at: datetime
    steps: list[tuple[str, str, float, str | None]]  # action, who, minutes after, caregiver
    requester: Actor = STAFF


def served(elder: str, kind: str, at: datetime, *, minutes: float = 10) -> Script:
    """Assigned to c1 at once, accepted after 5 minutes, at the door after 20."""
    return Script(
        elder,
        kind,
        at,
        [
            ("assign", "system", 0, "c1"),
            ("accept", "c1", 5, None),
            ("depart", "c1", 10, None),
            ("arrive", "c1", 20, None),
            ("complete", "c1", 20 + minutes, None),
        ],
    )


def november() -> list[Script]:
    lunches = [served("wang", "meal", T0 + timedelta(days=i)) for i in range(5)]
    cleaning = Script(
        "wang", "cleaning", T0, [("cancel", "family", 30, None)], requester=Actor("family", 8)
    )
    sos = Script(
        "wang",
        "emergency",
        T0 + timedelta(days=6),
        [
            ("assign", "system", 0, "c2"),
            ("reject", "c2", 1, None),
            ("assign", "system", 1.5, "c1"),
            ("accept", "c1", 3, None),  # the target is 2 minutes
            ("depart", "c1", 4, None),
            ("arrive", "c1", 10, None),
            ("complete", "c1", 40, None),
        ],
    )
    bath = Script(
        "li",
        "bathing",
        T0,
        [
            ("assign", "system", 0, "c3"),
            ("expire", "system", 30, None),
            ("assign", "system", 30, "c1"),
            ("accept", "c1", 35, None),
            ("depart", "c1", 40, None),
            ("arrive", "c1", 60, None),
            ("complete", "c1", 120, None),
        ],
    )
    # 23:00 on 30 November local; at the door 00:10 on 1 December: 70 minutes, late.
    late_meal = Script(
        "li",
        "meal",
        datetime(2026, 11, 30, 15, 0, tzinfo=UTC),
        [
            ("assign", "system", 0, "c1"),
            ("accept", "c1", 5, None),
            ("depart", "c1", 10, None),
            ("arrive", "c1", 70, None),
            ("complete", "c1", 80, None),
        ],
    )
    return [*lunches, cleaning, sos, bath, late_meal]


def actor(who: str, caregivers: dict[str, int]) -> Actor:
    if who == "system":
        return SYSTEM
    if who == "family":
        return Actor("family", 8)
    return Actor("caregiver", caregivers[who])


def play(s: Script, elders: dict[str, int], caregivers: dict[str, int]) -> Order:
    o = request(elders[s.elder], s.kind, s.requester, s.at)
    for action, who, after, cg in s.steps:
        o = transition(
            o,
            action,
            actor(who, caregivers),
            s.at + m(after),
            caregiver_id=caregivers[cg] if cg else None,
        )
    return o


PURE_ELDERS = {"wang": 1, "li": 2}
PURE_CAREGIVERS = {"c1": 11, "c2": 12, "c3": 13, "c4": 14}
WANG_SUB = Subscription(1, BASIC_100, first=date(2026, 11, 1))


def pure_orders() -> list[Order]:
    return [play(s, PURE_ELDERS, PURE_CAREGIVERS) for s in november()]


# --- the pure aggregation --------------------------------------------------------------------


def expected_elders() -> list[dict[str, Any]]:
    return [
        {
            "elder_name": "王淑芬",
            "orders": 7,
            "by_kind": {
                "meal": 5,
                "cleaning": 1,
                "bathing": 0,
                "mobility": 0,
                "emergency": 1,
                "medical": 0,
            },
            "completed": 6,
            "cancelled": 1,
            "service_minutes": 80.0,  # five lunches of 10 minutes, the SOS 30
            "accept_met": 5,
            "accept_missed": 1,  # the SOS; the cancelled cleaning is not judged
            "arrive_met": 6,
            "arrive_missed": 0,
            "rejects": 1,
            "plan_code": "basic-100",
            "fee_fen": 10_000,
            "extra_fen": 1_200,  # the fifth lunch
            "total_fen": 11_200,
        },
        {
            "elder_name": "李国华",
            "orders": 2,
            "by_kind": {
                "meal": 1,
                "cleaning": 0,
                "bathing": 1,
                "mobility": 0,
                "emergency": 0,
                "medical": 0,
            },
            "completed": 2,
            "cancelled": 0,
            "service_minutes": 70.0,
            "accept_met": 2,
            "accept_missed": 0,
            "arrive_met": 1,
            "arrive_missed": 1,  # the late-night meal, 70 minutes after the request
            "rejects": 1,  # the lapsed offer
            "plan_code": None,
            "fee_fen": 0,
            "extra_fen": 6_000,  # the bath; the meal was served in December
            "total_fen": 6_000,
        },
    ]


EXPECTED_CAREGIVERS = [
    ("王秀兰", 8, 8, 150.0, 7, 1, 0.875, 7, 1, 0.875, 0, 0),
    ("李建国", 0, 0, 0.0, 0, 0, None, 0, 0, None, 1, 0),
    ("张桂英", 0, 0, 0.0, 0, 0, None, 0, 0, None, 0, 1),
    ("赵小红", 0, 0, 0.0, 0, 0, None, 0, 0, None, 0, 0),
]
CAREGIVER_KEYS = (
    "caregiver_name",
    "orders",
    "completed",
    "service_minutes",
    "accept_met",
    "accept_missed",
    "accept_ratio",
    "arrive_met",
    "arrive_missed",
    "arrive_ratio",
    "rejects",
    "expired",
)


def elder_view(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in expected_elders()[0]}


def caregiver_view(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in CAREGIVER_KEYS)


def test_per_elder_orders_minutes_targets_and_the_bill() -> None:
    rep = report(
        "elder",
        NOVEMBER,
        NOW,
        pure_orders(),
        subscriptions={1: WANG_SUB},
        elder_names={1: "王淑芬", 2: "李国华"},
    )
    assert [elder_view(r) for r in rep["rows"]] == expected_elders()
    wang = rep["rows"][0]
    meal = next(x for x in wang["usage"] if x["kind"] == "meal")
    assert (meal["used"], meal["included"], meal["extra"]) == (5, 4, 1)
    assert rep["totals"]["total_fen"] == 17_200 and rep["totals"]["orders"] == 9
    assert rep["totals"]["by_kind"]["meal"] == 6


def test_per_caregiver_orders_targets_rejects_and_lapses() -> None:
    names = {i: CAREGIVERS[k] for k, i in PURE_CAREGIVERS.items()}
    rep = report("caregiver", NOVEMBER, NOW, pure_orders(), caregiver_names=names)
    assert [caregiver_view(r) for r in rep["rows"]] == EXPECTED_CAREGIVERS
    assert rep["rows"][0]["by_kind"]["meal"] == 6


def test_a_plan_counts_in_a_month_with_no_orders_and_december_bills_the_late_meal() -> None:
    december = by_elder(pure_orders(), Month(2026, 12), NOW, {1: WANG_SUB})
    wang, li = december
    assert (wang.orders, wang.fee_fen, wang.extra_fen) == (0, 10_000, 0)
    assert (li.orders, li.usage.line("meal").used, li.total_fen) == (0, 1, 1_200)


def test_targets_not_yet_due_are_neither_met_nor_missed() -> None:
    o = request(1, "cleaning", STAFF, T0)  # accept within 2 hours, arrive within a day
    assert judge(o, T0 + m(30)) == Judgement(Outcome.OPEN, Outcome.OPEN)
    assert judge(o, T0 + m(121)).accept is Outcome.MISSED
    lines = by_caregiver([o], NOVEMBER, T0 + m(30))
    assert lines == []  # nobody took it on


def test_an_arrival_before_a_booked_window_is_a_miss() -> None:
    lunch = T0 + timedelta(hours=3)
    o = request(1, "meal", STAFF, T0, scheduled_for=lunch)
    o = transition(o, "assign", SYSTEM, T0, caregiver_id=11)
    cg = Actor("caregiver", 11)
    for action, at in (("accept", 1), ("depart", 60), ("arrive", 90), ("complete", 100)):
        o = transition(o, action, cg, T0 + m(at))
    j = judge(o, NOW)
    assert (j.accept, j.arrive) == (Outcome.MET, Outcome.MISSED)  # at 11:30 for a 13:00 lunch


@pytest.mark.parametrize("module", [orders.report, api.actor])
def test_the_examples_in_the_docstrings_hold(module: object) -> None:
    failed, attempted = doctest.testmod(module)  # type: ignore[arg-type]
    assert attempted > 0 and failed == 0


def test_a_month_is_yyyy_mm() -> None:
    assert parse_month("2026-12") == Month(2026, 12)
    for bad in ("2026-13", "2026-1", "Dec 2026", ""):
        with pytest.raises(ValueError, match="YYYY-MM"):
            parse_month(bad)


# --- stored, through the API and the command ---------------------------------------------------


@pytest.fixture
def stored_november(db: psycopg.Connection) -> dict[str, Any]:
    """November's scripts played through the store; returns the ids."""
    elders = {
        k: db.execute("INSERT INTO elders (name) VALUES (%s) RETURNING id", (n,)).fetchone()[0]
        for k, n in ELDERS.items()
    }
    caregivers = {
        k: db.execute(
            "INSERT INTO caregivers (name, skills) VALUES (%s, %s) RETURNING id",
            (n, ["meal_delivery", "housekeeping", "bathing", "first_aid"]),
        ).fetchone()[0]
        for k, n in CAREGIVERS.items()
    }
    db.execute(
        "INSERT INTO caregivers (name, active) VALUES ('离职的人', false)"
    )  # gone, and not in November
    db.execute(
        "INSERT INTO subscriptions (elder_id, plan_code, starts_on) VALUES (%s, 'basic-100', %s)",
        (elders["wang"], date(2026, 11, 1)),
    )
    db.commit()
    for s in november():
        a = s.requester if s.requester.role.value != "family" else Actor("family", 8)
        oid, _ = create_order_sync(db, elder_id=elders[s.elder], kind=s.kind, actor=a, at=s.at)
        for action, who, after, cg in s.steps:
            apply_step_sync(
                db,
                oid,
                action,
                actor(who, caregivers),
                s.at + m(after),
                caregiver_id=caregivers[cg] if cg else None,
            )
    db.commit()
    return {"elders": elders, "caregivers": caregivers}


@pytest.fixture
def client(database_url: str, stored_november: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(create_app(test_settings(), database_url)) as c:
        yield as_admin(c, database_url)


def test_the_api_reports_the_stored_month_per_elder(client: TestClient) -> None:
    r = client.get("/api/v1/reports/usage", params={"month": "2026-11", "by": "elder"})
    assert r.status_code == 200
    rep = r.json()
    assert (rep["month"], rep["by"]) == ("2026-11", "elder")
    assert [elder_view(x) for x in rep["rows"]] == expected_elders()


def test_the_api_reports_the_stored_month_per_caregiver(client: TestClient) -> None:
    rep = client.get("/api/v1/reports/usage", params={"month": "2026-11", "by": "caregiver"}).json()
    assert [caregiver_view(x) for x in rep["rows"]] == EXPECTED_CAREGIVERS


def test_the_csv_opens_in_excel_with_chinese_headers_and_yuan(client: TestClient) -> None:
    r = client.get(
        "/api/v1/reports/usage", params={"month": "2026-11", "by": "elder", "format": "csv"}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "usage-elder-2026-11.csv" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for UTF-8
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert list(rows[0]) == list(ELDER_COLUMNS.values())
    wang = rows[0]
    assert wang["老人 elder_name"] == "王淑芬" and wang["助餐 meal"] == "5"
    assert (wang["套餐 plan_code"], wang["合计(元) total_yuan"]) == ("basic-100", "112.00")
    assert rows[1]["套餐 plan_code"] == "" and rows[1]["超出费用(元) extra_yuan"] == "60.00"


def test_bad_report_parameters_are_422(client: TestClient) -> None:
    for params in ({"month": "2026-13"}, {"by": "street"}, {"format": "xlsx"}, {"month": "11"}):
        r = client.get("/api/v1/reports/usage", params=params)
        assert r.status_code == 422, params
    empty = client.get("/api/v1/reports/usage", params={"month": "2025-01"}).json()
    assert empty["rows"] == [] and empty["totals"]["orders"] == 0


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "eldercare", "report", "--database-url", database_url, *args],
        capture_output=True,
        timeout=120,
    )


def test_the_command_prints_the_same_report(
    database_url: str, stored_november: dict[str, Any]
) -> None:
    out = run_cli(database_url, "--month", "2026-11", "--by", "elder", "--format", "json")
    assert out.returncode == 0, out.stderr.decode()
    assert [elder_view(r) for r in json.loads(out.stdout)["rows"]] == expected_elders()

    table = run_cli(database_url, "--month", "2026-11", "--by", "caregiver")
    assert table.returncode == 0, table.stderr.decode()
    text = table.stdout.decode()
    assert "王秀兰" in text and "合计" in text and "0.875" in text and "2026-11" in text

    sheet = run_cli(database_url, "--month", "2026-11", "--format", "csv")
    assert sheet.stdout.startswith(b"\xef\xbb\xbf")
    assert "王淑芬" in sheet.stdout.decode("utf-8-sig")

    bad = run_cli(database_url, "--month", "November")
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr.decode()
    assert run_cli(database_url, "--by", "street").returncode == 2
