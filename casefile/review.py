"""What staff see and do: browse and search the intake, the review queue, and the review actions.

Every action checks the record's current state in the same transaction, changes it, and writes an AuditEvent with
who, when, and the state before and after. Actions are guarded by conditional UPDATEs so two staff members acting
on the same mail at once cannot both succeed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, exists, func, literal_column, or_, select, update
from sqlalchemy.orm import Session, selectinload

from postmottak.casefile import models as m
from postmottak.casefile import outbox
from postmottak.casefile.cases import case_on_time
from postmottak.casefile.clock import local_time
from postmottak.casefile.clock import utc_now as _now
from postmottak.casefile.form_values import (
    FormLayout,
    answer_of,
    corrected_form,
    form_layout,
    load_corrections,
    shown_value,
)
from postmottak.casefile.labels import UNDO_RECEIPT_LABELS, action_label, status_word
from postmottak.casefile.records import ReceiptPlan
from postmottak.casefile.registry import add_journal_entry
from postmottak.parsers.forms.answers import FieldSpec, flat_value

REGISTRABLE = (m.NEEDS_REVIEW, m.IGNORED)
IGNORABLE = (m.NEEDS_REVIEW, m.FAILED)
FORM_CHECKED = "form_checked"


# The worker's receipt policy for a mail registered by hand, given by the caller (casefile never imports intake):
# (session, record) -> a pending plan with the address, or a suppressed one with the reason.
ReceiptCheck = Callable[[Session, "m.IntakeRecord"], ReceiptPlan]


class ReviewError(ValueError):
    """An action that does not apply to the record as it is now (the message is shown to staff, in Norwegian)."""


# Browsing --------------------------------------------------------------------------------------


@dataclass
class IntakeFilter:
    status: str | None = None
    case_number: str | None = None
    timeliness: str | None = None  # on_time | late
    receipt_status: str | None = None
    respondent_type: str | None = None  # an option of the respondent-type question of the case's form
    search: str | None = None
    page: int = 1
    per_page: int = 50
    sort: str = "received"  # a key of SORT_COLUMNS
    descending: bool = True


@dataclass
class IntakePage:
    records: list[m.IntakeRecord]
    total: int
    page: int
    per_page: int
    # Corrected form values per record id.
    forms: dict[int, dict[str, Any]]
    # Per record id: the respondent's name and type as its form states them ("" when it does not).
    respondents: dict[int, tuple[str, str]] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def case_layouts(session: Session) -> list[FormLayout]:
    """The form layouts of every case, in case order (one per distinct profile)."""
    names = list(dict.fromkeys(session.scalars(select(m.Case.form_profile).order_by(m.Case.number))))
    return list({id(layout): layout for layout in (form_layout(name) for name in names or [None])}.values())


def respondent_type_options(session: Session) -> list[str]:
    """The options of the respondent-type questions of the cases' forms (what the list can be filtered by)."""
    options: list[str] = []
    for layout in case_layouts(session):
        if layout.respondent_type is not None:
            options += [o.value for o in layout.respondent_type.options if o.value not in options]
    return options


def _effective_type_condition(session: Session, respondent_type: str) -> Any:
    """Records whose respondent type, after the latest correction, is the given one."""
    keys = [layout.respondent_type.key for layout in case_layouts(session) if layout.respondent_type is not None]
    if not keys:
        return m.IntakeRecord.id.is_(None)
    latest: dict[int, Any] = {}
    for correction in session.scalars(
        select(m.FieldCorrection)
        .where(m.FieldCorrection.field.in_(keys))
        .order_by(m.FieldCorrection.corrected_at, m.FieldCorrection.id)
    ):
        latest[correction.intake_id] = correction.corrected_value
    corrected_ids = list(latest)
    corrected_to = [intake_id for intake_id, value in latest.items() if value == respondent_type]
    parsed = or_(*(m.FormResultRow.data[key].as_string() == respondent_type for key in keys))
    parsed_matches: ColumnElement[bool] = exists().where(m.FormResultRow.intake_id == m.IntakeRecord.id, parsed)
    if corrected_ids:
        parsed_matches = and_(parsed_matches, m.IntakeRecord.id.not_in(corrected_ids))
    return or_(parsed_matches, m.IntakeRecord.id.in_(corrected_to)) if corrected_to else parsed_matches


_JOURNAL_NUMBER = re.compile(r"^(\d{2}|\d{4})/(\d+)(?:-(\d+))?$")


