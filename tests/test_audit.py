"""The audit trail: every family view of an elder's record and every alert acknowledge /
resolve is recorded; admins read all of it, staff their own community; the CSV export;
and nobody can change or remove a row, not even with SQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from family_helpers import (
    PASSWORD,
    Family,
    community,
    elder,
    family,
    link,
    raise_alert,
    tag,
    user,
)
from fastapi.testclient import TestClient

import api.routes.audit
from api.app import create_app
from conftest import test_settings

SECRET = "audit-test-signing-key-" + "z" * 32


@pytest.fixture
def client(database_url: str, db: psycopg.Connection, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(test_settings(home=tmp_path, secret_key=SECRET), database_url)) as c:
        yield c


@pytest.fixture
def fam(db: psycopg.Connection, database_url: str) -> Family:
    return family(db, database_url)


def sign_in(client: TestClient, login: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", data={"username": login, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


# Ids restart with every test's fresh tables while the trail keeps everything (it cannot
# be truncated): each test reads only what was recorded since it started.
STARTED: dict[str, object] = {}


@pytest.fixture(autouse=True)
def _since(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()
    STARTED["id"] = row[0] if row else 0
    STARTED["at"] = datetime.now(UTC)  # the app records by this same clock


def trail(client: TestClient, h: dict[str, str], **params: object) -> list[dict]:
    r = client.get("/api/v1/audit", params=params, headers=h)
    assert r.status_code == 200, r.text
    return [x for x in r.json()["data"] if x["id"] > STARTED["id"]]


def test_csv_doctest() -> None:
    import doctest

    failed, attempted = doctest.testmod(api.routes.audit)
    assert attempted > 0 and failed == 0


def test_every_family_view_is_recorded_with_who_what_and_from_where(
    client: TestClient, fam: Family, database_url: str
) -> None:
    h = sign_in(client, fam.daughter["login"])
    for path in ("now", "alerts", "vitals", "now"):
        assert (
            client.get(f"/api/v1/family/elders/{fam.mother}/{path}", headers=h).status_code == 200
        )
    # A refused look at someone else's elder reads nothing and records nothing.
    assert client.get(f"/api/v1/family/elders/{fam.stranger}/now", headers=h).status_code == 404
    admin = sign_in(client, user(database_url, "admin", None)["login"])
    rows = trail(client, admin, user_id=fam.daughter["id"])
    assert [r["action"] for r in rows] == [
        "family.view_now",
        "family.view_vitals",
        "family.view_alerts",
        "family.view_now",
    ]
    first = rows[-1]
    assert (first["login"], first["role"], first["elder_id"]) == (
        fam.daughter["login"],
        "family",
        fam.mother,
    )
    assert first["object_kind"] == "elder" and first["client_addr"] == "testclient"
    assert datetime.fromisoformat(first["at"]) > datetime.now(UTC) - timedelta(minutes=5)
    assert trail(client, admin, elder_id=fam.stranger) == []
    only_alerts = trail(client, admin, user_id=fam.daughter["id"], action="family.view_alerts")
    assert len(only_alerts) == 1


def test_acknowledge_and_resolve_are_recorded_with_the_signed_in_user(
    client: TestClient, fam: Family, db: psycopg.Connection, database_url: str
) -> None:
    staff = user(database_url, "staff", fam.community_id)
    h = sign_in(client, staff["login"])
    alert = raise_alert(db, fam.mother, "fall", "high", datetime.now(UTC))
    r = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={"by": "王值班"}, headers=h)
    assert r.status_code == 200, r.text
    # Another duty officer resolves it: the trail names who was signed in.
    other = user(database_url, "staff", fam.community_id)
    r = client.post(
        f"/api/v1/alerts/{alert['id']}/resolve",
        json={"by": "李值班", "outcome": "false_alarm"},
        headers=sign_in(client, other["login"]),
    )
    assert r.status_code == 200, r.text
    admin = sign_in(client, user(database_url, "admin", None)["login"])
    rows = trail(client, admin, elder_id=fam.mother)
    resolved, acked = rows[0], rows[1]
    assert (acked["action"], acked["user_id"], acked["login"], acked["role"]) == (
        "alert.acknowledge",
        staff["id"],
        staff["login"],
        "staff",
    )
    assert acked["object_kind"] == "alert" and acked["object_id"] == str(alert["id"])
    assert (resolved["action"], resolved["user_id"], resolved["login"]) == (
        "alert.resolve",
        other["id"],
        other["login"],
    )
    assert resolved["detail"]["outcome"] == "false_alarm"
    # A refused transition changed nothing and records nothing.
    r = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={"by": "王值班"}, headers=h)
    assert r.status_code == 409
    assert len(trail(client, admin, elder_id=fam.mother)) == 2


def test_staff_read_their_own_community_only_family_and_caregivers_none(
    client: TestClient, fam: Family, db: psycopg.Connection, database_url: str
) -> None:
    other_cid = community(db, f"别的社区{tag()}")
    far = elder(db, "远方老人", other_cid)
    far_family = user(database_url, "family", other_cid)
    link(database_url, far_family["id"], far)
    client.get(f"/api/v1/family/elders/{far}/now", headers=sign_in(client, far_family["login"]))
    client.get(
        f"/api/v1/family/elders/{fam.mother}/now", headers=sign_in(client, fam.daughter["login"])
    )
    staff = sign_in(client, user(database_url, "staff", fam.community_id)["login"])
    seen = {r["elder_id"] for r in trail(client, staff)}
    assert fam.mother in seen and far not in seen
    assert trail(client, staff, elder_id=far) == []
    for role in ("family", "caregiver"):
        h = sign_in(client, user(database_url, role, fam.community_id)["login"])
        assert client.get("/api/v1/audit", headers=h).status_code == 403
        assert client.get("/api/v1/audit.csv", headers=h).status_code == 403
    assert client.get("/api/v1/audit").status_code == 401


def test_time_range_filter_and_naive_times_refused(
    client: TestClient, fam: Family, database_url: str
) -> None:
    h = sign_in(client, fam.daughter["login"])
    client.get(f"/api/v1/family/elders/{fam.mother}/now", headers=h)
    admin = sign_in(client, user(database_url, "admin", None)["login"])
    now = datetime.now(UTC)
    mine = {"user_id": fam.daughter["id"]}
    assert len(trail(client, admin, **mine, start=(now - timedelta(minutes=5)).isoformat())) == 1
    assert trail(client, admin, **mine, end=(now - timedelta(minutes=5)).isoformat()) == []
    r = client.get("/api/v1/audit", params={"start": "2026-12-01T00:00:00"}, headers=admin)
    assert r.status_code == 422 and "UTC offset" in r.text


def test_csv_export_opens_in_excel_and_is_itself_recorded(
    client: TestClient, fam: Family, database_url: str
) -> None:
    h = sign_in(client, fam.daughter["login"])
    client.get(f"/api/v1/family/elders/{fam.mother}/now", headers=h)
    client.get(f"/api/v1/family/elders/{fam.mother}/alerts", headers=h)
    admin_user = user(database_url, "admin", None)
    admin = sign_in(client, admin_user["login"])
    since = STARTED["at"].isoformat()  # type: ignore[attr-defined]
    r = client.get(
        "/api/v1/audit.csv", params={"elder_id": fam.mother, "start": since}, headers=admin
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [x["action"] for x in rows] == ["family.view_alerts", "family.view_now"]
    row = rows[-1]
    assert row["login"] == fam.daughter["login"] and row["elder_id"] == str(fam.mother)
    utc = datetime.fromisoformat(row["at_utc"])
    local = datetime.strptime(row["at_shanghai"], "%Y-%m-%d %H:%M:%S")
    assert local - utc.replace(tzinfo=None, microsecond=0) in (
        timedelta(hours=8),
        timedelta(hours=8, seconds=-1),
    )
    exports = trail(client, admin, user_id=admin_user["id"], action="audit.export")
    assert len(exports) == 1 and exports[0]["detail"] == {
        "filters": {"elder_id": fam.mother, "start": since},
        "rows": 2,
    }


def test_the_trail_cannot_be_changed_or_removed(
    client: TestClient, fam: Family, database_url: str
) -> None:
    client.get(
        f"/api/v1/family/elders/{fam.mother}/now", headers=sign_in(client, fam.daughter["login"])
    )
    with psycopg.connect(database_url) as conn:
        (row_id,) = conn.execute(
            "SELECT max(id) FROM audit_log WHERE user_id = %s", (fam.daughter["id"],)
        ).fetchone()
        for statement in (
            "UPDATE audit_log SET login = 'someone else' WHERE id = %s",
            "DELETE FROM audit_log WHERE id = %s",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement, (row_id,))
            conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("TRUNCATE audit_log")
        conn.rollback()
        assert conn.execute("SELECT login FROM audit_log WHERE id = %s", (row_id,)).fetchone() == (
            fam.daughter["login"],
        )
    admin = sign_in(client, user(database_url, "admin", None)["login"])
    for method in ("PUT", "PATCH", "DELETE"):
        assert client.request(method, "/api/v1/audit", headers=admin).status_code == 405
