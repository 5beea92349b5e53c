"""Sending the pending receipts over SMTP: part of every worker cycle and of `postmottak receipts send`.

Each receipt is claimed (attempt counted, committed) before it is sent and marked sent right after the server
accepted it, so a crash in between resends that one receipt once at most (after the claim period); nothing else is
ever sent twice. The `sent` mark commits in the transaction that claims the next receipt (or on its own when no
next one follows at once): one commit per receipt. The next receipt is read and built while this one is sent, so
that commit follows the server's acceptance with nothing but a few short statements in between. Temporary failures
(4xx replies, connection problems) are retried with exponential backoff up to `[receipts] max_attempts`; permanent
ones (5xx, an address that cannot be used) make the receipt `failed` with the reason. The per-recipient rate limit
is checked last, right before sending, after the previous receipt's `sent` is written.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from postmottak.casefile import outbox
from postmottak.casefile.clock import utc_now as _now
from postmottak.casefile.db import Database
from postmottak.casefile.outbox import ReceiptJob
from postmottak.config.settings import Settings, SmtpSettings
from postmottak.intake.oauth2 import OAuth2Error, TokenClient, explain, smtp_login, token_client
from postmottak.intake.receipt_message import (
    RECEIPT_MESSAGE_ID_PREFIX,
    ReceiptFacts,
    ReceiptTemplate,
    UnsendableAddress,
    build_message,
    new_message_id,
    prepare_address,
    receipt_subject,
    render_body,
    sanitise_text,
)
from postmottak.intake.receipt_policy import automatic_address_reason
from postmottak.parsers.envelope import Envelope

log = logging.getLogger(__name__)

# Stage hook for crash tests: called as checkpoint(stage, receipt_id) with "claimed" and "accepted".
Checkpoint = Callable[[str, int], None]

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, timeouts, TLS errors (ssl.SSLError is an OSError)
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    smtplib.SMTPHeloError,
    smtplib.SMTPAuthenticationError,
    smtplib.SMTPNotSupportedError,
    OAuth2Error,  # no token now (token endpoint refused or unreachable): retried like a server problem
)


class SmtpReply(Exception):
    """The server refused one step of a mail transaction."""

    def __init__(self, stage: str, code: int, text: str) -> None:
        super().__init__(f"{stage}: {code} {text}")
        self.stage, self.code, self.text = stage, code, text

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600

    @property
    def reply(self) -> str:
        return f"{self.code} {self.text}"


def _decode(reply: bytes | str) -> str:
    text = reply.decode("utf-8", errors="replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


# ------------------------------------------------------------------------------------------ SMTP connection


def tls_context(smtp: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not smtp.verify_tls:
        log.warning(
            "TLS certificate verification is OFF for the SMTP server %s ([smtp] verify_tls = false); "
            "receipts could be sent to an impostor",
            smtp.host,
        )
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def connect(smtp: SmtpSettings, tokens: TokenClient | None = None) -> smtplib.SMTP:
    """An open, greeted (and if configured, encrypted and authenticated) SMTP connection.

    With `[smtp] auth = "oauth2"` it authenticates with XOAUTH2 using a token from `tokens`."""
    timeout = smtp.timeout_seconds
    connection: smtplib.SMTP
    if smtp.security == "ssl":
        connection = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=tls_context(smtp))
    else:
        connection = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
    try:
        connection.ehlo()
        if smtp.security == "starttls":
            if not connection.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError("the SMTP server does not offer STARTTLS ([smtp] security)")
            connection.starttls(context=tls_context(smtp))
            connection.ehlo()
        if smtp.username:
            if smtp.security == "none" and smtp.host not in ("127.0.0.1", "::1", "localhost"):
                log.warning("SMTP AUTH over an unencrypted connection to %s ([smtp] security = none)", smtp.host)
            if smtp.auth == "oauth2":
                smtp_login(connection, smtp.username, tokens or _missing_tokens())
            else:
                connection.login(smtp.username, smtp.password.get_secret_value())
    except BaseException:
        _close(connection)
        raise
    return connection


def _missing_tokens() -> TokenClient:
    raise OAuth2Error('[smtp] auth = "oauth2" but no token client was given', kind="config")


def _close(connection: smtplib.SMTP | None) -> None:
    if connection is None:
        return
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        connection.close()


def _describe(exc: BaseException, smtp: SmtpSettings) -> str:
    where = f"{smtp.host}:{smtp.port}"
    if isinstance(exc, OAuth2Error):
        return f"no OAuth2 token for SMTP {where}: {exc} ({explain(exc)})"
    if isinstance(exc, smtplib.SMTPAuthenticationError) and smtp.auth == "oauth2":
        return (
            f"SMTP XOAUTH2 login to {where} refused ({exc.smtp_code}) also with a fresh token; check [smtp] "
            "username (the sending mailbox) and the app's SMTP permission (Exchange: SMTP.SendAsApp)"
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"SMTP login to {where} refused ({exc.smtp_code}); check [smtp] username/password"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate of {where} not trusted: {exc.verify_message}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{where}: {exc.smtp_code} {_decode(exc.smtp_error)}"
    text = str(exc) or type(exc).__name__
    return f"cannot reach SMTP server {where}: {text}"


def transact(connection: smtplib.SMTP, envelope_from: str, recipient: str, data: bytes, options: list[str]) -> str:
    """One mail transaction (MAIL, RCPT, DATA); returns the server's final reply, raises SmtpReply on refusal."""
    code, reply = connection.mail(envelope_from, options)
    if code != 250:
        _reset(connection, code)
        raise SmtpReply("MAIL FROM", code, _decode(reply))
    code, reply = connection.rcpt(recipient)
    if code not in (250, 251):
        _reset(connection, code)
        raise SmtpReply("RCPT TO", code, _decode(reply))
    code, reply = connection.data(data)
    if code != 250:
        _reset(connection, code)
        raise SmtpReply("DATA", code, _decode(reply))
    return f"{code} {_decode(reply)}"


