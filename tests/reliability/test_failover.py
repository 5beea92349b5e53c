"""Three workers, four mailboxes, one PostgreSQL: a worker killed and a worker paused past its lease lose nothing.

Real processes (`postmottak run`), real Dovecot (four folders, one mailbox each), a real SMTP sink for receipts.
Each worker has a storage root of its own, as on separate hosts, and keeps the documents in the database
(`[storage] backend = "database"`), so whoever takes a mailbox over reaches everything stored before.
Mail arrives in waves while the worker holding two mailboxes is SIGKILLed (its whole process group, as when a host
dies) in the middle of registering, and another worker is SIGSTOPped for longer than its lease and then
SIGCONTed. Afterwards: every mail registered exactly once, every receipt sent (at most one twice per failure),
and for every mailbox no grant of a lease committed anything after the next grant was made (the fencing
guarantee, read from the database).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select

from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from tests import mailfactory as mf
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpSink

from .helpers import (
    check_invariants,
    imap_mailboxes,
    reap_group,
    receipt_message_ids,
    registered_with_receipt,
    sink_receipts,
    start_cli,
    stop,
    stored_documents,
    wait_until,
    worker_env,
    write_config,
)
from .test_faults import _postgres_url

FOLDERS = {"postmottak": "INBOX", "horing": "Horing", "avdeling": "Avdeling", "kontakt": "Kontakt"}
WAVES = 3
PER_WAVE = 10  # per mailbox: 4 x 3 x 10 = 120 mails
LEASE_S = 3
ARRIVED = datetime(2022, 9, 20, 10, 0, tzinfo=mf.OSLO)


def _config(tmp_path: Path, db_url: str, server: DovecotServer, sink: SmtpSink) -> Path:
    password_file = tmp_path / "imap-password"
    password_file.write_text(server.password, encoding="utf-8")
    boxes = imap_mailboxes(server, FOLDERS, password_file, "batch_size = 10", "timeout_seconds = 20", "idle = false")
    extra = "\n".join([*boxes, "[leases]", f"seconds = {LEASE_S}", "renew_seconds = 1"]) + "\n"
    return write_config(tmp_path, db_url=db_url, smtp=sink, claim_seconds=5, extra=extra, storage_backend="database")


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    wait_until(condition, what, timeout, step=0.2)


class Observer:
    """Reads the shared database the way an operator's monitoring would."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def holders(self) -> dict[str, str | None]:
        with self.db.session() as session:
            now = session.scalar(select(func.clock_timestamp()))
            return {
                lease.mailbox: lease.holder if lease.expires_at and lease.expires_at > now else None
                for lease in session.scalars(select(m.MailboxLease))
            }

    def registered(self, source_keys: list[str] | None = None) -> int:
        query = select(func.count()).select_from(m.MailLocation)
        if source_keys is not None:
            query = query.where(m.MailLocation.source_key.in_(source_keys))
        with self.db.session() as session:
            return session.scalar(query) or 0

    def taken_from(self, worker: str) -> dict[str, datetime]:
        with self.db.session() as session:
            grants = session.scalars(select(m.LeaseGrant).where(m.LeaseGrant.previous_holder == worker))
            return {grant.mailbox: grant.acquired_at for grant in grants}

    def pid_of(self, worker: str) -> int:
        with self.db.session() as session:
            row = session.get(m.Worker, worker)
            assert row is not None
            return row.pid

    def receipts_done(self) -> bool:
        with self.db.session() as session:
            waiting = session.scalar(
                select(func.count()).select_from(m.Receipt).where(m.Receipt.status.in_(("pending",)))
            )
        return waiting == 0


