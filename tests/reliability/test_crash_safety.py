"""Crash safety: `postmottak run --once` is SIGKILLed at random moments while it works through a backlog.

A real Dovecot holds 200 realistic mails; receipts go to a real SMTP server. Worker processes are started one
after the other and killed (SIGKILL, no cleanup) at random points drawn from a seeded RNG - while starting up,
registering mail, sending receipts, or idle - at least 20 times; then the worker runs to completion. Afterwards every mail has exactly one intake record with the status it would have
had without crashes, journal numbers have no gaps, no row is half-written, every stored file matches its
SHA-256, and every registered response's receipt reached the SMTP server - more than once only when a kill fell
between the server's acceptance and the commit (counted, at most one per kill).

POSTMOTTAK_SOAK=1 runs a longer version (1,000 mails, 150 kills).

The test runs on Dovecot and on Cyrus (its default namespace; altnamespace is covered by the intake and IDLE
tests). On Cyrus the worker also moves processed mail to `Behandlet` (INBOX.Behandlet), so kills fall between a
commit and its move too; afterwards every mail is in that folder exactly once. To stay within the suite's time
budget the Cyrus run is smaller - CYRUS_MAILS mails, CYRUS_KILLS kills, one database backend (PostgreSQL when
configured) - the soak run uses the full numbers.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from tests import mailfactory as mf
from tests.servers.cyrus import CyrusServer
from tests.servers.dovecot import DovecotServer
from tests.servers.fixtures import servers_by_database
from tests.servers.smtp import SmtpSink

from .helpers import (
    EXPECTED_STATUS,
    check_invariants,
    reap_group,
    receipt_message_ids,
    registered_with_receipt,
    run_cli,
    sink_receipts,
    start_cli,
    stored_documents,
    worker_env,
    write_config,
)

SOAK = os.environ.get("POSTMOTTAK_SOAK", "") not in ("", "0")
MAILS = 1000 if SOAK else 200
KILLS = 150 if SOAK else 20
CYRUS_MAILS = MAILS if SOAK else 40
CYRUS_KILLS = KILLS if SOAK else 6
SEED = 20221001
CLAIM_SECONDS = 2  # a receipt claimed by a killed worker is due again after this
RUN_LIMIT = 60  # seconds a worker may run before it is killed anyway


@pytest.mark.parametrize(("imap_server", "db_url"), servers_by_database("cyrus-default"), indirect=True)
def test_sigkill_at_random_points_loses_and_doubles_nothing(
    imap_server: DovecotServer | CyrusServer, smtp_sink: SmtpSink, tmp_path: Path, db_url: str, figures
) -> None:  # type: ignore[no-untyped-def]
    cyrus = isinstance(imap_server, CyrusServer)
    mails, kills = (CYRUS_MAILS, CYRUS_KILLS) if cyrus else (MAILS, KILLS)
    _crash_run(imap_server, smtp_sink, tmp_path, db_url, figures, mails=mails, kills_wanted=kills, backend="filesystem")


def test_sigkill_with_documents_in_the_database_loses_and_doubles_nothing(
    dovecot_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path, figures
) -> None:  # type: ignore[no-untyped-def]
    """The same, reduced (20 mails, 4 kills), with `[storage] backend = "database"` on PostgreSQL."""
    from tests.dbutil import database_url

    from .test_faults import _postgres_url

    _postgres_url()
    with database_url("postgresql", tmp_path) as url:
        _crash_run(dovecot_server, smtp_sink, tmp_path, url, figures, mails=20, kills_wanted=4, backend="database")


def _crash_run(
    imap_server: DovecotServer | CyrusServer,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    db_url: str,
    figures,
    *,  # type: ignore[no-untyped-def]
    mails: int,
    kills_wanted: int,
    backend: str,
) -> None:
    rng = random.Random(SEED)
    cyrus = isinstance(imap_server, CyrusServer)
    items = mf.realistic_mailbox_items(mails, seed=SEED)
    by_uid = {imap_server.append(item.raw, item.internaldate): item for item in items}
    config = write_config(
        tmp_path, db_url=db_url, imap=imap_server, smtp=smtp_sink, claim_seconds=CLAIM_SECONDS, storage_backend=backend
    )
    if cyrus:
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace('folder = "INBOX"\n', 'folder = "INBOX"\nprocessed_folder = "Behandlet"\n'))
    env = worker_env(tmp_path, imap_server.password)
    log = tmp_path / "worker.log"

    db = Database(db_url)
    db.upgrade()
    total = len(by_uid) + sum(EXPECTED_STATUS[item.kind] == "registered" for item in items)  # records + receipts
    kills = completed = orphans = 0
    phases: Counter[str] = Counter()  # what each killed worker was doing
    # Receipts the SMTP server accepted but the database does not have as sent: the send/commit window.
    unconfirmed: set[str] = set()
    new_unconfirmed_per_kill: list[int] = []
    try:
        for _ in range(kills_wanted * 4):  # bounded: a start lives until its target or at most RUN_LIMIT seconds
            if kills >= kills_wanted:
                break
            before = _progress(db)
            # The kill point: a random amount of further progress (0 = while starting up), then a random few ms;
            # once everything is through, a random moment of an idle cycle.
            target = min(before + rng.randint(0, 2 * total // kills_wanted), total) if before < total else None
            idle_delay = rng.uniform(0.2, 1.5)
            process = start_cli(config, "run", "--once", env=env, log=log)
            started = time.monotonic()
            while process.poll() is None and time.monotonic() - started < RUN_LIMIT:
                if target is not None and _progress(db) >= target:
                    time.sleep(rng.uniform(0, 0.05))
                    break
                if target is None and time.monotonic() - started >= idle_delay:
                    break
                time.sleep(0.02)
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)  # only the worker itself, like the OOM killer would
                process.wait()
                kills += 1
                now_unconfirmed = set(sink_receipts(smtp_sink)) - set(receipt_message_ids(db))
                new_unconfirmed_per_kill.append(len(now_unconfirmed - unconfirmed))
                unconfirmed |= now_unconfirmed
                after = _progress(db)
                phases["idle" if before >= total else "starting" if after == before else "working"] += 1
            else:
                completed += 1
                assert process.returncode == 0, log.read_text()[-3000:]
            orphans += reap_group(process)
        assert kills >= kills_wanted, f"only {kills} kills in {kills_wanted * 4} starts"

        # Then let it finish: claimed-but-unconfirmed receipts become due again after the claim period.
        for _ in range(6):
            time.sleep(CLAIM_SECONDS + 0.2)
            final = run_cli(config, "run", "--once", env=env)
            assert final.returncode == 0, final.stderr[-3000:]
            with db.session() as session:
                pending = session.scalar(select(m.Receipt.id).where(m.Receipt.status == "pending").limit(1))
            if pending is None:
                break
        census = check_invariants(db, stored_documents(db, tmp_path, backend))

        # Every mail exactly one record (one location per UID), with the status it gets without crashes.
        with db.session() as session:
            status_by_uid = {
                int(uid): status
                for uid, status in session.execute(
                    select(m.MailLocation.uid, m.IntakeRecord.status).join(
                        m.IntakeRecord, m.IntakeRecord.id == m.MailLocation.intake_id
                    )
                )
            }
            locations = session.scalars(select(m.MailLocation.uid)).all()
            numbers = session.execute(select(m.JournalEntry.journal_year, m.JournalEntry.journal_sequence)).all()
        assert len(locations) == len(set(locations)) == len(by_uid)
        assert census.records == len(by_uid)
        wrong = {
            uid: (by_uid[uid].kind, status)
            for uid, status in status_by_uid.items()
            if status != EXPECTED_STATUS[by_uid[uid].kind]
        }
        assert not wrong, wrong
        for year in {year for year, _ in numbers}:  # a rolled-back registration gives its number back
            sequences = sorted(sequence for y, sequence in numbers if y == year)
            assert sequences == list(range(1, len(sequences) + 1)), f"journal numbers of {year}: gap or repeat"

        # Receipts: each registered response's receipt arrived; extra copies only from the send/commit window.
        wanted = registered_with_receipt(db)
        sent = receipt_message_ids(db)
        arrived = sink_receipts(smtp_sink)
        assert set(sent.values()) == wanted, "every registered response has a sent receipt"
        assert set(arrived) == set(sent), "the SMTP server got exactly the receipts the database says were sent"
        extra = sum(count - 1 for count in arrived.values())
        # One SMTP connection, one receipt at a time: a kill leaves at most one receipt in the window.
        assert max(new_unconfirmed_per_kill, default=0) <= 1, new_unconfirmed_per_kill
        assert extra <= kills
        if cyrus:  # every mail moved to the personal namespace's Behandlet, once
            assert imap_server.list_uids("INBOX") == []
            assert len(imap_server.list_uids(imap_server.personal("Behandlet"))) == len(by_uid)
    finally:
        db.dispose()

    figures(
        server=imap_server.name,
        backend=db_url.split(":", 1)[0],
        storage=backend,
        mails=len(by_uid),
        kills=kills,
        completed_runs=completed,
        registered=census.by_status["registered"],
        receipts_sent=len(sent),
        receipts_at_server=sum(arrived.values()),
        duplicate_receipts=extra,
        kill_phases=dict(phases),
        files_verified=census.files_verified,
        orphaned_children=orphans,
    )


def _progress(db: Database) -> int:
    """Work done: intake records written plus receipts sent."""
    with db.session() as session:
        records = session.scalar(select(func.count()).select_from(m.IntakeRecord)) or 0
        sent = session.scalar(select(func.count()).select_from(m.Receipt).where(m.Receipt.status == "sent")) or 0
    return records + sent
