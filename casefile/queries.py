"""Read-side queries: the status summary and the per-record export (JSON, and the base of CSV/XLSX)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from postmottak.casefile import mailboxes
from postmottak.casefile import models as m
from postmottak.casefile.form_values import corrected_form, load_corrections

__all__ = ["corrected_form", "export_records", "iter_records", "status_summary"]


@dataclass
class CaseSummary:
    number: str
    title: str
    deadline: str
    status: str
    registered: int = 0
    on_time: int = 0
    late: int = 0
    deadline_time: str | None = None  # "HH:MM" in the case's timezone; None = the end of the deadline day
    timezone: str = "Europe/Oslo"
    # Registered responses whose form warnings nobody has checked yet (they wait in the review queue).
    to_review: int = 0

    @property
    def deadline_text(self) -> str:
        """dd.mm.yyyy, with " kl. HH:MM" when the deadline has a time of day."""
        day = f"{self.deadline[8:10]}.{self.deadline[5:7]}.{self.deadline[0:4]}"
        return day + (f" kl. {self.deadline_time}" if self.deadline_time else "")


@dataclass
class StatusSummary:
    by_status: dict[str, int]
    cases: list[CaseSummary]
    pending_review: int
    failed: int
    receipts: dict[str, int]
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    retrying: int = 0
    sources: list[dict[str, Any]] = field(default_factory=list)
    # One line per source whose server refused a step after the commit (the move to the processed folder).
    server_problems: list[str] = field(default_factory=list)


def status_summary(session: Session) -> StatusSummary:
    by_status = dict(session.execute(select(m.IntakeRecord.status, func.count()).group_by(m.IntakeRecord.status)).all())
    cases = []
    for case in session.scalars(select(m.Case).order_by(m.Case.number)):
        row = CaseSummary(case.number, case.title, case.deadline.isoformat(), case.status)
        row.timezone = case.timezone
        row.deadline_time = case.deadline_time.strftime("%H:%M") if case.deadline_time is not None else None
        counts = session.execute(
            select(m.IntakeRecord.on_time, func.count())
            .where(m.IntakeRecord.case_id == case.id, m.IntakeRecord.status == m.REGISTERED)
            .group_by(m.IntakeRecord.on_time)
        ).all()
        for on_time, count in counts:
            row.registered += count
            if on_time:
                row.on_time += count
            else:
                row.late += count
        cases.append(row)
    receipts = dict(session.execute(select(m.Receipt.status, func.count()).group_by(m.Receipt.status)).all())
    states = list(session.scalars(select(m.MailboxState)))
    last_poll = max((s.last_poll_at for s in states if s.last_poll_at), default=None)
    last_success = max((s.last_success_at for s in states if s.last_success_at), default=None)
    errors = [s.last_error for s in states if s.last_error]
    retrying = session.scalar(
        select(func.count()).select_from(m.ProcessingFailure).where(m.ProcessingFailure.resolved_at.is_(None))
    )
    return StatusSummary(
        by_status=by_status,
        cases=cases,
        pending_review=by_status.get(m.NEEDS_REVIEW, 0),
        failed=by_status.get(m.FAILED, 0),
        receipts=receipts,
        last_poll_at=last_poll,
        last_success_at=last_success,
        last_error="; ".join(errors) or None,
        retrying=retrying or 0,
        sources=[
            {
                "source": s.source_key,
                "uidvalidity": s.uidvalidity,
                "last_uid": s.last_uid,
                "last_poll_at": s.last_poll_at,
                "last_error": s.last_error,
            }
            for s in states
        ],
        server_problems=[
            f"{p.source_key}: {p.problem} ({p.moves_pending} e-post venter på flytting; registreringen går som normalt)"
            for p in mailboxes.server_problems(session)
        ],
    )


def _local_iso(stamp: datetime | None, tz: str) -> str | None:
    return stamp.astimezone(ZoneInfo(tz)).isoformat() if stamp else None


def receipt_dict(receipt: m.Receipt | None) -> dict[str, Any] | None:
    if receipt is None:
        return None
    return {
        "status": receipt.status,
        "to": receipt.to_address,
        "sent_at": receipt.sent_at.isoformat() if receipt.sent_at else None,
        "reason": receipt.reason,
    }


def iter_records(
    session: Session, *, case_number: str | None = None, tz: str = "Europe/Oslo"
) -> Iterator[m.IntakeRecord]:
    query = (
        select(m.IntakeRecord)
        .options(
            selectinload(m.IntakeRecord.documents),
            selectinload(m.IntakeRecord.case),
            selectinload(m.IntakeRecord.journal_entry).selectinload(m.JournalEntry.case),
            selectinload(m.IntakeRecord.form).selectinload(m.FormResultRow.answers),
            selectinload(m.IntakeRecord.receipt),
        )
        .order_by(m.IntakeRecord.received_at, m.IntakeRecord.id)
    )
    if case_number is not None:
        query = query.join(m.Case, m.Case.id == m.IntakeRecord.case_id).where(m.Case.number == case_number)
    yield from session.scalars(query)


def export_records(
    session: Session, *, case_number: str | None = None, tz: str = "Europe/Oslo"
) -> list[dict[str, Any]]:
    """One object per intake record: the JSON export contract."""
    corrections = load_corrections(session, session.scalars(select(m.FieldCorrection.intake_id).distinct()))
    rows = []
    for record in iter_records(session, case_number=case_number):
        registered = record.status == m.REGISTERED
        case_tz = record.case.timezone if record.case else tz
        rows.append(
            {
                "id": record.id,
                "message_id": record.message_id,
                "received_at": _local_iso(record.received_at, case_tz),
                "sender": record.sender_address,
                "sender_name": record.sender_name,
                "subject": record.subject,
                "status": record.status,
                "reason": record.reason,
                "case_number": record.case.number if registered and record.case else None,
                "on_time": record.on_time if registered else None,
                "journal_number": record.journal_entry.journal_number if record.journal_entry else None,
                "documents": [
                    {
                        "filename": d.filename,
                        "content_type": d.content_type,
                        "size": d.size,
                        "sha256": d.sha256,
                        "role": d.role,
                    }
                    for d in record.documents
                ],
                "form": corrected_form(record, corrections.get(record.id, [])),
                "receipt": receipt_dict(record.receipt),
                "raw_sha256": record.raw_sha256,
                "duplicate_of": record.duplicate_of_id,
            }
        )
    return rows
