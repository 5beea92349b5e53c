"""The intake benchmark: one command, every figure measured in one run.

    scripts/benchmark                # = .venv/bin/python -m benchmarks.run
    scripts/benchmark --mails 200    # a quicker run (the README table is only rewritten with --write)

Starts a throwaway Dovecot and an aiosmtpd sink on 127.0.0.1 (tests/servers), appends N realistic responses with
2-3 page form PDFs, and runs `postmottak run --once` on them (benchmarks/cycle.py: the CLI's code path in a child
process, so its RSS and its form readers' CPU are its own) with receipts to the sink:
  backlog on 1 core (everything - Dovecot, the sink, the worker - pinned to CPU 0) with 1 form reader,
  then on 2 cores with 1 and with 2 form readers; the floors (pdfplumber extract_words, pypdfium2 text) over the
  same PDFs; idle polls on folders of 200 and 20,000 processed mails; one 30 MB mail; `postmottak import`
  of a large folder under a pseudo-terminal (the progress bar as a user sees it); and, when
  POSTMOTTAK_TEST_DATABASE_URL names a PostgreSQL, benchmarks/fleet.py: two workers on two mailboxes against one
  worker, and the takeover time after a SIGKILL.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pty
import re
import resource
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks import floors, mails
from benchmarks.procs import TreeSampler, set_affinity_tree, tree_cpu_s

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
IDLE_WARMUPS = 3
IDLE_REPEATS = 7


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------- config


def write_config(
    directory: Path, imap: Any, smtp: Any, *, folder: str, parse_workers: int, receipts_batch: int = 200
) -> Path:
    from tests import mailfactory as mf

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "postmottak.toml"
    smtp_section = f'host = "{smtp.host}"\nport = {smtp.port}\nsecurity = "none"\n' if smtp is not None else ""
    imap_section = (
        f'host = "{imap.host}"\nport = {imap.port}\nsecurity = "none"\nusername = "{imap.username}"\n'
        f'password = "{imap.password}"\nfolder = "{folder}"\nprocessed_folder = ""\n'
        if imap is not None
        else ""
    )
    path.write_text(
        f"""# written by benchmarks/run.py (throwaway servers on 127.0.0.1)