def _append_wave(server: DovecotServer, wave: int, mailboxes: list[str]) -> int:
    appended = 0
    for index, name in enumerate(FOLDERS):
        if name not in mailboxes:
            continue
        items = mf.realistic_mailbox_items(PER_WAVE + 20, seed=1000 + 10 * index + wave)[:PER_WAVE]
        for offset, item in enumerate(items):
            server.append(item.raw, ARRIVED + timedelta(days=wave, minutes=offset), folder=FOLDERS[name])
            appended += 1
    return appended


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def test_killed_and_paused_workers_lose_no_mail_and_their_successors_take_over_within_the_lease(
    dovecot_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path, figures
) -> None:  # type: ignore[no-untyped-def]
    from tests.dbutil import database_url

    _postgres_url()
    for folder in FOLDERS.values():
        if folder != "INBOX":
            dovecot_server.create_folder(folder)
    with database_url("postgresql", tmp_path) as db_url:
        Database(db_url).upgrade()
        db = Database(db_url)
        observe = Observer(db)
        config = _config(tmp_path, db_url, dovecot_server, smtp_sink)
        logs = [tmp_path / f"worker{n}.log" for n in range(3)]
        hosts = [{**worker_env(tmp_path), "POSTMOTTAK_STORAGE__PATH": str(tmp_path / f"host{n}")} for n in range(3)]
        workers = [start_cli(config, "run", env=env, log=log) for env, log in zip(hosts, logs, strict=True)]
        by_pid = {process.pid: (process, log) for process, log in zip(workers, logs, strict=True)}
        total = _append_wave(dovecot_server, 0, list(FOLDERS))
        try:
            # Spread: four mailboxes held by three live workers, 2 + 1 + 1.
            def spread() -> bool:
                held = Counter(holder for holder in observe.holders().values() if holder)
                return sorted(held.values()) == [1, 1, 2] and len(observe.holders()) == 4

            _wait(spread, 60, "the mailboxes spread over the three workers")
            holders = observe.holders()
            victim = Counter(holders.values()).most_common(1)[0][0]
            assert victim is not None
            victim_boxes = [box for box, holder in holders.items() if holder == victim]
            victim_process, _victim_log = by_pid[observe.pid_of(victim)]

            # SIGKILL the holder of two mailboxes while it registers the next wave.
            keys = [
                f"imap://{dovecot_server.username}@{dovecot_server.host}:{dovecot_server.port}/{FOLDERS[box]}"
                for box in victim_boxes
            ]
            before = observe.registered(keys)
            total += _append_wave(dovecot_server, 1, list(FOLDERS))
            _wait(lambda: observe.registered(keys) >= before + 2, 60, "the killed worker to be registering the wave")
            _signal_group(victim_process, signal.SIGKILL)
            killed_at = datetime.now(timezone.utc)
            victim_process.wait(timeout=10)
            _wait(lambda: set(observe.taken_from(victim)) >= set(victim_boxes), 30, "takeover of the killed worker")
            kill_takeovers = [(at - killed_at).total_seconds() for at in observe.taken_from(victim).values()]

            # SIGSTOP another worker that holds a mailbox for longer than its lease, then let it go on.
            holders = observe.holders()
            paused = next(holder for holder in holders.values() if holder and holder != victim)
            paused_boxes = [box for box, holder in holders.items() if holder == paused]
            paused_process, paused_log = by_pid[observe.pid_of(paused)]
            total += _append_wave(dovecot_server, 2, list(FOLDERS))
            time.sleep(0.5)
            _signal_group(paused_process, signal.SIGSTOP)
            stopped_at = datetime.now(timezone.utc)
            _wait(lambda: set(observe.taken_from(paused)) >= set(paused_boxes), 30, "takeover of the paused worker")
            pause_takeovers = [(at - stopped_at).total_seconds() for at in observe.taken_from(paused).values()]
            time.sleep(1)
            _signal_group(paused_process, signal.SIGCONT)

            _wait(lambda: observe.registered() >= total, 90, f"all {total} mails registered")
            _wait(observe.receipts_done, 60, "every receipt sent")
        finally:
            for process in workers:
                _signal_group(process, signal.SIGCONT)
            for process in workers:
                if process.poll() is None:
                    stop(process, timeout=60)
                reap_group(process)

        try:
            census = check_invariants(db, stored_documents(db, tmp_path, "database"))
            with db.session() as session:
                locations = Counter(session.execute(select(m.MailLocation.source_key, m.MailLocation.uid)).all())
                grants = list(session.scalars(select(m.LeaseGrant).order_by(m.LeaseGrant.mailbox, m.LeaseGrant.token)))
                rejected = session.scalar(select(m.Worker.rejected).where(m.Worker.id == paused)) or 0
            assert census.records == total and len(locations) == total and set(locations.values()) == {1}
            assert len({key for key, _uid in locations}) == len(FOLDERS)

            # Fencing: no grant committed after the next grant of the same mailbox was made.
            late_commits = [
                f"{earlier.mailbox} token {earlier.token} ({earlier.worker_id}) committed at {earlier.last_commit_at}"
                f", after token {later.token} was granted at {later.acquired_at}"
                for earlier, later in zip(grants, grants[1:], strict=False)
                if earlier.mailbox == later.mailbox
                and earlier.last_commit_at is not None
                and earlier.last_commit_at >= later.acquired_at
            ]
            assert not late_commits, "\n".join(late_commits)
            paused_grants = [g for g in grants if g.worker_id == paused and g.mailbox in paused_boxes]
            assert paused_grants, "the paused worker held its mailboxes through grants"

            sent = receipt_message_ids(db)
            assert set(sent.values()) == registered_with_receipt(db), "every registered respondent got a receipt"
            arrived = sink_receipts(smtp_sink)
            assert set(sent) <= set(arrived), "no receipt marked sent that never reached the server"
            twice = sum(count - 1 for count in arrived.values())
            assert twice <= 2, f"{twice} receipts arrived more than once (at most one per failure)"
            paused_text = paused_log.read_text(encoding="utf-8", errors="replace")
            assert "lost" in paused_text, "the paused worker noticed it had lost its lease"
            assert not any((tmp_path / f"host{n}").exists() for n in range(3)), "no document on any host's disk"
        finally:
            db.dispose()
        figures(
            mails=total,
            workers=3,
            mailboxes=len(FOLDERS),
            lease_s=LEASE_S,
            takeover_after_kill_s=",".join(f"{s:.1f}" for s in sorted(kill_takeovers)),
            takeover_after_pause_s=",".join(f"{s:.1f}" for s in sorted(pause_takeovers)),
            fencing_rejections_of_paused_worker=rejected,
            double_receipts=twice,
        )
