"""What a login name and display name may be.

>>> login_problem("wang.li"), login_problem("王丽")
(None, None)
>>> login_problem("wang li")
'login must be 1–64 characters without spaces'
"""

from __future__ import annotations

import re

_LOGIN = re.compile(r"^\S{1,64}$")


def login_problem(login: str) -> str | None:
    return None if _LOGIN.match(login) else "login must be 1–64 characters without spaces"


def display_name_problem(name: str) -> str | None:
    return None if 1 <= len(name.strip()) <= 100 else "display name must be 1–100 characters"
