"""One `postmottak run --once` in a process of its own, reporting its timings as JSON on stdout.

Runs exactly what the CLI's `run --once` runs (settings -> build_worker -> intake.worker.full_cycle -> close);
the only addition is a stopwatch around the receipts passes (intake.receipts.ReceiptSender.send_due, in the
receipts thread that runs alongside the intake cycle). Usage: python -m benchmarks.cycle CONFIG [CPU,CPU...]
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
    from postmottak.bootstrap import build_worker
    from postmottak.config.settings import load_settings
    from postmottak.intake import receipts
    from postmottak.intake.cli import setup_logging
    from postmottak.intake.worker import full_cycle

    setup_logging(False)
    smtp_seconds = [0.0]
    send_due = receipts.ReceiptSender.send_due

    def timed_send_due(*args, **kwargs):  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        try:
            return send_due(*args, **kwargs)
        finally:
            smtp_seconds[0] += time.perf_counter() - began

    receipts.ReceiptSender.send_due = timed_send_due  # type: ignore[method-assign]
    intake = build_worker(load_settings(config))
    ready = time.perf_counter()
    cpu_before = _cpu_s()
    report = full_cycle(intake)
    cycled = time.perf_counter()
    cycle_cpu = _cpu_s() - cpu_before
    intake.close()
    closed = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "startup_s": ready - started,
                "cycle_s": cycled - ready,
                "close_s": closed - cycled,
                "fetched": report.fetched,
                "counts": dict(report.counts),
                "errors": report.errors,
                "timings": dict(intake.timings),
                "smtp_s": smtp_seconds[0],
                "main_cpu_s": usage.ru_utime + usage.ru_stime,
                "cycle_cpu_s": cycle_cpu,
                "main_peak_rss_kb": _peak_rss_kb(),
            }
        )
    )


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_kb() -> int:
    """This process's own peak RSS (VmHWM). Not ru_maxrss: Linux carries the RSS of the process that spawned
    us over the exec into it (subprocess forks with vfork), so it reported the benchmark runner's size."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


if __name__ == "__main__":
    main()
