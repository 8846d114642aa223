"""The shell: write Mosquitto's password and ACL files and make the broker reload them.

Files are replaced atomically (write a temporary file beside them, then rename), so a
broker reloading at any moment reads either the old file or the new one, never half.
The broker is our private Mosquitto, found through the pid file it leaves in its
folder (``eldercare/private_broker.py``); SIGHUP makes Mosquitto re-read both files
and drop connected clients that the new files no longer admit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Mapping
from pathlib import Path

from psycopg import AsyncConnection

from auth import secret_file
from broker_auth.mosquitto_files import (
    ACL_FILE,
    PASSWORD_FILE,
    hash_secret,
    render_acl,
    render_password_file,
)
from storage import device_credentials

SERVICE_SECRET_FILE = "service_password"


def service_secret(folder: Path) -> str:
    """The backend's own broker password, generated once into the broker folder."""
    return secret_file.read_or_create(folder / SERVICE_SECRET_FILE, nbytes=32)


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)  # hashes only, but no one else's business
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_files(folder: Path, device_hashes: Mapping[str, str], *, service_user: str) -> None:
    accounts = dict(device_hashes)
    accounts[service_user] = hash_secret(service_secret(folder))
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / PASSWORD_FILE, render_password_file(accounts))
    write_atomically(folder / ACL_FILE, render_acl(service_user))


def reload_broker(folder: Path) -> bool:
    """SIGHUP the Mosquitto running from ``folder``; False when none is running there."""
    try:
        pid = int((folder / "pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    # A stale pid file may name some other process by now: only signal our broker.
    if b"mosquitto" not in cmdline or str(folder.resolve()).encode() not in cmdline:
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return False
    return True


async def apply(conn: AsyncConnection, folder: Path, *, service_user: str) -> bool:
    """Render the files from the database's active credentials; True if a broker reloaded."""
    write_files(folder, await device_credentials.active_hashes(conn), service_user=service_user)
    return reload_broker(folder)
