"""六助 orders in the database: create (idempotent by ``source_ref``), load, and change
them atomically.  The rules are the pure core's (``orders.lifecycle``); this module
only makes them durable and race-free.

An order's row holds its present (state, caregiver, ``version``); ``order_steps`` holds
its past, one row per step, from which :func:`load` rebuilds the pure
:class:`orders.lifecycle.Order` that the timers and dispatch read.  ``order_steps``
also keeps what the system did that is not a state change (``escalate``, ``late``).

A step locks the row (``SELECT ... FOR UPDATE``), runs ``orders.lifecycle.transition``
on what it finds and writes the row and the step together, so of two concurrent
changers one wins and the other meets the new state: :class:`OrderConflict` (the API's
409, carrying the current state, the allowed steps and the version).  A caller that
read the order earlier may pass ``version``; if the order moved meanwhile it gets the
same conflict rather than acting on what it no longer sees.

Async functions take the API's ``AsyncConnection``; the ``*_sync`` ones serve the
ingest thread (the 助急 seam) and tests.  Nothing here commits unless the connection
was idle: ``conn.transaction()`` nests as a savepoint inside the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from orders.catalogue import CATALOGUE, ServiceKind
from orders.lifecycle import (
    AWAITING_DISPATCH,
    ROLES,
    Action,
    Actor,
    IllegalStep,
    Order,
    OrderState,
    Role,
    Source,
    Step,
    allowed_actions,
    request,
    transition,
)
from orders.schedule import SHANGHAI
from storage.registry import NotFound

_LIFECYCLE: Final = frozenset(a.value for a in Action)
SYSTEM_NOTES: Final = ("escalate", "late")  # order_steps actions that change no state

_SELECT: Final = """
SELECT o.*, e.name AS elder_name, e.address AS elder_address,
       e.home_lat AS elder_lat, e.home_lon AS elder_lon,
       ls.lat AS fix_lat, ls.lon AS fix_lon, ls.acc AS fix_acc, ls.pos_ts AS fix_at,
       c.name AS caregiver_name
FROM orders o
JOIN elders e ON e.id = o.elder_id
LEFT JOIN latest_state ls ON ls.elder_id = o.elder_id
LEFT JOIN caregivers c ON c.id = o.caregiver_id
"""
_STEPS: Final = (
    "SELECT id, order_id, at, action, from_state, to_state, actor_role, actor_id,"
    " caregiver_id, note, detail FROM order_steps WHERE order_id = ANY(%s) ORDER BY order_id, id"
)
_INSERT: Final = """
INSERT INTO orders (elder_id, kind, state, source, source_ref, due_at, requested_at,
                    updated_at, notes, alert_id)
VALUES (%(elder_id)s, %(kind)s, 'requested', %(source)s, %(source_ref)s, %(due_at)s,
        %(at)s, %(at)s, %(notes)s, %(alert_id)s)
