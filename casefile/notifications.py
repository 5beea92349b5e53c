"""What the staff digest and alerts say, and the state that makes an alert go out once per incident.

Queries only; the sending is intake.digest. Incidents: "stall" (no successful poll for a while), "failed_mail"
(a mail ended `failed`), "smtp_refused" (the SMTP server refuses or cannot be reached for receipts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postmottak.casefile import models as m
from postmottak.casefile import outbox
from postmottak.casefile.review import review_count

DIGEST = "digest"
INCIDENTS = ("stall", "failed_mail", "smtp_refused")
KEYS = (*INCIDENTS, DIGEST)
SMTP_REASONS = ("refused by the SMTP server", "cannot reach SMTP server", "SMTP login", "no OAuth2 token for SMTP")


@dataclass
class CaseDay:
    number: str
    title: str
    new: int
    on_time: int
    late: int
    total: int


@dataclass
class DigestFacts:
    since: datetime
    cases: list[CaseDay] = field(default_factory=list)
    review_queue: int = 0
    failed_mails: int = 0
    receipts_failed: int = 0
    receipts_bounced: int = 0


def digest_facts(session: Session, since: datetime) -> DigestFacts:
    facts = DigestFacts(since=since)
    for case in session.scalars(select(m.Case).where(m.Case.status == "open").order_by(m.Case.number)):
        registered = (
            select(m.IntakeRecord)
            .where(m.IntakeRecord.case_id == case.id, m.IntakeRecord.status == m.REGISTERED)
            .subquery()
        )
        total = session.scalar(select(func.count()).select_from(registered)) or 0
        new_rows = session.execute(
            select(m.IntakeRecord.on_time, func.count())
            .where(
                m.IntakeRecord.case_id == case.id,
                m.IntakeRecord.status == m.REGISTERED,
                m.IntakeRecord.created_at >= since,
            )
            .group_by(m.IntakeRecord.on_time)
        ).all()
        on_time = sum(n for flag, n in new_rows if flag)
        late = sum(n for flag, n in new_rows if flag is False)
        facts.cases.append(CaseDay(case.number, case.title, on_time + late, on_time, late, total))
    facts.review_queue = review_count(session)
    facts.failed_mails = (
        session.scalar(select(func.count()).select_from(m.IntakeRecord).where(m.IntakeRecord.status == m.FAILED)) or 0
    )
    counts = outbox.counts_by_status(session)
    facts.receipts_failed = counts.get(outbox.FAILED, 0)
    facts.receipts_bounced = counts.get(outbox.BOUNCED, 0)
    return facts


def last_success(session: Session) -> tuple[datetime | None, datetime | None]:
    """(when the first poll on record started, the latest successful poll); None, None when never polled."""
    polled = session.scalar(select(func.count()).select_from(m.MailboxState)) or 0
    if not polled:
        return None, None
    first = session.scalar(select(func.min(m.PollRun.started_at)))
    return first, session.scalar(select(func.max(m.MailboxState.last_success_at)))


def failed_mail_ids(session: Session) -> list[int]:
    return list(
        session.scalars(select(m.IntakeRecord.id).where(m.IntakeRecord.status == m.FAILED).order_by(m.IntakeRecord.id))
    )


def smtp_refusals(session: Session) -> list[tuple[int, str]]:
    """Receipts the SMTP server refused or could not take (failed, or waiting for a retry): (receipt id, reason)."""
    reasons = or_(*[m.Receipt.reason.startswith(prefix) for prefix in SMTP_REASONS])
    rows = session.execute(
        select(m.Receipt.id, m.Receipt.reason)
        .where(m.Receipt.status.in_([outbox.FAILED, outbox.PENDING]), reasons)
        .order_by(m.Receipt.id)
    ).all()
    return [(row.id, row.reason or "") for row in rows]


def ensure_states(session: Session) -> None:
    """A state row for every incident kind and the digest (a worker racing to add the same row: one is kept)."""
    existing = set(session.scalars(select(m.NotificationState.key).where(m.NotificationState.key.in_(KEYS))))
    for key in KEYS:
        if key not in existing:
            try:
                with session.begin_nested():
                    session.add(m.NotificationState(key=key, active=False, seen=0))
            except IntegrityError:
                pass  # another worker added it first


def lock_states(session: Session) -> None:
    """The first statement of a notification round: lock every state row until the round commits.

    Several workers run the round (postmottak run with leases); the one that gets here second waits for the first
    to commit and then reads the state it left, so an incident opens, and its alert and all-clear are sent, exactly
    once (PostgreSQL: row locks; SQLite: the write lock, taken before anything is read)."""
    session.execute(
        update(m.NotificationState)
        .where(m.NotificationState.key.in_(KEYS))
        .values(seen=m.NotificationState.seen)
        .execution_options(synchronize_session=False)
    )


def state(session: Session, key: str) -> m.NotificationState:
    row = session.get(m.NotificationState, key)
    if row is None:
        row = m.NotificationState(key=key, active=False, seen=0)
        session.add(row)
        session.flush()
    return row


def opted_out(session: Session) -> set[str]:
    return set(session.scalars(select(m.NotificationOptOut.username)))


def set_opt_out(session: Session, username: str, out: bool, now: datetime) -> None:
    row = session.get(m.NotificationOptOut, username)
    if out and row is None:
        session.add(m.NotificationOptOut(username=username, at=now))
    elif not out and row is not None:
        session.delete(row)


def due(last: datetime | None, now: datetime, period: timedelta) -> bool:
    return last is None or now - last >= period
