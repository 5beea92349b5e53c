"""Registering one fetched mail: everything about it written in the caller's single transaction.

The database itself refuses a double registration: a mail location (source, UIDVALIDITY, UID) is unique, and so
are the Message-ID and raw-content keys of original mails. Two workers racing on the same mail get an
IntegrityError on one side, which rolls back and sees the other's record on retry.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postmottak.casefile import models as m
from postmottak.casefile.records import IncomingMail, ReceiptPlan
from postmottak.casefile.records import Outcome as Outcome  # what register() returns, named registry.Outcome


def location_known(session: Session, source_key: str, uidvalidity: int, uid: str) -> int | None:
    return session.scalar(
        select(m.MailLocation.intake_id).where(
            m.MailLocation.source_key == source_key,
            m.MailLocation.uidvalidity == uidvalidity,
            m.MailLocation.uid == uid,
        )
    )


def known_uids(session: Session, source_key: str, uidvalidity: int) -> set[str]:
    rows = session.scalars(
        select(m.MailLocation.uid).where(
            m.MailLocation.source_key == source_key, m.MailLocation.uidvalidity == uidvalidity
        )
    )
    return set(rows)


def _seen_in_earlier_epoch(session: Session, mail: IncomingMail) -> int | None:
    """A record of this very mail (same raw bytes) seen in this folder under an older UIDVALIDITY only."""
    candidates = session.execute(
        select(m.IntakeRecord.id)
        .join(m.MailLocation, m.MailLocation.intake_id == m.IntakeRecord.id)
        .where(
            m.IntakeRecord.raw_sha256 == mail.raw_sha256,
            m.MailLocation.source_key == mail.source_key,
            m.MailLocation.uidvalidity != mail.uidvalidity,
        )
    ).scalars()
    for intake_id in candidates:
        in_current = session.scalar(
            select(m.MailLocation.id).where(
                m.MailLocation.intake_id == intake_id,
                m.MailLocation.source_key == mail.source_key,
                m.MailLocation.uidvalidity == mail.uidvalidity,
            )
        )
        if in_current is None:
            return intake_id
    return None


def dedup_keys(mail: IncomingMail) -> list[str]:
    keys = [f"sha:{mail.raw_sha256}"]
    if mail.message_id:
        keys.append(f"mid:{mail.message_id}"[:1024])
    return keys


def _existing_original(session: Session, keys: list[str]) -> int | None:
    return session.scalar(select(m.DedupKey.intake_id).where(m.DedupKey.key.in_(keys)).limit(1))


def next_value(session: Session, name: str) -> int:
    """Atomically increment and return a named counter (journal sequence per year)."""
    # The counter exists but for the first use of a name (a year's first journal entry): one UPDATE, then.
    value = session.execute(
        update(m.Sequence).where(m.Sequence.name == name).values(value=m.Sequence.value + 1).returning(m.Sequence.value)
    ).scalar_one_or_none()
    if value is not None:
        return value
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(m.Sequence).values(name=name, value=0).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(m.Sequence).values(name=name, value=0).on_conflict_do_nothing()
    else:  # pragma: no cover - other backends are not supported
        stmt = insert(m.Sequence).values(name=name, value=0)
    session.execute(stmt)
    return session.execute(
        update(m.Sequence).where(m.Sequence.name == name).values(value=m.Sequence.value + 1).returning(m.Sequence.value)
    ).scalar_one()


def _next_document_number(session: Session, case_id: int) -> int:
    return session.execute(
        update(m.Case)
        .where(m.Case.id == case_id)
        .values(last_document_number=m.Case.last_document_number + 1)
        .returning(m.Case.last_document_number)
    ).scalar_one()


def add_location(session: Session, mail: IncomingMail, intake_id: int) -> None:
    session.add(
        m.MailLocation(intake_id=intake_id, source_key=mail.source_key, uidvalidity=mail.uidvalidity, uid=mail.uid)
    )


def bump_high_water_mark(session: Session, source_key: str, uidvalidity: int, uid: int) -> None:
    state = session.scalar(select(m.MailboxState).where(m.MailboxState.source_key == source_key))
    if state is None or state.uidvalidity != uidvalidity:
        return
    session.execute(
        update(m.MailboxState).where(m.MailboxState.id == state.id, m.MailboxState.last_uid < uid).values(last_uid=uid)
    )


# Column lengths that a sender controls (see models): longer values are hostile, never real mail.
MESSAGE_ID_MAX = 998
ADDRESS_MAX = 512
CONTENT_TYPE_MAX = 255


def fit_columns(mail: IncomingMail) -> IncomingMail:
    """Make a mail's sender-controlled values fit their columns (PostgreSQL refuses longer ones; SQLite would keep
    them). A Message-ID is cut (it is only compared); an address that long cannot be real and is dropped, so no
    receipt goes to a cut-off address. Each change is noted as a parse defect."""
    defects = list(mail.parse_defects)
    changes: dict[str, Any] = {}
    if mail.message_id is not None and len(mail.message_id) > MESSAGE_ID_MAX:
        changes["message_id"] = mail.message_id[:MESSAGE_ID_MAX]
        defects.append(f"Message-ID longer than {MESSAGE_ID_MAX} characters; cut")
    if mail.sender_address is not None and len(mail.sender_address) > ADDRESS_MAX:
        changes["sender_address"] = None
        defects.append(f"sender address longer than {ADDRESS_MAX} characters; not kept")
    receipt = mail.receipt
    if receipt is not None and receipt.to_address is not None and len(receipt.to_address) > ADDRESS_MAX:
        changes["receipt"] = ReceiptPlan(
            "suppressed", None, f"the sender address is longer than {ADDRESS_MAX} characters; no receipt"
        )
    if any(len(doc.content_type) > CONTENT_TYPE_MAX for doc in mail.documents):
        changes["documents"] = [
            replace(doc, content_type=doc.content_type[:CONTENT_TYPE_MAX]) for doc in mail.documents
        ]
    if not changes:
        return mail
    return replace(mail, parse_defects=defects, **changes)


def register(session: Session, mail: IncomingMail) -> Outcome:
    """Record one mail. Call inside a transaction; the caller commits."""
    mail = fit_columns(mail)
    known = location_known(session, mail.source_key, mail.uidvalidity, mail.uid)
    if known is not None:
        status = session.scalar(select(m.IntakeRecord.status).where(m.IntakeRecord.id == known)) or ""
        return Outcome("seen", known, status)

    relocated = _seen_in_earlier_epoch(session, mail)
    if relocated is not None:
        add_location(session, mail, relocated)
        status = session.scalar(select(m.IntakeRecord.status).where(m.IntakeRecord.id == relocated)) or ""
        return Outcome("relocated", relocated, status)

    keys = dedup_keys(mail)
    original = _existing_original(session, keys)
    status, reason = mail.status, mail.reason
    if original is not None:
        status, reason = (
            m.DUPLICATE,
            f"same {'content' if _same_content(session, original, mail) else 'Message-ID'} as intake #{original}",
        )

    # The case of a mail to be journalled, looked up once (its id goes into the record's first INSERT).
    case = _case(session, mail.case_number) if status == m.REGISTERED else None
    record = _new_record(mail, status, reason, duplicate_of=original)
    if case is not None:
        record.case_id = case[0]
    session.add(record)
    session.flush()
    add_location(session, mail, record.id)
    # Flushed here, not inside the savepoint below: another worker that registered this very location makes this
    # raise to the caller (who then sees that worker's record), rather than pass for a duplicate-content race.
    session.flush()

    if original is None:
        try:
            with session.begin_nested():
                session.execute(insert(m.DedupKey), [{"key": key, "intake_id": record.id} for key in keys])
        except IntegrityError:
            # Another worker registered the same mail a moment ago: this copy is the duplicate.
            original = _existing_original(session, keys)
            record.status, record.reason, record.duplicate_of_id = (
                m.DUPLICATE,
                f"same mail as intake #{original}",
                original,
            )
            record.case_id = None
            record.on_time = None
            status = m.DUPLICATE

    documents = _add_documents(session, record, mail)
    if status == m.REGISTERED:
        add_journal_entry(
            session,
            record,
            case_number=mail.case_number,
            on_time=bool(mail.on_time),
            private_person=mail.sender_is_private_person,
            case=case,
        )
        if mail.receipt is not None:
            session.add(
                m.Receipt(
                    intake_id=record.id,
                    status=mail.receipt.status,
                    to_address=mail.receipt.to_address,
                    reason=mail.receipt.reason,
                    next_attempt_at=datetime.now(timezone.utc) if mail.receipt.status == "pending" else None,
                )
            )
    elif mail.receipt is not None and status == m.DUPLICATE:
        session.add(
            m.Receipt(
                intake_id=record.id,
                status="suppressed",
                to_address=mail.receipt.to_address,
                reason=f"duplicate of intake #{record.duplicate_of_id}: the first delivery has the receipt",
            )
        )
    elif mail.receipt is not None:
        session.add(
            m.Receipt(
                intake_id=record.id,
                status="suppressed",
                to_address=mail.receipt.to_address,
                reason=mail.receipt.reason or f"not registered ({status})",
            )
        )
    if mail.form is not None:
        data = {key: value for key, value in mail.form.items() if key != "fields"}
        form_row = m.FormResultRow(
            intake_id=record.id,
            document_id=_form_document_id(documents, mail),
            profile=str(mail.form.get("profile") or ""),
            form_status=str(mail.form.get("form_status") or ""),
            data=data,
            warnings=list(mail.form.get("warnings") or []),
        )
        session.add(form_row)
        session.flush()
        # The answers in one executemany (the ORM would send one INSERT per answer).
        answers = [
            {
                "form_result_id": form_row.id,
                "intake_id": record.id,
                "position": position,
                "key": answer["key"],
                "label": answer["label"],
                "kind": answer["kind"],
                "value": answer.get("value"),
                "read_by": answer.get("read_by") or "unknown",
                "text_value": answer.get("value")
                if answer["kind"] == "text" and isinstance(answer.get("value"), str)
                else None,
                "warnings": list(answer.get("warnings") or []),
            }
            for position, answer in enumerate(form_answers(mail.form))
        ]
        if answers:
            # Core (the table), not the ORM's bulk insert, which splits the rows by which values are None.
            session.execute(insert(cast(Table, m.FormAnswer.__table__)), answers)
    session.flush()
    return Outcome("new", record.id, status)


def form_answers(form: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-field answers of a parsed form: as the parser gave them, or (for a form given as flat values only)
    derived from its profile."""
    if form.get("fields"):
        return list(form["fields"])
    from postmottak.parsers.forms.answers import answers_from_values
    from postmottak.parsers.forms.profile import load_profile

    try:
        profile = load_profile(str(form.get("profile") or "")) if form.get("profile") else load_profile()
    except (ValueError, OSError):
        return []
    return [answer.model_dump(mode="json") for answer in answers_from_values(profile, form, read_by="unknown")]


