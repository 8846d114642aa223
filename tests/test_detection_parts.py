"""The pieces of the detection process against the real database: readings over the
pipe, profiles loaded in bulk, rule state saved only when it changed, and an alert too
long for a NOTIFY payload still reaching the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from alerts.core import Action, Finding, Severity
from api.app import create_app
from conftest import as_admin, test_settings
from ingest.detection_notify import announce, encode_payload
from ingest.detection_profiles import ProfileLoader
from ingest.detection_snapshots import SnapshotStore
from ingest.detection_wire import decode_batch, encode_batch
from protocol.messages import AccelBurst, Event, Position, Status, Vitals
from storage.alerts import record_findings

T = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)


def test_every_kind_of_reading_crosses_the_pipe_unchanged_and_in_order() -> None:
    items = [
        (1, Vitals("w1", 1, T, hr=72.0, spo2=97.0, steps=10, battery=55.5, worn=True)),
        (2, Position("w2", 7, T + timedelta(seconds=1), 34.86, 110.44, 8.0, "gps")),
        (None, Status("w3", T, online=False)),  # an unpaired device: kept, not judged
        (1, Event("w1", 2, T, "fall", accel=AccelBurst(50, [[0.1, 2.5, 0.9], [0.0, 1.0, 0.2]]))),
        (1, Event("w1", 3, T, "service", kind="meal")),
    ]
    assert decode_batch(encode_batch(items)) == items


def elder(db: psycopg.Connection, name: str, interval: int | None = None) -> int:
    (elder_id,) = db.execute(
        "INSERT INTO elders (name, home_lat, home_lon) VALUES (%s, 34.867, 110.447) RETURNING id",
        (name,),
    ).fetchone()  # type: ignore[misc]
    if interval is not None:
        db.execute(
            "INSERT INTO devices (id, elder_id, report_interval_s) VALUES (%s, %s, %s)",
            (f"dev-{elder_id}", elder_id, interval),
        )
    db.commit()
    return int(elder_id)


def test_profiles_are_loaded_in_one_query_and_edits_are_read_afresh(
    db: psycopg.Connection, database_url: str
) -> None:
    ids = [elder(db, f"老人{i}", interval=120) for i in range(5)]
    db.execute(
        "INSERT INTO elder_settings (elder_id, thresholds, updated_at, updated_by)"
        " VALUES (%s, %s, now(), 'test')",
        (ids[0], psycopg.types.json.Jsonb({"battery": {"low_pct": 30}})),
    )
    db.commit()
    with psycopg.connect(database_url) as conn:
        loader = ProfileLoader(conn)
        assert loader.preload() >= 5
        profiles = [loader(i) for i in ids]
        assert loader.queries == 1  # one query for every elder, not one each
        assert profiles[0].thresholds == {"battery": {"low_pct": 30}}
        assert profiles[1].home == (34.867, 110.447) and profiles[1].report_interval_s == 120

        late = elder(db, "新来的")  # enrolled after the start: read on its own
        assert loader(late).elder_id == late and loader.queries == 2
        db.execute(
            "UPDATE elder_settings SET thresholds = %s WHERE elder_id = %s",
            (psycopg.types.json.Jsonb({"battery": {"low_pct": 45}}), ids[0]),
        )
        db.commit()
        loader.forget(ids[0])
        assert loader(ids[0]).thresholds == {"battery": {"low_pct": 45}}


def test_rule_state_is_written_only_when_it_changed(
    db: psycopg.Connection, database_url: str
) -> None:
    a, b = elder(db, "甲"), elder(db, "乙")
    state = {"watermark": T.isoformat(), "profile": "p", "rules": {"sos": {"n": 1}}}
    with psycopg.connect(database_url) as conn:
        store = SnapshotStore()
        assert store.save(conn, {a: state, b: state}) == 2
        assert store.save(conn, {a: state, b: state}) == 0  # ticked, nothing new
        changed = {**state, "rules": {"sos": {"n": 2}}}
        assert store.save(conn, {a: changed, b: state}) == 1
        assert SnapshotStore().load(conn) == {a: changed, b: state}


def test_an_alert_too_long_for_a_notification_still_reaches_the_dashboard(
    db: psycopg.Connection, database_url: str
) -> None:
    e = elder(db, "卫丽华")
    long_detail = {"episode": "open", "note": "很长的说明" * 2000}
    f = Finding("fever", Severity.HIGH, T, "体温 38.9", Action.RAISE, 38.9, long_detail)
    app = create_app(test_settings(), database_url)
    with (
        TestClient(app) as client,
        as_admin(client, database_url).websocket_connect("/ws/live") as ws,
    ):
        with psycopg.connect(database_url) as conn:
            (change,) = record_findings(conn, [(e, f)], datetime.now(UTC))
            assert encode_payload(change.alert).startswith('{"ref":')
            announce(conn, [change.alert])
            conn.commit()
        while (msg := ws.receive_json())["type"] != "alert":
            pass
    assert msg["alert"]["id"] == change.alert["id"]
    assert msg["alert"]["detail"]["note"] == long_detail["note"]
