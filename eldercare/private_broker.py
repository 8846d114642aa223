"""An MQTT broker of our own for the demo and tests: Mosquitto when it is on PATH,
else the pure-Python amqtt (MQTT 3.1.1 only, a few thousand messages/s: a demo broker).

The Mosquitto config raises the limits that lose data by default (DESIGN.md field
notes: ``max_queued_messages`` 1000 dropped 8.7 % of a burst) and persists sessions
so that a broker restart keeps the ingest's queued messages.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PrivateBroker:
    kind: str  # "mosquitto" or "amqtt"
    port: int
    process: subprocess.Popen[bytes]
    folder: Path
    auth: bool = False  # devices sign in; password and ACL files from broker_auth/

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def mqtt_v5(self) -> bool:
        return self.kind == "mosquitto"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        """Stop and start again on the same port and folder (sessions persist)."""
        self.stop()
        self.process = _launch(self.kind, self.folder, self.port, auth=self.auth)


MOSQUITTO_CONF = """\
# Written by eldercare; regenerated on each start.
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {folder}/
autosave_interval 30
# A disconnected ingest must not lose what arrives meanwhile (default 1000 drops).
max_queued_messages 2000000
max_queued_bytes 0
# MQTT 3.1.1 clients; MQTT 5 clients set their own Receive Maximum.
max_inflight_messages 1000
message_size_limit 1048576
log_dest file {folder}/mosquitto.log
log_type error
log_type warning
log_type notice
"""

AMQTT_CONF = """\
listeners:
  default:
    type: tcp
    bind: 127.0.0.1:{port}
plugins:
  amqtt.plugins.authentication.AnonymousAuthPlugin:
    allow_anonymous: true
"""


def start(home: Path, *, kind: str = "auto", port: int = 0, auth: bool = False) -> PrivateBroker:
    """Start a broker in ``<home>/broker`` on ``port`` (0 = any free port).

    ``auth``: Mosquitto admits only the accounts of ``<home>/broker/passwd`` and applies
    ``<home>/broker/acl`` (both written by ``broker_auth.apply`` beforehand)."""
    if kind == "auto":
        kind = "mosquitto" if shutil.which("mosquitto") else "amqtt"
    if kind == "mosquitto" and not shutil.which("mosquitto"):
        raise RuntimeError("ELDERCARE_BROKER_KIND=mosquitto but mosquitto is not on PATH")
    if auth and kind != "mosquitto":
        raise RuntimeError("ELDERCARE_BROKER_AUTH needs Mosquitto on PATH (amqtt has no ACL files)")
    folder = (home / "broker").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    return PrivateBroker(kind, port, _launch(kind, folder, port, auth=auth), folder, auth)


def _stop_leftover(folder: Path) -> None:
    """A broker of ours left running by a killed demo would hold the session files."""
    pid_file = folder / "pid"
    with contextlib.suppress(ValueError, OSError):
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if str(folder).encode() in cmdline:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)  # raises once it is gone
                time.sleep(0.05)


def _launch(kind: str, folder: Path, port: int, *, auth: bool = False) -> subprocess.Popen[bytes]:
    _stop_leftover(folder)
    if kind == "mosquitto":
        conf = folder / "mosquitto.conf"
        text = MOSQUITTO_CONF.format(port=port, folder=folder)
        if auth:
            from broker_auth.mosquitto_files import conf_lines

            text = text.replace("allow_anonymous true\n", conf_lines(str(folder)))
        # Started as root, Mosquitto drops to the `mosquitto` user, which can neither
        # read our owner-only password file nor write its persistence file (and log)
        # in our folder -- a restart would then lose every queued message and session.
        # Stay the user who started it.
        text += f"user {getpass.getuser()}\n"
        conf.write_text(text)
        cmd = [shutil.which("mosquitto") or "mosquitto", "-c", str(conf)]
    else:
        conf = folder / "amqtt.yaml"
        conf.write_text(AMQTT_CONF.format(port=port))
        cmd = [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]
    log = (folder / f"{kind}.stdout").open("ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{kind} exited at start (code {proc.returncode}); see {folder}/{kind}.stdout"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            (folder / "pid").write_text(str(proc.pid))
            return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{kind} did not listen on port {port} within 15 s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
