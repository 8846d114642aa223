"""Alerts in the database: findings in (sync, from the ingest thread), the API's reads
and transitions out (async).  The rules about *what* happens are in
``alerts.lifecycle`` / ``alerts.escalation``; this module only makes them atomic.

"One active episode per elder and kind" is the partial unique index
``alerts_one_active_idx``: a RAISE is one ``INSERT ... ON CONFLICT DO UPDATE``, so two
workers raising the same condition at the same moment produce one alert with count 2.
Transitions lock the row (``SELECT ... FOR UPDATE``) and consult the pure transition
table, so of two concurrent acknowledges one wins and the other sees the new state.
No function here commits: the caller owns the transaction.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerts.core import Action, Finding, Severity
from alerts.escalation import DEFAULT_LADDER, AlertView, Ladder, Level, delay_of, due
from alerts.lifecycle import (
    PERSON_OUTCOMES,
    SYSTEM_OUTCOMES,
    Active,
    AlertAction,
    AlertState,
    Outcome,
    Policy,
    Resolved,
    clear_outcome,
    incident_for,
    rank,
    suppressed,
    transition,
)
from alerts.seams import EmergencyOrders, default_orders
from storage.registry import NotFound

log = logging.getLogger("eldercare.alerts")

# The API's Alert, key for key and in order.
ALERT_FIELDS: Final = (
    "id",
    "elder_id",
    "elder_name",
    "kind",
    "severity",
    "state",
    "message",
    "value",
    "detail",
    "incident_id",
    "count",
    "suppressed",
    "first_ts",
    "last_ts",
    "opened_at",
    "updated_at",
    "acknowledged_at",
    "acknowledged_by",
    "resolved_at",
    "resolved_by",
    "outcome",
    "note",
    "escalation_level",
    "cleared_at",
)
SYSTEM: Final = "system"
MESSAGE_MAX: Final = 500
_NAME = "(SELECT name FROM elders WHERE id = a.elder_id) AS elder_name"
_SELECT = f"SELECT a.*, {_NAME} FROM alerts a"
_RANK = "array_position(ARRAY['low', 'medium', 'high', 'critical']::text[], {})"


class Change(StrEnum):
    """What a finding did to an alert."""

    OPENED = "opened"
    REPEATED = "repeated"
    ESCALATED_SEVERITY = "escalated_severity"
    SELF_CLEARED = "self_cleared"
    WITHDRAWN = "withdrawn"
    CLEARED = "cleared"  # the condition ended but the alert stays for a person (critical, sos)
    SUPPRESSED = "suppressed"  # counted on the resolved alert (cooldown)


@dataclass(frozen=True, slots=True)
class AlertChange:
    alert: dict[str, Any]  # the API's Alert shape (see ALERT_FIELDS)
    change: Change

    @property
    def notify(self) -> bool:
        """Worth a WebSocket push: plain repeats and suppressions only bump counters."""
        return self.change not in (Change.REPEATED, Change.SUPPRESSED)


# --- findings in (sync: the detection shell on the ingest thread) ----------------------


def record_findings(
    conn: psycopg.Connection,
    items: list[tuple[int, Finding]],
    now: datetime,
    *,
    policy: Policy | None = None,
    orders: EmergencyOrders | None = None,
) -> list[AlertChange]:
    """Apply ``(elder_id, finding)`` pairs to the alerts, in order; return what changed.

    Does not commit (publish the changes after the caller's commit).  Each finding runs
    in a savepoint: one that the database rejects (an elder deleted meanwhile) is logged
    and skipped without losing the others.  Findings marked ``detail["episode"] ==
    "note"`` (e.g. ``fall_dismissed``) are for the record, not alerts, and are ignored.
    ``orders`` (default: a real 助急 order, :func:`alerts.seams.default_orders`) is asked
    for one whenever an alert becomes critical.
    """
    if conn.info.transaction_status == TransactionStatus.IDLE:
        if conn.autocommit:
            raise ValueError("record_findings needs a transaction: the caller commits")
        # Open the caller's transaction now: on an idle connection psycopg's transaction()
        # would BEGIN and COMMIT by itself, where the savepoints below must nest instead.
        conn.execute("SELECT 1")
    policy = policy or Policy()
    orders = orders or default_orders()
    changes: list[AlertChange] = []
    for elder_id, finding in items:
        if finding.detail.get("episode") == "note":
            continue
        try:
            with conn.transaction():
                change = _record_one(conn, elder_id, finding, now, policy)
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
            log.warning("finding %s for elder %s rejected: %s", finding.kind, elder_id, exc)
            continue
        if change is None:
            continue
        changes.append(change)
        became_critical = change.change in (Change.OPENED, Change.ESCALATED_SEVERITY)
        if became_critical and change.alert["severity"] == Severity.CRITICAL:
            _request_order(conn, orders, change.alert, now)
    return changes


def _record_one(
    conn: psycopg.Connection, elder_id: int, f: Finding, now: datetime, policy: Policy
) -> AlertChange | None:
    with conn.cursor(row_factory=dict_row) as cur:
        # Locks the active episode, if any, so its severity before this finding is exact.
        cur.execute(
            _SELECT + " WHERE a.elder_id = %s AND a.kind = %s AND a.state <> 'resolved'"
            " FOR UPDATE OF a",
            (elder_id, f.kind),
        )
        active = cur.fetchone()
        if f.action is Action.CLEAR:
            return None if active is None else _clear(cur, active, f, now)
        incident = None
        if active is None:
            cur.execute(
                "SELECT id, severity, resolved_at FROM alerts WHERE elder_id = %s AND kind = %s"
                " AND state = 'resolved' ORDER BY resolved_at DESC LIMIT 1",
                (elder_id, f.kind),
            )
            last = cur.fetchone()
            if last and suppressed(
                policy, f.kind, f.severity, Resolved(last["severity"], last["resolved_at"]), now
            ):
                return _suppress(cur, last["id"], f, now)
            cur.execute(
                "SELECT kind, incident_id, opened_at FROM alerts"
                " WHERE elder_id = %s AND kind <> %s AND state <> 'resolved'",
                (elder_id, f.kind),
            )
            others = [Active(r["kind"], r["incident_id"], r["opened_at"]) for r in cur]
            incident = incident_for(policy, f.kind, now, others)
        cur.execute(_UPSERT, _finding_params(elder_id, f, now, incident))
        row = cur.fetchone()
        assert row is not None
        inserted = row.pop("inserted")
        alert = public(row)
        if inserted:
            _event(cur, alert["id"], now, SYSTEM, "opened", None, AlertState.OPEN, _about(f))
            return AlertChange(alert, Change.OPENED)
        before = active["severity"] if active else None
        rose = before is not None and rank(alert["severity"]) > rank(before)
        detail = {**_about(f), "count": alert["count"]}
        if rose:
            detail["severity_from"] = before
        _event(cur, alert["id"], now, SYSTEM, "repeated", alert["state"], alert["state"], detail)
        return AlertChange(alert, Change.ESCALATED_SEVERITY if rose else Change.REPEATED)


# The id is drawn first so that a new alert can be its own incident in one statement;
# on conflict the drawn number is simply unused (identity gaps are normal).
_UPSERT: Final = f"""
INSERT INTO alerts AS a (id, elder_id, kind, severity, state, message, value, detail,
                         incident_id, first_ts, last_ts, opened_at, updated_at)
SELECT n, %(elder_id)s, %(kind)s, %(severity)s, 'open', %(message)s, %(value)s, %(detail)s,
       coalesce(%(incident_id)s::bigint, n), %(ts)s, %(ts)s, %(now)s, %(now)s
FROM (SELECT nextval(pg_get_serial_sequence('alerts', 'id')) AS n) AS s
ON CONFLICT (elder_id, kind) WHERE state <> 'resolved' DO UPDATE SET
    count = a.count + 1,
    first_ts = least(a.first_ts, EXCLUDED.first_ts),
    last_ts = greatest(a.last_ts, EXCLUDED.last_ts),
    severity = CASE WHEN {_RANK.format("EXCLUDED.severity")} > {_RANK.format("a.severity")}
                    THEN EXCLUDED.severity ELSE a.severity END,
    message = CASE WHEN EXCLUDED.last_ts >= a.last_ts THEN EXCLUDED.message ELSE a.message END,
    value = CASE WHEN EXCLUDED.last_ts >= a.last_ts THEN EXCLUDED.value ELSE a.value END,
    detail = CASE WHEN EXCLUDED.last_ts >= a.last_ts THEN a.detail || EXCLUDED.detail
                  ELSE EXCLUDED.detail || a.detail END,
    cleared_at = CASE WHEN EXCLUDED.last_ts >= a.last_ts THEN NULL ELSE a.cleared_at END,
    updated_at = EXCLUDED.updated_at
RETURNING a.*, {_NAME}, (a.xmax = 0) AS inserted
"""


def _finding_params(
    elder_id: int, f: Finding, now: datetime, incident: int | None
) -> dict[str, Any]:
    return {
        "elder_id": elder_id,
        "kind": f.kind,
        "severity": Severity(f.severity).value,
        "message": f.message[:MESSAGE_MAX],
        "value": _finite(f.value),
        "detail": _jsonb(f.detail),
        "incident_id": incident,
        "ts": f.ts,
        "now": now,
    }


def _suppress(cur: psycopg.Cursor[Any], alert_id: int, f: Finding, now: datetime) -> AlertChange:
    cur.execute(
        f"UPDATE alerts a SET suppressed = suppressed + 1 WHERE id = %s RETURNING a.*, {_NAME}",
        (alert_id,),
    )
    alert = public(_one(cur))
    _event(cur, alert_id, now, SYSTEM, "suppressed", None, None, _about(f))
    return AlertChange(alert, Change.SUPPRESSED)


def _clear(
    cur: psycopg.Cursor[Any], active: dict[str, Any], f: Finding, now: datetime
) -> AlertChange | None:
    outcome = clear_outcome(f.kind, active["severity"])
    state = active["state"]
    if outcome is None:
        if active["cleared_at"] is not None:
            return None  # already noted; nothing new for anyone
        cur.execute(
            f"UPDATE alerts a SET cleared_at = %s, updated_at = %s WHERE id = %s"
            f" RETURNING a.*, {_NAME}",
            (now, now, active["id"]),
        )
        alert = public(_one(cur))
        _event(cur, alert["id"], now, SYSTEM, "cleared", state, state, _about(f))
        return AlertChange(alert, Change.CLEARED)
    to = transition(state, AlertAction.RESOLVE)
    cur.execute(
        "UPDATE alerts a SET state = %s, resolved_at = %s, resolved_by = %s, outcome = %s,"
        f" cleared_at = %s, updated_at = %s WHERE id = %s RETURNING a.*, {_NAME}",
        (to, now, SYSTEM, outcome, now, now, active["id"]),
    )
    alert = public(_one(cur))
    detail = {**_about(f), "outcome": outcome.value}
    _event(cur, alert["id"], now, SYSTEM, "resolved", state, to, detail)
    change = Change.WITHDRAWN if outcome is Outcome.WITHDRAWN else Change.SELF_CLEARED
    return AlertChange(alert, change)


def _request_order(
    conn: psycopg.Connection, orders: EmergencyOrders, alert: dict[str, Any], now: datetime
) -> None:
    """Call the 助急 seam in its own savepoint: a failing order module is recorded, and
    the alert (which matters more than the order) still opens."""
    try:
        with conn.transaction():
            orders.request(conn, alert)
    except Exception as exc:
        log.exception("emergency order for alert %s failed", alert["id"])
        with conn.cursor() as cur:
            error = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            _event(cur, alert["id"], now, SYSTEM, "emergency_order_failed", None, None, error)


def _about(f: Finding) -> dict[str, Any]:
    """A finding, as the audit trail keeps it."""
    out: dict[str, Any] = {
        "ts": f.ts.astimezone(UTC).isoformat(),
        "severity": Severity(f.severity).value,
        "message": f.message[:MESSAGE_MAX],
        "value": _finite(f.value),
    }
    for key in ("episode", "reason", "note"):
        if key in f.detail:
            out[key] = f.detail[key]
    return out


# --- the API (async) ------------------------------------------------------------------


async def list_alerts(
    conn: AsyncConnection,
    *,
    state: str | None = None,
    severity: str | None = None,
    kind: str | None = None,
    elder_id: int | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
    elder_ids: list[int] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Alerts matching the filters and their total count.  ``state="active"`` is open or
    acknowledged, most severe first; otherwise newest first.  ``since`` is on opened_at;
    ``elder_ids``: only those elders' (a caller's scope)."""
    where, args = ["true"], []
    if elder_ids is not None:
        where.append("a.elder_id = ANY(%s::bigint[])")
        args.append(elder_ids)
    if state == "active":
        where.append("a.state <> 'resolved'")
    elif state:
        where.append("a.state = %s")
        args.append(state)
    for column, value in (("severity", severity), ("kind", kind), ("elder_id", elder_id)):
        if value is not None:
            where.append(f"a.{column} = %s")
            args.append(value)
    if since is not None:
        where.append("a.opened_at >= %s")
        args.append(since)
    cond = " AND ".join(where)
    order = (
        f"{_RANK.format('a.severity')} DESC, a.opened_at DESC, a.id DESC"
        if state == "active"
        else "a.id DESC"
    )
    page, page_args = (" AND a.id < %s", [before_id]) if before_id else ("", [])
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"{_SELECT} WHERE {cond}{page} ORDER BY {order} LIMIT %s", (*args, *page_args, limit)
        )
        rows = [public(r) for r in await cur.fetchall()]
        await cur.execute(f"SELECT count(*) AS n FROM alerts a WHERE {cond}", args)
        total = (await cur.fetchone() or {"n": 0})["n"]
    return rows, total


