"""Back off after failed cycles: a mailbox or database that is down is not hammered every interval.

The first failure changes nothing (the next scheduled cycle tries again); each further failure in a row skips
cycles for twice as long as the last, up to `max_seconds`. A success resets it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Report(Protocol):
    @property
    def ok(self) -> bool: ...


class BackoffCycle:
    def __init__(
        self,
        cycle: Callable[[], Report],
        interval_seconds: float,
        *,
        max_seconds: float = 900,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cycle = cycle
        self.interval = interval_seconds
        self.max_seconds = max_seconds
        self.clock = clock
        self.failures = 0
        self.not_before = 0.0

    def __call__(self) -> Report | None:
        now = self.clock()
        if now < self.not_before:
            log.info("backing off after %d failed cycles; next try in %.0f s", self.failures, self.not_before - now)
            return None
        report = self.cycle()
        if report.ok:
            if self.failures:
                log.info("cycle succeeded again after %d failed ones", self.failures)
            self.failures, self.not_before = 0, 0.0
            return report
        self.failures += 1
        extra = min(self.interval * (2 ** (self.failures - 1) - 1), self.max_seconds)
        # Half an interval of slack, so a scheduler tick a moment early does not slip through.
        self.not_before = self.clock() + extra + (self.interval / 2 if extra else 0.0)
        if extra:
            log.warning("%d failed cycles in a row; waiting %.0f s more before the next try", self.failures, extra)
        return report