[database]
url = "sqlite:///{directory / "postmottak.db"}"
[storage]
path = "{directory / "documents"}"
[imap]
{imap_section}[smtp]
{smtp_section}sender = "postmottak@ehelse.no"
[intake]
parse_workers = {parse_workers}
[receipts]
batch_size = {receipts_batch}
[[cases]]
number = "22/414"
title = "{mf.CASE_TITLE}"
deadline = "2022-10-01"
timezone = "Europe/Oslo"
keywords = ["e-helsestrategi", "e-helsestrategien"]
""",
        encoding="utf-8",
    )
    return path


# ----------------------------------------------------------------------------------------------- one cycle


@dataclass
class CycleRun:
    label: str
    mails: int
    result: dict[str, Any]
    main_peak_rss_mb: float
    readers_peak_rss_mb: float  # the largest form reader
    helpers_peak_rss_mb: float  # forkserver
    tree_peak_rss_mb: float  # worker + every child at the same moment (sampled)
    readers_cpu_s: float
    wall_s: float
    received_receipts: int = 0
    # CPU the rest of the system spent meanwhile: the IMAP server (all its processes) and this process (the SMTP
    # sink's thread, and the sampler, which a one-core run keeps off that core); on one core the sink and Dovecot
    # compete with the worker.
    dovecot_cpu_s: float = 0.0
    runner_cpu_s: float = 0.0

    @property
    def cycle_s(self) -> float:
        return float(self.result["cycle_s"])

    @property
    def mails_per_s(self) -> float:
        return self.mails / self.cycle_s

    def per_mail_ms(self, seconds: float) -> float:
        return 1000 * seconds / self.mails

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["mails_per_s"] = self.mails_per_s
        return data


def run_cycle(label: str, config: Path, mails_expected: int, cpus: str = "") -> CycleRun:
    began = time.perf_counter()
    child = subprocess.Popen(
        [PYTHON, "-m", "benchmarks.cycle", str(config), cpus],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=open(config.parent / "worker.log", "wb"),
        text=True,
    )
    avoid = frozenset(int(cpu) for cpu in cpus.split(",")) if cpus else frozenset()
    sampler = TreeSampler(child.pid, avoid=avoid).start()
    stdout, _ = child.communicate()
    sampler.stop()
    wall = time.perf_counter() - began
    if child.returncode != 0:
        raise SystemExit(f"{label}: the cycle failed (exit {child.returncode}); see {config.parent / 'worker.log'}")
    result = json.loads(stdout.strip().splitlines()[-1])
    if result["errors"]:
        raise SystemExit(f"{label}: cycle errors: {result['errors']}")
    readers = sampler.form_workers()
    helpers = sampler.at_depth(1)
    return CycleRun(
        label=label,
        mails=mails_expected,
        result=result,
        main_peak_rss_mb=max(result["main_peak_rss_kb"], sampler.main().peak_rss_kb) / 1024,
        readers_peak_rss_mb=max((p.peak_rss_kb for p in readers), default=0) / 1024,
        helpers_peak_rss_mb=max((p.peak_rss_kb for p in helpers), default=0) / 1024,
        tree_peak_rss_mb=sampler.peak_tree_rss_kb / 1024,
        readers_cpu_s=sum(p.cpu_s for p in readers),
        wall_s=wall,
    )


# ----------------------------------------------------------------------------------------------- steps


def fill_inbox(imap: Any, n: int, forms: list[tuple[str, bytes]]) -> tuple[Counter[int], int]:
    usage: Counter[int] = Counter()
    total = 0
    client = imap.connect()
    try:
        for index in range(n):
            raw, form_index = mails.response(index, forms)
            usage[form_index] += 1
            total += len(raw)
            client.append("INBOX", raw, msg_time=mails.internaldate(index))
    finally:
        client.logout()
    return usage, total


def backlog(imap: Any, smtp: Any, work: Path, n: int, *, workers: int, cpus: str, label: str) -> CycleRun:
    directory = work / f"backlog-{workers}w-{cpus or 'all'}"
    config = write_config(directory, imap, smtp, folder="INBOX", parse_workers=workers, receipts_batch=n + 10)
    smtp.clear()
    pinned = bool(cpus)
    if pinned:  # the whole system on one core: Dovecot, this process (the SMTP sink's thread), the worker
        everything = {int(cpu) for cpu in cpus.split(",")}
        set_affinity_tree(imap._process.pid, everything)
        set_affinity_tree(os.getpid(), everything)
    try:
        say(f"backlog: {label} ...")
        dovecot_before, runner_before = tree_cpu_s(imap._process.pid), _own_cpu_s()
        run = run_cycle(label, config, n, cpus)
        run.dovecot_cpu_s = tree_cpu_s(imap._process.pid) - dovecot_before
        run.runner_cpu_s = _own_cpu_s() - runner_before
    finally:
        if pinned:
            all_cpus = set(range(os.cpu_count() or 1))
            set_affinity_tree(imap._process.pid, all_cpus)
            set_affinity_tree(os.getpid(), all_cpus)
    run.received_receipts = len(smtp.messages)
    counts = run.result["counts"]
    if run.result["fetched"] != n or counts.get("registered", 0) != n or counts.get("receipt_sent", 0) != n:
        raise SystemExit(f"{label}: expected {n} registered mails and receipts, got {counts}")
    if run.received_receipts != n:
        raise SystemExit(f"{label}: the SMTP sink received {run.received_receipts} receipts, expected {n}")
    say(f"backlog: {label}: {run.mails_per_s:.1f} mails/s")
    shutil.rmtree(directory / "documents", ignore_errors=True)
    return run


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def maildir_of(imap: Any, folder: str) -> Path:
    path = imap.root_dir / "mail" / imap.username / f".{folder}"
    if not path.is_dir():
        raise SystemExit(f"cannot find the Maildir of {folder!r} at {path}")
    return path


def fill_idle_folder(imap: Any, folder: str, count: int) -> list[int]:
    imap.create_folder(folder)
    mails.write_maildir_files(maildir_of(imap, folder), [mails.small(i) for i in range(count)], folder)
    uids = imap.list_uids(folder)  # the SELECT makes Dovecot index the new files
    if len(uids) != count:
        raise SystemExit(f"{folder}: Dovecot indexed {len(uids)} of {count} mails")
    return uids


def idle_polls(imap: Any, work: Path, small: int, large: int) -> dict[str, Any]:
    from postmottak.bootstrap import build_worker, open_database
    from postmottak.casefile import mailboxes
    from postmottak.config.settings import load_settings
    from postmottak.intake.worker import full_cycle

    directory = work / "idle"
    results: dict[str, Any] = {}
    say(f"idle: writing {small} + {large} small mails into two Maildir folders ...")
    began = time.perf_counter()
    folders = {small: f"Idle{small}", large: f"Idle{large}"}
    uids = {count: fill_idle_folder(imap, folder, count) for count, folder in folders.items()}
    results["fill_s"] = time.perf_counter() - began
    intakes = {}
    for count, folder in folders.items():
        settings = load_settings(write_config(directory / folder, imap, None, folder=folder, parse_workers=1))
        intake = build_worker(settings, open_database(settings))
        intakes[count] = intake
        if count == small:
            # Really processed: one ordinary cycle registers them.
            report = full_cycle(intake)
            if report.fetched != count:
                raise SystemExit(f"{folder}: the first cycle fetched {report.fetched} of {count}")
        else:
            # Marked processed by setting the folder's high-water mark (what a processed cycle leaves behind).
            with intake.db.session() as session:
                mailboxes.start_epoch(session, intake.source.source_key, imap.uidvalidity(folder))
                mailboxes.get_state(session, intake.source.source_key).last_uid = max(uids[count])
    say("idle: polling ...")
    for count, intake in intakes.items():
        # Warm up: connection code paths and caches, and Dovecot's own index and cache files - the 20,000 mails
        # were written as files behind its back, so its first SELECTs of that folder build them (about 1 s each).
        for _ in range(IDLE_WARMUPS):
            full_cycle(intake)
        timings = []
        for _ in range(IDLE_REPEATS):
            began = time.perf_counter()
            report = full_cycle(intake)
            timings.append(time.perf_counter() - began)
            if report.fetched or not report.ok:
                raise SystemExit(f"idle poll on {count} mails fetched {report.fetched}: {report.summary()}")
        results[str(count)] = {"median_s": statistics.median(timings), "all_s": timings}
        intake.close()
    results["ratio"] = results[str(large)]["median_s"] / results[str(small)]["median_s"]
    return results


def git_commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()


def git_dirty() -> bool:
    """Whether the measured code differs from the commit (tracked files changed; untracked files ignored)."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
    )
    return bool(status.stdout.strip())