async def get_alert(conn: AsyncConnection, alert_id: int) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_SELECT + " WHERE a.id = %s", (alert_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"alert {alert_id} does not exist")
    return public(row)


async def history(conn: AsyncConnection, alert_id: int) -> list[dict[str, Any]]:
    """The alert's audit trail, oldest first."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, at, actor, action, from_state, to_state, detail FROM alert_events"
            " WHERE alert_id = %s ORDER BY id",
            (alert_id,),
        )
        return [_utc(r) for r in await cur.fetchall()]


READING_QUERIES: Final = {
    "vitals": "SELECT ts, device_id, seq, hr, spo2, sbp, dbp, temp, rr, steps, battery, worn"
    " FROM vitals",
    "positions": "SELECT ts, device_id, seq, lat, lon, acc, src FROM positions",
    "events": "SELECT ts, device_id, seq, type, kind, accel FROM device_events",
}


async def readings_around(
    conn: AsyncConnection,
    alert: dict[str, Any],
    window: timedelta = timedelta(minutes=15),
    limit: int = 2000,
) -> dict[str, list[dict[str, Any]]]:
    """The elder's vitals, positions and device events within ``window`` of first_ts."""
    start, end = alert["first_ts"] - window, alert["first_ts"] + window
    out: dict[str, list[dict[str, Any]]] = {}
    async with conn.cursor(row_factory=dict_row) as cur:
        for name, query in READING_QUERIES.items():
            await cur.execute(
                query + " WHERE elder_id = %s AND ts >= %s AND ts <= %s ORDER BY ts, seq LIMIT %s",
                (alert["elder_id"], start, end, limit),
            )
            out[name] = [_utc(r) for r in await cur.fetchall()]
    return out


