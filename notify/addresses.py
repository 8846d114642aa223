"""A channel as people enter it (the family page's ``{"kind", "address"}``: an e-mail
address, a phone number, a robot's https:// webhook) turned into the apprise URL that
reaches it.  Pure.

An apprise URL is taken as it is.  A WeCom robot's own webhook URL is one apprise knows;
a DingTalk robot's becomes ``dingtalk://token``; any other https:// webhook is posted
JSON (``jsons://``).  E-mail and SMS need the centre's outgoing server or gateway
(``email_via``: ``mailtos://user:pass@smtp.example.com``; ``sms_via``: an apprise URL
with ``{to}`` where the number goes); without one the channel is left out.  In-app
needs no URL: every person reached gets an in-app note anyway.

>>> apprise_url("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K")
'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K'
>>> apprise_url("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=T0K3N")
'dingtalk://T0K3N'
>>> apprise_url("webhook", "https://ops.example.com/hooks/eldercare")
'jsons://ops.example.com/hooks/eldercare'
>>> apprise_url("email", "wang@example.com", email_via="mailtos://bot:pw@smtp.example.com")
'mailtos://bot:pw@smtp.example.com?to=wang%40example.com'
>>> apprise_url("sms", "+86 138-0000-0000", sms_via="json://sms.example/send?to={to}")
'json://sms.example/send?to=%2B8613800000000'
>>> apprise_url("sms", "13800000000") is None  # no gateway configured
True
>>> apprise_url("in_app", None) is None
True
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit


def apprise_url(
    kind: str, target: str | None, *, email_via: str | None = None, sms_via: str | None = None
) -> str | None:
    """The apprise URL for one channel, or None when it cannot be sent to."""
    if not target or kind == "in_app":
        return None
    target = target.strip()
    scheme = target.split("://", 1)[0].lower() if "://" in target else ""
    if scheme and scheme not in ("http", "https"):
        return target  # already an apprise URL
    if kind == "email":
        if not email_via:
            return None
        return f"{email_via}{'&' if '?' in email_via else '?'}to={quote(target, safe='')}"
    if kind == "sms":
        if not sms_via or "{to}" not in sms_via:
            return None
        number = "".join(ch for ch in target if ch.isdigit() or ch == "+")
        return sms_via.replace("{to}", quote(number, safe=""))
    if not scheme:
        return None
    parts = urlsplit(target)
    if kind == "dingtalk" and parts.hostname == "oapi.dingtalk.com":
        token = parse_qs(parts.query).get("access_token", [""])[0]
        return f"dingtalk://{token}" if token else None
    if kind == "wecom" and parts.hostname == "qyapi.weixin.qq.com":
        return target  # apprise recognises the robot's own URL
    return ("jsons://" if scheme == "https" else "json://") + target.split("://", 1)[1]