def _folding(session: Session) -> tuple[Callable[[Any], Any], Callable[[str], str]]:
    """Case folding in SQL and in Python that agree: SQLite gets Python's casefold (registered on each connection
    in casefile.db), PostgreSQL its own lower(), which folds every letter in a UTF-8 database."""
    if session.get_bind().dialect.name == "sqlite":
        return func.casefold, str.casefold
    return func.lower, str.lower


def _json_text(session: Session, column: Any) -> Any:
    """A JSON column holding a string, as that string (not its JSON spelling, where ø may be \\u00f8)."""
    if session.get_bind().dialect.name == "sqlite":
        return func.json_extract(column, "$")
    return column.op("#>>")(literal_column("'{}'"))


def _journal_number_condition(text: str) -> Any | None:
    """ "2022/414-5" (or "22/414-5", or a whole case "2022/414") as a condition on the record's journal entry."""
    match = _JOURNAL_NUMBER.match(text.replace(" ", ""))
    if match is None:
        return None
    year = int(match.group(1))
    year = year + 2000 if year < 100 else year
    entry = (
        select(m.JournalEntry.intake_id)
        .join(m.Case, m.Case.id == m.JournalEntry.case_id)
        .where(m.Case.year == year, m.Case.sequence == int(match.group(2)))
    )
    if match.group(3):
        entry = entry.where(m.JournalEntry.document_number == int(match.group(3)))
    return m.IntakeRecord.id.in_(entry)


def _search_condition(session: Session, text: str) -> Any:
    """Sender, subject, mail text, journal number, every form answer and the OCR'd text of scans, folding case for
    all letters."""
    fold_sql, fold = _folding(session)
    pattern = _like(fold(text))
    columns = [
        m.IntakeRecord.sender_address,
        m.IntakeRecord.sender_name,
        m.IntakeRecord.subject,
        m.IntakeRecord.body_text,
    ]
    text_matches = [fold_sql(column).like(pattern, escape="\\") for column in columns]
    corrected = select(m.FieldCorrection.intake_id).where(
        fold_sql(_json_text(session, m.FieldCorrection.corrected_value)).like(pattern, escape="\\")
    )
    matches = [
        *text_matches,
        # Every text answer of every form, whatever its profile.
        exists().where(
            m.FormAnswer.intake_id == m.IntakeRecord.id, fold_sql(m.FormAnswer.text_value).like(pattern, escape="\\")
        ),
        m.IntakeRecord.id.in_(corrected),
        # The OCR'd text of scanned documents (their searchable versions).
        exists().where(
            m.Document.intake_id == m.IntakeRecord.id,
            m.SearchableVersion.document_id == m.Document.id,
            fold_sql(m.SearchableVersion.text).like(pattern, escape="\\"),
        ),
    ]
    journal = _journal_number_condition(text)
    if journal is not None:
        matches.append(journal)
    return or_(*matches)


SORT_COLUMNS: dict[str, Any] = {
    "id": m.IntakeRecord.id,
    "received": m.IntakeRecord.received_at,
    "sender": m.IntakeRecord.sender_address,
    "subject": m.IntakeRecord.subject,
    "status": m.IntakeRecord.status,
}


def _ordering(criteria: IntakeFilter) -> list[Any]:
    column = SORT_COLUMNS.get(criteria.sort, m.IntakeRecord.received_at)
    tie = m.IntakeRecord.id.desc() if criteria.descending else m.IntakeRecord.id.asc()
    return [column.desc() if criteria.descending else column.asc(), tie]