async def acknowledge(
    conn: AsyncConnection, alert_id: int, by: str, note: str | None, now: datetime
) -> dict[str, Any]:
    """Acknowledge (raises NotFound, or IllegalTransition with the current state)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        state = await _lock_state(cur, alert_id)
        await _acknowledge(cur, alert_id, state, by, note or None, now, implied=False)
    return await get_alert(conn, alert_id)


async def resolve(
    conn: AsyncConnection,
    alert_id: int,
    by: str,
    outcome: Outcome | str,
    note: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Resolve with a person's outcome; an alert still open is acknowledged first."""
    outcome, note = Outcome(outcome), note or None
    if outcome not in PERSON_OUTCOMES:
        raise ValueError(f"outcome {outcome.value} is set by the system only")
    async with conn.cursor(row_factory=dict_row) as cur:
        state = await _lock_state(cur, alert_id)
        if state == AlertState.OPEN:
            state = await _acknowledge(cur, alert_id, state, by, None, now, implied=True)
        to = transition(state, AlertAction.RESOLVE)
        await cur.execute(
            "UPDATE alerts SET state = %s, resolved_at = %s, resolved_by = %s, outcome = %s,"
            " note = coalesce(%s, note), updated_at = %s WHERE id = %s",
            (to, now, by, outcome, note, now, alert_id),
        )
        detail = {"outcome": outcome.value, **({"note": note} if note else {})}
        await _aevent(cur, alert_id, now, by, "resolved", state, to, detail)
    return await get_alert(conn, alert_id)