ON CONFLICT (source_ref) DO NOTHING
RETURNING id
"""
_STEP: Final = (
    "INSERT INTO order_steps (order_id, at, action, from_state, to_state, actor_role, actor_id,"
    " caregiver_id, note, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
)
_CAREGIVER: Final = "SELECT name FROM caregivers WHERE id = %s AND active"
# Delivered on commit, to every node: ``<order id>:<state>`` after any change to an order
# (its dispatcher wakes for one awaiting dispatch; its dashboards get the new version).
CHANNEL: Final = "eldercare_orders"
_NOTIFY: Final = f"SELECT pg_notify('{CHANNEL}', %s)"
_UPDATE: Final = (
    "UPDATE orders SET state = %(state)s, caregiver_id = %(caregiver_id)s, updated_at = %(at)s,"
    " version = version + 1, declined_by = %(declined)s,"
    " completion_note = coalesce(%(completion_note)s, completion_note)"
    " WHERE id = %(id)s RETURNING version, updated_at, completion_note"
)


class OrderConflict(IllegalStep):
    """409: the step is not allowed in the order's current state, or the caller's
    ``version`` is stale.  Carries ``state``, ``allowed`` (actions) and ``version``."""

    def __init__(
        self, state: OrderState, action: Action, version: int, *, stale: int | None = None
    ) -> None:
        super().__init__(state, action)
        self.version = version
        self.stale = stale is not None
        if stale is not None:
            self.args = (
                f"the order has changed (version {version}, you had {stale});"
                f" it is now {state.value}: reload it and try again",
            )


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order as stored: the pure order (with its history) and the row around it.

    ``row`` has every ``orders`` column plus ``elder_name``, ``elder_address``,
    ``elder_lat``/``elder_lon`` (home), ``fix_lat``/``fix_lon``/``fix_acc``/``fix_at``
    (the elder's device's newest fix, if any) and ``caregiver_name``; ``steps`` every
    ``order_steps`` row, oldest first, including ``escalate`` / ``late`` notes.
    """

    order: Order
    row: dict[str, Any]
    steps: tuple[dict[str, Any], ...]

    @property
    def id(self) -> int:
        return int(self.row["id"])

    @property
    def version(self) -> int:
        return int(self.row["version"])

    @property
    def state(self) -> OrderState:
        return self.order.state

    @property
    def home(self) -> tuple[float, float] | None:
        """The elder's home, where a home service happens."""
        lat, lon = self.row["elder_lat"], self.row["elder_lon"]
        return None if lat is None or lon is None else (lat, lon)

    def elder_position(
        self, now: datetime, fresh: timedelta = timedelta(minutes=30)
    ) -> tuple[float, float] | None:
        """Where to send a caregiver: for 助急 and 助行 the device's fix when it is fresh
        (the elder may have fallen outdoors), else the home."""
        fix_at = self.row["fix_at"]
        outdoors = self.order.kind in (ServiceKind.EMERGENCY, ServiceKind.MOBILITY)
        fix = (self.row["fix_lat"], self.row["fix_lon"])
        has_fix = fix[0] is not None and fix[1] is not None
        if outdoors and has_fix and fix_at is not None and now - fix_at <= fresh:
            return fix
        return self.home or (fix if has_fix else None)


# --- reading ---------------------------------------------------------------------------


def utc_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in row.items()}


def _step(s: dict[str, Any]) -> Step:
    return Step(
        Action(s["action"]),
        OrderState(s["from_state"]) if s["from_state"] else None,
        OrderState(s["to_state"]),
        s["at"],
        Actor(s["actor_role"], s["actor_id"]),
        s["caregiver_id"],
        s["note"],
    )


def _record(row: dict[str, Any], steps: list[dict[str, Any]]) -> OrderRecord:
    row, steps = utc_row(row), [utc_row(s) for s in steps]
    history = tuple(_step(s) for s in steps if s["action"] in _LIFECYCLE)
    order = Order(
        row["elder_id"],
        ServiceKind(row["kind"]),
        Source(row["source"]),
        row["requested_at"],
        history,
        OrderState(row["state"]),
        row["caregiver_id"],
        row["due_at"],
        row["id"],
        row["alert_id"],
    )
    return OrderRecord(order, row, tuple(steps))


def _records(rows: list[dict[str, Any]], steps: Iterable[dict[str, Any]]) -> list[OrderRecord]:
    by_order: dict[int, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
    for s in steps:
        by_order[s["order_id"]].append(s)
    return [_record(r, by_order[r["id"]]) for r in rows]


async def get_order(conn: AsyncConnection, order_id: int, *, lock: bool = False) -> OrderRecord:
    """The order with its history (raises NotFound).  ``lock``: ``FOR UPDATE`` of the
    row, inside the caller's transaction."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _SELECT + " WHERE o.id = %s" + (" FOR UPDATE OF o" if lock else ""), (order_id,)
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"order {order_id} does not exist")
        await cur.execute(_STEPS, ([order_id],))
        return _record(row, await cur.fetchall())


def get_order_sync(conn: psycopg.Connection, order_id: int, *, lock: bool = False) -> OrderRecord:
    """:func:`get_order` on a sync connection."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            _SELECT + " WHERE o.id = %s" + (" FOR UPDATE OF o" if lock else ""), (order_id,)
        )
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"order {order_id} does not exist")
        cur.execute(_STEPS, ([order_id],))
        return _record(row, cur.fetchall())