def search_intake(session: Session, criteria: IntakeFilter) -> IntakePage:
    conditions: list[Any] = []
    if criteria.status:
        conditions.append(m.IntakeRecord.status == criteria.status)
    if criteria.case_number:
        conditions.append(m.IntakeRecord.case_id.in_(select(m.Case.id).where(m.Case.number == criteria.case_number)))
    if criteria.timeliness == "on_time":
        conditions.append(m.IntakeRecord.on_time.is_(True))
    elif criteria.timeliness == "late":
        conditions.append(m.IntakeRecord.on_time.is_(False))
    if criteria.receipt_status:
        conditions.append(
            exists().where(m.Receipt.intake_id == m.IntakeRecord.id, m.Receipt.status == criteria.receipt_status)
        )
    if criteria.respondent_type:
        conditions.append(_effective_type_condition(session, criteria.respondent_type))
    if criteria.search and criteria.search.strip():
        conditions.append(_search_condition(session, criteria.search.strip()))
    where = and_(*conditions) if conditions else None
    count_query = select(func.count()).select_from(m.IntakeRecord)
    query = select(m.IntakeRecord).options(
        selectinload(m.IntakeRecord.case),
        selectinload(m.IntakeRecord.receipt),
        selectinload(m.IntakeRecord.form).selectinload(m.FormResultRow.answers),
        selectinload(m.IntakeRecord.journal_entry).selectinload(m.JournalEntry.case),
    )
    if where is not None:
        count_query = count_query.where(where)
        query = query.where(where)
    total = session.scalar(count_query) or 0
    page = max(1, criteria.page)
    per_page = max(1, min(criteria.per_page, 500))
    records = list(session.scalars(query.order_by(*_ordering(criteria)).offset((page - 1) * per_page).limit(per_page)))
    corrections = load_corrections(session, [r.id for r in records])
    forms = {r.id: corrected_form(r, corrections.get(r.id, [])) or {} for r in records}
    respondents = {r.id: respondent_of(layout_of(r), forms[r.id]) for r in records}
    return IntakePage(records=records, total=total, page=page, per_page=per_page, forms=forms, respondents=respondents)


def respondent_of(layout: FormLayout, form: dict[str, Any]) -> tuple[str, str]:
    """The respondent's name and type as the form states them, by the form's own fields."""
    name = str(form.get(layout.respondent_name_key) or "") if layout.respondent_name_key else ""
    kind = ""
    if layout.respondent_type is not None:
        kind = shown_value(layout.respondent_type, answer_of(form, layout.respondent_type.key))
    return name, kind


def load_record(session: Session, intake_id: int) -> m.IntakeRecord:
    record = session.scalar(
        select(m.IntakeRecord)
        .where(m.IntakeRecord.id == intake_id)
        .options(
            selectinload(m.IntakeRecord.case),
            selectinload(m.IntakeRecord.documents),
            selectinload(m.IntakeRecord.form).selectinload(m.FormResultRow.answers),
            selectinload(m.IntakeRecord.receipt),
            selectinload(m.IntakeRecord.journal_entry).selectinload(m.JournalEntry.case),
        )
    )
    if record is None:
        raise LookupError(f"no intake record {intake_id}")
    return record


def corrections_for(session: Session, intake_id: int) -> list[m.FieldCorrection]:
    return load_corrections(session, [intake_id]).get(intake_id, [])


def layout_of(record: m.IntakeRecord) -> FormLayout:
    """The layout of a record's form: its case's profile, else the profile it was parsed with."""
    if record.case is not None and record.case.form_profile:
        return form_layout(record.case.form_profile)
    return form_layout(record.form.profile if record.form is not None and record.form.profile else None)


def history(session: Session, intake_id: int) -> list[m.AuditEvent]:
    return list(
        session.scalars(
            select(m.AuditEvent).where(m.AuditEvent.intake_id == intake_id).order_by(m.AuditEvent.at, m.AuditEvent.id)
        )
    )


def recent_events(session: Session, limit: int = 100) -> list[m.AuditEvent]:
    return list(
        session.scalars(select(m.AuditEvent).order_by(m.AuditEvent.at.desc(), m.AuditEvent.id.desc()).limit(limit))
    )


def document_of(session: Session, intake_id: int, document_id: int) -> m.Document:
    """A document, only through the record it belongs to (ids in a URL cannot reach another mail's files)."""
    document = session.scalar(select(m.Document).where(m.Document.id == document_id, m.Document.intake_id == intake_id))
    if document is None:
        raise LookupError(f"no document {document_id} in intake record {intake_id}")
    return document


def case_numbers(session: Session) -> list[str]:
    return list(session.scalars(select(m.Case.number).order_by(m.Case.number)))


def open_case_numbers(session: Session) -> list[str]:
    return list(session.scalars(select(m.Case.number).where(m.Case.status == "open").order_by(m.Case.number)))


# Review queue ----------------------------------------------------------------------------------


@dataclass
class ReviewQueue:
    needs_review: list[m.IntakeRecord]
    form_warnings: list[m.IntakeRecord]

    @property
    def total(self) -> int:
        return len(self.needs_review) + len(self.form_warnings)


def _form_checked_exists() -> Any:
    return exists().where(m.AuditEvent.intake_id == m.IntakeRecord.id, m.AuditEvent.action == FORM_CHECKED)