def _reset(connection: smtplib.SMTP, code: int) -> None:
    if code == 421:
        connection.close()
        return
    try:
        connection.rset()
    except (smtplib.SMTPException, OSError):
        connection.close()


def _alive(connection: smtplib.SMTP | None) -> bool:
    return connection is not None and connection.sock is not None


# ------------------------------------------------------------------------------------------ sending


@dataclass
class _Plan:
    """One receipt's message as built before the claim, or the reason it is not sent."""

    job: ReceiptJob
    connection: smtplib.SMTP | None  # the connection whose extensions (SMTPUTF8, 8BITMIME) it was built for

    refusal: str | None = None  # not to be sent at all (not registered, unusable address)
    suppression: str | None = None  # never answered: an automatic address (MAILER-DAEMON, noreply, ...)
    unsendable: bool = False
    recipient: Any = None
    data: bytes = b""
    options: list[str] = field(default_factory=list)
    content: tuple[str, str, str] | None = None  # (Message-ID, subject, body) rendered now, stored with the claim
    build_error: Exception | None = None


@dataclass
class _Sender:
    settings: Settings
    db: Database
    template: ReceiptTemplate
    checkpoint: Checkpoint
    counts: Counter[str]
    envelope_from: str
    connection: smtplib.SMTP | None = None
    tokens: TokenClient | None = None
    # A receipt the server accepted, marked sent in the next transaction: (receipt id, time, server reply).
    accepted: list[tuple[int, datetime, str]] = field(default_factory=list)
    # Read ahead for this pass (checked again after the claim), and the next receipt's message built ahead.
    jobs: dict[int, ReceiptJob] = field(default_factory=dict)
    ready: dict[int, _Plan] = field(default_factory=dict)

    @property
    def smtp(self) -> SmtpSettings:
        return self.settings.smtp

    _marked: bool = False  # the accepted receipts are written in the current transaction

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction that also records the receipt accepted last (so it commits before anything is sent)."""
        self._marked = False
        with self.db.session() as session:
            yield session
            self.mark_accepted(session)
        self.accepted.clear()

    def mark_accepted(self, session: Session) -> None:
        """Write the accepted receipts' `sent` in this transaction (before a claim: the rate limit counts them)."""
        if not self._marked:
            for receipt_id, sent_at, reply in self.accepted:
                outbox.mark_sent(session, receipt_id, sent_at, reply)
            self._marked = True

    def flush(self) -> None:
        if self.accepted:
            with self.session():
                pass

    READ_AHEAD = 20  # receipts whose jobs are read with one set of SELECTs

    def run(self, due: list[int]) -> None:
        self.jobs.clear()
        self.ready.clear()
        for index in range(len(due)):
            if not _alive(self.connection):
                self.flush()  # the last receipt's `sent` does not wait for a connection
                try:
                    self.connection = connect(self.smtp, self.tokens)
                except CONNECTION_ERRORS as exc:
                    reason = _describe(exc, self.smtp)
                    log.warning("receipts: %s; %d receipt(s) wait for a retry", reason, len(due) - index)
                    self._server_unavailable(due[index:], reason)
                    return
            self.one(due, index)

    def _server_unavailable(self, ids: list[int], reason: str) -> None:
        now = _now()
        config = self.settings.receipts
        with self.session() as session:
            for receipt_id in ids:
                result = outbox.schedule_retry(
                    session,
                    receipt_id,
                    now=now,
                    reason=reason,
                    smtp_response=None,
                    base_seconds=config.retry_base_seconds,
                    max_delay_seconds=config.retry_max_seconds,
                    max_attempts=config.max_attempts,
                    count_attempt=True,
                )
                self.counts[result] += 1

    def one(self, due: list[int], index: int) -> None:
        receipt_id = due[index]
        config = self.settings.receipts
        plan = self.ready.pop(receipt_id, None)
        if plan is None or plan.connection is not self.connection:
            self.flush()  # not built ahead: the last receipt's `sent` does not wait for this one's reading and building
            plan = self._prepare(due, index)
            if plan is None:
                return  # no such receipt
        job = plan.job
        now = _now()
        with self.session() as session:
            # The previous receipt's `sent` first (mark_accepted), then the claim: SQLite takes its write lock at the
            # first write, so the intake running alongside waits for a few short writes, not for any rendering.
            self.mark_accepted(session)
            if not outbox.claim(session, receipt_id, now, now + timedelta(seconds=config.claim_seconds)):
                return  # another worker took it, or it is no longer pending
            if not outbox.unchanged_since_loaded(session, job):  # e.g. another attempt stored its text meanwhile
                job = outbox.load_job(session, receipt_id)
                plan = self._plan(job, now)
            prepared = self._apply(session, job, plan, now)
        if prepared is None:
            return
        self.checkpoint("claimed", receipt_id)
        self._prepare_ahead(due, index + 1)
        recipient, data, options = prepared
        assert self.connection is not None
        try:
            reply = transact(self.connection, self.envelope_from, recipient.smtp, data, options)
        except SmtpReply as refusal:
            self._refused(job, refusal)
            return
        except CONNECTION_ERRORS as exc:
            _close(self.connection)
            self.connection = None
            self._retry(job, _describe(exc, self.smtp), None)
            return
        self.checkpoint("accepted", receipt_id)
        # Written with the next claim (mark_accepted), or by flush when there is none.
        self.accepted.append((receipt_id, _now(), reply))
        self.counts["sent"] += 1
        log.info("receipt #%d sent (intake #%d): %s", receipt_id, job.intake_id, reply)

    def _prepare(self, due: list[int], index: int) -> _Plan | None:
        """The receipt's job (read with the next few) and its message as of now; reads only, nothing written."""
        receipt_id = due[index]
        if receipt_id not in self.jobs:
            with self.db.session() as session:
                self.jobs.update(outbox.load_jobs(session, due[index : index + self.READ_AHEAD]))
        job = self.jobs.pop(receipt_id, None)
        return None if job is None else self._plan(job, _now())

    def _prepare_ahead(self, due: list[int], index: int) -> None:
        """Read and build the next receipt while this one is sent, so its claim can carry this one's `sent` at once.
        Only a head start: what fails here is done again, and fails where it belongs, at that receipt's turn."""
        if index >= len(due):
            return
        try:
            plan = self._prepare(due, index)
        except Exception:  # done again at the receipt's turn, where its error is raised
            return
        if plan is not None:
            self.ready[due[index]] = plan

    def _plan(self, job: ReceiptJob, now: datetime) -> "_Plan":
        """The message for the current connection, or why there is none: CPU only, nothing read or written."""
        connection = self.connection
        if not job.registered or job.case_number is None or job.journal_number is None:
            return _Plan(job, connection, refusal="the mail is not registered to a case; no receipt is sent")
        automatic = automatic_address_reason(job.to_address or "")
        if automatic:
            # The last guard, whatever queued the receipt (a hand registration, a resend): no machine gets one.
            return _Plan(job, connection, suppression=automatic)
        smtputf8 = connection is not None and connection.has_extn("smtputf8")
        try:
            recipient = prepare_address(job.to_address, smtputf8_offered=smtputf8)
            sender = prepare_address(self.smtp.sender, smtputf8_offered=smtputf8)
        except UnsendableAddress as exc:
            return _Plan(job, connection, refusal=str(exc), unsendable=True)
        message_id, subject, body = job.message_id, job.subject, job.body
        content = None
        if message_id is None or subject is None or body is None:
            message_id = message_id or new_message_id(job.receipt_id, self.smtp.sender)
            subject = receipt_subject(job.case_number)
            body = render_body(self.template, self._facts(job))
            content = (message_id, subject, body)
        use_utf8 = recipient.needs_smtputf8 or sender.needs_smtputf8
        try:
            data = build_message(
                sender=sender,
                sender_name=self.smtp.sender_name,
                recipient=recipient,
                recipient_name=job.to_name,
                subject=subject,
                body=body,
                message_id=message_id,
                in_reply_to=job.original_message_id,
                date=now,
                smtputf8=use_utf8,
            )
        except (ValueError, TypeError, LookupError) as exc:  # a value the email package refuses
            return _Plan(job, connection, recipient=recipient, content=content, build_error=exc)
        options: list[str] = []
        if use_utf8:
            options.append("SMTPUTF8")
        if connection is not None and connection.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        return _Plan(job, connection, recipient=recipient, data=data, options=options, content=content)

    def _apply(self, session, job: ReceiptJob, plan: "_Plan", now: datetime):  # type: ignore[no-untyped-def]
        """Inside the claiming transaction: the last checks, in the order refusal, rate limit, build. Returns what
        to send, or None when it is not to be sent."""
        config = self.settings.receipts
        if plan.suppression is not None:
            outbox.mark_suppressed(session, job.receipt_id, plan.suppression)
            self.counts["suppressed"] += 1
            log.warning("receipt #%d not sent to an automatic address: %s", job.receipt_id, plan.suppression)
            return None
        if plan.refusal is not None:
            outbox.mark_failed(session, job.receipt_id, plan.refusal)
            self.counts["failed"] += 1
            if plan.unsendable:
                log.warning("receipt #%d not sendable: %s", job.receipt_id, plan.refusal)
            return None
        since = now - timedelta(hours=config.rate_limit_hours)
        recent = outbox.sent_recently(session, job.to_address or "", since, excluding=job.receipt_id)
        if recent >= config.rate_limit_count:
            outbox.mark_suppressed(
                session,
                job.receipt_id,
                f"rate limit: {recent} receipts already sent to this address in the last "
                f"{config.rate_limit_hours:g} hours (limit {config.rate_limit_count})",
            )
            self.counts["suppressed"] += 1
            return None
        if plan.content is not None:
            message_id, subject, body = plan.content
            outbox.store_content(session, job.receipt_id, message_id=message_id, subject=subject, body=body)
        if plan.build_error is not None:
            exc = plan.build_error
            outbox.mark_failed(session, job.receipt_id, f"cannot build the receipt: {type(exc).__name__}: {exc}")
            self.counts["failed"] += 1
            log.error("receipt #%d cannot be built", job.receipt_id, exc_info=exc)
            return None
        return plan.recipient, plan.data, plan.options

    def _facts(self, job: ReceiptJob) -> ReceiptFacts:
        assert job.case_number is not None and job.journal_number is not None
        return ReceiptFacts(
            case_number=job.case_number,
            case_title=job.case_title,
            deadline=job.deadline,
            timezone=job.case_timezone,
            received_at=job.received_at,
            on_time=job.on_time,
            journal_number=job.journal_number,
            original_subject=job.original_subject,
            attachments=[(a.name, a.size) for a in job.attachments],
            contact_address=self.settings.receipts.contact_address or self.smtp.sender,
        )

    def _refused(self, job: ReceiptJob, refusal: SmtpReply) -> None:
        if refusal.permanent:
            with self.session() as session:
                outbox.mark_failed(
                    session,
                    job.receipt_id,
                    f"refused by the SMTP server at {refusal.stage}: {refusal.reply}",
                    smtp_response=refusal.reply,
                )
            self.counts["failed"] += 1
            log.warning("receipt #%d refused permanently: %s", job.receipt_id, refusal)
            return
        self._retry(job, f"{refusal.stage}: {refusal.reply}", refusal.reply)

    def _retry(self, job: ReceiptJob, reason: str, response: str | None) -> None:
        config = self.settings.receipts
        with self.session() as session:
            result = outbox.schedule_retry(
                session,
                job.receipt_id,
                now=_now(),
                reason=reason,
                smtp_response=response,
                base_seconds=config.retry_base_seconds,
                max_delay_seconds=config.retry_max_seconds,
                max_attempts=config.max_attempts,
                count_attempt=False,
            )
        self.counts[result] += 1
        log.warning("receipt #%d: temporary failure (%s): %s", job.receipt_id, result, reason)


