"""Recurring requests in Asia/Shanghai: across days, month and year boundaries, leap days,
ranges given in UTC, fortnightly rules, holidays, and watermark releases."""

from __future__ import annotations

import itertools
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orders.catalogue import CATALOGUE, ServiceKind
from orders.schedule import DAY, SHANGHAI, WEEK, WeeklyRule, occurrences, releases, weekdays

LUNCH = WeeklyRule(1, 7, "meal", weekdays("mon-fri"), time(11, 30), date(2026, 1, 1))
THURSDAY_CLEANING = WeeklyRule(2, 7, "cleaning", weekdays("thu"), time(9, 0), date(2026, 1, 1))


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


def stamps(rule: WeeklyRule, start: datetime, end: datetime) -> list[str]:
    return [t.strftime("%Y-%m-%d %a %H:%M") for t in occurrences(rule, start, end)]


def test_weekday_specs() -> None:
    assert weekdays("Mon-Fri") == {1, 2, 3, 4, 5}
    assert weekdays("thu") == {4}
    assert weekdays("mon, wed, fri") == {1, 3, 5}
    assert weekdays("fri-mon") == {5, 6, 7, 1}
    assert weekdays("Thursday") == {4}
    with pytest.raises(ValueError, match="not a weekday"):
        weekdays("someday")


def test_lunch_monday_to_friday_across_a_month_boundary() -> None:
    # January 2026 ends on a Saturday; February 2026 starts on a Sunday.
    got = stamps(LUNCH, local(2026, 1, 29), local(2026, 2, 4))
    assert got == [
        "2026-01-29 Thu 11:30",
        "2026-01-30 Fri 11:30",
        "2026-02-02 Mon 11:30",
        "2026-02-03 Tue 11:30",
    ]


def test_every_thursday_across_the_year_boundary_and_a_leap_day() -> None:
    got = stamps(THURSDAY_CLEANING, local(2026, 12, 20), local(2027, 1, 15))
    assert got == [
        "2026-12-24 Thu 09:00",
        "2026-12-31 Thu 09:00",
        "2027-01-07 Thu 09:00",
        "2027-01-14 Thu 09:00",
    ]
    # 2028-02-29 is a Tuesday; a Tuesday rule falls on it, and March follows
    tue = WeeklyRule(3, 7, "bathing", weekdays("tue"), time(15, 0), date(2028, 1, 1))
    assert stamps(tue, local(2028, 2, 26), local(2028, 3, 10)) == [
        "2028-02-29 Tue 15:00",
        "2028-03-07 Tue 15:00",
    ]


def test_counts_per_month() -> None:
    def n(rule: WeeklyRule, y: int, m: int) -> int:
        end = local(y + m // 12, m % 12 + 1, 1)
        return len(list(occurrences(rule, local(y, m, 1), end)))

    assert n(LUNCH, 2026, 2) == 20  # February 2026: four full weeks
    assert n(LUNCH, 2026, 3) == 22
    assert n(THURSDAY_CLEANING, 2026, 1) == 5  # 1, 8, 15, 22, 29 January
    assert n(THURSDAY_CLEANING, 2026, 2) == 4


def test_ranges_in_utc_mean_local_days() -> None:
    # 07:00 in 杏北 is 23:00 UTC the day before: the rule speaks of local days.
    early = WeeklyRule(4, 7, "mobility", weekdays("mon"), time(7, 0), date(2026, 1, 1))
    start = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)  # Monday 06:00 local
    got = list(occurrences(early, start, start + timedelta(hours=2)))
    assert got == [local(2026, 3, 2, 7, 0)]
    assert got[0].astimezone(UTC) == datetime(2026, 3, 1, 23, 0, tzinfo=UTC)  # a Sunday in UTC
    # and the lunch falls at 03:30 UTC
    (lunch,) = occurrences(
        LUNCH, datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 2, 12, tzinfo=UTC)
    )
    assert lunch.astimezone(UTC).time() == time(3, 30)


def test_ranges_are_half_open() -> None:
    t = local(2026, 3, 2, 11, 30)  # a Monday lunch
    assert list(occurrences(LUNCH, t, t + timedelta(seconds=1))) == [t]
    assert list(occurrences(LUNCH, t - DAY, t)) == []
    assert list(occurrences(LUNCH, t, t)) == []


def test_first_last_skip_and_fortnightly() -> None:
    rule = WeeklyRule(
        5,
        7,
        "bathing",
        weekdays("wed"),
        time(14, 30),
        first=date(2026, 1, 7),
        last=date(2026, 3, 4),
        every_weeks=2,
        skip=frozenset({date(2026, 2, 18)}),  # 春节 (Spring Festival 2026 is 17 February)
    )
    got = stamps(rule, local(2025, 12, 1), local(2026, 6, 1))
    assert got == [
        "2026-01-07 Wed 14:30",
        "2026-01-21 Wed 14:30",
        "2026-02-04 Wed 14:30",
        "2026-03-04 Wed 14:30",  # the last day is inclusive
    ]