def review_queue(session: Session) -> ReviewQueue:
    options = (
        selectinload(m.IntakeRecord.case),
        selectinload(m.IntakeRecord.form),
        selectinload(m.IntakeRecord.receipt),
        selectinload(m.IntakeRecord.journal_entry).selectinload(m.JournalEntry.case),
    )
    needs = list(
        session.scalars(
            select(m.IntakeRecord)
            .where(m.IntakeRecord.status == m.NEEDS_REVIEW)
            .options(*options)
            .order_by(m.IntakeRecord.received_at, m.IntakeRecord.id)
        )
    )
    candidates = session.scalars(
        select(m.IntakeRecord)
        .join(m.FormResultRow, m.FormResultRow.intake_id == m.IntakeRecord.id)
        .where(m.IntakeRecord.status == m.REGISTERED, ~_form_checked_exists())
        .options(*options)
        .order_by(m.IntakeRecord.received_at, m.IntakeRecord.id)
    )
    # Warnings are a JSON list; checking emptiness in Python keeps the query portable.
    warned = [record for record in candidates if record.form is not None and record.form.warnings]
    return ReviewQueue(needs_review=needs, form_warnings=warned)


def review_count(session: Session) -> int:
    return review_queue(session).total


def form_checked(session: Session, intake_id: int) -> bool:
    return bool(
        session.scalar(
            select(func.count())
            .select_from(m.AuditEvent)
            .where(m.AuditEvent.intake_id == intake_id, m.AuditEvent.action == FORM_CHECKED)
        )
    )


# Actions ---------------------------------------------------------------------------------------


def _snapshot(record: m.IntakeRecord) -> dict[str, Any]:
    return {
        "status": record.status,
        "reason": record.reason,
        "case": record.case.number if record.case else None,
        "on_time": record.on_time,
    }


def _receipt_snapshot(receipt: m.Receipt | None) -> dict[str, Any] | None:
    if receipt is None:
        return None
    return {
        "status": receipt.status,
        "to": receipt.to_address,
        "reason": receipt.reason,
        "sent_at": receipt.sent_at.isoformat() if receipt.sent_at else None,
        "attempts": receipt.attempts,
        "subject": receipt.subject,
    }


def _audit(
    session: Session,
    *,
    actor: str,
    action: str,
    record: m.IntakeRecord,
    before: Any,
    after: Any,
    note: str | None = None,
) -> m.AuditEvent:
    event = m.AuditEvent(
        at=_now(),
        actor=actor,
        action=action,
        intake_id=record.id,
        case_id=record.case_id,
        before=before,
        after=after,
        note=note,
    )
    session.add(event)
    session.flush()
    return event


def _claim(session: Session, intake_id: int, allowed: tuple[str, ...], **values: Any) -> bool:
    """Move the record out of one of the allowed statuses; False when someone else got there first."""
    result = session.execute(
        update(m.IntakeRecord)
        .where(m.IntakeRecord.id == intake_id, m.IntakeRecord.status.in_(allowed))
        .values(updated_at=_now(), **values)
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], result).rowcount == 1  # an UPDATE executes to a CursorResult (with rowcount)


def register_to_case(
    session: Session,
    intake_id: int,
    case_number: str,
    actor: str,
    *,
    send_receipt: bool = True,
    note: str | None = None,
    receipt_check: ReceiptCheck | None = None,
) -> m.IntakeRecord:
    """Journal a mail from the review queue to a case, with a receipt to the sender unless told otherwise, or
    unless the receipt policy (`receipt_check`, the worker's) says this sender must not be answered."""
    record = load_record(session, intake_id)
    if record.status not in REGISTRABLE:
        raise ReviewError(f"Posten har status «{status_word(record.status)}» og kan ikke registreres på en sak.")
    case = session.scalar(select(m.Case).where(m.Case.number == case_number))
    if case is None:
        raise ReviewError(f"Saken {case_number} finnes ikke.")
    if case.status != "open":
        raise ReviewError(f"Saken {case_number} er avsluttet.")
    before = {**_snapshot(record), "receipt": _receipt_snapshot(record.receipt)}
    on_time = case_on_time(case, record.received_at)
    if not _claim(session, intake_id, REGISTRABLE, status=m.REGISTERED, reason=None, on_time=on_time):
        raise ReviewError("Posten er allerede behandlet av noen andre.")
    session.refresh(record)
    form = corrected_form(record, corrections_for(session, intake_id))
    private = form_layout(case.form_profile).is_private_person(form)
    entry = add_journal_entry(
        session, record, case_number=case.number, on_time=on_time, private_person=private, created_by=actor
    )
    session.flush()
    session.refresh(record)
    if send_receipt:
        _plan_receipt(session, record, receipt_check)
    session.flush()
    session.refresh(record)
    after = {**_snapshot(record), "journal_number": entry.journal_number, "receipt": _receipt_snapshot(record.receipt)}
    _audit(session, actor=actor, action="register", record=record, before=before, after=after, note=note)
    return record


