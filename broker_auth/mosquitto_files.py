"""Mosquitto's password file and ACL, rendered from data.

The password lines are what ``mosquitto_passwd`` (2.0) writes: ``user:$7$iterations$
base64(salt)$base64(PBKDF2-HMAC-SHA512)``.  Device secrets are 256 random bits, so
Mosquitto's own iteration count (101) is enough: stretching protects guessable
passwords, and it is paid on every one of thousands of device reconnects.

>>> h = hash_secret("s3cret", salt=b"0123456789ab")
>>> h.split("$")[1:3]
['7', '101']
>>> verify_secret("s3cret", h), verify_secret("guess", h)
(True, False)
>>> print(render_password_file({"w-002": h, "w-001": h}).splitlines()[0].split(":")[0])
w-001
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping

from protocol.topics import DEVICE_ID, ROOT, UPLINK

PASSWORD_FILE = "passwd"  # names inside the broker's folder
ACL_FILE = "acl"
ITERATIONS = 101  # mosquitto_passwd's default (see the module docstring)
SALT_BYTES = 12
HASH_BYTES = 64


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations, HASH_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_secret(secret: str, hashed: str) -> bool:
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
        if kind != "7":
            return False
        want = base64.b64decode(digest)
        got = hashlib.pbkdf2_hmac(
            "sha512", secret.encode(), base64.b64decode(salt), int(iterations), len(want)
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, want)


def render_password_file(accounts: Mapping[str, str]) -> str:
    """``username → $7$ hash``, one line each, sorted so that equal input is equal output."""
    for name in accounts:
        if not name or ":" in name or "\n" in name:
            raise ValueError(f"not a usable MQTT user name: {name!r}")
    return "".join(f"{name}:{accounts[name]}\n" for name in sorted(accounts))


def render_acl(service_user: str) -> str:
    """Devices publish only under their own id (user name = device id); the service reads all.

    ``%u`` patterns apply to every signed-in client, so the service account's name must
    not be a possible device id (the settings insist on a dot).
    """
    if DEVICE_ID.match(service_user):
        raise ValueError(f"service user {service_user!r} could be a device id; include a dot")
    lines = [
        "# Written by eldercare from the device_credentials table; regenerated on change.",
        "# Each device: publish its own uplink topics, read its own commands.",
        *(f"pattern write {ROOT}/%u/{channel}" for channel in UPLINK),
        f"pattern read {ROOT}/%u/cmd",
        "",
        "# The backend: read everything devices send, send any device a command.",
        f"user {service_user}",
        f"topic read {ROOT}/#",
        f"topic write {ROOT}/+/cmd",
    ]
    return "\n".join(lines) + "\n"


def conf_lines(folder: str) -> str:
    """What mosquitto.conf needs to enforce the files kept in ``folder``."""
    return (
        f"allow_anonymous false\npassword_file {folder}/{PASSWORD_FILE}\n"
        f"acl_file {folder}/{ACL_FILE}\n"
    )
