from __future__ import annotations

from dataclasses import dataclass
from itertools import chain, repeat

from postmottak.intake.backoff import BackoffCycle


@dataclass
class Result:
    ok: bool


def test_backoff_doubles_after_repeated_failures_and_resets_on_success() -> None:
    now = [0.0]
    outcomes = chain([False, False, False, False, True], repeat(False))
    calls: list[float] = []

    def cycle() -> Result:
        calls.append(now[0])
        return Result(next(outcomes))

    backoff = BackoffCycle(cycle, 60, max_seconds=900, clock=lambda: now[0])
    for _ in range(40):  # the scheduler calls every 60 s
        backoff()
        now[0] += 60
    # fail at 0 -> next at 60 (no extra); fail at 60 -> +60 extra; fail at 180 -> +180; fail at 420 -> +420 ...
    assert calls[:5] == [0, 60, 180, 420, 900]
    assert calls[5] == 960, "a success resets the backoff: the next failure is retried at the next interval"


def test_backoff_is_capped() -> None:
    now = [0.0]
    calls: list[float] = []

    def cycle() -> Result:
        calls.append(now[0])
        return Result(False)

    backoff = BackoffCycle(cycle, 60, max_seconds=300, clock=lambda: now[0])
    for _ in range(100):
        backoff()
        now[0] += 60
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert max(gaps) <= 360 and gaps[-1] == 360
