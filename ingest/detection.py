"""Detection beside the ingest: a child process fed committed batches, and watched.

The ingest's writer thread hands each committed batch's readings to
:meth:`DetectionWorker.submit`, which only encodes them (msgspec msgpack, one C call)
and queues the bytes: a slow rule, a slow alert write or a dead detection process
never holds up ingest.  A link thread writes the frames to the detection process
(:mod:`ingest.detection_process`), which does the rules, the alerts and the NOTIFY
on the other core.

The child is watched: when it dies (a crash, the OOM killer, a SIGKILL) the link
thread notices within a poll interval, starts a new one, and sends it again the
frames whose findings the dead one had not committed -- an SOS in flight at the
crash still alarms.  The new process restores the rules' state saved last (every
``snapshot_s``), so what is lost to a crash is at most that much rule history, never
a reading that arrives after it.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import multiprocessing as mp
import queue
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from eldercare import logs
from ingest.detection_process import SEQ, STOP, Counters, Options, main
from ingest.detection_wire import Item, encode_batch

log = logging.getLogger("eldercare.detection")
POLL_S = 0.1  # how soon a dead detection process is noticed when idle
UNACKED_MAX = 200_000  # readings kept for a resend; beyond, the oldest are given up
QUICK_DEATH_S = 5.0  # a process that dies sooner than this is restarted with backoff


class DetectionWorker:
    def __init__(
        self,
        database_url: str,
        *,
        tick_s: float = 5.0,
        snapshot_s: float = 60.0,
        batch_max: int = 5000,
        linger_s: float = 0.05,
    ) -> None:
        self.database_url = database_url
        self.options = Options(
            tick_s=tick_s, snapshot_s=snapshot_s, batch_max=batch_max, linger_s=linger_s
        )
        self._ctx = mp.get_context("spawn")  # no fork of a process holding threads and sockets
        self._counters: Any = None
        self._outbox: queue.SimpleQueue[tuple[int, int, bytes]] = queue.SimpleQueue()
        self._unacked: collections.deque[tuple[int, int, bytes]] = collections.deque()
        self._unacked_readings = 0
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: Any = None
        self._link: Connection | None = None
        self._started_at = 0.0
        self._backoff = 0.5
        self.readings_submitted = 0
        self.restarts = 0

    # --- producer side: the ingest writer thread -------------------------------

    def submit(self, readings: list[Item]) -> None:
        if readings:
            self._seq += 1
            self._outbox.put(
                (self._seq, len(readings), SEQ.pack(self._seq) + encode_batch(readings))
            )
            self.readings_submitted += len(readings)

    # --- what the detection process reports ----------------------------------------

    @property
    def readings_done(self) -> int:
        return int(self._counters[Counters.READINGS]) if self._counters is not None else 0

    @property
    def alerts_recorded(self) -> int:
        return int(self._counters[Counters.ALERTS]) if self._counters is not None else 0

    @property
    def errors(self) -> int:
        return int(self._counters[Counters.ERRORS]) if self._counters is not None else 0

    @property
    def ready(self) -> bool:
        return self._counters is not None and bool(self._counters[Counters.READY])

    @property
    def restored(self) -> bool:
        """Every saved rule state is back (it is restored lazily after ``ready``)."""
        return self._counters is not None and bool(self._counters[Counters.RESTORED])

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def snapshot_cost(self) -> tuple[float, int]:
        """The last snapshot save: seconds, rows written."""
        if self._counters is None:
            return 0.0, 0
        return self._counters[Counters.SNAPSHOT_US] / 1e6, int(
            self._counters[Counters.SNAPSHOT_ROWS]
        )

    # --- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:  # started already (e.g. ahead of its ingest)
            return
        self._counters = self._ctx.RawArray("q", Counters.SIZE)
        self._spawn()
        self._thread = threading.Thread(target=self._run, name="detection-link", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 20.0) -> None:
        """Send what is queued, then ask the process to save its state and end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        process, link = self._process, self._link
        if process is None:
            return
        if self._thread is not None and self._thread.is_alive():
            # Still blocked writing a frame: a STOP frame now would interleave with it.
            process.terminate()  # SIGTERM: the process saves its state and ends
        elif link is not None:
            with contextlib.suppress(OSError):  # already gone: nothing to ask
                link.send_bytes(STOP)
        process.join(timeout)
        if process.is_alive():
            log.warning("detection process did not stop in %.0f s; killing it", timeout)
            process.kill()
            process.join(5)
        if link is not None:
            link.close()

    # --- the link thread ---------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                frame = self._outbox.get(timeout=POLL_S)
            except queue.Empty:
                if self._stop.is_set():
                    return
                frame = None
            if not self._process.is_alive():
                self._restart()
            if frame is not None:
                self._unacked.append(frame)
                self._unacked_readings += frame[1]
                self._forget_acked()
                self._send(frame[2])

    def _send(self, data: bytes) -> None:
        assert self._link is not None
        try:
            self._link.send_bytes(data)
        except OSError:  # the process died while we wrote; the restart resends this frame
            self._restart()

    def _forget_acked(self) -> None:
        acked = self._counters[Counters.ACKED]
        while self._unacked and (self._unacked[0][0] <= acked or self._too_many()):
            _, n, _ = self._unacked.popleft()
            self._unacked_readings -= n

    def _too_many(self) -> bool:
        if self._unacked_readings > UNACKED_MAX:
            log.warning("detection far behind: oldest readings will not be resent on a crash")
            return True
        return False

    def _restart(self) -> None:
        while not self._process.is_alive():
            if self._stop.is_set():  # shutting down: no new process to save state for
                return
            code = self._process.exitcode
            lived = time.monotonic() - self._started_at
            log.error("detection process ended (exit code %s); starting a new one", code)
            if lived < QUICK_DEATH_S:
                if self._stop.wait(self._backoff):
                    return
                self._backoff = min(self._backoff * 2, 10.0)
            else:
                self._backoff = 0.5
            if self._link is not None:
                self._link.close()
            self.restarts += 1
            self._counters[Counters.READY] = self._counters[Counters.RESTORED] = 0
            self._spawn()
            self._forget_acked()
            try:
                for _, _, data in list(self._unacked):
                    self._link.send_bytes(data)  # type: ignore[union-attr]
            except OSError:
                continue  # died again at once: the loop starts another

    def _spawn(self) -> None:
        reader, writer = self._ctx.Pipe(duplex=False)
        options = Options(
            **{
                **self.options.__dict__,
                "log_level": logging.getLogger().getEffectiveLevel(),
                "log_format": logs.current_format(),
            }
        )
        process = self._ctx.Process(
            target=main,
            args=(self.database_url, reader, self._counters, options),
            name="eldercare-detection",
            daemon=True,
        )
        process.start()
        reader.close()  # the child's end: closed here so the child sees EOF if we die
        self._process, self._link = process, writer
        self._started_at = time.monotonic()
        log.info("detection process started (pid %s)", process.pid)
