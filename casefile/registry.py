"""Registering fetched mail: everything about a mail written in the caller's single transaction, a batch of mails
with a few statements per table (`register_batch`).

The database itself refuses a double registration: a mail location (source, UIDVALIDITY, UID) is unique, and so
are the Message-ID and raw-content keys of original mails. Two workers racing on the same mail get an
IntegrityError on one side, which rolls back and sees the other's record on retry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, insert, select, update
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


def next_value(session: Session, name: str, count: int = 1) -> int:
    """Atomically increment a named counter (journal sequence per year) by `count` and return its new value: the
    last of the `count` numbers taken."""
    # The counter exists but for the first use of a name (a year's first journal entry): one UPDATE, then.
    value = session.execute(
        update(m.Sequence)
        .where(m.Sequence.name == name)
        .values(value=m.Sequence.value + count)
        .returning(m.Sequence.value)
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
        update(m.Sequence)
        .where(m.Sequence.name == name)
        .values(value=m.Sequence.value + count)
        .returning(m.Sequence.value)
    ).scalar_one()


def _next_document_number(session: Session, case_id: int, count: int = 1) -> int:
    """Take `count` document numbers in the case; returns the last."""
    return session.execute(
        update(m.Case)
        .where(m.Case.id == case_id)
        .values(last_document_number=m.Case.last_document_number + count)
        .returning(m.Case.last_document_number)
    ).scalar_one()


def bump_high_water_mark(session: Session, source_key: str, uidvalidity: int, uid: int) -> None:
    """Raise the folder's last handled UID to `uid` (never lower it; nothing when the folder's UIDVALIDITY is other)."""
    session.execute(
        update(m.MailboxState)
        .where(
            m.MailboxState.source_key == source_key,
            m.MailboxState.uidvalidity == uidvalidity,
            m.MailboxState.last_uid < uid,
        )
        .values(last_uid=uid)
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
    return register_batch(session, [mail])[0]


def register_batch(session: Session, mails: Sequence[IncomingMail]) -> list[Outcome]:
    """Record several mails, in order, exactly as `register` one after the other would. Call inside a transaction.

    Three SELECTs for the whole batch find the plainly new mails (location not known, raw content and dedup keys
    not in the database, nor earlier in the batch); these are written together, a few statements per table. Any
    other mail (seen, relocated, a duplicate) is judged on its own with the per-mail queries, after the mails before
    it have been written, so it sees them as it would one at a time."""
    session.flush()  # a caller's pending ORM objects first, as the ORM's autoflush would send them
    mails = [fit_columns(mail) for mail in mails]
    known, contents, taken = _look_up(session, mails)
    cases: dict[str, tuple[int, str]] = {}
    outcomes: list[Outcome] = []
    plain: list[_Plan] = []
    for mail in mails:
        location = (mail.source_key, mail.uidvalidity, mail.uid)
        keys = dedup_keys(mail)
        if location in known or mail.raw_sha256 in contents or not taken.isdisjoint(keys):
            outcomes += _write(session, plain, cases)
            plain = []
            outcomes.append(_register_alone(session, mail, keys, cases))
        else:
            plain.append(_Plan(mail, mail.status, mail.reason))
        # A later mail of the batch with the same location, content or key is judged on its own, after this one.
        known.add(location)
        contents.add(mail.raw_sha256)
        taken.update(keys)
    outcomes += _write(session, plain, cases)
    return outcomes


@dataclass
class _Plan:
    """A new intake record to write: its status, and for a duplicate the original (whose keys it does not take)."""

    mail: IncomingMail
    status: str
    reason: str | None
    duplicate_of: int | None = None


def _look_up(session: Session, mails: Sequence[IncomingMail]) -> tuple[set[tuple[str, int, str]], set[str], set[str]]:
    """For a batch: which of its locations are known, which raw contents have a record, which dedup keys are taken."""
    known: set[tuple[str, int, str]] = set()
    for (source_key, uidvalidity), uids in _group_locations(mails).items():
        known.update(
            (source_key, uidvalidity, uid)
            for uid in session.scalars(
                _KNOWN_LOCATIONS, {"source_key": source_key, "uidvalidity": uidvalidity, "uids": uids}
            )
        )
    contents = set(session.scalars(_KNOWN_CONTENTS, {"shas": list({mail.raw_sha256 for mail in mails})}))
    taken = set(session.scalars(_TAKEN_KEYS, {"keys": [key for mail in mails for key in dedup_keys(mail)]}))
    return known, contents, taken


def _group_locations(mails: Sequence[IncomingMail]) -> dict[tuple[str, int], list[str]]:
    groups: dict[tuple[str, int], list[str]] = {}
    for mail in mails:
        groups.setdefault((mail.source_key, mail.uidvalidity), []).append(mail.uid)
    return groups


# Built once: SQLAlchemy then finds each compiled statement in its cache instead of building and compiling it per mail.
_KNOWN_LOCATIONS = select(m.MailLocation.uid).where(
    m.MailLocation.source_key == bindparam("source_key"),
    m.MailLocation.uidvalidity == bindparam("uidvalidity"),
    m.MailLocation.uid.in_(bindparam("uids", expanding=True)),
)
_KNOWN_CONTENTS = select(m.IntakeRecord.raw_sha256).where(
    m.IntakeRecord.raw_sha256.in_(bindparam("shas", expanding=True))
)
_TAKEN_KEYS = select(m.DedupKey.key).where(m.DedupKey.key.in_(bindparam("keys", expanding=True)))

_RECORDS = cast(Table, m.IntakeRecord.__table__)
_DOCUMENTS = cast(Table, m.Document.__table__)
_FORMS = cast(Table, m.FormResultRow.__table__)
# Core inserts of many rows: one statement for a batch (an executemany; SQLAlchemy's "insertmanyvalues" puts the
# rows of an INSERT .. RETURNING into one statement as long as their order is not asked for, which SQLite cannot
# promise). RETURNING gives each id with the row's unique key, so the ids are matched by key, not by order.
_INSERT_RECORDS = insert(_RECORDS).returning(_RECORDS.c.id, _RECORDS.c.raw_sha256)
_INSERT_LOCATIONS = insert(cast(Table, m.MailLocation.__table__))
_INSERT_KEYS = insert(cast(Table, m.DedupKey.__table__))
_INSERT_DOCUMENTS = insert(_DOCUMENTS).returning(_DOCUMENTS.c.id, _DOCUMENTS.c.intake_id, _DOCUMENTS.c.number)
_INSERT_TEXT_LAYERS = insert(cast(Table, m.SearchableVersion.__table__))
_INSERT_JOURNAL_ENTRIES = insert(cast(Table, m.JournalEntry.__table__))
_INSERT_RECEIPTS = insert(cast(Table, m.Receipt.__table__))
_INSERT_FORMS = insert(_FORMS).returning(_FORMS.c.id, _FORMS.c.intake_id)
# Core (the table), not the ORM's bulk insert, which splits the rows by which values are None.
_INSERT_ANSWERS = insert(cast(Table, m.FormAnswer.__table__))


def _register_alone(
    session: Session, mail: IncomingMail, keys: list[str], cases: dict[str, tuple[int, str]]
) -> Outcome:
    """One mail that is not plainly new: seen at this location before, the same mail in an older UIDVALIDITY of
    the folder, or a duplicate."""
    known = location_known(session, mail.source_key, mail.uidvalidity, mail.uid)
    if known is not None:
        return Outcome("seen", known, _status(session, known))
    relocated = _seen_in_earlier_epoch(session, mail)
    if relocated is not None:
        session.execute(_INSERT_LOCATIONS, [_location_row(mail, relocated)])
        return Outcome("relocated", relocated, _status(session, relocated))
    original = _existing_original(session, keys)
    if original is None:
        return _write(session, [_Plan(mail, mail.status, mail.reason)], cases)[0]
    same = "content" if _same_content(session, original, mail) else "Message-ID"
    return _write(session, [_Plan(mail, m.DUPLICATE, f"same {same} as intake #{original}", original)], cases)[0]


def _status(session: Session, intake_id: int) -> str:
    return session.scalar(select(m.IntakeRecord.status).where(m.IntakeRecord.id == intake_id)) or ""


def _write(session: Session, plans: list[_Plan], cases: dict[str, tuple[int, str]]) -> list[Outcome]:
    """Write new records with everything that belongs to them, table by table (one executemany each)."""
    if not plans:
        return []
    case_ids = [
        _case_of(session, plan.mail.case_number, cases)[0] if plan.status == m.REGISTERED else None for plan in plans
    ]
    # The plans of one write never share raw content (register_batch judges a second copy on its own).
    inserted = session.execute(_INSERT_RECORDS, [_record_row(p, c) for p, c in zip(plans, case_ids, strict=True)])
    by_content: dict[str, int] = {sha: intake_id for intake_id, sha in inserted}
    assert len(by_content) == len(plans), "one record per raw content in a write"
    ids = [by_content[plan.mail.raw_sha256] for plan in plans]
    # Before the dedup keys: another worker that registered one of these locations makes this raise to the caller
    # (who then sees that worker's record), rather than pass for a duplicate-content race.
    session.execute(_INSERT_LOCATIONS, [_location_row(p.mail, i) for p, i in zip(plans, ids, strict=True)])
    _take_keys(session, plans, ids)
    documents = _add_documents(session, plans, ids)
    registered = [(p, i) for p, i in zip(plans, ids, strict=True) if p.status == m.REGISTERED]
    if registered:
        _add_journal_entries(session, registered, cases)
    receipts = [_receipt_row(p, i) for p, i in zip(plans, ids, strict=True) if p.mail.receipt is not None]
    if receipts:
        session.execute(_INSERT_RECEIPTS, receipts)
    _add_forms(session, plans, ids, documents)
    return [Outcome("new", i, p.status) for p, i in zip(plans, ids, strict=True)]


def _record_row(plan: _Plan, case_id: int | None) -> dict[str, Any]:
    mail = plan.mail
    registered = plan.status == m.REGISTERED
    return {
        "status": plan.status,
        "reason": plan.reason,
        "message_id": mail.message_id,
        "raw_sha256": mail.raw_sha256,
        "raw_size": mail.raw_size,
        "raw_path": mail.raw_path,
        "received_at": mail.received_at,
        "received_at_source": mail.received_at_source,
        "date_header": mail.date_header,
        "sender_name": mail.sender_name,
        "sender_address": mail.sender_address,
        "subject": mail.subject,
        "body_text": mail.body_text,
        "in_reply_to": mail.in_reply_to,
        "references": mail.references,
        "machine_reason": mail.machine_reason,
        "parse_defects": mail.parse_defects,
        "case_id": case_id,
        "on_time": mail.on_time if registered else None,
        "duplicate_of_id": plan.duplicate_of,
        "source_key": mail.source_key,
    }


def _location_row(mail: IncomingMail, intake_id: int) -> dict[str, Any]:
    return {"intake_id": intake_id, "source_key": mail.source_key, "uidvalidity": mail.uidvalidity, "uid": mail.uid}


def _take_keys(session: Session, plans: list[_Plan], ids: list[int]) -> None:
    """The dedup keys of the originals. When another worker took one a moment ago (IntegrityError), the keys are
    taken mail by mail to find which: that copy becomes the duplicate."""
    originals = [(p, i) for p, i in zip(plans, ids, strict=True) if p.duplicate_of is None]
    rows = [{"key": key, "intake_id": i} for p, i in originals for key in dedup_keys(p.mail)]
    if not rows:
        return
    try:
        with session.begin_nested():
            session.execute(_INSERT_KEYS, rows)
        return
    except IntegrityError:
        pass
    for plan, intake_id in originals:
        keys = dedup_keys(plan.mail)
        try:
            with session.begin_nested():
                session.execute(_INSERT_KEYS, [{"key": key, "intake_id": intake_id} for key in keys])
        except IntegrityError:
            # Another worker registered the same mail a moment ago: this copy is the duplicate.
            original = _existing_original(session, keys)
            plan.status, plan.reason, plan.duplicate_of = m.DUPLICATE, f"same mail as intake #{original}", original
            session.execute(
                update(_RECORDS)
                .where(_RECORDS.c.id == intake_id)
                .values(status=plan.status, reason=plan.reason, duplicate_of_id=original, case_id=None, on_time=None)
            )


def _add_documents(session: Session, plans: list[_Plan], ids: list[int]) -> list[list[int]]:
    """The mails' documents, in order, with the searchable versions of those read by OCR; their ids per mail."""
    rows: list[dict[str, Any]] = []
    for plan, intake_id in zip(plans, ids, strict=True):
        mail = plan.mail
        main_index = mail.form_document_index if mail.form_document_index is not None else 0
        for index, doc in enumerate(mail.documents):
            rows.append(
                {
                    "intake_id": intake_id,
                    "number": index + 1,
                    "role": "main" if index == main_index else "attachment",
                    "kind": doc.kind,
                    "title": doc.title,
                    "filename": doc.filename,
                    "content_type": doc.content_type,
                    "size": doc.size,
                    "sha256": doc.sha256,
                    "storage_path": doc.storage_path,
                    "is_form": doc.is_form,
                    "depth": doc.depth,
                }
            )
    if not rows:
        return [[] for _ in plans]
    by_number = {
        (intake_id, number): document_id for document_id, intake_id, number in session.execute(_INSERT_DOCUMENTS, rows)
    }
    document_ids = [
        [by_number[(intake_id, number)] for number in range(1, len(plan.mail.documents) + 1)]
        for plan, intake_id in zip(plans, ids, strict=True)
    ]
    layers = [
        {
            "document_id": document_id,
            "status": layer.status,
            "source_sha256": doc.sha256,
            "sha256": layer.sha256,
            "size": layer.size,
            "storage_path": layer.storage_path,
            "ocr_pages": list(layer.ocr_pages),
            "text": layer.text,
            "tool": layer.tool,
            "error": layer.error,
        }
        for plan, doc_ids in zip(plans, document_ids, strict=True)
        for doc, document_id in zip(plan.mail.documents, doc_ids, strict=True)
        if (layer := doc.text_layer) is not None
    ]
    if layers:
        session.execute(_INSERT_TEXT_LAYERS, layers)
    return document_ids