def receipt_preview(session: Session, record: m.IntakeRecord, receipt_check: ReceiptCheck | None) -> ReceiptPlan:
    """What registering this mail would do with its receipt: pending to an address, or suppressed and why."""
    if receipt_check is not None:
        return receipt_check(session, record)
    return _recorded_plan(record)


def _recorded_plan(record: m.IntakeRecord) -> ReceiptPlan:
    """Without the worker's policy at hand: keep what the worker recorded (a machine mail, a suppressed receipt)."""
    receipt = record.receipt
    address = (receipt.to_address if receipt else None) or record.sender_address
    if record.machine_reason:
        return ReceiptPlan("suppressed", address, f"machine mail: {record.machine_reason}")
    if (
        receipt is not None
        and receipt.status == outbox.SUPPRESSED
        and receipt.reason not in (None, REGISTRATION_UNDONE)
    ):
        return ReceiptPlan("suppressed", address, receipt.reason)
    if not address:
        return ReceiptPlan("suppressed", None, "no sender address")
    return ReceiptPlan("pending", address, None)


def _plan_receipt(session: Session, record: m.IntakeRecord, receipt_check: ReceiptCheck | None) -> None:
    receipt = record.receipt
    if receipt is not None and receipt.status in (outbox.SENT, outbox.PENDING):
        return
    plan = receipt_preview(session, record, receipt_check)
    address = plan.to_address or (receipt.to_address if receipt else None) or record.sender_address
    if receipt is None:
        receipt = m.Receipt(intake_id=record.id, status=outbox.SUPPRESSED, to_address=address)
        session.add(receipt)
    if plan.status != outbox.PENDING or not address:
        receipt.status, receipt.to_address = outbox.SUPPRESSED, address
        receipt.reason = plan.reason or "no sender address"
        return
    receipt.status, receipt.to_address, receipt.reason = outbox.PENDING, address, None
    receipt.attempts, receipt.next_attempt_at = 0, _now()


def mark_ignored(session: Session, intake_id: int, reason: str, actor: str) -> m.IntakeRecord:
    reason = (reason or "").strip()
    if not reason:
        raise ReviewError("Oppgi en begrunnelse.")
    record = load_record(session, intake_id)
    if record.status not in IGNORABLE:
        raise ReviewError(f"Posten har status «{status_word(record.status)}» og kan ikke markeres som ignorert.")
    before = _snapshot(record)
    if not _claim(session, intake_id, IGNORABLE, status=m.IGNORED, reason=f"ignorert av {actor}: {reason}"):
        raise ReviewError("Posten er allerede behandlet av noen andre.")
    session.refresh(record)
    _audit(session, actor=actor, action="ignore", record=record, before=before, after=_snapshot(record), note=reason)
    return record


def normalise_value(field: str, value: str | None, layout: FormLayout | None = None) -> Any:
    """The stored (flat) form of a corrected value; raises ReviewError for a value the field cannot hold.

    Text: the text. Choice: an option, by its value, printed label or short name ("; " between several for a
    multiple choice). Matrix: "row label = column; row label = column" (rows left out have no tick)."""
    layout = layout or form_layout(None)
    spec = layout.spec(field)
    if spec is None:
        raise ReviewError(f"Ukjent felt: {field}")
    cleaned = (value or "").strip() or None
    if spec.kind == "text":
        return cleaned
    if spec.kind == "choice":
        parts = (
            [part.strip() for part in (cleaned or "").split(";") if part.strip()]
            if spec.multiple
            else ([cleaned] if cleaned else [])
        )
        labels = [_option_label(spec, part) for part in parts]
        return flat_value(spec, labels)
    table: dict[str, list[str]] = {row: [] for row in spec.rows}
    for item in (cleaned or "").split(";"):
        if not item.strip():
            continue
        row, _sep, column = item.partition("=")
        row_label = next((r for r in spec.rows if r.casefold() == row.strip().casefold()), None)
        if row_label is None or not column.strip():
            raise ReviewError(f"Ukjent rad i tabellen: «{row.strip()}». Skriv «rad = kolonne; rad = kolonne».")
        table[row_label].append(_option_label(spec, column.strip()))
    return flat_value(spec, table)


