"""`postmottak run`: one cycle every interval_seconds, never two at once, clean stop on SIGTERM/SIGINT.

With a watcher (IMAP IDLE, intake/idle.py) a new mail also starts a cycle at once; the interval poll stays as the
safety net. Both paths go through one SerialCycle, so cycles never overlap.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

log = logging.getLogger(__name__)

JOB_ID = "intake-cycle"
WAKE_JOB_ID = "intake-wake"


@dataclass(frozen=True)
class SideJob:
    """Work beside the intake (staff alerts and digest): its own job in the scheduler's thread pool, so a slow or
    failing one never delays a cycle; never two runs of it at once; an error is logged and the next run tries again."""

    name: str
    run: Callable[[], object]
    interval_seconds: int

    def __call__(self) -> None:
        try:
            self.run()
        except Exception:
            log.exception("%s failed; trying again in %s s", self.name, self.interval_seconds)


class Watcher(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class SerialCycle:
    """Runs the cycle one at a time for the interval job and for wake-ups.

    A wake-up that arrives while a cycle runs is not lost: it makes exactly one more cycle run right after (the
    running one may have searched the folder before the new mail arrived). Requests coalesce.
    """

    def __init__(self, cycle: Callable[[], object]) -> None:
        self._cycle = cycle
        self._lock = threading.Lock()
        self._requested = threading.Event()
        self.stopping = threading.Event()

    def scheduled(self) -> None:
        """The interval job: a cycle, unless one is running already (then this poll is not needed)."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._run_locked()
        finally:
            self._lock.release()

    def request(self) -> None:
        """Ask for a cycle soon; call drain() (in a worker thread) to run it."""
        self._requested.set()

    def drain(self) -> None:
        """Run cycles while requested; waits for a running cycle first."""
        while self._requested.is_set() and not self.stopping.is_set():
            with self._lock:
                if not self._requested.is_set() or self.stopping.is_set():
                    return
                self._run_locked()

    def _run_locked(self) -> None:
        self._requested.clear()  # before the cycle searches the folder: later mail asks again
        self._cycle()


def wake_scheduler(scheduler: BaseScheduler, serial: SerialCycle) -> Callable[[], None]:
    """A wake-up function for watchers: a cycle now (in the scheduler's thread pool), one at a time."""

    def wake() -> None:
        if serial.stopping.is_set():
            return
        serial.request()
        try:
            # replace_existing: wake-ups not yet started collapse into one; a few may wait on the lock at most.
            scheduler.add_job(
                serial.drain,
                "date",
                run_date=datetime.now(timezone.utc),
                id=WAKE_JOB_ID,
                replace_existing=True,
                max_instances=3,
                misfire_grace_time=None,
            )
        except Exception:
            log.debug("cannot schedule a wake-up cycle", exc_info=True)

    return wake


def run_forever(
    cycle: Callable[[], object],
    interval_seconds: int,
    *,
    watcher: Callable[[Callable[[], None]], Watcher] | None = None,
    side_jobs: Sequence[SideJob] = (),
) -> None:
    """Run until SIGTERM/SIGINT. `watcher(wake)` builds a watcher that calls wake() when new mail arrives;
    `side_jobs` run on their own intervals beside the cycle."""
    scheduler = BlockingScheduler(timezone=timezone.utc)
    serial = SerialCycle(cycle)
    # coalesce + max_instances=1: a slow cycle delays the next one instead of overlapping it or piling up runs.
    scheduler.add_job(
        serial.scheduled,
        "interval",
        seconds=interval_seconds,
        next_run_time=datetime.now(timezone.utc),
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
        id=JOB_ID,
    )
    for job in side_jobs:
        scheduler.add_job(
            job,
            "interval",
            seconds=job.interval_seconds,
            next_run_time=datetime.now(timezone.utc),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            id=f"side-{job.name}",
        )
    running_watcher = watcher(wake_scheduler(scheduler, serial)) if watcher is not None else None
    stopping = threading.Event()

    def _shutdown() -> None:
        serial.stopping.set()
        if running_watcher is not None:
            running_watcher.stop()
        scheduler.shutdown(wait=True)

    def _stop(signum: int, _frame: object) -> None:
        if stopping.is_set():
            return
        stopping.set()
        log.info("received %s; finishing the current cycle and stopping", signal.Signals(signum).name)
        # wait=True lets a running cycle finish its current mail; nothing is half-registered either way.
        threading.Thread(target=_shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("polling every %ss; stop with SIGTERM or Ctrl-C", interval_seconds)
    if running_watcher is not None:
        running_watcher.start()
    scheduler.start()
    log.info("stopped")
