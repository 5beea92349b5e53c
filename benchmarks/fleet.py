"""Several workers on several mailboxes: throughput of two workers on two mailboxes against one worker on the same
two, the takeover time after a SIGKILL, and each worker's peak RSS. Needs Dovecot and a PostgreSQL.

    .venv/bin/python -m benchmarks.fleet --mails 100     # per mailbox; POSTMOTTAK_TEST_DATABASE_URL names the server

Each run gets a throwaway PostgreSQL schema and a fresh Dovecot holding two folders of N responses with a 2-3 page
form PDF (benchmarks/mails.py). The workers are `postmottak run` processes with `[leases]` (receipts off: this is
about intake). They start on empty folders and share the mailboxes out first; then the mail is appended, and
throughput is measured from the first append to the last registration (process start-up left out). The takeover
is timed from the SIGKILL of one worker (its whole process group) to the grant of its mailbox to the survivor, with
a lease of LEASE_S seconds renewed every RENEW_S.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks import mails
from benchmarks.procs import _memory_kb

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("INBOX", "Horing")
LEASE_S = 10
RENEW_S = 2


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def config(directory: Path, db_url: str, imap: Any) -> Path:
    from tests import mailfactory as mf

    password = directory / "imap-password"
    password.write_text(imap.password, encoding="utf-8")
    lines = [
        "[database]",
        f'url = "{db_url}"',
        "[storage]",
        f'path = "{directory / "documents"}"',
        "[schedule]",
        "interval_seconds = 1",
        "[intake]",
        "parse_workers = 1",
        "[receipts]",
        "enabled = false",
        "[leases]",
        f"seconds = {LEASE_S}",
        f"renew_seconds = {RENEW_S}",
        "[[cases]]",
        'number = "22/414"',
        f'title = "{mf.CASE_TITLE}"',
        'deadline = "2022-10-01"',
    ]
    for folder in FOLDERS:
        lines += [
            "[[mailboxes]]",
            f'name = "{folder.lower()}"',
            "[mailboxes.imap]",
            f'host = "{imap.host}"',
            f"port = {imap.port}",
            'security = "none"',
            f'username = "{imap.username}"',
            f'password_file = "{password}"',
            f'folder = "{folder}"',
            "idle = false",
        ]
    path = directory / "postmottak.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_worker(config_path: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "postmottak", "--config", str(config_path), "run"],
            cwd=REPO,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def one_run(work: Path, n: int, workers: int, forms: list[tuple[str, bytes]], *, takeover: bool) -> dict[str, Any]:
    from sqlalchemy import func, select

    from postmottak.casefile import models as m
    from postmottak.casefile.db import Database
    from tests.dbutil import database_url
    from tests.servers.dovecot import DovecotServer

    directory = work / f"{workers}-workers"
    directory.mkdir(parents=True)
    result: dict[str, Any] = {"workers": workers, "mailboxes": len(FOLDERS), "mails": n * len(FOLDERS)}
    with DovecotServer() as imap, database_url("postgresql", directory) as db_url:
        prepared = {
            folder: [mails.response(index + (100000 if folder != "INBOX" else 0), forms)[0] for index in range(n)]
            for folder in FOLDERS
        }
        client = imap.connect()
        for folder in FOLDERS[1:]:
            client.create_folder(folder)
        Database(db_url).upgrade()
        db = Database(db_url)
        cfg = config(directory, db_url, imap)
        processes = [start_worker(cfg, directory / f"worker{i}.log") for i in range(workers)]
        try:
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline:  # every worker holds its share before any mail arrives
                with db.session() as session:
                    holders = [row.holder for row in session.scalars(select(m.MailboxLease))]
                if len(holders) == len(FOLDERS) and None not in holders and len(set(holders)) == workers:
                    break
                time.sleep(0.5)
            appended_at = datetime.now(timezone.utc)
            for index in range(n):
                for folder in FOLDERS:
                    client.append(folder, prepared[folder][index], msg_time=mails.internaldate(index))
            client.logout()
            total = n * len(FOLDERS)
            while time.monotonic() < deadline:
                with db.session() as session:
                    done = session.scalar(select(func.count()).select_from(m.MailLocation)) or 0
                if done >= total:
                    break
                time.sleep(0.5)
            else:
                raise SystemExit(f"{workers} workers: only {done} of {total} registered")
            with db.session() as session:
                last_record = session.scalar(select(func.max(m.IntakeRecord.created_at)))
                holders = {row.mailbox: row.holder for row in session.scalars(select(m.MailboxLease))}
            seconds = (last_record - appended_at).total_seconds()
            result.update(
                seconds=round(seconds, 2), mails_per_s=round(total / seconds, 2), holders=len(set(holders.values()))
            )
            result["peak_rss_mb"] = [round(_memory_kb(p.pid)[1] / 1024) for p in processes]
            if takeover and workers > 1:
                victim_id = next(iter(holders.values()))  # a worker that holds a mailbox
                with db.session() as session:
                    victim_pid = session.scalar(select(m.Worker.pid).where(m.Worker.id == victim_id))
                victim = next(process for process in processes if process.pid == victim_pid)
                os.killpg(victim.pid, signal.SIGKILL)
                killed = datetime.now(timezone.utc)
                victim.wait()
                grant = None
                while grant is None and time.monotonic() < deadline:
                    with db.session() as session:
                        grant = session.scalar(
                            select(func.min(m.LeaseGrant.acquired_at)).where(m.LeaseGrant.previous_holder == victim_id)
                        )
                    time.sleep(0.1)
                result["takeover_s"] = round((grant - killed).total_seconds(), 2) if grant else None
                result["lease_s"], result["renew_s"] = LEASE_S, RENEW_S
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
            db.dispose()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=100, help="responses per mailbox")
    args = parser.parse_args(argv)
    if not os.environ.get("POSTMOTTAK_TEST_DATABASE_URL"):
        raise SystemExit("set POSTMOTTAK_TEST_DATABASE_URL to a PostgreSQL (a throwaway schema is used)")
    import tempfile

    forms = mails.form_pdfs()
    with tempfile.TemporaryDirectory(prefix="postmottak-fleet-") as tmp:
        work = Path(tmp)
        say(f"one worker, two mailboxes of {args.mails} ...")
        one = one_run(work, args.mails, 1, forms, takeover=False)
        say(f"  {one}")
        say("two workers, two mailboxes ...")
        two = one_run(work, args.mails, 2, forms, takeover=True)
        say(f"  {two}")
    results = {
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_at_end": os.getloadavg(),
        "one_worker": one,
        "two_workers": two,
        "throughput_ratio": round(two["mails_per_s"] / one["mails_per_s"], 2),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