def _option_label(spec: FieldSpec, given: str) -> str:
    wanted = given.casefold()
    for option in spec.options:
        if wanted in (option.value.casefold(), option.label.casefold(), option.display.casefold()):
            return option.label
    names = ", ".join(option.display for option in spec.options)
    raise ReviewError(f"«{given}» er ikke et av valgene for «{spec.column}»: {names}.")


def correct_field(session: Session, intake_id: int, field: str, value: str | None, actor: str) -> m.FieldCorrection:
    """Record a correction beside the parsed value (form_results and form_answers are never changed)."""
    record = load_record(session, intake_id)
    if record.form is None:
        raise ReviewError("Posten har ikke noe tolket skjema å korrigere.")
    layout = layout_of(record)
    new_value = normalise_value(field, value, layout)
    corrections = corrections_for(session, intake_id)
    current = (corrected_form(record, corrections) or {}).get(field)
    if current == new_value:
        raise ReviewError("Verdien er uendret.")
    parsed = {**(record.form.data.get("extra_fields") or {}), **record.form.data}.get(field)
    correction = m.FieldCorrection(
        intake_id=record.id,
        field=field,
        parsed_value=parsed,
        corrected_value=new_value,
        corrected_by=actor,
        corrected_at=_now(),
    )
    session.add(correction)
    respondent_type = layout.respondent_type
    if respondent_type is not None and field == respondent_type.key and record.journal_entry is not None:
        # A private person's name is screened in the public journal: keep the flag in step with the form.
        record.journal_entry.correspondent_is_private_person = layout.is_private_person({field: new_value})
    session.flush()
    _audit(
        session,
        actor=actor,
        action="correct_field",
        record=record,
        before={field: current},
        after={field: new_value},
        note=f"tolket verdi: {_shown(parsed)}",
    )
    return correction


def _shown(value: Any) -> str:
    return "–" if value in (None, "", []) else str(value)


def resend_receipt(session: Session, intake_id: int, actor: str) -> m.Receipt:
    """Put the receipt back in the outbox (status pending); the receipts sender picks it up on its next run.

    Failed, bounced and suppressed receipts go through the outbox's own requeue; a sent one (the respondent says it
    never arrived) is reset the same way. The stored text and Message-ID stay, so the same receipt goes out again.
    """
    record = load_record(session, intake_id)
    if record.status != m.REGISTERED:
        raise ReviewError("Kvittering sendes bare for registrerte poster.")
    receipt = record.receipt
    address = (receipt.to_address if receipt else None) or record.sender_address
    if not address:
        raise ReviewError("Posten har ingen avsenderadresse å sende kvittering til.")
    if receipt is not None and receipt.status == outbox.PENDING:
        raise ReviewError("Kvitteringen venter allerede på å bli sendt.")
    before = _receipt_snapshot(receipt)
    now = _now()
    if receipt is None:
        receipt = m.Receipt(intake_id=record.id, status=outbox.PENDING, to_address=address, next_attempt_at=now)
        session.add(receipt)
    elif receipt.status == outbox.SENT:
        receipt.status, receipt.attempts, receipt.next_attempt_at = outbox.PENDING, 0, now
        receipt.reason, receipt.sent_at, receipt.bounced_at = None, None, None
    else:
        try:
            outbox.requeue(session, receipt.id, now, to_address=None if receipt.to_address else address)
        except outbox.ResendRefused as exc:
            raise ReviewError(f"Kvitteringen kan ikke sendes på nytt: {exc}") from None
    session.flush()
    _audit(
        session, actor=actor, action="resend_receipt", record=record, before=before, after=_receipt_snapshot(receipt)
    )
    return receipt


def confirm_form(session: Session, intake_id: int, actor: str, note: str | None = None) -> m.AuditEvent:
    """Staff have checked a form's warnings (and corrected what needed it): it leaves the review queue."""
    record = load_record(session, intake_id)
    if record.form is None:
        raise ReviewError("Posten har ikke noe tolket skjema.")
    if form_checked(session, intake_id):
        raise ReviewError("Skjemaet er allerede kontrollert.")
    return _audit(
        session,
        actor=actor,
        action=FORM_CHECKED,
        record=record,
        before={"warnings": list(record.form.warnings)},
        after={"checked": True},
        note=(note or "").strip() or None,
    )


