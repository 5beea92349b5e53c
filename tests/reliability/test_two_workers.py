"""Two workers at once against the same mailbox: no double registration and no double receipt.

Two `postmottak run --once` processes are started together, several rounds, with new mail arriving between
rounds. On PostgreSQL a per-mailbox advisory lock lets one of them poll while the other skips the cycle (both may
send receipts: each receipt is claimed with a conditional UPDATE first); the unique constraints on the mail
location, the Message-ID/content keys and the receipt's intake id are the second line. On SQLite a file lock beside
the database enforces one worker; the second one says so in its log.

A third test takes the lock away (both workers poll the same mail in one process, at the same time) to show the
database constraints alone keep a mail from being registered twice.
"""

from __future__ import annotations

import subprocess
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from postmottak.bootstrap import build_worker
from postmottak.casefile import mailboxes
from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.casefile.storage import DocumentStore
from postmottak.config.settings import load_settings
from tests import mailfactory as mf
from tests.dbutil import backends
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpSink

from .helpers import (
    check_invariants,
    location_uids,
    receipt_message_ids,
    registered_with_receipt,
    sink_receipts,
    start_cli,
    worker_env,
    write_config,
)

ROUNDS = 3
PER_ROUND = 30
ARRIVED = datetime(2022, 9, 20, 10, 0, tzinfo=mf.OSLO)


def _round_of_mail(server: DovecotServer, round_number: int) -> int:
    items = mf.realistic_mailbox_items(PER_ROUND, seed=100 + round_number)
    for offset, item in enumerate(items):
        server.append(item.raw, ARRIVED + timedelta(days=round_number, minutes=offset))
    return len(items)


def _parallel_round(config: Path, env: dict[str, str], tmp_path: Path, round_number: int) -> list[str]:
    logs = [tmp_path / f"round{round_number}-worker{n}.log" for n in (1, 2)]
    workers = [start_cli(config, "run", "--once", env=env, log=log) for log in logs]
    for worker, log in zip(workers, logs, strict=False):
        try:
            code = worker.wait(timeout=240)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise
        assert code == 0, log.read_text()[-3000:]
    return [log.read_text() for log in logs]


def test_two_workers_in_parallel_register_and_send_each_mail_once(
    dovecot_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path, db_url: str, figures
) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, db_url=db_url, imap=dovecot_server, smtp=smtp_sink, claim_seconds=120)
    env = worker_env(tmp_path, dovecot_server.password)
    Database(db_url).upgrade()  # both start on a migrated database (each would migrate it otherwise)
    total = skipped = 0
    for round_number in range(ROUNDS):
        total += _round_of_mail(dovecot_server, round_number)
        texts = _parallel_round(config, env, tmp_path, round_number)
        skipped += sum("another worker holds this mailbox; skipping the cycle" in text for text in texts)

    db = Database(db_url)
    try:
        census = check_invariants(db, DocumentStore(tmp_path / "documents"))
        locations = location_uids(db)
        assert census.records == total and len(locations) == total and set(locations.values()) == {1}
        with db.session() as session:
            numbers = session.execute(select(m.JournalEntry.journal_year, m.JournalEntry.journal_sequence)).all()
        assert len(numbers) == len(set(numbers)) == census.by_status["registered"]
        sent = receipt_message_ids(db)
        assert set(sent.values()) == registered_with_receipt(db)
        arrived = sink_receipts(smtp_sink)
        assert arrived == {mid: 1 for mid in sent}, "no receipt twice at the SMTP server"
    finally:
        db.dispose()
    if db_url.startswith("sqlite"):
        assert skipped >= 1, "on SQLite the second worker must skip (one worker per database file)"
    figures(
        backend=db_url.split(":")[0],
        rounds=ROUNDS,
        mails=total,
        cycles_skipped_for_the_lock=skipped,
        double_registrations=0,
        double_receipts=sum(c - 1 for c in arrived.values()),
    )


@pytest.mark.parametrize("kind", [b for b in backends() if b == "postgresql"] or ["postgresql"])
def test_without_the_lock_the_constraints_still_refuse_a_double_registration(
    dovecot_server: DovecotServer, tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both workers poll the same new mail at the same moment with the mailbox lock disabled."""
    from tests.dbutil import database_url

    from .test_faults import _postgres_url

    _postgres_url()  # PostgreSQL only (SQLite serialises writers anyway); fails in CI when it is missing
    items = mf.realistic_mailbox_items(20, seed=5)
    for offset, item in enumerate(items):
        dovecot_server.append(item.raw, ARRIVED + timedelta(minutes=offset))

    @contextmanager
    def no_lock(db, name):  # type: ignore[no-untyped-def]
        yield True

    monkeypatch.setattr("postmottak.intake.pipeline.mailbox_lock", no_lock)
    with database_url(kind, tmp_path) as url:
        config = write_config(tmp_path, db_url=url, imap=dovecot_server)
        settings = load_settings(config, imap={"password": dovecot_server.password})
        intakes = [build_worker(settings) for _ in range(2)]
        with intakes[0].db.session() as session:  # the folder's state row exists (its creation is not under test)
            mailboxes.get_state(session, intakes[0].source.source_key)
        barrier = threading.Barrier(2)
        reports: list[object] = []

        def run(intake) -> None:  # type: ignore[no-untyped-def]
            barrier.wait()
            reports.append(intake.run_cycle())

        threads = [threading.Thread(target=run, args=(intake,)) for intake in intakes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=240)
        try:
            assert len(reports) == 2 and all(r.ok for r in reports), [r.errors for r in reports]  # type: ignore[attr-defined]
            assert sum(r.counts["seen"] for r in reports) > 0 or sum(  # type: ignore[attr-defined]
                r.fetched for r in reports
            ) > len(items), "the two really raced for the same mail"  # type: ignore[attr-defined]
            census = check_invariants(intakes[0].db, intakes[0].store)
            locations = location_uids(intakes[0].db)
            assert census.records == len(items) and set(locations.values()) == {1}
            with intakes[0].db.session() as session:
                receipts = session.scalars(select(m.Receipt.intake_id)).all()
            assert len(receipts) == len(set(receipts))
        finally:
            for intake in intakes:
                intake.close()