def local_day(day: date) -> tuple[datetime, datetime]:
    """A local (Asia/Shanghai) calendar day as a UTC half-open range."""
    start = datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


async def list_orders(
    conn: AsyncConnection,
    *,
    state: str | None = None,
    kind: str | None = None,
    elder_id: int | None = None,
    caregiver_id: int | None = None,
    open: bool | None = None,
    day: date | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    open_first: bool = False,
    limit: int = 100,
    offset: int = 0,
    elder_ids: list[int] | None = None,
) -> tuple[list[OrderRecord], int]:
    """Orders matching the filters (each with its history) and their total count.

    ``open``: True = not completed/cancelled, False = only those.  ``day`` is a local
    (Asia/Shanghai) day, matched on the booked time, else the request time; ``since`` /
    ``until`` likewise, in UTC.  Newest first; ``open_first`` puts open orders first,
    then by booked/requested time (a caregiver's day).  ``elder_ids``: only those
    elders' orders (a caller's scope).
    """
    where, args = ["true"], []
    if elder_ids is not None:
        where.append("o.elder_id = ANY(%s::bigint[])")
        args.append(elder_ids)
    for column, value in (
        ("state", state),
        ("kind", kind),
        ("elder_id", elder_id),
        ("caregiver_id", caregiver_id),
    ):
        if value is not None:
            where.append(f"o.{column} = %s")
            args.append(value)
    terminal = "o.state IN ('completed', 'cancelled')"
    if open is True:
        where.append(f"NOT {terminal}")
    elif open is False:
        where.append(terminal)
    when = "coalesce(o.due_at, o.requested_at)"
    if day is not None:
        since, until = local_day(day)
    if since is not None:
        where.append(f"{when} >= %s")
        args.append(since)
    if until is not None:
        where.append(f"{when} < %s")
        args.append(until)
    cond = " AND ".join(where)
    order = f"({terminal}), {when}, o.id" if open_first else "o.id DESC"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"{_SELECT} WHERE {cond} ORDER BY {order} LIMIT %s OFFSET %s", (*args, limit, offset)
        )
        rows = await cur.fetchall()
        await cur.execute(f"SELECT count(*) AS n FROM orders o WHERE {cond}", args)
        total = int((await cur.fetchone() or {"n": 0})["n"])
        await cur.execute(_STEPS, ([r["id"] for r in rows],))
        steps = await cur.fetchall()
    return _records(rows, steps), total