def record_login(session: Session, *, actor: str, ok: bool, client: str | None) -> None:
    """Logins and failed logins in the audit trail (never the password)."""
    session.add(m.AuditEvent(at=_now(), actor=actor[:128], action="login" if ok else "login_failed", note=client))


def record_access(
    session: Session,
    *,
    actor: str,
    action: str,
    intake_id: int | None = None,
    case_id: int | None = None,
    note: str | None = None,
) -> None:
    """Exports and document downloads in the audit trail (personal data leaving the system)."""
    if case_id is None and intake_id is not None:
        case_id = session.scalar(select(m.IntakeRecord.case_id).where(m.IntakeRecord.id == intake_id))
    session.add(
        m.AuditEvent(at=_now(), actor=actor[:128], action=action, intake_id=intake_id, case_id=case_id, note=note)
    )


# Undo ------------------------------------------------------------------------------------------

UNDOABLE = ("ignore", "correct_field", "register")
UNDO = "undo"
# Review actions on a mail, in the order they happened; only the latest can be undone, and an undo ends the chain.
DECISIONS = (*UNDOABLE, "resend_receipt", FORM_CHECKED, UNDO)
# A registration on a case can be undone for this long after it, and only while it is the latest action on the mail.
REGISTER_UNDO_MINUTES = 15
REGISTRATION_UNDONE = "registration undone"  # the receipt's reason code when an undo cancels it


def _aware(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)


def _undo_target(session: Session, intake_id: int, now: datetime | None = None) -> tuple[m.AuditEvent | None, str]:
    """The review decision an undo would reverse, or None with the Norwegian reason why there is none."""
    decisions = [e for e in history(session, intake_id) if e.action in DECISIONS]
    if not decisions:
        return None, "Det er ingen beslutning å angre på denne posten."
    last = decisions[-1]
    if last.action == UNDO:
        return None, "Den siste beslutningen på denne posten er allerede angret; en angring kan ikke angres."
    if last.action not in UNDOABLE:
        return None, f"Den siste handlingen på posten ({action_label(last.action).lower()}) kan ikke angres."
    if last.action == "register":
        deadline = _aware(last.at) + timedelta(minutes=REGISTER_UNDO_MINUTES)
        if (now or _now()) > deadline:
            return None, (
                f"Registreringen kan bare angres i {REGISTER_UNDO_MINUTES} minutter; fristen gikk ut "
                f"{local_time(deadline)}. Journalposten står."
            )
    return last, ""


def undo_refusal(session: Session, intake_id: int) -> str | None:
    """Why the mail has nothing to undo now (Norwegian), or None when it has."""
    event, refusal = _undo_target(session, intake_id)
    return None if event is not None else refusal


def undo_deadline(event: m.AuditEvent) -> datetime | None:
    """Until when a registration can be undone (None for the decisions that have no time limit)."""
    return _aware(event.at) + timedelta(minutes=REGISTER_UNDO_MINUTES) if event.action == "register" else None


def cancelled_journal_numbers(session: Session, intake_id: int) -> list[str]:
    """Journal numbers this mail once had whose registration was undone (status "Utgår"; never given again): the
    cancelled entries kept, and those named only by the audit trail (undone before entries were kept)."""
    numbers = [
        entry.journal_number
        for entry in session.scalars(
            select(m.CancelledJournalEntry)
            .where(m.CancelledJournalEntry.intake_id == intake_id)
            .order_by(m.CancelledJournalEntry.journal_year, m.CancelledJournalEntry.journal_sequence)
        )
    ]
    for event in history(session, intake_id):
        if event.action == UNDO and isinstance(event.after, dict) and event.after.get("journal_number"):
            number = str(event.after["journal_number"])
            if number not in numbers:
                numbers.append(number)
    return numbers


def last_decision(session: Session, intake_id: int, now: datetime | None = None) -> m.AuditEvent | None:
    """The latest review decision on a mail if it can still be undone: an ignore, a correction, or a registration on
    a case made by staff less than REGISTER_UNDO_MINUTES ago, with no other review action after it and not itself
    undone (an undo is never undone)."""
    return _undo_target(session, intake_id, now)[0]


@dataclass(frozen=True)
class UndoneRegistration:
    """What undoing a registration did with the journal entry and the receipt (for the message to staff)."""

    journal_number: str
    receipt: str  # a key of labels.UNDO_RECEIPT_LABELS
    receipt_to: str | None = None