def link_receipt_bounce(session: Session, envelope: Envelope, intake_id: int) -> int | None:
    """Inside the registering transaction: when this mail is a failure report (DSN) about one of our receipts,
    mark that receipt `bounced` and link it to this record. Returns the receipt id, or None."""
    original = envelope.dsn_original_message_id
    if not envelope.is_report or not original or RECEIPT_MESSAGE_ID_PREFIX not in original.lower():
        return None
    if not outbox.is_unanswered_machine_mail(session, intake_id):
        return None
    if not envelope.dsn_failed:
        return None  # "delayed" or "relayed": the receipt may still arrive
    reason = "bounced: " + (envelope.dsn_details or sanitise_text(envelope.subject) or "delivery failure report")
    receipt_id = outbox.link_bounce(session, original, intake_id, _now(), reason)
    if receipt_id is not None:
        log.warning("receipt #%d bounced (report is intake #%d): %s", receipt_id, intake_id, reason)
    return receipt_id


def envelope_sender(settings: Settings) -> str:
    """MAIL FROM: "" (the null sender) when configured, else [smtp] envelope_sender or the sender address."""
    if settings.receipts.null_envelope_sender:
        return ""
    chosen = settings.smtp.envelope_sender
    if chosen is not None and chosen.strip() in ("", "<>"):
        return ""
    try:
        return prepare_address(chosen or settings.smtp.sender, smtputf8_offered=False).smtp
    except UnsendableAddress as exc:
        raise ValueError(f"[smtp] envelope_sender/sender cannot be used: {exc}") from None


