"""The notification ladder's pure core: who is due a message, when, on which channel."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, time, timedelta

import pytest

import notify.addresses
import notify.ladder
import notify.message
import notify.orders
from notify.ladder import (
    DEFAULT_LADDER,
    AlertFacts,
    Attempt,
    Audience,
    Channel,
    Due,
    Ladder,
    Person,
    QuietHours,
    Step,
    plan,
)
from notify.orders import OrderFacts, order_plan

T0 = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)  # 14:00 in Asia/Shanghai
NIGHT = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)  # 23:00 in Asia/Shanghai
WECOM = Channel("wecom", "wecombot://duty-key")
SMS = Channel("sms", "json://sms.example/send")
LADDER = Ladder(
    (
        Step(Audience.DUTY, 120, "medium"),
        Step(Audience.SUPERVISOR, 180, "high"),
        Step(Audience.FAMILY, 300, "critical"),
        Step(Audience.EMERGENCY, 0, "critical", remind=False),
    ),
    reminder_s=60,
    max_reminders=3,
)
DUTY = Person("user:1", "李值班", 1, (WECOM, SMS))
BOSS = Person("user:2", "张主管", 2, (WECOM,))
SON = Person("user:3", "王儿子", 3, (SMS,), QuietHours(time(22, 0), time(7, 0)))
CALL = Person("emergency:1", "120 120", None, (Channel("emergency", "json://gw.example/120"),))
PEOPLE = {
    Audience.DUTY: [DUTY],
    Audience.SUPERVISOR: [BOSS],
    Audience.FAMILY: [SON],
    Audience.EMERGENCY: [CALL],
}


def alert(severity: str = "critical", state: str = "open", opened: datetime = T0) -> AlertFacts:
    return AlertFacts(7, severity, opened, state)


class Record:
    """Plays the shell: records each due attempt with the outcome a channel gives."""

    def __init__(self, failing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.failing = failing
        self.attempts: list[Attempt] = []

    def run(self, a: AlertFacts, at: datetime, ladder: Ladder = LADDER, people=PEOPLE) -> list[Due]:
        due = list(plan(a, ladder, people, self.attempts, at).due)
        for d in due:
            ok = d.channel.url not in self.failing
            self.attempts.append(Attempt(d.notice, d.person.key, d.channel_no, at, ok))
        return due


def who(due: list[Due]) -> list[tuple[str, str, int]]:
    return [(d.person.name, d.channel.kind, d.round) for d in due]


@pytest.mark.parametrize("module", [notify.addresses, notify.ladder, notify.message, notify.orders])
def test_core_doctests(module: object) -> None:
    failed, attempted = doctest.testmod(module)  # type: ignore[arg-type]
    assert attempted > 0 and failed == 0


def test_on_duty_staff_hear_at_once_and_the_supervisor_after_the_wait() -> None:
    r = Record()
    assert who(r.run(alert(), T0)) == [("李值班", "wecom", 0)]
    assert r.run(alert(), T0 + timedelta(seconds=59)) == []
    assert who(r.run(alert(), T0 + timedelta(seconds=119))) == [("李值班", "wecom", 1)]
    assert who(r.run(alert(), T0 + timedelta(seconds=120))) == [("张主管", "wecom", 0)]
    # family at 120 + 180 s, the emergency number at + 300 s more
    # while the supervisor is the top step, they are the ones reminded
    assert who(r.run(alert(), T0 + timedelta(seconds=299))) == [("张主管", "wecom", 2)]
    assert ("王儿子", "sms", 0) in who(r.run(alert(), T0 + timedelta(seconds=300)))
    assert ("120 120", "emergency", 0) in who(r.run(alert(), T0 + timedelta(seconds=600)))


def test_reminders_come_at_the_interval_newest_round_only_and_stop_at_the_cap() -> None:
    r = Record()
    medium = alert("medium")
    r.run(medium, T0)
    # the notifier was away for 3.5 minutes: one reminder (round 3), not rounds 1-3
    assert who(r.run(medium, T0 + timedelta(seconds=210))) == [("李值班", "wecom", 3)]
    assert r.run(medium, T0 + timedelta(seconds=230)) == []
    # max_reminders is 3: nothing more, however long it stays open
    assert r.run(medium, T0 + timedelta(hours=2)) == []
    # a medium alert never climbs to the supervisor
    assert all(
        d.person is DUTY for d in plan(medium, LADDER, PEOPLE, [], T0 + timedelta(hours=1)).due
    )


def test_acknowledged_or_resolved_stops_everything() -> None:
    r = Record()
    r.run(alert(), T0)
    later = T0 + timedelta(seconds=700)
    assert r.run(alert(state="acknowledged"), later) == []
    assert r.run(alert(state="resolved"), later) == []
    assert plan(alert(state="acknowledged"), LADDER, PEOPLE, [], later).inbox == ()


def test_a_failed_channel_falls_through_to_the_next_then_to_the_next_step() -> None:
    r = Record(failing={WECOM.url, SMS.url})
    assert who(r.run(alert(), T0)) == [("李值班", "wecom", 0)]
    t = T0 + timedelta(seconds=2)
    assert who(r.run(alert(), t)) == [("李值班", "sms", 0)]
    # both of the duty's channels failed: the supervisor now, not after 120 s
    assert who(r.run(alert(), t + timedelta(seconds=1))) == [("张主管", "wecom", 0)]


def test_a_step_with_nobody_on_it_passes_at_once() -> None:
    nobody_on_duty = {**PEOPLE, Audience.DUTY: []}
    due = plan(alert("high"), LADDER, nobody_on_duty, [], T0).due
    assert [d.person.name for d in due] == ["张主管"]


def test_with_no_supervisor_on_the_roster_the_duty_keep_being_reminded() -> None:
    r = Record()
    no_boss = {**PEOPLE, Audience.SUPERVISOR: []}
    r.run(alert("high"), T0, people=no_boss)
    assert who(r.run(alert("high"), T0 + timedelta(seconds=130), people=no_boss)) == [
        ("李值班", "wecom", 2)
    ]


def test_a_claimed_attempt_is_not_sent_twice_and_a_stale_claim_counts_as_failed() -> None:
    sending = [Attempt("alert:7/step:0/round:0", "user:1", 0, T0, None)]
    assert plan(alert(), LADDER, PEOPLE, sending, T0 + timedelta(seconds=5)).due == ()
    stale = plan(alert(), LADDER, PEOPLE, sending, T0 + timedelta(seconds=130)).due
    assert ("李值班", "sms", 0) in who(list(stale))


def test_quiet_hours_hold_back_non_critical_alerts_only() -> None:
    family_first = Ladder((Step(Audience.FAMILY, 600, "low"),), reminder_s=0)
    night_fever = plan(alert("high", opened=NIGHT), family_first, PEOPLE, [], NIGHT).due
    assert night_fever == ()
    night_sos = plan(alert("critical", opened=NIGHT), family_first, PEOPLE, [], NIGHT).due
    assert who(list(night_sos)) == [("王儿子", "sms", 0)]
    # the held alert is sent when quiet hours end, if still unacknowledged
    morning = datetime(2026, 12, 4, 23, 5, tzinfo=UTC)  # 07:05 local
    assert who(list(plan(alert("high", opened=NIGHT), family_first, PEOPLE, [], morning).due)) == [
        ("王儿子", "sms", 0)
    ]
    # the in-app note is written even in quiet hours (it makes no sound)
    assert [
        n.user_id for n in plan(alert("high", opened=NIGHT), family_first, PEOPLE, [], NIGHT).inbox
    ] == [3]


def test_the_default_ladder_matches_the_alert_escalation_timing() -> None:
    from alerts.escalation import DEFAULT_LADDER as ESCALATION
    from alerts.escalation import Level

    starts, t = {}, 0.0
    for step in DEFAULT_LADDER.steps:
        starts[step.audience] = t
        t += step.wait_s
    critical = dict(ESCALATION["critical"])
    assert starts[Audience.SUPERVISOR] == critical[Level.SUPERVISOR]
    assert starts[Audience.FAMILY] == critical[Level.FAMILY]
    assert starts[Audience.EMERGENCY] == critical[Level.EMERGENCY_NUMBER]


def test_a_caregiver_hears_of_an_offer_and_staff_of_an_emergency_nobody_can_take() -> None:
    wang = Person("user:9", "王护理员", 9, (WECOM, SMS), QuietHours(time(0, 0), time(23, 59)))
    offer = OrderFacts(12, "emergency", "assigned", assign_step=31, unstaffed=False)
    due = order_plan(offer, wang, [DUTY], [BOSS], [], T0).due  # quiet hours: 助急 goes anyway
    assert [(d.notice, d.person.name) for d in due] == [("order:12/assign:31", "王护理员")]
    meal = OrderFacts(13, "meal", "assigned", assign_step=40, unstaffed=False)
    assert order_plan(meal, wang, [DUTY], [BOSS], [], T0).due == ()  # held by quiet hours
    stuck = OrderFacts(14, "emergency", "requested", assign_step=None, unstaffed=True)
    assert [d.person.name for d in order_plan(stuck, None, [DUTY], [BOSS], [], T0).due] == [
        "李值班"
    ]
    assert [d.person.name for d in order_plan(stuck, None, [], [BOSS], [], T0).due] == ["张主管"]
    # a meal order nobody takes is the dispatcher's business, not a page
    quiet = OrderFacts(15, "meal", "requested", assign_step=None, unstaffed=True)
    assert order_plan(quiet, None, [DUTY], [BOSS], [], T0).due == ()
