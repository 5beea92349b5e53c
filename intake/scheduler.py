"""`postmottak run`: one cycle every interval_seconds, never two at once, clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timezone

from apscheduler.schedulers.blocking import BlockingScheduler

log = logging.getLogger(__name__)


def run_forever(cycle: Callable[[], object], interval_seconds: int) -> None:
    scheduler = BlockingScheduler(timezone=timezone.utc)
    # coalesce + max_instances=1: a slow cycle delays the next one instead of overlapping it or piling up runs.
    scheduler.add_job(
        cycle,
        "interval",
        seconds=interval_seconds,
        next_run_time=datetime.now(timezone.utc),
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
        id="intake-cycle",
    )
    stopping = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        if stopping.is_set():
            return
        stopping.set()
        log.info("received %s; finishing the current cycle and stopping", signal.Signals(signum).name)
        # wait=True lets a running cycle finish its current mail; nothing is half-registered either way.
        threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("polling every %ss; stop with SIGTERM or Ctrl-C", interval_seconds)
    scheduler.start()
    log.info("stopped")
