"""The receipt outbox: which receipts are due, claiming one for sending, and recording what happened to it.

A receipt is claimed before it is sent: the claim counts the attempt and pushes `next_attempt_at` a claim period
ahead, committed before the message is sent. A worker that dies after the SMTP server accepted the message but before
`mark_sent` committed leaves the receipt pending with that future time, so it is sent again (once) only after the
claim period; a second worker meanwhile cannot pick it up, because the claim is a conditional UPDATE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Integer, Table, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from postmottak.casefile import models as m

PENDING, SENT, FAILED, SUPPRESSED, BOUNCED = "pending", "sent", "failed", "suppressed", "bounced"
REASON_LIMIT = 4000


@dataclass(frozen=True)
class AttachmentFact:
    name: str
    size: int


@dataclass(frozen=True)
class ReceiptJob:
    """Everything needed to build and send one claimed receipt (no ORM objects leave the session)."""

    receipt_id: int
    intake_id: int
    attempts: int
    to_address: str | None
    to_name: str | None
    message_id: str | None  # ours, once assigned
    subject: str | None  # rendered text, once stored (a resend sends the same text)
    body: str | None
    registered: bool
    original_message_id: str | None
    original_subject: str
    received_at: datetime
    on_time: bool
    case_number: str | None
    case_title: str
    deadline: date | None
    case_timezone: str
    journal_number: str | None
    attachments: tuple[AttachmentFact, ...]
    entry_id: int | None  # the journal entry the text is rendered for


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:REASON_LIMIT]


# The statements run for every receipt sent (and every pass), built once as Core statements on the tables: no ORM statement to
# construct, compile-cache key and execute per receipt (bind parameter names must differ from column names).
_receipts = cast(Table, m.Receipt.__table__)
_intakes = cast(Table, m.IntakeRecord.__table__)
_entries = cast(Table, m.JournalEntry.__table__)
_cases = cast(Table, m.Case.__table__)
_documents = cast(Table, m.Document.__table__)
_due = or_(_receipts.c.next_attempt_at.is_(None), _receipts.c.next_attempt_at <= bindparam("b_now"))

_DUE_IDS = (
    select(_receipts.c.id)
    .where(_receipts.c.status == PENDING, _due)
    .order_by(_receipts.c.id)
    .limit(bindparam("b_limit", type_=Integer))
)
_CLAIM = (
    update(_receipts)
    .where(_receipts.c.id == bindparam("b_id"), _receipts.c.status == PENDING, _due)
    .values(attempts=_receipts.c.attempts + 1, next_attempt_at=bindparam("b_until"))
)
_JOBS = (
    select(
        _receipts.c.id,
        _receipts.c.attempts,
        _receipts.c.to_address,
        _receipts.c.message_id,
        _receipts.c.subject,
        _receipts.c.body,
        _intakes.c.id,
        _intakes.c.sender_name,
        _intakes.c.status,
        _intakes.c.message_id,
        _intakes.c.subject,
        _intakes.c.received_at,
        _intakes.c.on_time,
        _intakes.c.case_id,
        _entries.c.id,
        _entries.c.received_at,
        _entries.c.on_time,
        _entries.c.case_id,
        _entries.c.document_number,
    )
    .join(_intakes, _intakes.c.id == _receipts.c.intake_id)
    .outerjoin(_entries, _entries.c.intake_id == _intakes.c.id)
    .where(_receipts.c.id.in_(bindparam("b_ids", expanding=True)))
)
_CASES = select(
    _cases.c.id, _cases.c.number, _cases.c.title, _cases.c.deadline, _cases.c.timezone, _cases.c.year, _cases.c.sequence
).where(_cases.c.id.in_(bindparam("b_ids", expanding=True)))
_ATTACHMENTS = (
    select(_documents.c.intake_id, _documents.c.filename, _documents.c.title, _documents.c.size)
    .where(_documents.c.intake_id.in_(bindparam("b_ids", expanding=True)), _documents.c.kind == "file")
    .order_by(_documents.c.intake_id, _documents.c.number)
)
_STATE = (
    select(_receipts.c.attempts, _receipts.c.to_address, _receipts.c.message_id, _entries.c.id)
    .outerjoin(_entries, _entries.c.intake_id == _receipts.c.intake_id)
    .where(_receipts.c.id == bindparam("b_id"))
)
_STORE_CONTENT = (
    update(_receipts)
    .where(_receipts.c.id == bindparam("b_id"))
    .values(message_id=bindparam("b_message_id"), subject=bindparam("b_subject"), body=bindparam("b_body"))
)
_SENT_RECENTLY = (
    select(func.count())
    .select_from(_receipts)
    .where(
        func.lower(_receipts.c.to_address) == bindparam("b_address"),
        _receipts.c.sent_at.is_not(None),
        _receipts.c.sent_at >= bindparam("b_since"),
    )
)
_SENT_RECENTLY_EXCLUDING = _SENT_RECENTLY.where(_receipts.c.id != bindparam("b_excluding"))
_MARK_SENT = (
    update(_receipts)
    .where(_receipts.c.id == bindparam("b_id"), _receipts.c.status == PENDING)
    .values(
        status=SENT,
        sent_at=bindparam("b_now"),
        smtp_response=bindparam("b_response"),
        reason=None,
        next_attempt_at=None,
    )
)


def due_ids(session: Session, now: datetime, limit: int) -> list[int]:
    """Pending receipts whose next attempt is due, oldest first."""
    return list(session.scalars(_DUE_IDS, {"b_now": now, "b_limit": limit}))


def claim(session: Session, receipt_id: int, now: datetime, until: datetime) -> bool:
    """Take a due pending receipt for one delivery attempt; False when it is no longer due (another worker has it)."""
    result = session.execute(_CLAIM, {"b_id": receipt_id, "b_now": now, "b_until": until})
    return cast(CursorResult[Any], result).rowcount == 1  # an UPDATE executes to a CursorResult (with rowcount)


def load_job(session: Session, receipt_id: int) -> ReceiptJob:
    return load_jobs(session, [receipt_id])[receipt_id]


def load_jobs(session: Session, receipt_ids: list[int]) -> dict[int, ReceiptJob]:
    """The receipts with their mails, journal entries, cases and file attachments, read as plain columns: three
    SELECTs for the whole list, no ORM objects. A receipt that does not exist is left out."""
    rows = session.execute(_JOBS, {"b_ids": list(receipt_ids)}).all()
    case_ids = {row[17] if row[14] is not None else row[13] for row in rows} - {None}
    cases = {row[0]: row for row in session.execute(_CASES, {"b_ids": list(case_ids)})} if case_ids else {}
    attachments: dict[int, list[AttachmentFact]] = {}
    if rows:
        for intake_id, filename, title, size in session.execute(_ATTACHMENTS, {"b_ids": [row[6] for row in rows]}):
            attachments.setdefault(intake_id, []).append(AttachmentFact(filename or title, size))
    jobs = {}
    for (
        job_id,
        attempts,
        to_address,
        message_id,
        subject,
        body,
        intake_id,
        sender_name,
        status,
        original_message_id,
        original_subject,
        intake_received_at,
        intake_on_time,
        intake_case_id,
        entry_id,
        entry_received_at,
        entry_on_time,
        entry_case_id,
        document_number,
    ) in rows:
        has_entry = entry_id is not None
        case = cases.get(entry_case_id if has_entry else intake_case_id)
        jobs[job_id] = ReceiptJob(
            receipt_id=job_id,
            intake_id=intake_id,
            attempts=attempts,
            to_address=to_address,
            to_name=sender_name,
            message_id=message_id,
            subject=subject,
            body=body,
            registered=status == m.REGISTERED and has_entry,
            original_message_id=original_message_id,
            original_subject=original_subject or "",
            received_at=entry_received_at if has_entry else intake_received_at,
            on_time=bool(entry_on_time if has_entry else intake_on_time),
            case_number=case.number if case is not None else None,
            case_title=case.title if case is not None else "",
            deadline=case.deadline if case is not None else None,
            case_timezone=case.timezone if case is not None else "Europe/Oslo",
            journal_number=f"{case.year}/{case.sequence}-{document_number}" if has_entry and case is not None else None,
            attachments=tuple(attachments.get(intake_id, ())),
            entry_id=entry_id,
        )
    return jobs


def unchanged_since_loaded(session: Session, job: ReceiptJob) -> bool:
    """Right after this worker's `claim` of `job`: the receipt is still as `job` read it, so the message built from
    it is the one to send. Not so when another attempt was counted or stored its text meanwhile (a retry must send
    that text and Message-ID), the address was corrected, or the registration was undone and done again."""
    row = session.execute(_STATE, {"b_id": job.receipt_id}).one_or_none()
    return row is not None and tuple(row) == (job.attempts + 1, job.to_address, job.message_id, job.entry_id)


def store_content(session: Session, receipt_id: int, *, message_id: str, subject: str, body: str) -> None:
    """Keep the rendered receipt and its Message-ID before it is sent, so a retry sends exactly the same mail."""
    session.execute(
        _STORE_CONTENT, {"b_id": receipt_id, "b_message_id": message_id, "b_subject": subject, "b_body": body}
    )


def sent_recently(session: Session, address: str, since: datetime, *, excluding: int | None = None) -> int:
    """Receipts handed to the SMTP server for this address (any letter case) since `since`."""
    params = {"b_address": address.lower(), "b_since": since}
    if excluding is None:
        return int(session.scalar(_SENT_RECENTLY, params) or 0)
    return int(session.scalar(_SENT_RECENTLY_EXCLUDING, {**params, "b_excluding": excluding}) or 0)


def mark_sent(session: Session, receipt_id: int, now: datetime, smtp_response: str) -> None:
    session.execute(_MARK_SENT, {"b_id": receipt_id, "b_now": now, "b_response": _clip(smtp_response)})


def mark_failed(session: Session, receipt_id: int, reason: str, smtp_response: str | None = None) -> None:
    values: dict[str, Any] = {"status": FAILED, "reason": _clip(reason), "next_attempt_at": None}
    if smtp_response is not None:
        values["smtp_response"] = _clip(smtp_response)
    session.execute(
        update(m.Receipt)
        .where(m.Receipt.id == receipt_id, m.Receipt.status == PENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def mark_suppressed(session: Session, receipt_id: int, reason: str) -> None:
    session.execute(
        update(m.Receipt)
        .where(m.Receipt.id == receipt_id, m.Receipt.status == PENDING)
        .values(status=SUPPRESSED, reason=_clip(reason), next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )


def schedule_retry(
    session: Session,
    receipt_id: int,
    *,
    now: datetime,
    reason: str,
    smtp_response: str | None,
    base_seconds: float,
    max_delay_seconds: float,
    max_attempts: int,
    count_attempt: bool,
) -> str:
    """After a temporary failure: try again later with exponential backoff, or give up after `max_attempts`.

    `count_attempt` is False when the attempt was already counted by `claim`. Returns "retry" or "failed".
    """
    attempts = session.scalar(select(m.Receipt.attempts).where(m.Receipt.id == receipt_id, m.Receipt.status == PENDING))
    if attempts is None:
        return "gone"
    if count_attempt:
        attempts += 1
    if attempts >= max_attempts:
        session.execute(
            update(m.Receipt)
            .where(m.Receipt.id == receipt_id, m.Receipt.status == PENDING)
            .values(
                status=FAILED,
                attempts=attempts,
                next_attempt_at=None,
                reason=_clip(f"gave up after {attempts} attempts; last error: {reason}"),
                smtp_response=_clip(smtp_response),
            )
            .execution_options(synchronize_session=False)
        )
        return "failed"
    delay = min(base_seconds * (2 ** (attempts - 1)), max_delay_seconds)
    session.execute(
        update(m.Receipt)
        .where(m.Receipt.id == receipt_id, m.Receipt.status == PENDING)
        .values(
            attempts=attempts,
            next_attempt_at=now + timedelta(seconds=delay),
            reason=_clip(f"temporary failure (attempt {attempts} of {max_attempts}): {reason}"),
            smtp_response=_clip(smtp_response),
        )
        .execution_options(synchronize_session=False)
    )
    return "retry"


def normalise_message_id(value: str) -> str:
    return value.strip().strip("<>").strip().lower()


def find_by_message_id(session: Session, message_id: str) -> int | None:
    return session.scalar(select(m.Receipt.id).where(m.Receipt.message_id == normalise_message_id(message_id)))


def link_bounce(session: Session, message_id: str, bounce_intake_id: int, now: datetime, reason: str) -> int | None:
    """Mark the receipt with this Message-ID `bounced`, linked to the intake record of the bounce. Returns its id."""
    receipt_id = find_by_message_id(session, message_id)
    if receipt_id is None:
        return None
    session.execute(
        update(m.Receipt)
        .where(m.Receipt.id == receipt_id)
        .values(
            status=BOUNCED,
            bounced_at=now,
            bounce_intake_id=bounce_intake_id,
            reason=_clip(reason),
            next_attempt_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return receipt_id


def is_unanswered_machine_mail(session: Session, intake_id: int) -> bool:
    """The intake record is an original (not a duplicate) judged machine-made or ignored: a bounce candidate."""
    row = session.execute(
        select(m.IntakeRecord.status, m.IntakeRecord.machine_reason).where(m.IntakeRecord.id == intake_id)
    ).first()
    if row is None or row.status == m.DUPLICATE:
        return False
    return row.machine_reason is not None or row.status == m.IGNORED


class ResendRefused(Exception):
    """A receipt that cannot be queued again; the message says why."""


def requeue(session: Session, receipt_id: int, now: datetime, to_address: str | None = None) -> None:
    """Staff asked to send a failed, bounced or suppressed receipt again (optionally to a corrected address)."""
    receipt = session.get(m.Receipt, receipt_id)
    if receipt is None:
        raise ResendRefused(f"no receipt #{receipt_id}")
    if receipt.status not in (FAILED, BOUNCED, SUPPRESSED):
        raise ResendRefused(
            f"receipt #{receipt_id} is {receipt.status}; only failed, bounced or suppressed ones can be resent"
        )
    intake = session.get(m.IntakeRecord, receipt.intake_id)
    if intake is None or intake.status != m.REGISTERED:
        raise ResendRefused(f"receipt #{receipt_id} belongs to a mail that is not registered")
    if to_address:
        receipt.to_address = to_address
    if not receipt.to_address:
        raise ResendRefused(f"receipt #{receipt_id} has no recipient address")
    receipt.status = PENDING
    receipt.attempts = 0
    receipt.next_attempt_at = now
    receipt.reason = None
    receipt.sent_at = None
    receipt.bounced_at = None
    session.flush()


@dataclass(frozen=True)
class ReceiptRow:
    id: int
    intake_id: int
    status: str
    to_address: str | None
    reason: str | None
    attempts: int
    sent_at: datetime | None
    next_attempt_at: datetime | None
    smtp_response: str | None
    message_id: str | None


def list_receipts(session: Session, status: str | None = None, limit: int = 100) -> list[ReceiptRow]:
    query = select(m.Receipt).order_by(m.Receipt.id.desc()).limit(limit)
    if status:
        query = query.where(m.Receipt.status == status)
    return [
        ReceiptRow(
            r.id,
            r.intake_id,
            r.status,
            r.to_address,
            r.reason,
            r.attempts,
            r.sent_at,
            r.next_attempt_at,
            r.smtp_response,
            r.message_id,
        )
        for r in session.scalars(query)
    ]


def counts_by_status(session: Session) -> dict[str, int]:
    return {
        status: int(count)
        for status, count in session.execute(select(m.Receipt.status, func.count()).group_by(m.Receipt.status))
    }
