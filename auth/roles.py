"""Who may do what, as data: a role is a set of permissions, checked by name.

>>> can(Role.staff, Permission.alerts_ack)
True
>>> can(Role.family, Permission.devices_manage)
False
>>> Role("caregiver").label_zh
'护理员'
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    staff = "staff"  # 值班人员 at the centre's big screen
    caregiver = "caregiver"
    family = "family"

    @property
    def label_zh(self) -> str:
        return _LABELS_ZH[self]


_LABELS_ZH = {
    Role.admin: "管理员",
    Role.staff: "值班人员",
    Role.caregiver: "护理员",
    Role.family: "家属",
}


class Permission(StrEnum):
    elders_read = "elders.read"
    elders_manage = "elders.manage"
    devices_manage = "devices.manage"
    devices_read = "devices.read"
    quarantine_read = "quarantine.read"
    readings_read = "readings.read"
    alerts_read = "alerts.read"
    alerts_ack = "alerts.ack"
    thresholds_manage = "thresholds.manage"
    orders_read = "orders.read"
    orders_request = "orders.request"
    orders_dispatch = "orders.dispatch"
    orders_work = "orders.work"  # a caregiver moving their own order along, reporting where
    caregivers_read = "caregivers.read"
    caregivers_manage = "caregivers.manage"  # caregivers and their shifts
    plans_manage = "plans.manage"  # subscriptions and recurring schedules
    reports_read = "reports.read"
    users_manage = "users.manage"
    family_links_manage = "family_links.manage"
    audit_read = "audit.read"


# Which elders a permission reaches (the whole deployment, a community, the elders of a
# caregiver's orders, a family member's consented links) is decided by ``auth.scope``,
# not here: this table only says which verbs a role has.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.admin: frozenset(Permission),
    Role.staff: frozenset(
        {
            Permission.elders_read,
            Permission.devices_read,
            Permission.readings_read,
            Permission.alerts_read,
            Permission.alerts_ack,
            Permission.thresholds_manage,
            Permission.orders_read,
            Permission.orders_request,
            Permission.orders_dispatch,
            Permission.caregivers_read,
            Permission.caregivers_manage,
            Permission.plans_manage,
            Permission.reports_read,
        }
    ),
    Role.caregiver: frozenset(
        {
            Permission.elders_read,
            Permission.readings_read,
            Permission.alerts_read,
            Permission.orders_read,
            Permission.orders_work,
            Permission.caregivers_read,
        }
    ),
    Role.family: frozenset(
        {
            Permission.elders_read,
            Permission.readings_read,
            Permission.alerts_read,
            Permission.orders_read,
            Permission.orders_request,
        }
    ),
}


def can(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def needs_community(role: Role) -> bool:
    """Everyone but an administrator belongs to one community; an admin may span all."""
    return role is not Role.admin