def load_template(settings: Settings) -> ReceiptTemplate:
    path = settings.receipts.template_path
    return ReceiptTemplate.load(settings.resolve(path) if path else None)


# Receipts the server accepted whose `sent` mark could not be written (the database went away), by database URL.
# Each cycle has a sender of its own; the next one in this process writes these first, so an outage between an
# acceptance and its commit does not make the receipt go out again once its claim runs out.
_UNWRITTEN_MARKS: dict[str, list[tuple[int, datetime, str]]] = {}
_UNWRITTEN_LOCK = threading.Lock()


def _keep_unwritten(db: Database, marks: list[tuple[int, datetime, str]]) -> None:
    if marks:
        with _UNWRITTEN_LOCK:
            _UNWRITTEN_MARKS.setdefault(db.url, []).extend(marks)


def _take_unwritten(db: Database) -> list[tuple[int, datetime, str]]:
    with _UNWRITTEN_LOCK:
        return _UNWRITTEN_MARKS.pop(db.url, [])


class ReceiptSender:
    """Sends due receipts in passes over one SMTP connection that stays open between passes."""

    def __init__(self, settings: Settings, db: Database, *, checkpoint: Checkpoint | None = None) -> None:
        self.settings = settings
        self.db = db
        self.counts: Counter[str] = Counter({"sent": 0, "retry": 0, "failed": 0, "suppressed": 0})
        self._sender: _Sender | None = None
        self._checkpoint = checkpoint or (lambda stage, receipt_id: None)

    @property
    def enabled(self) -> bool:
        return self.settings.receipts.enabled and self.settings.smtp.configured

    def send_due(self, limit: int | None = None) -> int:
        """One pass over the due receipts (at most `limit`); returns how many were taken up."""
        if not self.enabled:
            return 0
        if self._sender is None:
            # A broken template or sender stops here, before anything is claimed.
            template = load_template(self.settings)
            envelope_from = envelope_sender(self.settings)
            self._sender = _Sender(self.settings, self.db, template, self._checkpoint, self.counts, envelope_from)
            if self.settings.smtp.auth == "oauth2":
                self._sender.tokens = token_client(self.settings)
            self._sender.accepted.extend(_take_unwritten(self.db))
        if self._sender.accepted:
            self._sender.flush()  # marks an earlier pass could not write, before anything is claimed
        limit = self.settings.receipts.batch_size if limit is None else limit
        if limit <= 0:
            return 0
        with self.db.session() as session:
            due = outbox.due_ids(session, _now(), limit)
        if due:
            try:
                self._sender.run(due)
            finally:
                self._sender.flush()
        return len(due)

    def close(self) -> dict[str, int]:
        if self._sender is not None:
            try:
                self._sender.flush()
            except BaseException:
                _keep_unwritten(self.db, self._sender.accepted)
                self._sender.accepted = []
                raise
            finally:
                _close(self._sender.connection)
                self._sender.connection = None
        counts = dict(self.counts)
        counts.pop("gone", None)
        return counts


