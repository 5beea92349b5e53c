"""The case database's guarantees, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, func, select

from postmottak.casefile import cases, mailboxes, registry
from postmottak.casefile import models as m
from postmottak.casefile.db import Database, DatabaseUnavailable, WriteConflict
from postmottak.casefile.queries import export_records, status_summary
from postmottak.casefile.records import DocumentIn, IncomingMail, ReceiptPlan, TextLayerIn
from tests.dbutil import backend_params, migrated_database

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


def sync_two(db: Database) -> None:
    with db.session() as session:
        cases.sync_cases(
            session,
            [
                ("22/414", "Høring - Nasjonal e-helsestrategi", date(2022, 10, 1), "Europe/Oslo", None),
                ("22/415", "Høring - Endringer i pasientjournalloven", date(2022, 11, 15), "Europe/Oslo", None),
            ],
        )


FORM = {
    "profile": "hoeringssvar-22-414",
    "form_status": "partial",
    "warnings": ["Feltet «E-post» er tomt"],
    "organisation_name": "Bærum kommune",
    "fields": [
        {"key": "organisation_name", "label": "Navn:", "kind": "text", "value": "Bærum kommune", "read_by": "text"},
        {"key": "q1", "label": "1) Enig?", "kind": "choice", "value": ["Ja"], "read_by": "glyph", "warnings": ["x"]},
        {"key": "email", "label": "E-post:", "kind": "text", "value": None, "read_by": "text"},
    ],
}


def rich_mail(uid: str, index: int, **changes: object) -> IncomingMail:
    """A registered mail with two documents (the second its form, read by OCR), a parsed form and a receipt."""
    base = mail(uid, message_id=f"<m{index}@x.no>", sha=f"{index:064x}")
    scan = DocumentIn("skjema.jpg", "image/jpeg", 20, "c" * 64, "sha256/cc/cc/" + "c" * 64, "skjema.jpg", is_form=True)
    scan.text_layer = TextLayerIn("made", [1], "Navn: Bærum kommune", "d" * 64, 30, "sha256/dd/dd/" + "d" * 64, "t")
    base.documents = [*base.documents, scan]
    base.form, base.form_document_index, base.sender_is_private_person = FORM, 1, False
    return replace(base, **changes)  # type: ignore[arg-type]


def mixed_mails() -> list[IncomingMail]:
    """Plain new mail beside every kind a batch judges on its own, in one run of mails."""
    return [
        rich_mail("1", 1),
        rich_mail("2", 2, case_number="22/415"),
        rich_mail("3", 3, message_id="<m1@x.no>", raw_sha256="e" * 64),  # Message-ID of mail 1: duplicate
        rich_mail("4", 4, raw_sha256=f"{2:064x}", message_id=None),  # content of mail 2: duplicate
        rich_mail("1", 1),  # mail 1's location again: seen
        mail("5", message_id="<r@x.no>", sha="f" * 64, status="needs_review", on_time=None),
        replace(mail("6", message_id=None, sha="9" * 64, status="ignored", on_time=None), reason="auto-reply"),
        replace(
            mail("7", message_id="<s@x.no>", sha="8" * 64, status="needs_review", on_time=None),
            receipt=ReceiptPlan("suppressed", "s@x.no", "machine mail"),
        ),
        rich_mail("8", 8, on_time=False, case_number="22/415"),
        rich_mail("9", 9, message_id="<r@x.no>", raw_sha256="7" * 64),  # Message-ID of mail 5 (under review)
        rich_mail("10", 10, message_id="<ny@x.no>", raw_sha256="6" * 64, uidvalidity=8),
    ]


VOLATILE = {"created_at", "updated_at", "seen_at", "parsed_at", "system_id", "next_attempt_at"}
WRITTEN = [
    "cases",
    "sequences",
    "intake_records",
    "mail_locations",
    "dedup_keys",
    "documents",
    "searchable_versions",
    "journal_entries",
    "receipts",
    "form_results",
    "form_answers",
]


def table_rows(db: Database) -> dict[str, list[tuple[object, ...]]]:
    """Every row registration writes (ids included), without the times and random ids it stamps."""
    rows = {}
    with db.engine.connect() as connection:
        for name in WRITTEN:
            table = m.Base.metadata.tables[name]
            columns = [column for column in table.columns if column.name not in VOLATILE]
            rows[name] = [tuple(row) for row in connection.execute(select(*columns).order_by(*table.primary_key))]
    return rows


@pytest.mark.parametrize("kind", backend_params())
def test_a_batch_writes_the_same_rows_as_one_mail_at_a_time(tmp_path: Path, kind: str) -> None:
    results = []
    for way in ("batch", "one by one"):
        (tmp_path / way).mkdir()
        with migrated_database(kind, tmp_path / way) as db:
            sync_two(db)
            with db.session() as session:
                if way == "batch":
                    outcomes = registry.register_batch(session, mixed_mails())
                else:
                    outcomes = [registry.register(session, one) for one in mixed_mails()]
            with db.session() as session:  # the same mails again, as a second run after a crash would bring them
                again = registry.register_batch(session, mixed_mails())
            results.append((outcomes, again, table_rows(db)))
    (batch, batch_again, batch_rows), (single, single_again, single_rows) = results
    assert batch == single and batch_again == single_again
    assert [o.kind for o in batch] == ["new"] * 4 + ["seen"] + ["new"] * 6
    assert [o.status for o in batch if o.kind == "new"] == [
        *["registered", "registered", "duplicate", "duplicate"],
        *["needs_review", "ignored", "needs_review", "registered", "duplicate", "registered"],
    ]
    assert {o.kind for o in batch_again} == {"seen"}
    assert batch_rows == single_rows
    assert len(batch_rows["form_answers"]) == 3 * 7 and len(batch_rows["searchable_versions"]) == 7


def test_journal_numbers_of_a_batch_follow_the_order_of_its_mails(database: Database) -> None:
    sync_two(database)
    with database.session() as session:
        registry.register_batch(session, [rich_mail("1", 1)])
    batch = [rich_mail(str(i), i, case_number="22/414" if i % 3 else "22/415") for i in range(2, 9)]
    with database.session() as session:
        outcomes = registry.register_batch(session, batch)
    with database.session() as session:
        entries = {e.intake_id: e for e in session.scalars(select(m.JournalEntry))}
        numbers = [entries[o.intake_id].journal_number for o in outcomes]
        sequences = [entries[o.intake_id].journal_sequence for o in outcomes]
    assert numbers == [
        *["2022/414-2", "2022/415-1", "2022/414-3", "2022/414-4", "2022/415-2", "2022/414-5", "2022/414-6"]
    ]
    assert sequences == list(range(2, 9))


def test_a_mail_another_worker_registered_during_the_batch_becomes_the_duplicate(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other worker's keys are committed after the batch looked them up: the batch's insert of the keys fails,
    and the mails are tried one by one to find the copy, which becomes the duplicate; the others are registered."""
    sync_two(database)
    with database.session() as session:
        other = registry.register(session, rich_mail("1", 1, source_key="imap://other/INBOX"))
    monkeypatch.setattr(registry, "_look_up", lambda session, mails: (set(), set(), set()))
    with database.session() as session:
        outcomes = registry.register_batch(
            session, [rich_mail("2", 2), rich_mail("3", 3, message_id="<m1@x.no>"), rich_mail("4", 4)]
        )
    assert [o.status for o in outcomes] == ["registered", "duplicate", "registered"]
    with database.session() as session:
        copy = session.get(m.IntakeRecord, outcomes[1].intake_id)
        assert (copy.duplicate_of_id, copy.reason) == (other.intake_id, f"same mail as intake #{other.intake_id}")
        assert copy.case_id is None and copy.on_time is None and copy.journal_entry is None
        assert copy.receipt.status == "suppressed" and copy.receipt.reason.startswith("duplicate of intake #")
        numbers = sorted(e.journal_number for e in session.scalars(select(m.JournalEntry)))
        keys = session.scalars(select(m.DedupKey.key).where(m.DedupKey.intake_id == outcomes[1].intake_id)).all()
    assert numbers == ["2022/414-1", "2022/414-2", "2022/414-3"] and keys == []


def sent_statements(db: Database) -> list[str]:
    """The SQL statements sent from now on (filled in as they go)."""
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    return statements


@pytest.mark.parametrize("kind", backend_params())
def test_statements_of_a_batch_do_not_grow_with_its_mails(tmp_path: Path, kind: str) -> None:
    """A batch of new mails is written table by table: 8 mails take as many statements as 2."""
    counts = []
    for size in (2, 8):
        (tmp_path / str(size)).mkdir()
        with migrated_database(kind, tmp_path / str(size)) as db:
            sync_two(db)
            with db.session() as session:  # the year's journal counter exists: both batches update it alike
                registry.register(session, rich_mail("0", 0))
            statements = sent_statements(db)
            with db.session() as session:
                registry.register_batch(session, [rich_mail(str(i), i) for i in range(1, size + 1)])
            counts.append(len(statements))
    assert counts[0] == counts[1], counts
