"""Process-tree sampling from /proc (no extra dependency): RSS and CPU of a process and each of its descendants."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds user+system) of a live process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rindex(b")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def tree_cpu_s(root: int) -> float:
    """CPU seconds of `root`, of its children it has reaped (cutime, cstime) and of its live descendants: what a
    server such as Dovecot, which forks a process per connection, has spent in all."""
    try:
        with open(f"/proc/{root}/stat", "rb") as handle:
            text = handle.read()
    except OSError:
        return 0.0
    fields = text[text.rindex(b")") + 2 :].split()
    total = sum(int(value) for value in fields[11:15]) / TICKS
    for pid in descendants(root):
        info = _stat(pid)
        if info is not None:
            total += info[1]
    return total


def _memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB: current and peak resident set size."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def descendants(root: int) -> dict[int, int]:
    """Every live descendant of `root` with its depth below it (1 = child)."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = _stat(int(name))
            if info is not None:
                parents[int(name)] = info[0]
    depth: dict[int, int] = {}
    frontier = [root]
    level = 0
    while frontier:
        level += 1
        wanted = set(frontier)
        frontier = [pid for pid, parent in parents.items() if parent in wanted]
        for pid in frontier:
            depth[pid] = level
    return depth


def set_affinity_tree(root: int, cpus: set[int]) -> None:
    """Pin a process, all its threads and all its descendants (new children and threads inherit it)."""
    for pid in [root, *descendants(root)]:
        try:
            threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in threads:
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:
                pass


@dataclass
class ProcessStats:
    depth: int
    peak_rss_kb: int = 0
    cpu_s: float = 0.0


@dataclass
class TreeSampler:
    """Samples a process and its descendants every `interval` s until stop(); VmHWM gives exact per-process peaks."""

    root: int
    interval: float = 0.05
    # CPUs the sampler must not run on (the core a one-core run is pinned to): the instrument is not to take CPU
    # from what it measures, so it moves to the other CPUs when there are any.
    avoid: frozenset[int] = frozenset()
    processes: dict[int, ProcessStats] = field(default_factory=dict)
    peak_tree_rss_kb: int = 0
    peak_children_rss_kb: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "TreeSampler":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        elsewhere = set(range(os.cpu_count() or 1)) - self.avoid
        if self.avoid and elsewhere:
            os.sched_setaffinity(threading.get_native_id(), elsewhere)
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        tree = {self.root: 0, **descendants(self.root)}
        total = children = 0
        for pid, depth in tree.items():
            info = _stat(pid)
            rss, hwm = _memory_kb(pid)
            if info is None:
                continue
            stats = self.processes.setdefault(pid, ProcessStats(depth))
            stats.peak_rss_kb = max(stats.peak_rss_kb, hwm, rss)
            stats.cpu_s = max(stats.cpu_s, info[1])
            total += rss
            if depth:
                children += rss
        self.peak_tree_rss_kb = max(self.peak_tree_rss_kb, total)
        self.peak_children_rss_kb = max(self.peak_children_rss_kb, children)

    # Summaries: depth 0 = the worker (main) process, 1 = its helpers (forkserver), 2 = form reader processes.
    def main(self) -> ProcessStats:
        return self.processes.get(self.root, ProcessStats(0))

    def at_depth(self, depth: int) -> list[ProcessStats]:
        return [stats for stats in self.processes.values() if stats.depth == depth]

    def form_workers(self) -> list[ProcessStats]:
        return [stats for stats in self.processes.values() if stats.depth >= 2]
