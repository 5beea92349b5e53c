"""The staff digest (daily) and alerts (intake stalls, a mail ends failed, SMTP refuses receipts), by e-mail.

Run by the worker's own loop (`postmottak run`, each interval beside the intake cycle; see scheduled_notify; with
leases every worker runs it, intake/fleet.py) or by `postmottak notify` from a timer, through the [smtp] settings, to the addresses in
[notifications] recipients only (staff, never respondents), minus those who opted out in the dashboard. Each
incident is alerted once when it opens, again at most once per `alert_interval_minutes` while it grows, and gets
one all-clear when it is over, however many workers run the round: each round locks the state rows first
(casefile.notifications.lock_states) and commits the new state before sending. All text is Norwegian.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from postmottak.casefile import notifications as notes
from postmottak.casefile.db import Database, WriteConflict
from postmottak.casefile.labels import local_time, reason_text
from postmottak.config.settings import Settings
from postmottak.intake.receipts import CONNECTION_ERRORS, _close, connect

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
OSLO = ZoneInfo("Europe/Oslo")
# What sending may raise that is reported, not crashed on: no connection, or the server refusing.
SEND_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, smtplib.SMTPException)


@dataclass
class Outgoing:
    subject: str
    body: str


@dataclass
class NotifyReport:
    sent: list[str] = field(default_factory=list)  # subjects
    recipients: list[str] = field(default_factory=list)
    error: str | None = None


def _digest(facts: notes.DigestFacts, now: datetime) -> Outgoing:
    lines = [f"Daglig sammendrag fra postmottak, {local_time(now)} (siden {local_time(facts.since)}).", ""]
    for case in facts.cases:
        lines.append(f"Sak {case.number} {case.title}")
        lines.append(
            f"  Nye høringssvar: {case.new} ({case.on_time} i tide, {case.late} for sent); i alt {case.total}."
        )
    if not facts.cases:
        lines.append("Ingen åpne høringer.")
    lines += [
        "",
        f"Til vurdering: {facts.review_queue}",
        f"E-post som feilet: {facts.failed_mails}",
        f"Kvitteringer som feilet: {facts.receipts_failed}",
        f"Kvitteringer som kom i retur: {facts.receipts_bounced}",
        "",
        "Dette er en automatisk melding til ansatte. Du kan slå av e-postvarsler under «Varsler» i postmottak.",
    ]
    return Outgoing(f"Postmottak: daglig sammendrag {local_time(now, '%d.%m.%Y')}", "\n".join(lines))


def _incident(
    session: Session,
    key: str,
    active: bool,
    growth: int,
    text: str,
    cleared: str,
    now: datetime,
    period: timedelta,
) -> Outgoing | None:
    """Once when it opens, again (rate-limited) when it grows, one all-clear when it ends."""
    row = notes.state(session, key)
    if active:
        opening = not row.active
        grown = growth > (row.seen or 0)
        if opening or (grown and notes.due(row.last_sent_at, now, period)):
            row.active, row.last_sent_at, row.detail, row.seen = True, now, text, max(growth, row.seen or 0)
            if opening:
                row.opened_at = now
            return Outgoing(f"Postmottak VARSEL: {text.splitlines()[0]}", text + _footer())
        return None
    if row.active:
        since = local_time(row.opened_at)
        row.active, row.last_sent_at, row.seen = False, now, 0
        return Outgoing(
            f"Postmottak: i orden igjen – {cleared}",
            f"{cleared} (varslet første gang {since}).\n\nForrige varsel:\n{row.detail or ''}" + _footer(),
        )
    return None


def _footer() -> str:
    return "\n\nDette er en automatisk melding til ansatte i postmottaket."


def collect(settings: Settings, db: Database, now: datetime) -> tuple[list[Outgoing], list[str]]:
    """What is due now, with the state already moved on (committed only after sending, see notify)."""
    config = settings.notifications
    period = timedelta(minutes=config.alert_interval_minutes)
    out: list[Outgoing] = []
    try:
        with db.session() as session:
            notes.ensure_states(session)
    except WriteConflict:  # another worker added the rows at the same moment: they are there
        pass
    with db.session() as session:
        notes.lock_states(session)  # one round at a time across workers: each alert goes out once
        opted_out = notes.opted_out(session)
        recipients = [address for user, address in sorted(config.recipients.items()) if user not in opted_out]
        first_poll, success = notes.last_success(session)
        # Never a success: stalled once the first poll is older than the limit (not while it is still running).
        since_ok = success or first_poll
        stalled = since_ok is not None and now - since_ok > timedelta(minutes=config.stall_minutes)
        stall_text = (
            f"innhentingen står stille: ingen vellykket henting siden {local_time(success)}"
            if success
            else "innhentingen har aldri hentet e-post"
        ) + f" (grense {config.stall_minutes} minutter)."
        item = _incident(
            session,
            "stall",
            stalled,
            1 if stalled else 0,
            stall_text[0].upper() + stall_text[1:],
            "innhentingen henter e-post igjen",
            now,
            period,
        )
        out += [item] if item else []
        failed = notes.failed_mail_ids(session)
        failed_text = f"{len(failed)} e-post(er) feilet i behandlingen: post " + ", ".join(map(str, failed[:20]))
        item = _incident(
            session,
            "failed_mail",
            bool(failed),
            max(failed, default=0),
            failed_text,
            "ingen e-post står som feilet",
            now,
            period,
        )
        out += [item] if item else []
        refusals = notes.smtp_refusals(session)
        refusal_text = f"E-posttjeneren avviser eller svarer ikke for {len(refusals)} kvittering(er): " + (
            reason_text(refusals[0][1]) if refusals else ""
        )
        item = _incident(
            session,
            "smtp_refused",
            bool(refusals),
            max((r[0] for r in refusals), default=0),
            refusal_text,
            "kvitteringene går gjennom igjen",
            now,
            period,
        )
        out += [item] if item else []
        if config.digest:
            row = notes.state(session, notes.DIGEST)
            local_now = now.astimezone(OSLO)
            today_at = local_now.replace(hour=config.digest_hour, minute=0, second=0, microsecond=0)
            if local_now >= today_at and (row.last_sent_at is None or row.last_sent_at < today_at):
                since = row.last_sent_at or (now - timedelta(days=1))
                out.append(_digest(notes.digest_facts(session, since), now))
                row.last_sent_at = now
        if out and not recipients:
            session.rollback()  # nobody to tell: keep the incidents open for when someone is configured
            return [], []
        if out and not settings.smtp.configured:
            session.rollback()
            return [], []
    return out, recipients


def _message(settings: Settings, to: str, item: Outgoing, now: datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp.sender
    message["To"] = to
    message["Subject"] = item.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("varsel", domain=settings.smtp.sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(item.body)
    return message


def notify(settings: Settings, db: Database, now: datetime | None = None) -> NotifyReport:
    """Send what is due. The state is committed before sending (an alert is never sent twice); a send that fails
    is logged and reported."""
    now = now or datetime.now(timezone.utc)
    report = NotifyReport()
    items, recipients = collect(settings, db, now)
    if not items:
        return report
    report.recipients = recipients
    connection = None
    try:
        connection = connect(settings.smtp)
        for item in items:
            for address in recipients:
                connection.send_message(_message(settings, address, item, now), from_addr=settings.smtp.sender)
            report.sent.append(item.subject)
    except SEND_ERRORS as exc:
        report.error = f"{type(exc).__name__}: {exc}"
        log.error("notifications: could not send (%s)", report.error)
    finally:
        _close(connection)
    return report


def scheduled_notify(settings: Settings, db: Database) -> Callable[[], NotifyReport] | None:
    """For `postmottak run`: notify() as a job of the worker's scheduler, or None when nobody is to be told or no
    SMTP server is configured. The job runs beside the intake cycle (in the scheduler's thread pool), so a slow or
    refusing SMTP server never delays or stops registration; a send that fails is logged, as with the timer."""
    if not settings.notifications.recipients or not settings.smtp.configured:
        return None

    def job() -> NotifyReport:
        report = notify(settings, db)
        for subject in report.sent:
            log.info("notifications: sent %r to %d staff address(es)", subject, len(report.recipients))
        return report

    return job