def _same_content(session: Session, original: int, mail: IncomingMail) -> bool:
    return session.scalar(select(m.IntakeRecord.raw_sha256).where(m.IntakeRecord.id == original)) == mail.raw_sha256


def _case(session: Session, number: str | None) -> tuple[int, str] | None:
    """The id and timezone of case `number` (None for no number); LookupError when there is no such case."""
    if number is None:
        return None
    row = session.execute(select(m.Case.id, m.Case.timezone).where(m.Case.number == number)).first()
    if row is None:
        raise LookupError(f"case {number} is not in the case database")
    return row[0], row[1]


def _new_record(mail: IncomingMail, status: str, reason: str | None, duplicate_of: int | None) -> m.IntakeRecord:
    registered = status == m.REGISTERED
    return m.IntakeRecord(
        status=status,
        reason=reason,
        message_id=mail.message_id,
        raw_sha256=mail.raw_sha256,
        raw_size=mail.raw_size,
        raw_path=mail.raw_path,
        received_at=mail.received_at,
        received_at_source=mail.received_at_source,
        date_header=mail.date_header,
        sender_name=mail.sender_name,
        sender_address=mail.sender_address,
        subject=mail.subject,
        body_text=mail.body_text,
        in_reply_to=mail.in_reply_to,
        references=mail.references,
        machine_reason=mail.machine_reason,
        parse_defects=mail.parse_defects,
        on_time=mail.on_time if registered else None,
        duplicate_of_id=duplicate_of,
        source_key=mail.source_key,
    )