def _add_journal_entries(
    session: Session, registered: list[tuple[_Plan, int]], cases: dict[str, tuple[int, str]]
) -> None:
    """Journal entries of the registered mails, numbered in order: one counter UPDATE per receive year and per case
    for the whole batch (years, then cases, each in ascending order, so concurrent writers lock them alike)."""
    found = [_case_of(session, plan.mail.case_number, cases) for plan, _ in registered]
    # journaldato is the day it was journalled, in the case's own timezone; journalaar follows it (Noark 5).
    dates = [datetime.now(ZoneInfo(tz or "Europe/Oslo")).date() for _, tz in found]
    sequences = _numbers(Counter(d.year for d in dates), lambda year, n: next_value(session, f"journal:{year}", n))
    numbers = _numbers(
        Counter(case_id for case_id, _ in found), lambda case_id, n: _next_document_number(session, case_id, n)
    )
    rows = []
    for (plan, intake_id), (case_id, _), journal_date in zip(registered, found, dates, strict=True):
        mail = plan.mail
        rows.append(
            {
                "intake_id": intake_id,
                "case_id": case_id,
                "journal_year": journal_date.year,
                "journal_sequence": next(sequences[journal_date.year]),
                "document_number": next(numbers[case_id]),
                "journal_date": journal_date,
                "received_at": mail.received_at,
                "title": mail.subject or "(uten emne)",
                "correspondent_name": mail.sender_name,
                "correspondent_email": mail.sender_address,
                "correspondent_is_private_person": mail.sender_is_private_person,
                "on_time": bool(mail.on_time),
                "created_by": "postmottak",
            }
        )
    session.execute(_INSERT_JOURNAL_ENTRIES, rows)