def _undo_registration(session: Session, record: m.IntakeRecord, event: m.AuditEvent, actor: str) -> UndoneRegistration:
    """Back to the review queue. The journal entry becomes a cancelled entry (Noark journalstatus "Utgår"), which
    the journals keep listing without documents; its number is not reused (the journal sequence and the case's
    document numbers only count up). A receipt still waiting is cancelled; one already sent cannot be."""
    entry = record.journal_entry
    if record.status != m.REGISTERED or entry is None:
        raise ReviewError("Posten er ikke lenger registrert på en sak; ingenting å angre.")
    before = event.before if isinstance(event.before, dict) else {}
    reason = before.get("reason") if before.get("status") == m.NEEDS_REVIEW else None
    journal_number = entry.journal_number
    if not _claim(
        session, record.id, (m.REGISTERED,), status=m.NEEDS_REVIEW, reason=reason, case_id=None, on_time=None
    ):
        raise ReviewError("Posten er allerede behandlet av noen andre.")
    session.add(m.CancelledJournalEntry.of(entry, actor))
    session.delete(entry)
    receipt = record.receipt
    outcome = "none"
    if receipt is not None and receipt.status == outbox.PENDING:
        # The stored text names the cancelled journal number: dropped, so a later registration renders a new one.
        session.execute(
            update(m.Receipt)
            .where(m.Receipt.id == receipt.id, m.Receipt.status == outbox.PENDING)
            .values(
                status=outbox.SUPPRESSED,
                reason=REGISTRATION_UNDONE,
                next_attempt_at=None,
                message_id=None,
                subject=None,
                body=None,
            )
            .execution_options(synchronize_session=False)
        )
        # An attempt already made (a claim counts one) may have reached the sender before it failed or was cut off.
        outcome = "cancelled" if receipt.attempts == 0 else "cancelled_after_attempt"
    elif receipt is not None and receipt.status in (outbox.SENT, outbox.BOUNCED):
        outcome = "sent"
    session.flush()
    session.expire_all()
    return UndoneRegistration(journal_number, outcome, receipt.to_address if receipt is not None else None)


def undo_last(session: Session, intake_id: int, actor: str) -> m.AuditEvent:
    """Undo the latest ignore, correction or (within the window) registration on a mail; the undo is itself in the
    audit trail, with what it did."""
    record = load_record(session, intake_id)
    event, refusal = _undo_target(session, intake_id)
    if event is None:
        raise ReviewError(refusal)
    after: dict[str, Any] = {"undone": event.id}
    note = f"angret: {action_label(event.action).lower()}"
    if event.action == "ignore":
        before = event.before or {}
        status = before.get("status") if before.get("status") in IGNORABLE else m.NEEDS_REVIEW
        if not _claim(session, intake_id, (m.IGNORED,), status=status, reason=before.get("reason")):
            raise ReviewError("Posten er ikke lenger ignorert; ingenting å angre.")
        session.refresh(record)
    elif event.action == "correct_field":
        field, previous = next(iter((event.before or {}).items()), (None, None))
        if field is None:
            raise ReviewError("Korreksjonen kan ikke angres.")
        session.add(
            m.FieldCorrection(
                intake_id=record.id,
                field=field,
                parsed_value=record.form.data.get(field) if record.form else None,
                corrected_value=previous,
                corrected_by=actor,
                corrected_at=_now(),
            )
        )
        respondent_type = layout_of(record).respondent_type
        if respondent_type is not None and field == respondent_type.key and record.journal_entry is not None:
            record.journal_entry.correspondent_is_private_person = layout_of(record).is_private_person(
                {field: previous}
            )
    else:
        case_id = record.case_id
        undone = _undo_registration(session, record, event, actor)
        record = load_record(session, intake_id)
        after.update(
            status=record.status,
            journal_number=undone.journal_number,
            journal_status="utgår",
            receipt_outcome=undone.receipt,
        )
        note = f"angret: registrering på sak; journalpost {undone.journal_number} utgår"
        if undone.receipt != "none":
            note += f"; kvittering til {undone.receipt_to or '–'}: {UNDO_RECEIPT_LABELS[undone.receipt]}"
        session.flush()
        audit = _audit(session, actor=actor, action=UNDO, record=record, before=event.after, after=after, note=note)
        audit.case_id = case_id  # the case the entry was on, so the undo shows in its audit filter
        return audit
    session.flush()
    return _audit(session, actor=actor, action=UNDO, record=record, before=event.after, after=after, note=note)