async def _lock_state(cur: psycopg.AsyncCursor[Any], alert_id: int) -> AlertState:
    await cur.execute("SELECT state FROM alerts WHERE id = %s FOR UPDATE", (alert_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"alert {alert_id} does not exist")
    return AlertState(row["state"])


async def _acknowledge(
    cur: psycopg.AsyncCursor[Any],
    alert_id: int,
    state: AlertState,
    by: str,
    note: str | None,
    now: datetime,
    *,
    implied: bool,
) -> AlertState:
    to = transition(state, AlertAction.ACKNOWLEDGE)
    await cur.execute(
        "UPDATE alerts SET state = %s, acknowledged_at = %s, acknowledged_by = %s,"
        " note = coalesce(%s, note), updated_at = %s WHERE id = %s",
        (to, now, by, note, now, alert_id),
    )
    detail: dict[str, Any] = {"implied_by": "resolve"} if implied else {}
    if note:
        detail["note"] = note
    await _aevent(cur, alert_id, now, by, "acknowledged", state, to, detail)
    return to


_SYSTEM_OUTCOMES_SQL: Final = ", ".join(f"'{o.value}'" for o in sorted(SYSTEM_OUTCOMES))
_STATS_COLUMNS: Final = (
    "count(*) AS resolved,"
    f" count(*) FILTER (WHERE a.outcome NOT IN ({_SYSTEM_OUTCOMES_SQL})) AS judged,"
    " count(*) FILTER (WHERE a.outcome = 'false_alarm') AS false_alarms"
)


async def false_alarm_stats(
    conn: AsyncConnection, since: datetime | None, elder_ids: list[int] | None = None
) -> dict[str, Any]:
    """Resolved alerts per kind and per elder, and how many a person called false alarms.

    The rate is over *judged* alerts (resolved by a person): ones the system resolved
    (self_cleared, withdrawn) say nothing about whether the alarm was right.
    ``elder_ids``: counted over those elders only (a caller's scope).
    """
    cond = (
        "a.state = 'resolved' AND (%(since)s::timestamptz IS NULL OR a.resolved_at >= %(since)s)"
        " AND (%(ids)s::bigint[] IS NULL OR a.elder_id = ANY(%(ids)s::bigint[]))"
    )
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT a.kind, {_STATS_COLUMNS} FROM alerts a WHERE {cond}"
            " GROUP BY a.kind ORDER BY a.kind",
            {"since": since, "ids": elder_ids},
        )
        by_kind = {r.pop("kind"): _rate(r) for r in await cur.fetchall()}
        await cur.execute(
            f"SELECT a.elder_id, e.name AS elder_name, {_STATS_COLUMNS}"
            f" FROM alerts a JOIN elders e ON e.id = a.elder_id WHERE {cond}"
            " GROUP BY a.elder_id, e.name ORDER BY false_alarms DESC, a.elder_id",
            {"since": since, "ids": elder_ids},
        )
        by_elder = [_rate(r) for r in await cur.fetchall()]
    return {"since": since, "by_kind": by_kind, "by_elder": by_elder}