def big_mail(imap: Any, smtp: Any, work: Path, size_mb: int, forms: list[tuple[str, bytes]]) -> CycleRun:
    folder = "Big"
    raw = mails.big_mail(size_mb * 1024 * 1024, forms)
    imap.create_folder(folder)
    client = imap.connect()
    try:
        client.append(folder, raw, msg_time=mails.internaldate(0))
    finally:
        client.logout()
    config = write_config(work / "big", imap, smtp, folder=folder, parse_workers=0)
    say(f"memory: one {len(raw) / 1024 / 1024:.1f} MB mail ...")
    receipts_before = len(smtp.messages)
    run = run_cycle(f"one {size_mb} MB mail", config, 1)
    run.received_receipts = len(smtp.messages) - receipts_before
    run.result["raw_mb"] = len(raw) / 1024 / 1024
    if run.result["fetched"] != 1:
        raise SystemExit(f"the {size_mb} MB mail was not fetched: {run.result}")
    if run.received_receipts != run.result["counts"].get("receipt_sent", 0):
        raise SystemExit(f"the SMTP sink received {run.received_receipts} receipts; the worker reported {run.result}")
    return run


def import_folder(work: Path, n: int, forms: list[tuple[str, bytes]]) -> dict[str, Any]:
    """`postmottak import PATH` on a folder of N .eml files under a pseudo-terminal: what a user sees."""
    export = work / "export"
    export.mkdir(parents=True, exist_ok=True)
    for index in range(n):
        raw, _ = mails.response(100_000 + index, forms)
        (export / f"{index:06d}.eml").write_bytes(raw)
    config = write_config(work / "import", None, None, folder="INBOX", parse_workers=0)
    say(f"import: postmottak import of {n} .eml files under a pseudo-terminal ...")
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env.pop("NO_COLOR", None)
    master, slave = pty.openpty()
    began = time.perf_counter()
    process = subprocess.Popen(
        [PYTHON, "-m", "postmottak", "--config", str(config), "import", str(export)],
        cwd=REPO,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    output = bytearray()
    frames: list[tuple[float, bytes]] = []
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            frames.append((time.perf_counter() - began, chunk))
        elif process.poll() is not None:
            break
    process.wait()
    wall = time.perf_counter() - began
    os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode("utf-8", "replace"))
    (work / "import" / "terminal.txt").write_text(text, encoding="utf-8")
    redraws = [line for line in re.split(r"[\r\n]", text) if "Importerer" in line]
    middle = [line for line in redraws if re.search(r"\b(\d+)/%d\b" % n, line) and f"{n}/{n}" not in line]
    with_rate = [line for line in middle if "e-post/s" in line]
    with_eta = [line for line in middle if re.search(r"igjen\s+\d+:\d\d:\d\d", line)]
    sample = with_eta[len(with_eta) // 2] if with_eta else (middle[len(middle) // 2] if middle else "")
    return {
        "mails": n,
        "exit_code": process.returncode,
        "wall_s": wall,
        "mails_per_s": n / wall,
        "redraws": len(redraws),
        "redraws_mid_import": len(middle),
        "with_rate": len(with_rate),
        "with_eta": len(with_eta),
        "finished_line": next((line.strip() for line in reversed(redraws) if f"{n}/{n}" in line), ""),
        "sample_line": sample.strip(),
        "summary": next((line.strip() for line in reversed(text.splitlines()) if "fetched" in line), ""),
        "ok": process.returncode == 0 and bool(with_rate) and bool(with_eta),
    }


def fleet_runs(work: Path, per_mailbox: int, forms: list[tuple[str, bytes]]) -> dict[str, Any] | None:
    """benchmarks/fleet.py: one worker, then two, on two mailboxes of N mails each (PostgreSQL, leases)."""
    if per_mailbox <= 0 or not os.environ.get("POSTMOTTAK_TEST_DATABASE_URL"):
        say("fleet: skipped (set POSTMOTTAK_TEST_DATABASE_URL to a PostgreSQL to run it)")
        return None
    from benchmarks import fleet

    say(f"fleet: one worker, two mailboxes of {per_mailbox} ...")
    one = fleet.one_run(work / "fleet", per_mailbox, 1, forms, takeover=False)
    say("fleet: two workers, two mailboxes, then a SIGKILL ...")
    two = fleet.one_run(work / "fleet", per_mailbox, 2, forms, takeover=True)
    return {
        "one_worker": one,
        "two_workers": two,
        "throughput_ratio": two["mails_per_s"] / one["mails_per_s"],
        "lease_s": fleet.LEASE_S,
        "renew_s": fleet.RENEW_S,
    }


# ----------------------------------------------------------------------------------------------- report


def machine() -> dict[str, str]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": f"{model or platform.processor()} x {os.cpu_count()}",
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "disk": str(tempfile.gettempdir()),
        "load_average_at_start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def render(results: dict[str, Any]) -> str:
    from benchmarks.report import render_markdown

    return render_markdown(results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=1000, help="backlog size (default 1000)")
    parser.add_argument("--idle-small", type=int, default=200)
    parser.add_argument("--idle-large", type=int, default=20_000)
    parser.add_argument("--big-mb", type=int, default=30, help="size of the one big mail (default 30 MB)")
    parser.add_argument("--import-mails", type=int, default=None, help="folder import size (default = --mails)")
    parser.add_argument(
        "--fleet-mails", type=int, default=40, help="mails per mailbox in the fleet run (0: skip; needs PostgreSQL)"
    )
    parser.add_argument("--write", action="store_true", help="write the table into benchmarks/README.md")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (databases, logs)")
    args = parser.parse_args(argv)

    from tests.servers.dovecot import DovecotServer, dovecot_available
    from tests.servers.smtp import SmtpSink

    if not dovecot_available():
        raise SystemExit("Dovecot is not installed; run scripts/ensure-system-packages")
    command = "scripts/benchmark" + (
        "" if argv is None and len(sys.argv) == 1 else " " + " ".join(argv or sys.argv[1:])
    )
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="postmottak-bench-"))
    results: dict[str, Any] = {
        "command": command,
        "date": datetime.now(timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(),
        "git": git_commit(),
        "git_dirty": git_dirty(),
        "mails": args.mails,
    }
    n = args.mails
    try:
        with DovecotServer() as imap, SmtpSink() as smtp:
            forms = mails.form_pdfs()
            say(f"appending {n} response mails to Dovecot ...")
            began = time.perf_counter()
            usage, total_bytes = fill_inbox(imap, n, forms)
            results["append_s"] = time.perf_counter() - began
            results["backlog_mb"] = total_bytes / 1024 / 1024
            results["forms"] = {name: usage[i] for i, (name, _) in enumerate(forms)}

            runs = [
                backlog(imap, smtp, work, n, workers=1, cpus="0", label="1 core, 1 form reader"),
                backlog(imap, smtp, work, n, workers=1, cpus="", label="2 cores, 1 form reader"),
                backlog(imap, smtp, work, n, workers=2, cpus="", label="2 cores, 2 form readers"),
            ]
            results["backlog"] = [run.as_dict() for run in runs]

            say("floors: pdfplumber extract_words and pypdfium2 text over the same PDFs ...")
            os.sched_setaffinity(0, {0})
            pdfs = [data for _, data in forms]
            results["floors"] = {
                "pdfplumber_s": floors.per_mail_floor(pdfs, usage, floors.pdfplumber_words),
                "pdfium_s": floors.per_mail_floor(pdfs, usage, floors.pdfium_text),
            }
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))

            results["idle"] = idle_polls(imap, work, args.idle_small, args.idle_large)
            results["big"] = big_mail(imap, smtp, work, args.big_mb, forms).as_dict()
        results["import"] = import_folder(work, args.import_mails or n, forms)
        results["fleet"] = fleet_runs(work, args.fleet_mails, forms)
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["total_s"] = time.perf_counter() - started
    results["load_average_at_end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    (REPO / "benchmarks" / "last-run.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = render(results)
    print(table)
    if args.write:
        from benchmarks.report import write_readme

        write_readme(REPO / "benchmarks" / "README.md", table)
        say("wrote benchmarks/README.md")
    say(f"done in {results['total_s']:.0f} s")


if __name__ == "__main__":
    main()