async def select_records(
    conn: AsyncConnection, where: str, params: tuple[Any, ...] = (), order_by: str = "o.id"
) -> list[OrderRecord]:
    """Orders (each with its history) matching a trusted SQL condition on ``orders o``
    with ``%s`` placeholders for ``params``: the one way read-only queries elsewhere
    rebuild orders exactly as the API shows them."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"{_SELECT} WHERE {where} ORDER BY {order_by}", params)
        rows = await cur.fetchall()
        await cur.execute(_STEPS, ([r["id"] for r in rows],))
        return _records(rows, await cur.fetchall())


async def open_orders(conn: AsyncConnection) -> list[OrderRecord]:
    """Every order not completed or cancelled, oldest first (the dispatcher's work)."""
    return await select_records(conn, "o.state NOT IN ('completed', 'cancelled')")


async def orders_of_elder_between(
    conn: AsyncConnection, elder_id: int, since: datetime, until: datetime
) -> list[Order]:
    """The elder's orders that could have been served in ``[since, until)`` (pure
    orders, for ``orders.plans.usage``); completed ones are judged by their check-in."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _SELECT + " WHERE o.elder_id = %s AND o.state = 'completed'"
            " AND o.requested_at < %s AND o.updated_at >= %s",
            (elder_id, until, since),
        )
        rows = await cur.fetchall()
        await cur.execute(_STEPS, ([r["id"] for r in rows],))
        return [r.order for r in _records(rows, await cur.fetchall())]


# --- creating --------------------------------------------------------------------------


def _new(
    elder_id: int,
    kind: ServiceKind | str,
    actor: Actor,
    at: datetime,
    source: Source | str | None,
    due_at: datetime | None,
    notes: str | None,
    alert_id: int | None,
    source_ref: str | None,
) -> tuple[Order, dict[str, Any]]:
    """The pure request (validates who may ask for what) and the row's parameters."""
    spec = CATALOGUE[ServiceKind(kind)]
    if spec.urgent and due_at is not None:
        raise ValueError(f"{spec.zh} ({spec.kind.value}) is dispatched at once: no due_at")
    order = request(
        elder_id, kind, actor, at, source=source, scheduled_for=due_at, alert_id=alert_id
    )
    params = {
        "elder_id": elder_id,
        "kind": order.kind.value,
        "source": order.source.value,
        "source_ref": source_ref,
        "due_at": due_at,
        "at": at,
        "notes": notes or None,
        "alert_id": alert_id,
    }
    return order, params


def _step_params(order_id: int, s: Step, detail: dict[str, Any] | None) -> tuple[Any, ...]:
    return (
        order_id,
        s.at,
        s.action.value,
        s.from_state.value if s.from_state else None,
        s.to_state.value,
        s.actor.role,
        s.actor.id,
        s.caregiver_id,
        s.note,
        jsonb(detail or {}),
    )


async def create_order(
    conn: AsyncConnection,
    *,
    elder_id: int,
    kind: ServiceKind | str,
    actor: Actor,
    at: datetime,
    source: Source | str | None = None,
    source_ref: str | None = None,
    due_at: datetime | None = None,
    notes: str | None = None,
    alert_id: int | None = None,
) -> tuple[OrderRecord, bool]:
    """A new ``requested`` order and its ``request`` step; ``(record, created)``.

    Idempotent by ``source_ref``: a second call with the same one returns the existing
    order and ``created=False``.  Raises NotFound (no such elder), NotPermitted (the
    actor may not request for this source/elder: 403), ValueError (a 助急 with a
    ``due_at``, a naive timestamp, an unknown kind: 422).
    """
    order, params = _new(elder_id, kind, actor, at, source, due_at, notes, alert_id, source_ref)
    async with conn.transaction():
        cur = await conn.execute("SELECT 1 FROM elders WHERE id = %s", (elder_id,))
        if await cur.fetchone() is None:
            raise NotFound(f"elder {elder_id} does not exist")
        cur = await conn.execute(_INSERT, params)
        row = await cur.fetchone()
        if row is None:
            cur = await conn.execute("SELECT id FROM orders WHERE source_ref = %s", (source_ref,))
            existing = await cur.fetchone()
            assert existing is not None
            return await get_order(conn, existing[0]), False
        await conn.execute(_STEP, _step_params(row[0], order.history[0], None))
        await conn.execute(_NOTIFY, (f"{row[0]}:requested",))
    return await get_order(conn, row[0]), True


def create_order_sync(
    conn: psycopg.Connection,
    *,
    elder_id: int,
    kind: ServiceKind | str,
    actor: Actor,
    at: datetime,
    source: Source | str | None = None,
    source_ref: str | None = None,
    due_at: datetime | None = None,
    notes: str | None = None,
    alert_id: int | None = None,
) -> tuple[int, bool]:
    """:func:`create_order` on a sync connection; returns ``(order id, created)``."""
    order, params = _new(elder_id, kind, actor, at, source, due_at, notes, alert_id, source_ref)
    with conn.transaction():
        row = conn.execute(_INSERT, params).fetchone()
        if row is None:
            existing = conn.execute(
                "SELECT id FROM orders WHERE source_ref = %s", (source_ref,)
            ).fetchone()
            assert existing is not None
            return int(existing[0]), False
        conn.execute(_STEP, _step_params(row[0], order.history[0], None))
        conn.execute(_NOTIFY, (f"{row[0]}:requested",))
    return int(row[0]), True


# --- changing --------------------------------------------------------------------------


async def apply_step(
    conn: AsyncConnection,
    order_id: int,
    action: Action | str,
    actor: Actor,
    at: datetime,
    *,
    caregiver_id: int | None = None,
    note: str = "",
    version: int | None = None,
    detail: dict[str, Any] | None = None,
) -> OrderRecord:
    """Take one lifecycle step atomically; return the order after it.

    Raises NotFound (order, or the caregiver named on ``assign``), OrderConflict (409:
    not allowed in the current state, or ``version`` stale), NotPermitted (403),
    ValueError (422: e.g. assign without ``caregiver_id``).  ``detail`` is kept on the
    step (e.g. the check-in's position and distance); a ``complete`` step's ``note``
    becomes the order's ``completion_note``.  ``at`` earlier than the last step (clock
    skew between nodes) is taken as the last step's time, so the history stays ordered.
    """
    async with conn.transaction():
        rec = await get_order(conn, order_id, lock=True)
        after = _transition(rec, action, actor, at, caregiver_id, note, version)
        name = rec.row["caregiver_name"]
        if after.history[-1].action is Action.ASSIGN:
            cur = await conn.execute(_CAREGIVER, (after.caregiver_id,))
            found = await cur.fetchone()
            if found is None:
                raise NotFound(f"caregiver {after.caregiver_id} does not exist or is inactive")
            name = found[0]
        p = _update_params(rec, after)
        cur = await conn.execute(_UPDATE, p)
        updated = await cur.fetchone()
        cur = await conn.execute(_STEP, _step_params(order_id, after.history[-1], detail))
        step_id = await cur.fetchone()
        await conn.execute(_NOTIFY, (f"{order_id}:{after.state.value}",))
    assert updated is not None and step_id is not None
    return _after(rec, after, updated, step_id[0], name, detail)


def apply_step_sync(
    conn: psycopg.Connection,
    order_id: int,
    action: Action | str,
    actor: Actor,
    at: datetime,
    *,
    caregiver_id: int | None = None,
    note: str = "",
    version: int | None = None,
    detail: dict[str, Any] | None = None,
) -> OrderRecord:
    """:func:`apply_step` on a sync connection (tests, benchmarks, other threads)."""
    with conn.transaction():
        rec = get_order_sync(conn, order_id, lock=True)
        after = _transition(rec, action, actor, at, caregiver_id, note, version)
        name = rec.row["caregiver_name"]
        if after.history[-1].action is Action.ASSIGN:
            found = conn.execute(_CAREGIVER, (after.caregiver_id,)).fetchone()
            if found is None:
                raise NotFound(f"caregiver {after.caregiver_id} does not exist or is inactive")
            name = found[0]
        updated = conn.execute(_UPDATE, _update_params(rec, after)).fetchone()
        step_id = conn.execute(_STEP, _step_params(order_id, after.history[-1], detail)).fetchone()
    assert updated is not None and step_id is not None
    return _after(rec, after, updated, step_id[0], name, detail)


def _transition(
    rec: OrderRecord,
    action: Action | str,
    actor: Actor,
    at: datetime,
    caregiver_id: int | None,
    note: str,
    version: int | None,
) -> Order:
    if version is not None and version != rec.version:
        raise OrderConflict(rec.state, Action(action), rec.version, stale=version)
    at = max(at, rec.order.history[-1].at)
    try:
        return transition(rec.order, action, actor, at, caregiver_id=caregiver_id, note=note)
    except IllegalStep as exc:
        raise OrderConflict(exc.state, exc.action, rec.version) from None


def _after(
    rec: OrderRecord,
    after: Order,
    updated: tuple[Any, ...],
    step_id: int,
    caregiver_name: str | None,
    detail: dict[str, Any] | None,
) -> OrderRecord:
    """The record after a step, from what was written (no second read)."""
    version, updated_at, completion_note = updated
    s = after.history[-1]
    row = {
        **rec.row,
        "state": after.state.value,
        "caregiver_id": after.caregiver_id,
        "caregiver_name": caregiver_name if after.caregiver_id is not None else None,
        "updated_at": updated_at.astimezone(UTC),
        "version": version,
        "declined_by": sorted(after.declined_by),
        "completion_note": completion_note,
    }
    step = {
        "id": step_id,
        "order_id": rec.id,
        "at": s.at,
        "action": s.action.value,
        "from_state": s.from_state.value if s.from_state else None,
        "to_state": s.to_state.value,
        "actor_role": Role(s.actor.role).value,
        "actor_id": s.actor.id,
        "caregiver_id": s.caregiver_id,
        "note": s.note,
        "detail": detail or {},
    }
    return OrderRecord(after, row, (*rec.steps, step))


def _update_params(rec: OrderRecord, after: Order) -> dict[str, Any]:
    last = after.history[-1]
    return {
        "id": rec.id,
        "state": after.state.value,
        "caregiver_id": after.caregiver_id,
        "at": last.at,
        "declined": sorted(after.declined_by),
        "completion_note": (last.note or None) if last.action is Action.COMPLETE else None,
    }


def record_note_sync(
    conn: psycopg.Connection,
    order_id: int,
    action: str,
    at: datetime,
    detail: dict[str, Any],
    *,
    escalation_level: int | None = None,
    breach: str | None = None,
) -> bool:
    """Record a system note (``escalate`` with its level, ``late`` with the breach) on
    the order, once: returns False when that level or breach was already recorded
    (another node came first).  Changes neither state nor version.  Runs inside the
    caller's transaction, so that the note and the staff alert it goes with commit
    together."""
    if action not in SYSTEM_NOTES:
        raise ValueError(f"not a system note: {action}")
    with conn.transaction():
        row = conn.execute(
            "SELECT state, escalation_level, breaches_alerted FROM orders WHERE id = %s FOR UPDATE",
            (order_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"order {order_id} does not exist")
        state, level, alerted = row
        if escalation_level is not None and escalation_level <= level:
            return False
        if breach is not None and breach in alerted:
            return False
        conn.execute(_NOTE_UPDATE, (escalation_level or 0, breach, breach, order_id))
        conn.execute(
            _STEP, (order_id, at, action, state, state, "system", None, None, "", jsonb(detail))
        )
        conn.execute(_NOTIFY, (f"{order_id}:{state}",))
    return True


_NOTE_UPDATE: Final = (
    "UPDATE orders SET escalation_level = greatest(escalation_level, %s),"
    " breaches_alerted = CASE WHEN %s::text IS NULL THEN breaches_alerted"
    " ELSE array_append(breaches_alerted, %s::text) END WHERE id = %s"
)


async def set_dispatch_note(
    conn: AsyncConnection, order_id: int, note: dict[str, Any] | None
) -> None:
    """Keep (or clear) why the dispatcher found nobody, for staff to see."""
    await conn.execute(
        "UPDATE orders SET dispatch_note = %s WHERE id = %s",
        (None if note is None else jsonb(note), order_id),
    )
    await conn.execute(_NOTIFY, (f"{order_id}:noted",))


def awaiting_dispatch(rec: OrderRecord) -> bool:
    """Whether the dispatcher should look for a caregiver for this order."""
    return rec.state in AWAITING_DISPATCH


def allowed_for(rec: OrderRecord, actor: Actor) -> list[str]:
    """The steps ``actor`` may take now (the table's, narrowed by role and assignee)."""
    role = Role(actor.role)
    out = []
    for a in sorted(allowed_actions(rec.state)):
        if role not in ROLES[a]:
            continue
        if role is Role.CAREGIVER and actor.id != rec.order.caregiver_id:
            continue
        out.append(a.value)
    return out


def jsonb(obj: dict[str, Any]) -> Jsonb:
    return Jsonb(obj, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))