def _rate(row: dict[str, Any]) -> dict[str, Any]:
    judged = row["judged"]
    row["false_alarm_rate"] = round(row["false_alarms"] / judged, 4) if judged else None
    return row


def load_thresholds(
    conn: psycopg.Connection, elder_ids: list[int] | None = None
) -> dict[int, dict[str, Any]]:
    """Per-elder overrides for the detection shell (sync): ``{elder_id: {kind: {...}}}``,
    for ``elder_ids`` or every elder that has any."""
    rows = conn.execute(
        "SELECT elder_id, thresholds FROM elder_settings"
        " WHERE %(ids)s::bigint[] IS NULL OR elder_id = ANY(%(ids)s::bigint[])",
        {"ids": elder_ids},
    ).fetchall()
    return {elder_id: thresholds for elder_id, thresholds in rows}


async def get_thresholds(conn: AsyncConnection, elder_id: int) -> dict[str, Any]:
    """An elder's rule-setting overrides (``{}`` when none were ever set)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT e.id AS elder_id, coalesce(s.thresholds, '{}') AS thresholds,"
            " s.updated_at, s.updated_by FROM elders e"
            " LEFT JOIN elder_settings s ON s.elder_id = e.id WHERE e.id = %s",
            (elder_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"elder {elder_id} does not exist")
    return _utc(row)


async def put_thresholds(
    conn: AsyncConnection, elder_id: int, thresholds: dict[str, Any], by: str, now: datetime
) -> dict[str, Any]:
    """Replace an elder's overrides (validated by the caller)."""
    cur = await conn.execute("SELECT 1 FROM elders WHERE id = %s", (elder_id,))
    if await cur.fetchone() is None:
        raise NotFound(f"elder {elder_id} does not exist")
    await conn.execute(
        "INSERT INTO elder_settings (elder_id, thresholds, updated_at, updated_by)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (elder_id) DO UPDATE SET"
        " thresholds = EXCLUDED.thresholds, updated_at = EXCLUDED.updated_at,"
        " updated_by = EXCLUDED.updated_by",
        (elder_id, _jsonb(thresholds), now, by),
    )
    return await get_thresholds(conn, elder_id)


