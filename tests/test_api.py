"""The REST API against the real database: what staff and the dashboard call."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from conftest import as_admin, test_settings
from storage.writer import Batch, write_batch

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def client(database_url: str, db: psycopg.Connection) -> Iterator[TestClient]:
    with TestClient(create_app(test_settings(), database_url)) as c:
        yield as_admin(c, database_url)


def make_elder(client: TestClient, **fields: object) -> dict:
    r = client.post("/api/v1/elders", json={"name": "刘淑珍", **fields})
    assert r.status_code == 201, r.text
    return r.json()


def test_health_reports_database_and_schema(client: TestClient) -> None:
    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok" and body["database"] is True
    assert body["schema_version"] >= 2 and body["storage"] in ("postgresql", "timescaledb")


def test_elder_lifecycle_create_read_update_delete(client: TestClient) -> None:
    e = make_elder(
        client,
        gender="F",
        birth_year=1942,
        home_lat=34.8668,
        home_lon=110.4465,
        address="杏北小区 3 号楼 2 单元 301",
    )
    assert e["id"] >= 1 and e["device_ids"] == []
    got = client.get(f"/api/v1/elders/{e['id']}").json()
    assert got["address"] == "杏北小区 3 号楼 2 单元 301"
    upd = client.patch(f"/api/v1/elders/{e['id']}", json={"phone": "13800000000"}).json()
    assert upd["phone"] == "13800000000" and upd["name"] == "刘淑珍"
    listing = client.get("/api/v1/elders").json()
    assert listing["count"] == 1 and listing["data"][0]["id"] == e["id"]
    assert client.delete(f"/api/v1/elders/{e['id']}").status_code == 204
    assert client.get(f"/api/v1/elders/{e['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "王", "home_lat": 91}, "home_lat"),
        ({"name": "王", "gender": "X"}, "gender"),
        ({"name": "王", "favourite": "tea"}, "favourite"),
    ],
)
def test_invalid_elder_is_a_422_that_names_the_field(
    client: TestClient, body: dict, fragment: str
) -> None:
    r = client.post("/api/v1/elders", json=body)
    assert r.status_code == 422
    assert fragment in r.text


def test_renaming_to_nothing_is_refused_not_a_crash(client: TestClient) -> None:
    e = make_elder(client)
    r = client.patch(f"/api/v1/elders/{e['id']}", json={"name": None})
    assert r.status_code == 422 and "name" in r.text


def test_device_pair_swap_unpair(client: TestClient, db: psycopg.Connection) -> None:
    a, b = make_elder(client, name="甲"), make_elder(client, name="乙")
    d = client.post("/api/v1/devices", json={"id": "api-w1", "elder_id": a["id"]})
    assert d.status_code == 201 and d.json()["elder_id"] == a["id"]
    assert client.get(f"/api/v1/elders/{a['id']}").json()["device_ids"] == ["api-w1"]
    swapped = client.post("/api/v1/devices/api-w1/pair", json={"elder_id": b["id"]}).json()
    assert swapped["elder_id"] == b["id"]
    assert client.get(f"/api/v1/elders/{a['id']}").json()["device_ids"] == []
    history = db.execute(
        "SELECT elder_id, unpaired_at IS NOT NULL FROM device_pairings WHERE device_id = 'api-w1' ORDER BY id"
    ).fetchall()
    assert history == [(a["id"], True), (b["id"], False)]
    assert client.post("/api/v1/devices/api-w1/unpair").json()["elder_id"] is None


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "fragment"),
    [
        ("post", "/api/v1/devices", {"id": "bad id!"}, 422, "id"),
        ("post", "/api/v1/devices", {"id": "x" * 65}, 422, "id"),
        ("post", "/api/v1/devices", {"id": "ok-1", "elder_id": 999999}, 404, "elder 999999"),
        ("post", "/api/v1/devices/nope/pair", {"elder_id": 1}, 404, "does not exist"),
        ("post", "/api/v1/devices/nope/unpair", None, 404, "device nope"),
        ("get", "/api/v1/elders/999999", None, 404, "elder 999999"),
        ("get", "/api/v1/elders/0", None, 422, "elder_id"),
        ("get", "/api/v1/elders/abc", None, 422, "elder_id"),
        ("patch", "/api/v1/devices/nope", {"model": "x"}, 404, "device nope"),
    ],
)
def test_errors_are_clear(
    client: TestClient, method: str, url: str, body: dict | None, status: int, fragment: str
) -> None:
    r = client.request(method, url, json=body)
    assert r.status_code == status, r.text
    assert fragment in r.text


def test_duplicate_device_is_a_409(client: TestClient) -> None:
    assert client.post("/api/v1/devices", json={"id": "dup-1"}).status_code == 201
    r = client.post("/api/v1/devices", json={"id": "dup-1"})
    assert r.status_code == 409 and "already exists" in r.json()["detail"]


def test_latest_lists_every_elder_with_newest_state_and_attention(
    client: TestClient, db: psycopg.Connection
) -> None:
    quiet, ill = make_elder(client, name="平安"), make_elder(client, name="不适")
    client.post("/api/v1/devices", json={"id": "lt-1", "elder_id": ill["id"]})
    b = Batch()
    b.latest.vitals = [
        (ill["id"], "lt-1", NOW, 142.0, 96.0, None, None, None, None, None, 80.0, True)
    ]
    b.latest.positions = [(ill["id"], "lt-1", NOW, 34.867, 110.447, 9.0, "gps")]
    write_batch(db, b)
    body = client.get("/api/v1/latest").json()
    assert body["count"] == 2
    by_id = {e["elder_id"]: e for e in body["elders"]}
    assert by_id[quiet["id"]]["attention"] is False and by_id[quiet["id"]]["lat"] is None
    sick = by_id[ill["id"]]
    assert sick["hr"] == 142 and sick["lat"] == 34.867 and sick["device_id"] == "lt-1"
    assert sick["attention"] is True and sick["attention_reasons"] == ["hr_high"]


def test_vitals_history_is_bucketed(client: TestClient, db: psycopg.Connection) -> None:
    e = make_elder(client)
    b = Batch()
    b.rows["vitals"] = [
        (
            NOW - timedelta(minutes=i),
            "h-1",
            i,
            e["id"],
            60.0 + (i % 10),
            97.0,
            None,
            None,
            None,
            None,
            i,
            90.0,
            True,
            NOW,
        )
        for i in range(120)
    ]
    write_batch(db, b)
    start = (NOW - timedelta(hours=2)).isoformat()
    r = client.get(
        f"/api/v1/elders/{e['id']}/vitals",
        params={"start": start, "end": NOW.isoformat(), "bucket_s": 600},
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert 12 <= len(data) <= 13
    assert sum(d["samples"] for d in data) == 119  # the sample at exactly `end` is excluded
    full = [d for d in data if d["samples"] == 10]
    assert all(d["hr_min"] == 60 and d["hr_max"] == 69 for d in full)


def test_positions_history_keeps_the_most_accurate_fix_per_bucket(
    client: TestClient, db: psycopg.Connection
) -> None:
    e = make_elder(client)
    b = Batch()
    b.rows["positions"] = [
        (NOW - timedelta(minutes=5), "p-1", 1, e["id"], 34.80, 110.40, 500.0, "lbs", NOW),
        (NOW - timedelta(minutes=4), "p-1", 2, e["id"], 34.867, 110.447, 6.0, "gps", NOW),
    ]
    write_batch(db, b)
    r = client.get(f"/api/v1/elders/{e['id']}/positions", params={"bucket_s": 3600}).json()
    assert [(p["lat"], p["src"], p["samples"]) for p in r["data"]] == [(34.867, "gps", 2)]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"start": "2026-11-28T08:00:00", "end": "2026-11-28T09:00:00+00:00"}, "offset"),
        ({"start": "2026-11-28T09:00:00+00:00", "end": "2026-11-28T08:00:00+00:00"}, "before"),
        ({"start": "2020-01-01T00:00:00+00:00", "end": "2026-01-01T00:00:00+00:00"}, "400 days"),
        ({"bucket_s": 5}, "bucket_s"),
        (
            {
                "start": "2026-11-01T00:00:00+00:00",
                "end": "2026-11-28T00:00:00+00:00",
                "bucket_s": 10,
            },
            "bucket",
        ),
    ],
)
def test_history_range_errors(client: TestClient, params: dict, fragment: str) -> None:
    e = make_elder(client)
    r = client.get(f"/api/v1/elders/{e['id']}/vitals", params=params)
    assert r.status_code == 422 and fragment in r.text


def test_quarantine_lists_newest_first_with_counts_and_filters(
    client: TestClient, db: psycopg.Connection
) -> None:
    b = Batch()
    b.quarantine = [
        (
            NOW,
            "eldercare/v1/devices/q1/vitals",
            "q1",
            "malformed_json",
            "bad json",
            None,
            b"{\xff",
            2,
        ),
        (
            NOW,
            "eldercare/v1/devices/q2/vitals",
            "q2",
            "unknown_device",
            "device q2 is not enrolled",
            None,
            b"{}",
            2,
        ),
        (NOW, "eldercare/v1/devices/q1/vitals", "q1", "clock_skew", "ts too far", 3, b"[]", 2),
    ]
    write_batch(db, b)
    body = client.get("/api/v1/quarantine").json()
    assert [i["reason"] for i in body["data"]] == ["clock_skew", "unknown_device", "malformed_json"]
    assert body["counts"] == {"clock_skew": 1, "malformed_json": 1, "unknown_device": 1}
    assert body["data"][2]["raw_preview"] == "{\ufffd"
    only = client.get("/api/v1/quarantine", params={"device_id": "q1", "limit": 1}).json()
    assert len(only["data"]) == 1 and only["next_before_id"] == only["data"][0]["id"]
    assert client.get("/api/v1/quarantine", params={"reason": "gremlins"}).status_code == 422


def test_config_and_community_for_the_map(client: TestClient, db: psycopg.Connection) -> None:
    cfg = client.get("/api/v1/config").json()
    assert cfg["center"] == [34.867, 110.447] and cfg["tile_crs"] == "wgs84"
    assert client.get("/api/v1/community").json() == {"type": "FeatureCollection", "features": []}


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "/api/v1/elders",
        "/api/v1/devices/{device_id}/pair",
        "/api/v1/latest",
        "/api/v1/elders/{elder_id}/vitals",
        "/api/v1/quarantine",
        "/api/v1/health",
    ):
        assert p in paths