def test_rules_are_validated() -> None:
    with pytest.raises(ValueError, match="cannot be booked"):
        WeeklyRule(6, 7, "emergency", weekdays("mon"), time(9), date(2026, 1, 1))
    with pytest.raises(ValueError, match="non-empty subset"):
        WeeklyRule(6, 7, "meal", frozenset({0}), time(9), date(2026, 1, 1))
    with pytest.raises(ValueError, match="wall-clock"):
        WeeklyRule(6, 7, "meal", weekdays("mon"), time(9, tzinfo=UTC), date(2026, 1, 1))
    with pytest.raises(ValueError, match="every_weeks"):
        WeeklyRule(6, 7, "meal", weekdays("mon"), time(9), date(2026, 1, 1), every_weeks=0)
    with pytest.raises(ValueError, match="before its first"):
        WeeklyRule(6, 7, "meal", weekdays("mon"), time(9), date(2026, 2, 1), last=date(2026, 1, 1))
    with pytest.raises(ValueError, match="no time zone"):
        list(occurrences(LUNCH, datetime(2026, 1, 1), datetime(2026, 1, 2)))


def test_fixed_offset_matches_the_tz_database_since_1991() -> None:
    """Asia/Shanghai has had no daylight saving since 1991: UTC+8 is exact."""
    zone = zoneinfo.ZoneInfo("Asia/Shanghai")
    t = datetime(1992, 1, 1, tzinfo=UTC)
    while t < datetime(2040, 1, 1, tzinfo=UTC):
        assert t.astimezone(zone).utcoffset() == timedelta(hours=8)
        t += timedelta(days=13, hours=5)
    # ... and not before: China kept summer time from 1986 to 1991
    assert datetime(1990, 7, 1, tzinfo=UTC).astimezone(zone).utcoffset() == timedelta(hours=9)


# --- properties ------------------------------------------------------------------------

INSTANTS = st.datetimes(datetime(2025, 12, 1), datetime(2029, 3, 1), timezones=st.just(UTC))
RULES = st.builds(
    WeeklyRule,
    id=st.just(9),
    elder_id=st.just(7),
    kind=st.sampled_from([k for k in ServiceKind if not CATALOGUE[k].urgent]),
    days=st.frozensets(st.integers(1, 7), min_size=1),
    at=st.times(),
    first=st.dates(date(2025, 11, 1), date(2027, 1, 1)),
    every_weeks=st.integers(1, 3),
)


@settings(max_examples=300, deadline=None)
@given(rule=RULES, a=INSTANTS, span=st.timedeltas(timedelta(0), timedelta(days=70)))
def test_every_occurrence_is_on_a_rule_day_at_the_rule_time_inside_the_range(
    rule: WeeklyRule, a: datetime, span: timedelta
) -> None:
    b = a + span
    got = list(occurrences(rule, a, b))
    assert got == sorted(set(got))
    for t in got:
        assert a <= t < b and t.tzinfo is SHANGHAI
        assert t.time() == rule.at and t.isoweekday() in rule.days and t.date() >= rule.first
    # brute force: walk every local day of the range
    day, expected = (a.astimezone(SHANGHAI) - DAY).date(), []
    while day <= b.astimezone(SHANGHAI).date():
        t = datetime.combine(day, rule.at, SHANGHAI)
        if rule.falls_on(day) and a <= t < b:
            expected.append(t)
        day += DAY
    assert got == expected
    # a week-long window holds one occurrence per rule weekday, every_weeks apart
    if span >= WEEK * rule.every_weeks and a.date() > rule.first + WEEK:
        assert len(got) >= len(rule.days) * (span // (WEEK * rule.every_weeks))


@settings(max_examples=300, deadline=None)
@given(
    rule=RULES,
    a=INSTANTS,
    cuts=st.lists(st.timedeltas(timedelta(0), timedelta(days=40)), max_size=6),
)
def test_ranges_compose_so_watermarks_never_lose_or_repeat(
    rule: WeeklyRule, a: datetime, cuts: list[timedelta]
) -> None:
    points = [a, *(a + c for c in sorted(cuts))]
    end = points[-1] + DAY
    pieces = [t for x, y in itertools.pairwise([*points, end]) for t in occurrences(rule, x, y)]
    assert pieces == list(occurrences(rule, a, end))


@settings(max_examples=200, deadline=None)
@given(
    a=INSTANTS,
    steps=st.lists(
        st.timedeltas(timedelta(minutes=1), timedelta(hours=30)), min_size=1, max_size=20
    ),
)
def test_releases_from_a_moving_watermark_create_each_order_exactly_once(
    a: datetime, steps: list[timedelta]
) -> None:
    rules = [LUNCH, THURSDAY_CLEANING]
    marks = [a]
    for s in steps:
        marks.append(marks[-1] + s)
    got = [r for x, y in itertools.pairwise(marks) for r in releases(rules, x, y)]
    keys = [r.key for r in got]
    assert len(keys) == len(set(keys))
    assert got == releases(rules, marks[0], marks[-1])
    for r in got:
        lead = CATALOGUE[r.kind].release_lead
        assert r.release_at == r.scheduled_for - lead and a <= r.release_at < marks[-1]


def test_release_leads_leave_the_accept_time_before_the_accept_lead() -> None:
    t = local(2026, 3, 2, 9, 0)  # Monday 09:00
    got = releases([LUNCH, THURSDAY_CLEANING], t, t + 4 * DAY)
    first = got[0]
    assert first.kind is ServiceKind.MEAL
    assert (first.release_at.strftime("%a %H:%M"), first.scheduled_for.strftime("%a %H:%M")) == (
        "Mon 10:00",
        "Mon 11:30",
    )
    clean = next(r for r in got if r.kind is ServiceKind.CLEANING)
    assert clean.release_at == local(2026, 3, 4, 19, 0)  # Wednesday evening for Thursday 09:00
    assert [r.release_at for r in got] == sorted(r.release_at for r in got)