def send_pending(settings: Settings, db: Database, *, checkpoint: Checkpoint | None = None) -> dict[str, int]:
    """Send every due pending receipt (up to `[receipts] batch_size`). Returns counts: sent, retry, failed,
    suppressed."""
    sender = ReceiptSender(settings, db, checkpoint=checkpoint)
    try:
        sender.send_due()
    finally:
        counts = sender.close()
    return counts


class ReceiptsAlongside:
    """The receipts step in a thread of its own while the intake cycle runs: receipts of mails the cycle has
    committed go out meanwhile (the SMTP and commit waits overlap the intake's), and a last pass after the
    cycle takes the rest. At most `[receipts] batch_size` per cycle, as before. Errors come out of `finish`."""

    POLL_SECONDS = 0.2

    def __init__(self, settings: Settings, db: Database) -> None:
        self.sender = ReceiptSender(settings, db)
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._budget = settings.receipts.batch_size
        self._counts: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name="receipts", daemon=True)

    def start(self) -> "ReceiptsAlongside":
        self._thread.start()
        return self

    def _pass(self) -> int:
        taken = self.sender.send_due(self._budget)
        self._budget -= taken
        return taken

    def _run(self) -> None:
        try:
            while not self._done.is_set():
                if not self._pass():
                    self._done.wait(self.POLL_SECONDS)
            self._pass()  # what the cycle committed last
        except BaseException as exc:
            self._error = exc
        finally:
            try:
                self._counts = self.sender.close()
            except BaseException as exc:
                self._error = self._error or exc

    def finish(self) -> dict[str, int]:
        """After the cycle: the last pass, then the counts (or the error that stopped the step)."""
        self._done.set()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._counts
