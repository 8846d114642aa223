"""The six 六助 services as data: names, durations, service-level targets, skills, prices.

Everything the rest of :mod:`orders` needs to know about a kind of service is in one
:class:`ServiceSpec`; the functions elsewhere take the catalogue as a parameter (default
:data:`CATALOGUE`), so a service centre with other targets or prices passes its own.

Targets come in two shapes, because orders do:

* *on demand* (someone asks now): accept within ``accept``, arrive within ``arrive``,
  both counted from the request -- 助急 is counted in minutes;
* *booked* (a time was agreed, e.g. the 11:30 lunch): accepted ``accept_lead`` before
  the booked time, and arrival inside ``window`` around it -- for 助餐 this is the
  delivery window (a meal 40 minutes early is as wrong as one 40 minutes late).

The figures are the centre's defaults as drafted for this issue (the 15-minute
community care circle for 助急; a half-hour lunch window), not a regulation.

>>> spec = CATALOGUE[ServiceKind.EMERGENCY]
>>> spec.zh, spec.level.accept.total_seconds() / 60, spec.level.arrive.total_seconds() / 60
('助急', 2.0, 15.0)
>>> sorted(CATALOGUE[ServiceKind("meal")].skills)
[<Skill.MEAL_DELIVERY: 'meal_delivery'>]
>>> ServiceKind.BATHING.zh
'助浴'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class ServiceKind(StrEnum):
    """The six services; the values are the device protocol's ``event.kind`` names."""

    MEAL = "meal"
    CLEANING = "cleaning"
    BATHING = "bathing"
    MOBILITY = "mobility"
    EMERGENCY = "emergency"
    MEDICAL = "medical"

    @property
    def zh(self) -> str:
        """The name elders, families and staff use."""
        return ZH_NAMES[self]


ZH_NAMES: Final[Mapping[ServiceKind, str]] = MappingProxyType(
    {
        ServiceKind.MEAL: "助餐",
        ServiceKind.CLEANING: "助洁",
        ServiceKind.BATHING: "助浴",
        ServiceKind.MOBILITY: "助行",
        ServiceKind.EMERGENCY: "助急",
        ServiceKind.MEDICAL: "助医",
    }
)


class Skill(StrEnum):
    """What a caregiver is qualified (trained or certified) to do."""

    MEAL_DELIVERY = "meal_delivery"  # 送餐: food handling, health certificate (健康证)
    HOUSEKEEPING = "housekeeping"  # 家政保洁
    BATHING = "bathing"  # 助浴: bathing an elder safely, transfers in a wet room
    MOBILITY = "mobility"  # 助行: walking support, wheelchair, stairs
    FIRST_AID = "first_aid"  # 急救: CPR/AED, first responder until 120 arrives
    NURSING = "nursing"  # 护理: medication, vital signs, accompanying to a clinic


@dataclass(frozen=True, slots=True)
class ServiceLevel:
    """Service-level targets of one kind (see the module docstring for the two shapes)."""

    accept: timedelta  # on demand: request -> accepted by a caregiver
    arrive: timedelta  # on demand: request -> caregiver checked in at the elder
    offer: timedelta  # an assigned caregiver not answering within this is skipped
    accept_lead: timedelta  # booked: accepted at least this long before the booked time
    window: tuple[timedelta, timedelta]  # booked: arrival in [t - early, t + late]


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One kind of service as the centre offers it."""

    kind: ServiceKind
    duration: timedelta  # typical time at the elder's home, for shift planning
    level: ServiceLevel
    skills: frozenset[Skill]  # all of them are required
    price_fen: int  # per service beyond the plan, in 分 (integers: no float money)
    # Urgent (助急): never booked ahead, dispatched at once to anyone on shift now,
    # escalated when nobody accepts in time.
    urgent: bool = False

    @property
    def zh(self) -> str:
        return self.kind.zh

    @property
    def release_lead(self) -> timedelta:
        """How long before its booked time a recurring order is created: the whole
        accept time before the accept lead, so that dispatch can meet both."""
        return self.level.accept_lead + self.level.accept


def _min(m: float) -> timedelta:
    return timedelta(minutes=m)


CATALOGUE: Final[Mapping[ServiceKind, ServiceSpec]] = MappingProxyType(
    {
        ServiceKind.MEAL: ServiceSpec(
            ServiceKind.MEAL,
            duration=_min(10),
            level=ServiceLevel(
                accept=_min(30),
                arrive=_min(60),
                offer=_min(10),
                accept_lead=_min(60),
                window=(_min(15), _min(15)),
            ),
            skills=frozenset({Skill.MEAL_DELIVERY}),
            price_fen=1_200,
        ),
        ServiceKind.CLEANING: ServiceSpec(
            ServiceKind.CLEANING,
            duration=_min(120),
            level=ServiceLevel(
                accept=_min(120),
                arrive=timedelta(hours=24),
                offer=_min(30),
                accept_lead=timedelta(hours=12),
                window=(_min(15), _min(30)),
            ),
            skills=frozenset({Skill.HOUSEKEEPING}),
            price_fen=4_000,
        ),
        ServiceKind.BATHING: ServiceSpec(
            ServiceKind.BATHING,
            duration=_min(60),
            level=ServiceLevel(
                accept=_min(240),
                arrive=timedelta(hours=48),
                offer=_min(30),
                accept_lead=timedelta(hours=12),
                window=(_min(15), _min(30)),
            ),
            skills=frozenset({Skill.BATHING}),
            price_fen=6_000,
        ),
        ServiceKind.MOBILITY: ServiceSpec(
            ServiceKind.MOBILITY,
            duration=_min(60),
            level=ServiceLevel(
                accept=_min(30),
                arrive=_min(120),
                offer=_min(10),
                accept_lead=_min(120),
                window=(_min(15), _min(15)),
            ),
            skills=frozenset({Skill.MOBILITY}),
            price_fen=3_000,
        ),
        ServiceKind.EMERGENCY: ServiceSpec(
            ServiceKind.EMERGENCY,
            duration=_min(30),
            level=ServiceLevel(
                # Minutes: the 15-minute community care circle.  A short offer so that
                # two or three caregivers can be tried before the accept target passes.
                accept=_min(2),
                arrive=_min(15),
                offer=timedelta(seconds=45),
                accept_lead=_min(0),
                window=(_min(0), _min(0)),
            ),
            skills=frozenset({Skill.FIRST_AID}),
            price_fen=0,  # never charged: nobody should hesitate to call for help
            urgent=True,
        ),
        ServiceKind.MEDICAL: ServiceSpec(
            ServiceKind.MEDICAL,
            duration=_min(45),
            level=ServiceLevel(
                accept=_min(30),
                arrive=_min(120),
                offer=_min(10),
                accept_lead=_min(120),
                window=(_min(15), _min(15)),
            ),
            skills=frozenset({Skill.NURSING}),
            price_fen=3_000,
        ),
    }
)
