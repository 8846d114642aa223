"""六助 home services: the pure core of service orders -- no I/O, no wall clock.

| module | job |
| --- | --- |
| ``catalogue`` | the six kinds: names, durations, service-level targets, skills, prices |
| ``plans`` | the monthly subscription and the usage counted against it |
| ``lifecycle`` | the order state machine; every step timestamped with who did it |
| ``dispatch`` | who gets an order: qualified, on shift, near, not overloaded |
| ``targets`` | service-level timers on an injected clock; 助急 escalation |
| ``schedule`` | recurring requests (lunch Mon-Fri 11:30) in Asia/Shanghai |
| ``checkin`` | is the caregiver really at the elder (150 m, fix accuracy considered) |

The database, the API and the caregiver's page are the shell around these functions.
"""
