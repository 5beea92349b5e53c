"""The receipt outbox: which receipts are due, claiming one for sending, and recording what happened to it.

A receipt is claimed before it is sent: the claim counts the attempt and pushes `next_attempt_at` a claim period
ahead, in its own committed transaction. A worker that dies after the SMTP server accepted the message but before
`mark_sent` committed leaves the receipt pending with that future time, so it is sent again (once) only after the
claim period; a second worker meanwhile cannot pick it up, because the claim is a conditional UPDATE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, or_, select, update
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


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:REASON_LIMIT]


def due_ids(session: Session, now: datetime, limit: int) -> list[int]:
    """Pending receipts whose next attempt is due, oldest first."""
    return list(
        session.scalars(
            select(m.Receipt.id)
            .where(
                m.Receipt.status == PENDING,
                or_(m.Receipt.next_attempt_at.is_(None), m.Receipt.next_attempt_at <= now),
            )
            .order_by(m.Receipt.id)
            .limit(limit)
        )
    )


def claim(session: Session, receipt_id: int, now: datetime, until: datetime) -> bool:
    """Take a due pending receipt for one delivery attempt; False when it is no longer due (another worker has it)."""
    result = session.execute(
        update(m.Receipt)
        .where(
            m.Receipt.id == receipt_id,
            m.Receipt.status == PENDING,
            or_(m.Receipt.next_attempt_at.is_(None), m.Receipt.next_attempt_at <= now),
        )
        .values(attempts=m.Receipt.attempts + 1, next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], result).rowcount == 1  # an UPDATE executes to a CursorResult (with rowcount)


def load_job(session: Session, receipt_id: int) -> ReceiptJob:
    """The receipt with its mail, journal entry, case and file attachments, read as plain columns (three SELECTs,
    no ORM objects: this runs for every receipt sent)."""
    receipt, intake, entry = m.Receipt, m.IntakeRecord, m.JournalEntry
    row = session.execute(
        select(
            receipt.id,
            receipt.attempts,
            receipt.to_address,
            receipt.message_id,
            receipt.subject,
            receipt.body,
            intake.id,
            intake.sender_name,
            intake.status,
            intake.message_id,
            intake.subject,
            intake.received_at,
            intake.on_time,
            intake.case_id,
            entry.id,
            entry.received_at,
            entry.on_time,
            entry.case_id,
            entry.document_number,
        )
        .join(intake, intake.id == receipt.intake_id)
        .outerjoin(entry, entry.intake_id == intake.id)
        .where(receipt.id == receipt_id)
    ).one()
    (
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
    ) = row
    has_entry = entry_id is not None
    case_id = entry_case_id if has_entry else intake_case_id
    case = (
        session.execute(
            select(m.Case.number, m.Case.title, m.Case.deadline, m.Case.timezone, m.Case.year, m.Case.sequence).where(
                m.Case.id == case_id
            )
        ).one_or_none()
        if case_id is not None
        else None
    )
    attachments = tuple(
        AttachmentFact(filename or title, size)
        for filename, title, size in session.execute(
            select(m.Document.filename, m.Document.title, m.Document.size)
            .where(m.Document.intake_id == intake_id, m.Document.kind == "file")
            .order_by(m.Document.number)
        )
    )
    return ReceiptJob(
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
        attachments=attachments,
    )


def store_content(session: Session, receipt_id: int, *, message_id: str, subject: str, body: str) -> None:
    """Keep the rendered receipt and its Message-ID before it is sent, so a retry sends exactly the same mail."""
    session.execute(
        update(m.Receipt)
        .where(m.Receipt.id == receipt_id)
        .values(message_id=message_id, subject=subject, body=body)
        .execution_options(synchronize_session=False)
    )


def stored_message_id(session: Session, receipt_id: int) -> str | None:
    return session.scalar(select(m.Receipt.message_id).where(m.Receipt.id == receipt_id))


def sent_recently(session: Session, address: str, since: datetime, *, excluding: int | None = None) -> int:
    """Receipts handed to the SMTP server for this address (any letter case) since `since`."""
    query = (
        select(func.count())
        .select_from(m.Receipt)
        .where(
            func.lower(m.Receipt.to_address) == address.lower(),
            m.Receipt.sent_at.is_not(None),
            m.Receipt.sent_at >= since,
        )
    )
    if excluding is not None:
        query = query.where(m.Receipt.id != excluding)
    return int(session.scalar(query) or 0)


def mark_sent(session: Session, receipt_id: int, now: datetime, smtp_response: str) -> None:
    session.execute(
        update(m.Receipt)
        .where(m.Receipt.id == receipt_id, m.Receipt.status == PENDING)
        .values(status=SENT, sent_at=now, smtp_response=_clip(smtp_response), reason=None, next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )


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
