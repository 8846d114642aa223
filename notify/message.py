"""The words of a notification: zh-CN first, the English after, times in Asia/Shanghai.
Pure.  The kind's code (``sos``, ``fall``) is kept in the text so a receiving system
can route on it.

>>> from datetime import UTC, datetime
>>> a = {"id": 7, "kind": "sos", "severity": "critical", "elder_name": "王秀英",
...      "message": "SOS pressed", "opened_at": datetime(2026, 12, 4, 2, 0, tzinfo=UTC)}
>>> title, body = alert_message(a, "duty", 0)
>>> title
'【紧急】王秀英 SOS 求助 (sos)'
>>> body.splitlines()[0]
'王秀英：SOS 求助，10:00 发生。请尽快确认处理。'
>>> alert_message(a, "supervisor", 2)[0]
'【紧急·第2次提醒·升级至主管】王秀英 SOS 求助 (sos)'
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

LOCAL: Final = ZoneInfo("Asia/Shanghai")
KIND_ZH: Final = {
    "sos": "SOS 求助",
    "fall": "跌倒",
    "news2_hr": "心率异常",
    "news2_spo2": "血氧异常",
    "news2_sbp": "血压异常",
    "news2_rr": "呼吸异常",
    "news2_temp": "体温异常",
    "news2_partial": "生命体征综合评分高",
    "hr_activity": "静息心率偏快",
    "baseline_drift": "心率偏离个人基线",
    "fever": "发热",
    "geofence_exit": "离开安全区域",
    "inactivity": "长时间无活动",
    "device_offline": "设备离线",
    "not_worn": "未佩戴手表",
    "low_battery": "电量低",
    "service_late": "服务超时",
    "service_escalation": "助急无人接单",
}
SEVERITY_ZH: Final = {"critical": "紧急", "high": "重要", "medium": "提醒", "low": "提示"}
STEP_ZH: Final = {
    "duty": "值班人员",
    "supervisor": "主管",
    "family": "家属",
    "emergency": "急救电话",
    "caregiver": "护理员",
}
SERVICE_ZH: Final = {
    "meal": "助餐",
    "cleaning": "助洁",
    "bathing": "助浴",
    "mobility": "助行",
    "emergency": "助急",
    "medical": "助医",
}


def _local(ts: datetime) -> str:
    return ts.astimezone(LOCAL).strftime("%H:%M")


def alert_message(alert: Mapping[str, Any], step: str, rnd: int) -> tuple[str, str]:
    """Title and body about ``alert`` for the people of ``step``, reminder ``rnd``."""
    kind = alert["kind"]
    what = KIND_ZH.get(kind, kind)
    name = alert.get("elder_name") or f"老人 #{alert.get('elder_id')}"
    tags = [SEVERITY_ZH.get(alert["severity"], alert["severity"])]
    if rnd:
        tags.append(f"第{rnd}次提醒")
    if step not in ("duty", "caregiver"):
        tags.append(f"升级至{STEP_ZH.get(step, step)}")
    title = f"【{'·'.join(tags)}】{name} {what} ({kind})"
    body = "\n".join(
        [
            f"{name}：{what}，{_local(alert['opened_at'])} 发生。请尽快确认处理。",
            f"{alert.get('message', '')}",
            f"Alert #{alert['id']} {kind} ({alert['severity']}) for {name},"
            f" opened {_local(alert['opened_at'])} Asia/Shanghai; not yet acknowledged.",
        ]
    )
    return title, body


def order_message(order: Mapping[str, Any], step: str) -> tuple[str, str]:
    """Title and body about ``order``: a new assignment, or a 助急 nobody can take.

    >>> from datetime import UTC, datetime
    >>> o = {"id": 12, "kind": "meal", "elder_name": "李建国",
    ...      "requested_at": datetime(2026, 12, 4, 3, 30, tzinfo=UTC)}
    >>> order_message(o, "caregiver")[0]
    '【新派单】助餐 · 李建国'
    """
    service = SERVICE_ZH.get(order["kind"], order["kind"])
    name = order.get("elder_name") or f"老人 #{order.get('elder_id')}"
    if step == "caregiver":
        title = f"【新派单】{service} · {name}"
        body = (
            f"您有一个新的{service}派单：{name}，{_local(order['requested_at'])} 下单。请尽快接单。\n"
            f"Order #{order['id']} ({order['kind']}) for {name} is offered to you: accept it."
        )
    else:
        title = f"【紧急·无人可派】{service} · {name}"
        body = (
            f"{name} 的{service}订单暂无护理员可派，请立即人工处理（必要时拨打 120 并联系家属）。\n"
            f"Order #{order['id']} ({order['kind']}) for {name}: nobody available to dispatch."
        )
    return title, body
