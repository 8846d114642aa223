"""Simulated wearables for 杏北社区: realistic, deterministic device traffic without hardware.

The functional core is pure and needs no broker:

- ``community``: the community (outline, compounds, streets) and ``build_roster(n, seed)``;
- ``elder_model`` / ``plan``: one elder's day as a plan of segments;
- ``sensors``: vital signs and position fixes from a plan;
- ``scenarios``: named events (fall, sos, ...) with their ground truth;
- ``stream``: ``generate(...)``, every device's messages in send order.

The imperative shell is ``publisher`` (paho-mqtt, pacing, PUBACKs) and ``cli``
(``run_simulation``, behind ``eldercare simulate``).

>>> from datetime import UTC, datetime, timedelta
>>> from simulator import build_roster, generate, schedule
>>> roster = build_roster(3, seed=7)
>>> start, duration = datetime(2026, 11, 28, 1, tzinfo=UTC), timedelta(hours=2)
>>> plan = schedule(roster, start, duration, seed=7, names=["sos"])
>>> msgs = list(generate(roster, start, duration, 7, plan.scenarios))
>>> plan.truth()[0]["kind"], len(msgs) > 3 * 120
('sos', True)
"""

from simulator.community import build_roster, community_geojson
from simulator.scenarios import SCENARIOS, Scenario, Schedule, schedule
from simulator.stream import Message, generate

__all__ = [
    "SCENARIOS",
    "Message",
    "Scenario",
    "Schedule",
    "build_roster",
    "community_geojson",
    "generate",
    "schedule",
]
