"""The Quickstart's first command, as a new user runs it: nothing configured, so the
demo brings up its own embedded PostgreSQL and private broker, enrols a simulated
community, prints how to sign in, and the map fills with elders."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import httpx

from conftest import free_port, stop_process, wait_until


def test_demo_on_embedded_defaults_shows_elders_moving_on_the_map(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}
    env["ELDERCARE_HOME"] = str(tmp_path / "home")
    log = tmp_path / "demo.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "eldercare", "demo", "--devices", "12", "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    logins = tmp_path / "home" / "demo-logins.txt"
    auth: dict[str, str] = {}

    def signed_in() -> dict[str, str] | None:
        """The printed administrator login works (once the demo has made it)."""
        if proc.poll() is not None:
            raise AssertionError(f"demo exited:\n{log.read_text()}")
        shown = log.read_text()
        if "demo-admin" not in shown:
            return None
        password = shown.split("demo-admin", 1)[1].split("password", 1)[1].split()[0]
        with contextlib.suppress(httpx.HTTPError):
            r = httpx.post(
                f"{base}/api/v1/auth/login",
                data={"username": "demo-admin", "password": password},
                timeout=5,
            )
            if r.status_code == 200:
                return {"Authorization": f"Bearer {r.json()['access_token']}"}
        return None

    def latest() -> dict | None:
        if proc.poll() is not None:
            raise AssertionError(f"demo exited:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            r = httpx.get(f"{base}/api/v1/latest", timeout=2, headers=auth)
            if r.status_code == 200:
                return r.json()
        return None

    def enrolled() -> dict | None:
        d = latest()
        return d if d and d["count"] == 12 else None

    def located_elders() -> list[dict] | None:
        d = latest()
        placed = [e for e in d["elders"] if e["lat"] is not None] if d else []
        return placed if len(placed) >= 10 else None

    try:
        auth.update(wait_until(signed_in, timeout=90, interval=0.5))  # type: ignore[arg-type]
        assert httpx.get(f"{base}/api/v1/latest").status_code == 401  # nobody signed in
        # Every role's login printed, and kept owner-only in the data folder.
        text = logins.read_text()
        for login in ("demo-admin", "demo-staff", "demo-caregiver", "demo-family"):
            assert login in text and login in log.read_text()
        assert logins.stat().st_mode & 0o077 == 0
        first = wait_until(enrolled, timeout=60, interval=0.5)
        assert "embedded" in log.read_text() and f"http://127.0.0.1:{port}/" in log.read_text()
        located = wait_until(located_elders, timeout=60, interval=0.5)
        assert all(34.85 < e["lat"] < 34.885 and 110.43 < e["lon"] < 110.465 for e in located)
        assert first["elders"][0]["name"]  # real Chinese names from the roster
        health = httpx.get(f"{base}/api/v1/health").json()
        assert health["database"] and health["broker"]
        quarantine = httpx.get(f"{base}/api/v1/quarantine", headers=auth).json()
        assert quarantine["counts"] == {}, "the simulator's own messages must all be valid"
        page = httpx.get(f"{base}/")
        assert page.status_code == 200 and "杏北" in page.text
        outline = httpx.get(f"{base}/api/v1/community", headers=auth).json()
        assert {f["properties"]["kind"] for f in outline["features"]} >= {"outline", "street"}
    finally:
        stop_process(proc)
    assert proc.returncode is not None
    assert not (tmp_path / "home" / "pgdata" / "postmaster.pid").exists(), (
        "embedded PostgreSQL left running"
    )
