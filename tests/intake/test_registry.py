"""The case database's guarantees, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from postmottak.casefile import cases, mailboxes, registry
from postmottak.casefile import models as m
from postmottak.casefile.db import Database, DatabaseUnavailable, WriteConflict
from postmottak.casefile.queries import export_records, status_summary
from postmottak.casefile.records import DocumentIn, IncomingMail, ReceiptPlan

OSLO = ZoneInfo("Europe/Oslo")


def sync(db: Database) -> None:
    with db.session() as session:
        cases.sync_cases(
            session, [("22/414", "Høring - Nasjonal e-helsestrategi", date(2022, 10, 1), "Europe/Oslo", None)]
        )


def mail(
    uid: str,
    *,
    message_id: str | None = "<a1@baerum.kommune.no>",
    sha: str = "a" * 64,
    uidvalidity: int = 7,
    status: str = "registered",
    on_time: bool | None = True,
    source: str = "imap://test/INBOX",
) -> IncomingMail:
    return IncomingMail(
        source_key=source,
        uidvalidity=uidvalidity,
        uid=uid,
        raw_sha256=sha,
        raw_size=1234,
        raw_path=f"sha256/{sha[:2]}/{sha[2:4]}/{sha}",
        message_id=message_id,
        received_at=datetime(2022, 9, 20, 10, 2, tzinfo=OSLO),
        received_at_source="internaldate",
        date_header=None,
        sender_name="Åse Ødegård",
        sender_address="ase@baerum.kommune.no",
        subject="Høringssvar - sak 22/414",
        body_text="Se vedlagt.",
        in_reply_to=[],
        references=[],
        machine_reason=None,
        parse_defects=[],
        status=status,
        reason=None,
        case_number="22/414" if status == "registered" else None,
        on_time=on_time,
        documents=[DocumentIn("svar.pdf", "application/pdf", 10, "b" * 64, "sha256/bb/bb/" + "b" * 64, "svar.pdf")],
        receipt=ReceiptPlan("pending", "ase@baerum.kommune.no") if status == "registered" else None,
    )


def test_register_writes_journal_documents_and_receipt(database: Database) -> None:
    sync(database)
    with database.session() as session:
        outcome = registry.register(session, mail("1"))
    assert outcome.kind == "new" and outcome.status == "registered"
    with database.session() as session:
        rows = export_records(session)
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "registered" and row["case_number"] == "22/414" and row["on_time"] is True
    assert row["journal_number"] == "2022/414-1"
    assert row["received_at"] == "2022-09-20T10:02:00+02:00"
    assert row["documents"][0]["filename"] == "svar.pdf" and row["documents"][0]["role"] == "main"
    assert row["receipt"] == {"status": "pending", "to": "ase@baerum.kommune.no", "sent_at": None, "reason": None}


def test_same_location_is_seen_not_registered_twice(database: Database) -> None:
    sync(database)
    with database.session() as session:
        first = registry.register(session, mail("1"))
    with database.session() as session:
        again = registry.register(session, mail("1"))
    assert again.kind == "seen" and again.intake_id == first.intake_id
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(m.IntakeRecord)) == 1


def test_duplicate_delivery_same_message_id(database: Database) -> None:
    sync(database)
    with database.session() as session:
        first = registry.register(session, mail("1", sha="a" * 64))
    with database.session() as session:
        second = registry.register(session, mail("2", sha="c" * 64))
    assert second.kind == "new" and second.status == "duplicate"
    with database.session() as session:
        record = session.get(m.IntakeRecord, second.intake_id)
        assert record.duplicate_of_id == first.intake_id and "Message-ID" in record.reason
        assert record.journal_entry is None and record.on_time is None
        assert record.receipt.status == "suppressed" and record.receipt.reason.startswith("duplicate of intake #")
        assert session.scalar(select(func.count()).select_from(m.JournalEntry)) == 1


def test_duplicate_by_raw_content_without_message_id(database: Database) -> None:
    sync(database)
    with database.session() as session:
        registry.register(session, mail("1", message_id=None))
    with database.session() as session:
        second = registry.register(session, mail("2", message_id=None))
    assert second.status == "duplicate"


def test_uidvalidity_change_relocates_old_mail_and_registers_new(database: Database) -> None:
    sync(database)
    with database.session() as session:
        first = registry.register(session, mail("1", uidvalidity=7))
    with database.session() as session:
        moved = registry.register(session, mail("1", uidvalidity=8))  # same bytes, new epoch
        fresh = registry.register(session, mail("2", uidvalidity=8, message_id="<new@x.no>", sha="d" * 64))
    assert moved.kind == "relocated" and moved.intake_id == first.intake_id
    assert fresh.kind == "new" and fresh.status == "registered"
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(m.IntakeRecord)) == 2


def test_journal_numbers_are_sequential_and_unique(database: Database) -> None:
    sync(database)
    for index in range(5):
        with database.session() as session:
            registry.register(session, mail(str(index), message_id=f"<m{index}@x.no>", sha=f"{index:064x}"))
    with database.session() as session:
        numbers = sorted(e.journal_number for e in session.scalars(select(m.JournalEntry)))
        sequences = sorted(e.journal_sequence for e in session.scalars(select(m.JournalEntry)))
    assert numbers == [f"2022/414-{n}" for n in range(1, 6)]
    assert sequences == [1, 2, 3, 4, 5]


def test_database_refuses_a_second_location_row(database: Database) -> None:
    sync(database)
    with database.session() as session:
        first = registry.register(session, mail("1"))
    with pytest.raises(WriteConflict):
        with database.session() as session:
            session.add(
                m.MailLocation(intake_id=first.intake_id, source_key="imap://test/INBOX", uidvalidity=7, uid="1")
            )


def test_concurrent_registration_of_one_mail_gives_one_record_and_a_duplicate_or_a_refusal(database: Database) -> None:
    """Two workers register one mail (two UIDs, same Message-ID) at once: one registered, one duplicate."""
    sync(database)
    barrier = threading.Barrier(2)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker(uid: str, sha: str) -> None:
        try:
            with database.session() as session:
                barrier.wait()
                results.append(registry.register(session, mail(uid, sha=sha)).status)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(str(i), f"{i:064x}")) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with database.session() as session:
        statuses = sorted(r.status for r in session.scalars(select(m.IntakeRecord)))
        entries = session.scalar(select(func.count()).select_from(m.JournalEntry))
    assert entries == 1
    # The loser either became a duplicate, or was refused by the database and rolled back entirely.
    assert (statuses, len(errors)) in ((["duplicate", "registered"], 0), (["registered"], 1))
    for error in errors:  # refused as a conflict, or (SQLite, one writer at a time) as a locked database
        locked = isinstance(error, DatabaseUnavailable) and database.is_sqlite and "locked" in error.reason
        assert isinstance(error, WriteConflict) or locked, repr(error)


def test_status_summary_counts(database: Database) -> None:
    sync(database)
    with database.session() as session:
        registry.register(session, mail("1"))
        registry.register(session, mail("2", message_id="<late@x.no>", sha="e" * 64, on_time=False))
        registry.register(session, mail("3", message_id="<r@x.no>", sha="f" * 64, status="needs_review", on_time=None))
        state = mailboxes.get_state(session, "imap://test/INBOX")
        state.last_poll_at = datetime(2022, 9, 20, tzinfo=timezone.utc)
    with database.session() as session:
        summary = status_summary(session)
    assert summary.by_status == {"registered": 2, "needs_review": 1}
    assert (summary.cases[0].registered, summary.cases[0].on_time, summary.cases[0].late) == (2, 1, 1)
    assert summary.pending_review == 1 and summary.receipts == {"pending": 2}
