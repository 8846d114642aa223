"""The 100 元 monthly plan and the usage counted against it, in Asia/Shanghai months."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orders.catalogue import CATALOGUE, ServiceKind
from orders.lifecycle import SYSTEM, Actor, Order, request, transition
from orders.plans import BASIC_100, Month, Plan, Subscription, served_at, usage, within_plan
from orders.schedule import SHANGHAI

WANG = Actor("caregiver", 12)  # 王秀兰
FAMILY = Actor("family", 31)
SUB = Subscription(7, BASIC_100, first=date(2026, 1, 1))


def done(kind: str, arrive: datetime, elder: int = 7, *, finish: bool = True) -> Order:
    """An order served at ``arrive`` (completed 40 minutes later unless ``finish`` is False)."""
    t = arrive - timedelta(hours=1)
    o = request(elder, kind, FAMILY, t)
    o = transition(o, "assign", SYSTEM, t, caregiver_id=12)
    o = transition(o, "accept", WANG, t + timedelta(minutes=1))
    o = transition(o, "depart", WANG, arrive - timedelta(minutes=10))
    o = transition(o, "arrive", WANG, arrive)
    return transition(o, "complete", WANG, arrive + timedelta(minutes=40)) if finish else o


def local(y: int, m: int, d: int, hh: int = 10) -> datetime:
    return datetime(y, m, d, hh, tzinfo=SHANGHAI)


def test_months_are_shanghai_calendar_months() -> None:
    assert Month.of(datetime(2026, 2, 28, 15, 59, tzinfo=UTC)) == Month(2026, 2)  # 23:59 local
    assert Month.of(datetime(2026, 2, 28, 16, 0, tzinfo=UTC)) == Month(2026, 3)  # 00:00 local
    assert Month.of(datetime(2026, 12, 31, 16, 0, tzinfo=UTC)) == Month(2027, 1)
    mar = Month(2026, 3)
    assert mar.start == datetime(2026, 2, 28, 16, 0, tzinfo=UTC)
    assert mar.end == datetime(2026, 3, 31, 16, 0, tzinfo=UTC)
    assert (mar.first_day, mar.last_day) == (date(2026, 3, 1), date(2026, 3, 31))
    assert Month(2028, 2).last_day == date(2028, 2, 29)
    assert Month(2026, 12).next() == Month(2027, 1) and str(Month(2026, 3)) == "2026-03"
    assert Month(2026, 12) < Month(2027, 1)
    assert mar.start in mar and mar.end not in mar
    with pytest.raises(ValueError):
        Month(2026, 13)
    with pytest.raises(ValueError, match="no time zone"):
        Month.of(datetime(2026, 3, 1))


def test_the_100_yuan_plan() -> None:
    assert BASIC_100.monthly_fee_fen == 100_00
    assert BASIC_100.allowance("emergency") is None  # unlimited
    assert set(BASIC_100.included) == set(ServiceKind)
    assert CATALOGUE[ServiceKind.EMERGENCY].price_fen == 0


def test_usage_counts_completed_services_in_the_month_they_were_delivered() -> None:
    orders = [
        *(done("meal", local(2026, 3, d, 11)) for d in range(2, 8)),  # 6 lunches
        done("cleaning", local(2026, 3, 5)),
        done("emergency", local(2026, 3, 9)),
        done("emergency", local(2026, 3, 19)),
        done("bathing", local(2026, 3, 10)),
        done("bathing", local(2026, 3, 24)),
        done("medical", local(2026, 3, 1, 7)),  # 07:00 on 1 March = 23:00 UTC in February
        done("meal", local(2026, 2, 27, 11)),  # February
        done("meal", local(2026, 4, 1, 11)),  # April
        done("meal", local(2026, 3, 12, 11), elder=8),  # someone else
        done("mobility", local(2026, 3, 13), finish=False),  # still in service
        transition(
            request(7, "mobility", FAMILY, local(2026, 3, 14)), "cancel", FAMILY, local(2026, 3, 14)
        ),
    ]
    u = usage(SUB, orders, Month(2026, 3))
    got = {ln.kind.value: (ln.used, ln.included, ln.extra, ln.extra_fen) for ln in u.lines}
    assert got == {
        "meal": (6, 4, 2, 2 * 1_200),
        "cleaning": (1, 2, 0, 0),
        "bathing": (2, 1, 1, 6_000),
        "mobility": (0, 2, 0, 0),
        "emergency": (2, None, 0, 0),
        "medical": (1, 2, 0, 0),
    }
    assert u.plan_code == "basic-100" and u.fee_fen == 10_000
    assert u.extra_fen == 8_400 and u.total_fen == 18_400
    assert u.line("meal").remaining == 0 and u.line("cleaning").remaining == 1
    assert u.line("emergency").remaining is None
    assert within_plan(SUB, u, "cleaning") and not within_plan(SUB, u, "meal")
    assert within_plan(SUB, u, "emergency")


def test_served_at_is_the_check_in_of_a_completed_order() -> None:
    o = done("meal", local(2026, 3, 2, 11))
    assert served_at(o) == local(2026, 3, 2, 11)
    assert served_at(done("meal", local(2026, 3, 2, 11), finish=False)) is None


def test_months_without_a_plan_are_charged_per_service() -> None:
    sub = Subscription(7, BASIC_100, first=date(2026, 3, 20), last=date(2026, 5, 10))
    orders = [done("cleaning", local(2026, 2, 10)), done("cleaning", local(2026, 3, 2))]
    feb = usage(sub, orders, Month(2026, 2))
    assert (feb.plan_code, feb.fee_fen, feb.total_fen) == (None, 0, 4_000)
    assert not within_plan(sub, feb, "cleaning")
    mar = usage(sub, orders, Month(2026, 3))  # joined on the 20th: a whole month
    assert (mar.plan_code, mar.fee_fen, mar.total_fen) == ("basic-100", 10_000, 10_000)
    assert usage(sub, [], Month(2026, 5)).plan_code == "basic-100"
    assert usage(sub, [], Month(2026, 6)).plan_code is None


def test_kinds_a_plan_leaves_out_are_charged() -> None:
    meals_only = Plan("meals", "助餐套餐", 20_000, {ServiceKind.MEAL: 22})
    sub = Subscription(7, meals_only, first=date(2026, 1, 1))
    u = usage(sub, [done("bathing", local(2026, 3, 3))], Month(2026, 3))
    assert u.line("bathing").included == 0 and u.line("bathing").extra_fen == 6_000


@settings(max_examples=200, deadline=None)
@given(
    served=st.lists(
        st.tuples(
            st.sampled_from(list(ServiceKind)),
            st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC)),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_every_completed_service_is_counted_in_exactly_one_month(
    served: list[tuple[ServiceKind, datetime, bool]],
) -> None:
    orders = [done(k, t, finish=f) for k, t, f in served]
    months = [Month(2025, 12)]
    while months[-1] < Month(2027, 1):
        months.append(months[-1].next())
    total: Counter[ServiceKind] = Counter()
    for month in months:
        u = usage(SUB, orders, month)
        for line in u.lines:
            total[line.kind] += line.used
            assert line.extra == (0 if line.included is None else max(0, line.used - line.included))
        assert u.total_fen == u.fee_fen + sum(ln.extra_fen for ln in u.lines)
    assert total == Counter(k for k, _, f in served if f)
