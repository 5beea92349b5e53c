"""One `postmottak run --once` in a process of its own, reporting its timings as JSON on stdout.

Runs exactly what the CLI's `run --once` runs (settings -> make_intake -> intake.worker.full_cycle -> close);
the only addition is a stopwatch around the receipts step (intake.receipts.send_pending), which full_cycle
looks up at call time. Usage: python -m benchmarks.cycle CONFIG [CPU,CPU...]
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time


def main() -> None:
    config = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2]:
        os.sched_setaffinity(0, {int(cpu) for cpu in sys.argv[2].split(",")})  # inherited by the form readers
    started = time.perf_counter()
    from config.settings import load_settings
    from intake import receipts
    from intake.app import make_intake
    from intake.cli import setup_logging
    from intake.worker import full_cycle

    setup_logging(False)
    smtp_seconds = [0.0]
    send_pending = receipts.send_pending

    def timed_send_pending(*args, **kwargs):  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        try:
            return send_pending(*args, **kwargs)
        finally:
            smtp_seconds[0] += time.perf_counter() - began

    receipts.send_pending = timed_send_pending  # type: ignore[assignment]
    intake = make_intake(load_settings(config))
    ready = time.perf_counter()
    report = full_cycle(intake)
    cycled = time.perf_counter()
    intake.close()
    closed = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "startup_s": ready - started,
        "cycle_s": cycled - ready,
        "close_s": closed - cycled,
        "fetched": report.fetched,
        "counts": dict(report.counts),
        "errors": report.errors,
        "timings": dict(intake.timings),
        "smtp_s": smtp_seconds[0],
        "main_cpu_s": usage.ru_utime + usage.ru_stime,
        "main_peak_rss_kb": usage.ru_maxrss,
    }))


if __name__ == "__main__":
    main()