def _add_documents(session: Session, record: m.IntakeRecord, mail: IncomingMail) -> list[m.Document]:
    """The mail's documents added to its (flushed) record, in order; flushed, so they have their ids."""
    main_index = mail.form_document_index if mail.form_document_index is not None else 0
    rows: list[m.Document] = []
    for index, doc in enumerate(mail.documents):
        rows.append(
            m.Document(
                intake_id=record.id,
                number=index + 1,
                role="main" if index == main_index else "attachment",
                kind=doc.kind,
                title=doc.title,
                filename=doc.filename,
                content_type=doc.content_type,
                size=doc.size,
                sha256=doc.sha256,
                storage_path=doc.storage_path,
                is_form=doc.is_form,
                depth=doc.depth,
            )
        )
    # By the record's id, not through record.documents: appending to that collection would load it first.
    session.add_all(rows)
    session.flush()
    for doc, row in zip(mail.documents, rows, strict=True):
        layer = doc.text_layer
        if layer is not None:
            session.add(
                m.SearchableVersion(
                    document_id=row.id,
                    status=layer.status,
                    source_sha256=doc.sha256,
                    sha256=layer.sha256,
                    size=layer.size,
                    storage_path=layer.storage_path,
                    ocr_pages=list(layer.ocr_pages),
                    text=layer.text,
                    tool=layer.tool,
                    error=layer.error,
                )
            )
    return rows