async def escalate_due(
    conn: AsyncConnection, now: datetime, ladder: Ladder = DEFAULT_LADDER
) -> list[dict[str, Any]]:
    """Record every escalation level now due (one ``escalated`` event per level, each
    recorded once even with several API nodes); return the alerts that climbed."""
    severities = [s.value for s in ladder]
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, state, severity, opened_at, escalation_level FROM alerts"
            " WHERE state = 'open' AND severity = ANY(%s) AND escalation_level < %s ORDER BY id",
            (severities, int(max(Level))),
        )
        candidates = [r["id"] for r in await cur.fetchall() if due(AlertView.of(r), now, ladder)]
        climbed = []
        for alert_id in candidates:
            # Re-read under lock: another node, or an acknowledge, may have come first.
            await cur.execute(
                "SELECT id, state, severity, opened_at, escalation_level FROM alerts"
                " WHERE id = %s FOR UPDATE SKIP LOCKED",
                (alert_id,),
            )
            row = await cur.fetchone()
            levels = due(AlertView.of(row), now, ladder) if row else []
            if not levels:
                continue
            await cur.execute(
                "UPDATE alerts SET escalation_level = %s, updated_at = %s WHERE id = %s",
                (max(levels), now, alert_id),
            )
            for level in levels:
                detail = {
                    "level": level,
                    "target": Level(level).name.lower(),
                    "after_s": delay_of(level, row["severity"], ladder),
                }
                await _aevent(cur, alert_id, now, SYSTEM, "escalated", "open", "open", detail)
            climbed.append(alert_id)
    return [await get_alert(conn, i) for i in climbed]


# --- rows -----------------------------------------------------------------------------


def public(row: dict[str, Any]) -> dict[str, Any]:
    """An alert row as the API's Alert dict (UTC timestamps)."""
    return _utc({k: row[k] for k in ALERT_FIELDS})


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in row.items()}


def _one(cur: psycopg.Cursor[Any]) -> dict[str, Any]:
    row = cur.fetchone()
    assert row is not None
    return row


def _event(
    cur: psycopg.Cursor[Any],
    alert_id: int,
    at: datetime,
    actor: str,
    action: str,
    from_state: str | None,
    to_state: str | None,
    detail: dict[str, Any],
) -> None:
    cur.execute(_EVENT, (alert_id, at, actor, action, from_state, to_state, _jsonb(detail)))


async def _aevent(
    cur: psycopg.AsyncCursor[Any],
    alert_id: int,
    at: datetime,
    actor: str,
    action: str,
    from_state: str | None,
    to_state: str | None,
    detail: dict[str, Any],
) -> None:
    await cur.execute(_EVENT, (alert_id, at, actor, action, from_state, to_state, _jsonb(detail)))


_EVENT: Final = (
    "INSERT INTO alert_events (alert_id, at, actor, action, from_state, to_state, detail)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf become null (jsonb refuses them), anything odd becomes text."""
    if isinstance(x, float):
        return _finite(x)
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if x is None or isinstance(x, str | int | bool):
        return x
    if isinstance(x, datetime):
        return x.isoformat()
    return str(x)


def _jsonb(obj: dict[str, Any]) -> Jsonb:
    return Jsonb(_clean(obj), dumps=lambda o: json.dumps(o, ensure_ascii=False))
