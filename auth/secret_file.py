"""The one shell in ``auth/``: a secret kept in a file of the data folder.

Used when a deployment configures no secret of its own: the first start generates
one, readable by the owner only, and every later start (and every other process on
the same data folder) reads the same one back.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path


def read_or_create(path: Path, *, nbytes: int = 48) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of two processes starting together, one writes and the other reads.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(40):  # the creating process may not have written it yet
            value = path.read_text("utf-8").strip()
            if value:
                return value
            time.sleep(0.05)
        raise RuntimeError(f"{path} is empty: delete it to generate a new secret") from None
    value = secrets.token_urlsafe(nbytes)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    return value