def _form_document_id(documents: list[m.Document], mail: IncomingMail) -> int | None:
    if mail.form_document_index is None or mail.form_document_index >= len(documents):
        return None
    return documents[mail.form_document_index].id


def add_journal_entry(
    session: Session,
    record: m.IntakeRecord,
    *,
    case_number: str | None,
    on_time: bool,
    private_person: bool | None,
    created_by: str = "postmottak",
    case: tuple[int, str] | None = None,
) -> m.JournalEntry:
    """Journal a record to a case: next journal sequence of the receive year, next document number in the case.

    Used by the intake (at registration) and by staff registering a mail from the review queue. `case` is the id and
    timezone of case `case_number` when the caller has looked them up already.
    """
    found = case if case is not None else _case(session, case_number)
    assert found is not None
    case_id = found[0]
    if record.case_id != case_id:
        record.case_id = case_id
    # journaldato is the day it was journalled, in the case's own timezone; journalaar follows it (Noark 5).
    case_tz = found[1] or "Europe/Oslo"
    journal_date: date = datetime.now(ZoneInfo(case_tz)).date()
    year = journal_date.year
    entry = m.JournalEntry(
        intake_id=record.id,
        case_id=case_id,
        journal_year=year,
        journal_sequence=next_value(session, f"journal:{year}"),
        document_number=_next_document_number(session, case_id),
        journal_date=journal_date,
        received_at=record.received_at,
        title=record.subject or "(uten emne)",
        correspondent_name=record.sender_name,
        correspondent_email=record.sender_address,
        correspondent_is_private_person=private_person,
        on_time=on_time,
        created_by=created_by,
    )
    session.add(entry)
    return entry


def record_failure(
    session: Session, *, source_key: str, uidvalidity: int, uid: str, error: str, retry_base_seconds: float
) -> m.ProcessingFailure:
    failure = session.scalar(
        select(m.ProcessingFailure).where(
            m.ProcessingFailure.source_key == source_key,
            m.ProcessingFailure.uidvalidity == uidvalidity,
            m.ProcessingFailure.uid == uid,
        )
    )
    now = datetime.now(timezone.utc)
    if failure is None:
        failure = m.ProcessingFailure(
            source_key=source_key, uidvalidity=uidvalidity, uid=uid, attempts=0, last_error=error
        )
        session.add(failure)
    failure.attempts += 1
    failure.last_error = error[:4000]
    failure.next_attempt_at = now + timedelta(seconds=retry_base_seconds * (2 ** (failure.attempts - 1)))
    session.flush()
    return failure


def due_failures(session: Session, source_key: str, uidvalidity: int, max_attempts: int) -> list[str]:
    now = datetime.now(timezone.utc)
    return list(
        session.scalars(
            select(m.ProcessingFailure.uid).where(
                m.ProcessingFailure.source_key == source_key,
                m.ProcessingFailure.uidvalidity == uidvalidity,
                m.ProcessingFailure.resolved_at.is_(None),
                m.ProcessingFailure.attempts < max_attempts,
                m.ProcessingFailure.next_attempt_at <= now,
            )
        )
    )


def waiting_failures(session: Session, source_key: str, uidvalidity: int) -> set[str]:
    """Failed mail whose next attempt is not due yet (or that was given up): not to be fetched this cycle."""
    now = datetime.now(timezone.utc)
    return set(
        session.scalars(
            select(m.ProcessingFailure.uid).where(
                m.ProcessingFailure.source_key == source_key,
                m.ProcessingFailure.uidvalidity == uidvalidity,
                m.ProcessingFailure.resolved_at.is_(None),
                m.ProcessingFailure.next_attempt_at > now,
            )
        )
    )


def resolve_failure(session: Session, source_key: str, uidvalidity: int, uid: str, intake_id: int) -> None:
    session.execute(
        update(m.ProcessingFailure)
        .where(
            m.ProcessingFailure.source_key == source_key,
            m.ProcessingFailure.uidvalidity == uidvalidity,
            m.ProcessingFailure.uid == uid,
            m.ProcessingFailure.resolved_at.is_(None),
        )
        .values(resolved_at=datetime.now(timezone.utc), intake_id=intake_id)
    )