def _numbers(counts: Counter[int], take: Callable[[int, int], int]) -> dict[int, Iterator[int]]:
    """For each counter, the `count` numbers taken from it at once (`take` returns the last), in order."""
    taken: dict[int, Iterator[int]] = {}
    for counter in sorted(counts):
        last = take(counter, counts[counter])
        taken[counter] = iter(range(last - counts[counter] + 1, last + 1))
    return taken


def _receipt_row(plan: _Plan, intake_id: int) -> dict[str, Any]:
    receipt = plan.mail.receipt
    assert receipt is not None
    row: dict[str, Any] = {"intake_id": intake_id, "to_address": receipt.to_address, "next_attempt_at": None}
    if plan.status == m.REGISTERED:
        row["status"], row["reason"] = receipt.status, receipt.reason
        if receipt.status == "pending":
            row["next_attempt_at"] = datetime.now(timezone.utc)
    elif plan.status == m.DUPLICATE:
        row["status"] = "suppressed"
        row["reason"] = f"duplicate of intake #{plan.duplicate_of}: the first delivery has the receipt"
    else:
        row["status"], row["reason"] = "suppressed", receipt.reason or f"not registered ({plan.status})"
    return row


def _add_forms(session: Session, plans: list[_Plan], ids: list[int], documents: list[list[int]]) -> None:
    """The parsed forms, and their answers in one executemany (the ORM would send one INSERT per answer)."""
    with_form = [(p, i, d) for p, i, d in zip(plans, ids, documents, strict=True) if p.mail.form is not None]
    if not with_form:
        return
    rows = []
    for plan, intake_id, document_ids in with_form:
        form, index = plan.mail.form, plan.mail.form_document_index
        assert form is not None
        rows.append(
            {
                "intake_id": intake_id,
                "document_id": document_ids[index] if index is not None and index < len(document_ids) else None,
                "profile": str(form.get("profile") or ""),
                "form_status": str(form.get("form_status") or ""),
                "data": {key: value for key, value in form.items() if key != "fields"},
                "warnings": list(form.get("warnings") or []),
            }
        )
    form_ids = {intake_id: form_id for form_id, intake_id in session.execute(_INSERT_FORMS, rows)}
    answers = [
        {
            "form_result_id": form_ids[intake_id],
            "intake_id": intake_id,
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
        for plan, intake_id, _ in with_form
        for position, answer in enumerate(form_answers(plan.mail.form or {}))
    ]
    if answers:
        session.execute(_INSERT_ANSWERS, answers)


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


def _case_of(session: Session, number: str | None, cases: dict[str, tuple[int, str]]) -> tuple[int, str]:
    """The id and timezone of case `number`, looked up once per batch (`cases`)."""
    if number is not None and number in cases:
        return cases[number]
    found = _case(session, number)
    assert found is not None and number is not None, "a mail to be journalled names its case"
    cases[number] = found
    return found


def _case(session: Session, number: str | None) -> tuple[int, str] | None:
    """The id and timezone of case `number` (None for no number); LookupError when there is no such case."""
    if number is None:
        return None
    row = session.execute(select(m.Case.id, m.Case.timezone).where(m.Case.number == number)).first()
    if row is None:
        raise LookupError(f"case {number} is not in the case database")
    return row[0], row[1]


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


def resolve_failures(session: Session, source_key: str, registered: Sequence[tuple[int, str, int]]) -> None:
    """`resolve_failure` for a batch of (uidvalidity, uid, intake id): one SELECT finds the few with a failure."""
    wanted = {(uidvalidity, uid): intake_id for uidvalidity, uid, intake_id in registered}
    if not wanted:
        return
    failed = session.execute(
        _OPEN_FAILURES, {"source_key": source_key, "uids": sorted({uid for _, uid in wanted})}
    ).all()
    for uidvalidity, uid in failed:
        if (uidvalidity, uid) in wanted:
            resolve_failure(session, source_key, uidvalidity, uid, wanted[(uidvalidity, uid)])


_OPEN_FAILURES = select(m.ProcessingFailure.uidvalidity, m.ProcessingFailure.uid).where(
    m.ProcessingFailure.source_key == bindparam("source_key"),
    m.ProcessingFailure.uid.in_(bindparam("uids", expanding=True)),
    m.ProcessingFailure.resolved_at.is_(None),
)
