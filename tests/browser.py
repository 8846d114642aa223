"""Headless Chromium for end-to-end tests, driven by Playwright's sync API.

We use Debian's ``/usr/bin/chromium`` rather than ``playwright install``: browser builds
cannot be downloaded here, and the distribution package is what CI installs
(``apt-get install -y chromium``). Playwright talks to it over the DevTools protocol.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = os.environ.get("ELDERCARE_CHROMIUM", "/usr/bin/chromium")

# Quiet, reproducible, offline: no sandbox (tests run as root), no GPU (there is
# none), and none of the background fetches a fresh profile would try.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]

BIG_SCREEN = {"width": 1920, "height": 1080}


def chromium_path() -> str:
    """The browser binary, or a clear error saying how to get it."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which("chromium")
        hint = f" (found one at {found}: set ELDERCARE_CHROMIUM)" if found else ""
        raise RuntimeError(
            f"Chromium not found at {CHROMIUM}{hint}; install it with: apt-get install -y chromium"
        )
    return CHROMIUM


@contextmanager
def chromium_page(viewport: dict[str, int] | None = None, locale: str = "zh-CN") -> Iterator[Page]:
    """Yield a Playwright page in a fresh headless Chromium with its own profile.

    The profile directory and the browser are removed on exit, whatever happened.
    """
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with (
        tempfile.TemporaryDirectory(prefix="eldercare-chromium-") as profile,
        sync_playwright() as p,
    ):
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=viewport or BIG_SCREEN,
            locale=locale,
            timezone_id="Asia/Shanghai",
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            yield page
        finally:
            context.close()
