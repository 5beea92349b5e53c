"""The intake pipeline: source -> parse -> register (one transaction) -> side effects on the server.

Per mail: the raw bytes are stored first (content-addressed, idempotent), then parsed and judged, then written to
the case database in a transaction that also advances the folder's high-water mark. Only after that commit does
anything happen on the mail server (a move to the processed folder), so a crash at any point loses nothing and a
restart registers nothing twice. A mail that fails is recorded, retried with backoff, and finally kept as a
`failed` record for staff; it never blocks the mail behind it.

Group commit: a run of mails (at most BATCH_MAILS, BATCH_BYTES) is registered in one transaction, with the
high-water mark raised to the batch's last UID and the lease's fence checked in it. Their files are written without
fsync and made durable together just before that transaction (`DocumentStore.publish`: one flush per batch). When
any mail of a batch fails to register, the transaction is rolled back as a whole and the batch's mails are
registered again one transaction each, so one bad mail costs the others nothing.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

from postmottak.casefile import cases as case_store
from postmottak.casefile import consultations as consultation_store
from postmottak.casefile import mailboxes, registry
from postmottak.casefile.db import Database, DatabaseUnavailable, WriteConflict
from postmottak.casefile.leases import LeaseLost
from postmottak.casefile.locks import mailbox_lock
from postmottak.casefile.records import DocumentIn, IncomingMail, TextLayerIn
from postmottak.casefile.storage import DocumentStore, Staged, StorageError
from postmottak.config.settings import Settings, form_reference
from postmottak.intake.form_worker import AnyDocument, FileDocument, FormWorkerPool
from postmottak.intake.receipt_policy import effective_sender, is_reply_to_receipt, own_domain, plan_receipt
from postmottak.intake.sources.base import (
    FetchedMail,
    LoginRefused,
    MailboxSession,
    MailSource,
    ServerStepRefused,
    SourceError,
)
from postmottak.intake.triage import CaseRule, Verdict, decide
from postmottak.parsers.envelope import Attachment, Envelope, parse_envelope
from postmottak.parsers.forms import DocumentInput, DocumentsAnalysis, FormResult, load_profile
from postmottak.parsers.forms.answers import states_private_person
from postmottak.parsers.machine import machine_reason

log = logging.getLogger(__name__)

PARSEABLE_TYPES = (
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "text/plain",
)


# Read-ahead is also bounded by bytes, so a run of 30 MB mails cannot pile up in memory.
WINDOW_BYTES = 64 * 1024 * 1024
# Mails prepared (stored with fsync, MIME-parsed) at once in threads while the main thread registers in UID order:
# the fsyncs of one overlap the parsing of another and the registering commits.
PREPARE_THREADS = 2
# Group commit: mails registered in one transaction (bounded by count and by the bytes of their raw mail, which a
# batch keeps in memory until it commits).
BATCH_MAILS = 32
BATCH_BYTES = 16 * 1024 * 1024


@dataclass
class Prepared:
    """A mail stored and parsed, with its documents being read in the pool: ready to register."""

    mail: FetchedMail
    uidvalidity: int
    raw_sha256: str
    raw_path: str
    envelope: Envelope
    documents: list[DocumentIn]
    candidates: list[int]  # which attachments went to the form reader, in order
    analysis: Future[DocumentsAnalysis] | None
    mail_text: str = ""  # subject, body and attachment names: what chose the form
    form_profile: str | None = None  # the form the documents are being read as
    staged: list[Staged] = field(default_factory=list)  # its files, made durable before its registration commits


@dataclass(frozen=True)
class Failed:
    mail: FetchedMail
    uidvalidity: int
    error: str


@dataclass
class CycleReport:
    source_key: str
    fetched: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    skipped_locked: bool = False
    uidvalidity_changed: bool = False
    # A step after the commit the server refused (the move to processed_folder): registration went on, the move
    # waits for the next cycle. Shown as one line; not an error of the cycle.
    server_problem: str | None = None
    moves_pending: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        parts = ", ".join(f"{key} {value}" for key, value in sorted(self.counts.items())) or "nothing new"
        text = f"{self.source_key}: fetched {self.fetched} ({parts}) in {self.duration_s:.2f}s"
        if self.errors:
            text += f"; errors: {'; '.join(self.errors)}"
        if self.server_problem:
            text += f"; {self.moves_pending} mail(s) not moved: {self.server_problem}"
        return text


@dataclass
class Intake:
    """Everything one cycle needs; built once per worker."""

    settings: Settings
    db: Database
    store: DocumentStore
    source: MailSource
    # Hook for tests of crash safety: called with a stage name ("stored", "committed", ...).
    checkpoint: Callable[[str, str], None] = lambda stage, uid: None
    # Called as progress(done, total) while a cycle works through its mail (import progress bar).
    progress: Callable[[int, int], None] | None = None
    # Seconds spent per stage (fetch, mime, store, pdf_wait, db) since the worker started: for benchmarks and logs.
    timings: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    _pool: FormWorkerPool | None = field(default=None, repr=False)
    # With leases (several workers): called inside every registering transaction; raises LeaseLost once this
    # worker no longer holds the mailbox. The lease then replaces the one-worker lock.
    fence: Callable[[Session], None] | None = None
    # Case number -> profile file of the consultations set up in the dashboard, as of the last `case_rules()`.
    _stored_forms: dict[str, str] = field(default_factory=dict, repr=False)
    _own_domain: tuple[str, str] | None = field(default=None, repr=False)  # (sender address, its domain)

    @property
    def window_size(self) -> int:
        """How many mails are read ahead while earlier ones are registered: enough to keep every parser busy."""
        return 2 * self.form_pool().size

    @property
    def own_domains(self) -> set[str]:
        """Our sender's domain, in A-label form: worked out (IDNA) once per sender address, not three times a mail."""
        sender = self.settings.smtp.sender
        if self._own_domain is None or self._own_domain[0] != sender:
            self._own_domain = (sender, own_domain(sender))
        return {self._own_domain[1]}

    def case_rules(self) -> list[CaseRule]:
        """The configured cases and the consultations set up in the dashboard (read again at every cycle, so a new
        one is picked up without a restart; a configured case of the same number wins)."""
        configured = {c.number for c in self.settings.cases}
        with self.db.session() as session:
            closed = case_store.closed_numbers(session)
            stored = consultation_store.stored_consultations(session, configured)
        rules = [
            CaseRule(c.number, c.title, c.deadline, c.timezone, tuple(c.keywords), c.number in closed)
            for c in self.settings.cases
        ]
        forms: dict[str, str] = {}
        for consultation in stored:
            path = consultation_store.profile_file(self.settings.consultation_forms_path, consultation.profile_toml)
            forms[consultation.number] = str(path)
            rules.append(
                CaseRule(
                    consultation.number,
                    consultation.title,
                    consultation.deadline,
                    consultation.timezone,
                    consultation.keywords,
                    consultation.number in closed,
                    deadline_time=consultation.deadline_time,
                )
            )
        if forms != self._stored_forms:
            with self.db.session() as session:
                consultation_store.set_form_profiles(session, forms.items())
            self._stored_forms = forms
        return rules

    # One mail ----------------------------------------------------------------------------

    def process(self, mail: FetchedMail, uidvalidity: int, rules: Sequence[CaseRule]) -> registry.Outcome:
        """Prepare and register one mail (the batch path in _poll does the same with parsing in parallel)."""
        prepared = self.prepare(mail, uidvalidity)
        if isinstance(prepared, registry.Outcome):
            return prepared
        return self.register(prepared, self.build(prepared, self.analysed(prepared), rules))

    def prepare(
        self, mail: FetchedMail, uidvalidity: int, *, check_known: bool = True
    ) -> "Prepared | registry.Outcome":
        """Store the bytes, parse the envelope, and start reading the documents (in the form worker pool).

        `check_known=False` skips the look-up of the location (for IMAP UIDs above the high-water mark, which no
        cycle has registered); `register` checks again in its transaction and the unique location is the guard."""
        if check_known:
            with self.timer("db"), self.db.session() as session:
                known = registry.location_known(session, self.source.source_key, uidvalidity, mail.uid)
            if known is not None:
                return registry.Outcome("seen", known, "")
        staged: list[Staged] = []
        try:
            with self.timer("store"):
                raw = self.store.stage(mail.raw)
            staged.append(raw)
            self.checkpoint("stored", mail.uid)
            with self.timer("mime"):
                envelope = parse_envelope(mail.raw)
            with self.timer("store"):
                documents, files = self._store_documents(envelope)
            staged.extend(files)
            candidates = [i for i, a in enumerate(envelope.attachments) if _parseable(a)]
            analysis: Future[DocumentsAnalysis] | None = None
            mail_text = "\n".join(
                [envelope.subject, envelope.body_text, *(a.filename or "" for a in envelope.attachments)]
            )
            profile = self.form_profile_for(mail_text)
            if candidates:
                inputs: list[AnyDocument] = []
                for i in candidates:
                    attachment, path = envelope.attachments[i], files[i].readable_path
                    if path is not None:  # the reader opens the stored file itself: no bytes through the pipe
                        inputs.append(FileDocument(attachment.filename, attachment.content_type, str(path)))
                    else:
                        inputs.append(DocumentInput(attachment.filename, attachment.content_type, attachment.data))
                analysis = self.form_pool().submit(inputs, profile)
                del inputs
        except BaseException:
            self.store.discard(staged)
            raise
        for attachment in envelope.attachments:  # stored and handed to the pool: the bytes are not needed here
            attachment.data = b""
        return Prepared(
            mail,
            uidvalidity,
            raw.sha256,
            raw.relative,
            envelope,
            documents,
            candidates,
            analysis,
            mail_text=mail_text,
            form_profile=profile,
            staged=staged,
        )

    def analysed(self, prepared: "Prepared") -> DocumentsAnalysis | None:
        with self.timer("pdf_wait"):
            analysis = prepared.analysis.result() if prepared.analysis is not None else None
            if analysis is not None:
                analysis = self._read_as_cited_form(prepared, analysis)
            return analysis

    def register(self, prepared: "Prepared", incoming: IncomingMail) -> registry.Outcome:
        """Register one mail in a transaction of its own (its files made durable first)."""
        mail, uidvalidity = prepared.mail, prepared.uidvalidity
        with self.timer("store"):
            self.store.publish(prepared.staged)
        try:
            with self.timer("db"), self.db.session() as session:
                self._fenced(session)
                outcome = registry.register(session, incoming)
                self._after_register(session, mail, uidvalidity, outcome, prepared.envelope)
                if mail.uid.isdigit():
                    registry.bump_high_water_mark(session, self.source.source_key, uidvalidity, int(mail.uid))
        except WriteConflict:
            # A second worker registered this location at the same moment; its record stands.
            with self.db.session() as session:
                known = registry.location_known(session, self.source.source_key, uidvalidity, mail.uid)
            if known is None:
                raise
            return registry.Outcome("seen", known, "")
        self.checkpoint("committed", mail.uid)
        return outcome

    def _read_as_cited_form(self, prepared: "Prepared", analysis: DocumentsAnalysis) -> DocumentsAnalysis:
        """A mail that names its case only inside the attached form (the subject and body do not) was read as the
        first configured case's form: read its documents again as the form of the case they cite."""
        if form_for_mail(self.settings, prepared.mail_text) is not None:
            return analysis
        cited = form_for_mail(self.settings, "\n".join([prepared.mail_text, *analysis.texts]))
        if cited is None or cited == prepared.form_profile:
            return analysis
        inputs: list[AnyDocument] = [
            DocumentInput(
                prepared.envelope.attachments[i].filename,
                prepared.envelope.attachments[i].content_type,
                self._stored_bytes(prepared, i),
            )
            for i in prepared.candidates
        ]
        return self.form_pool().submit(inputs, cited).result()

    def _stored_bytes(self, prepared: "Prepared", index: int) -> bytes:
        """Attachment `index`'s bytes as stored: from its staged file (not yet under its final name) or the store."""
        staged = prepared.staged[1 + index] if len(prepared.staged) > 1 + index else None  # [raw mail, *attachments]
        path = staged.readable_path if staged is not None else None
        return path.read_bytes() if path is not None else self.store.read(prepared.documents[index].storage_path)

    def register_batch(self, batch: "Sequence[tuple[Prepared, IncomingMail]]") -> list[registry.Outcome | None] | None:
        """Register several mails in one transaction: one fence check, one high-water mark update, one commit,
        their files made durable with one flush before it. None when the batch as a whole was rolled back
        (a mail in it failed to register): the caller registers them one by one."""
        if not batch:
            return []
        source_key = self.source.source_key
        with self.timer("store"):
            self.store.publish([item for prepared, _ in batch for item in prepared.staged])
        try:
            with self.timer("db"), self.db.session() as session:
                self._fenced(session)
                registered = registry.register_batch(session, [incoming for _, incoming in batch])
                pairs = list(zip(batch, registered, strict=True))
                registry.resolve_failures(
                    session, source_key, [(p.uidvalidity, p.mail.uid, o.intake_id) for (p, _), o in pairs]
                )
                # After the whole batch, as the same: a bounce is about a receipt already sent, never one of the
                # receipts this batch queues.
                for (prepared, _), outcome in pairs:
                    if outcome.kind == "new":
                        self._link_bounce(session, prepared.envelope, outcome.intake_id)
                uidvalidity = batch[0][0].uidvalidity
                highest = max((int(p.mail.uid) for p, _ in batch if p.mail.uid.isdigit()), default=None)
                if highest is not None:
                    registry.bump_high_water_mark(session, source_key, uidvalidity, highest)
        except (DatabaseUnavailable, LeaseLost):
            raise
        except Exception:
            log.info("%s: a batch of %d mails is registered one by one (one of them failed)", source_key, len(batch))
            return None
        for prepared, _ in batch:
            self.checkpoint("committed", prepared.mail.uid)
        return list(registered)

    @contextmanager
    def timer(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] += time.perf_counter() - started

    def form_profile_for(self, mail_text: str) -> str | None:
        """The form of the one case (configured, or set up in the dashboard) the mail refers to; else the first
        configured form (a mail citing several cases goes to review anyway)."""
        return form_for_mail(self.settings, mail_text, self._stored_forms) or self.form_profile

    @property
    def form_profile(self) -> str | None:
        return next((form_reference(self.settings, c.form) for c in self.settings.cases if c.form), None)

    def form_pool(self) -> FormWorkerPool:
        if self._pool is None:
            self._pool = FormWorkerPool(
                self.settings.intake.parse_workers or None,
                timeout_s=self.settings.intake.parse_timeout_seconds,
                memory_mb=self.settings.intake.parse_memory_mb,
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self.db.dispose()

    def _after_register(  # type: ignore[no-untyped-def]
        self, session, mail: FetchedMail, uidvalidity: int, outcome: registry.Outcome, envelope: Envelope
    ) -> None:
        registry.resolve_failure(session, self.source.source_key, uidvalidity, mail.uid, outcome.intake_id)
        if outcome.kind == "new":
            self._link_bounce(session, envelope, outcome.intake_id)

    def _link_bounce(self, session: Session, envelope: Envelope, intake_id: int) -> None:
        from postmottak.intake.receipts import link_receipt_bounce

        link_receipt_bounce(session, envelope, intake_id)  # a DSN about one of our receipts

    def build(
        self, prepared: "Prepared", analysis: DocumentsAnalysis | None, rules: Sequence[CaseRule]
    ) -> IncomingMail:
        mail, envelope, uidvalidity = prepared.mail, prepared.envelope, prepared.uidvalidity
        raw_sha, raw_path = prepared.raw_sha256, prepared.raw_path
        received_at, received_source = receive_time(mail, envelope)
        documents = prepared.documents
        analysed_index = None
        if analysis is not None and analysis.form_index is not None and analysis.form is not None:
            analysed_index = prepared.candidates[analysis.form_index]
            documents[analysed_index].is_form = True
        if analysis is not None:
            self._store_text_layers(prepared, analysis)
        machine = machine_reason(envelope)
        form = analysis.form if analysis is not None else None
        has_form = form is not None and form.form_status in ("parsed", "partial")
        verdict: Verdict = decide(
            subject=envelope.subject,
            body=envelope.body_text,
            attachment_texts=analysis.texts if analysis is not None else [],
            attachment_names=[a.filename or "" for a in envelope.attachments],
            machine_reason=machine,
            reply_to_our_receipt=is_reply_to_receipt(envelope, self.own_domains),
            has_form=has_form,
            received_at=received_at,
            cases=rules,
        )
        sender = effective_sender(envelope, self.own_domains)
        form_dump = form.model_dump(mode="json") if form is not None else None
        private = private_person_in_form(form)
        return IncomingMail(
            source_key=self.source.source_key,
            uidvalidity=uidvalidity,
            uid=mail.uid,
            raw_sha256=raw_sha,
            raw_size=len(mail.raw),
            raw_path=raw_path,
            message_id=envelope.message_id,
            received_at=received_at,
            received_at_source=received_source,
            date_header=envelope.date,
            sender_name=(sender.name or None) if sender else None,
            sender_address=(sender.addr or None) if sender else None,
            subject=envelope.subject,
            body_text=envelope.body_text,
            in_reply_to=envelope.in_reply_to,
            references=envelope.references,
            machine_reason=machine,
            parse_defects=envelope.defects,
            status=verdict.status,
            reason=verdict.reason,
            case_number=verdict.case_number,
            on_time=verdict.on_time,
            documents=documents,
            form=form_dump,
            form_document_index=analysed_index,
            receipt=plan_receipt(envelope, verdict, machine, self.own_domains),
            sender_is_private_person=private,
        )

    def _store_text_layers(self, prepared: "Prepared", analysis: DocumentsAnalysis) -> None:
        """Store the searchable PDF of each document read by OCR beside its original (which stays as received). A
        layer that could not be made or stored is recorded with the reason; the mail is registered either way."""
        for position, layer in enumerate(analysis.text_layers):
            if layer is None or position >= len(prepared.candidates):
                continue
            document = prepared.documents[prepared.candidates[position]]
            pages = [page + 1 for page in layer.ocr_pages]
            stored = TextLayerIn("failed", pages, layer.text, tool=layer.tool, error=layer.error)
            if layer.pdf is not None:
                try:
                    with self.timer("store"):
                        staged = self.store.stage(layer.pdf)  # made durable with the mail's other files
                    prepared.staged.append(staged)
                    stored = TextLayerIn(
                        "made", pages, layer.text, staged.sha256, len(layer.pdf), staged.relative, layer.tool
                    )
                except (OSError, StorageError) as exc:
                    log.warning("%s: searchable PDF not stored: %s", document.filename or "document", exc)
                    stored.error = f"kunne ikke lagres: {exc}"[:300]
                layer.pdf = None  # stored: the bytes are not needed any more
            document.text_layer = stored

    def _store_documents(self, envelope: Envelope) -> tuple[list[DocumentIn], list[Staged]]:
        """The mail's documents, staged (written, not yet durable); the files are in attachment order."""
        documents: list[DocumentIn] = []
        files: list[Staged] = []
        for attachment in envelope.attachments:
            staged = self.store.stage(attachment.data)
            files.append(staged)
            sha, path = staged.sha256, staged.relative
            documents.append(
                DocumentIn(
                    filename=attachment.filename,
                    content_type="application/pdf" if attachment.is_pdf else attachment.content_type,
                    size=attachment.size,
                    sha256=sha,
                    storage_path=path,
                    title=attachment.filename or ("Vedlegg (PDF)" if attachment.is_pdf else "Vedlegg uten navn"),
                    depth=attachment.depth,
                )
            )
        if not documents:
            body = envelope.body_text.encode("utf-8")
            staged = self.store.stage(body)
            files.append(staged)
            sha, path = staged.sha256, staged.relative
            documents.append(
                DocumentIn(
                    filename="e-post.txt",
                    content_type="text/plain; charset=utf-8",
                    size=len(body),
                    sha256=sha,
                    storage_path=path,
                    title=envelope.subject or "E-post",
                    kind="body",
                )
            )
        return documents, files

    # Failures ----------------------------------------------------------------------------

    def fail(self, mail: FetchedMail, uidvalidity: int, error: str) -> str:
        """Record a failed attempt; after the last attempt keep the mail as a `failed` record for staff."""
        source_key = self.source.source_key
        with self.db.session() as session:
            self._fenced(session)
            failure = registry.record_failure(
                session,
                source_key=source_key,
                uidvalidity=uidvalidity,
                uid=mail.uid,
                error=error,
                retry_base_seconds=self.settings.intake.retry_base_seconds,
            )
            attempts = failure.attempts
            if mail.uid.isdigit():
                registry.bump_high_water_mark(session, source_key, uidvalidity, int(mail.uid))
        if attempts < self.settings.intake.max_attempts:
            return "retry"
        raw_sha, raw_path = self.store.put(mail.raw)
        received = mail.internaldate or mail.file_mtime or datetime.now(timezone.utc)
        incoming = IncomingMail(
            source_key=source_key,
            uidvalidity=uidvalidity,
            uid=mail.uid,
            raw_sha256=raw_sha,
            raw_size=len(mail.raw),
            raw_path=raw_path,
            message_id=None,
            received_at=received,
            received_at_source="internaldate" if mail.internaldate else "file-mtime",
            date_header=None,
            sender_name=None,
            sender_address=None,
            subject="",
            body_text="",
            in_reply_to=[],
            references=[],
            machine_reason=None,
            parse_defects=[],
            status="failed",
            reason=f"processing failed: {error}",
            case_number=None,
            on_time=None,
        )
        with self.db.session() as session:
            self._fenced(session)
            outcome = registry.register(session, incoming)
            registry.resolve_failure(session, source_key, uidvalidity, mail.uid, outcome.intake_id)
        return "failed"

    def _fenced(self, session: Session) -> None:
        if self.fence is not None:
            self.fence(session)

    # One cycle ---------------------------------------------------------------------------

    def run_cycle(self, *, reconnects: int = 3) -> CycleReport:
        report = CycleReport(self.source.source_key)
        started = time.monotonic()
        try:
            self._locked_cycle(report, reconnects, started)
        except DatabaseUnavailable as exc:
            # The database is down or locked (also before or after the poll): the next cycle tries again.
            report.errors.append(f"database unavailable: {exc.reason}")
            report.duration_s = time.monotonic() - started
        if report.errors:
            log.error("%s", report.summary())
        elif report.server_problem:
            log.warning("%s", report.summary())
        elif not report.skipped_locked:
            log.info("%s", report.summary())
        return report

    def _locked_cycle(self, report: CycleReport, reconnects: int, started: float) -> None:
        with self._exclusive() as held:
            if not held:
                report.skipped_locked = True
                log.info("%s: another worker holds this mailbox; skipping the cycle", self.source.source_key)
                return
            with self.db.session() as session:
                self._fenced(session)
                run_id = mailboxes.start_poll(session, self.source.source_key)
            attempt = 0
            while True:
                try:
                    self._poll(report)
                    break
                except LoginRefused as exc:  # a wrong password does not get better by asking again at once
                    report.errors.append(str(exc))
                    break
                except (SourceError, OSError) as exc:  # OSError: a socket or TLS failure the source passed on
                    attempt += 1
                    if attempt > reconnects:
                        report.errors.append(str(exc) or type(exc).__name__)
                        break
                    delay = min(2 ** (attempt - 1), 10)
                    log.warning("%s: %s; reconnecting in %ss", self.source.source_key, exc, delay)
                    time.sleep(delay)
                except DatabaseUnavailable as exc:
                    report.errors.append(f"database unavailable: {exc.reason}")
                    break
            report.duration_s = time.monotonic() - started
            try:
                with self.db.session() as session:
                    mailboxes.finish_poll(
                        session,
                        run_id,
                        ok=report.ok,
                        fetched=report.fetched,
                        counts=mailboxes.with_server_problem(
                            dict(report.counts), report.server_problem, report.moves_pending
                        ),
                        error="; ".join(report.errors) or None,
                    )
            except DatabaseUnavailable as exc:
                log.error("cannot record the cycle: %s", exc.reason)

    @contextmanager
    def _exclusive(self) -> Iterator[bool]:
        """One worker per mailbox: the lease when there is one (fenced per transaction), else the lock."""
        if self.fence is not None:
            yield True
            return
        with mailbox_lock(self.db, self.source.source_key) as held:
            yield held

    def _poll(self, report: CycleReport) -> None:
        rules = self.case_rules()
        source_key = self.source.source_key
        with self.source.open() as box:
            with self.db.session() as session:
                changed = mailboxes.start_epoch(session, source_key, box.uidvalidity)
                state = mailboxes.get_state(session, source_key)
                last_uid = state.last_uid
                retry = registry.due_failures(session, source_key, box.uidvalidity, self.settings.intake.max_attempts)
                known = set() if box.incremental else registry.known_uids(session, source_key, box.uidvalidity)
                waiting = registry.waiting_failures(session, source_key, box.uidvalidity)
            if changed:
                report.uidvalidity_changed = True
                log.warning("%s: UIDVALIDITY changed; checking every mail in the folder again", source_key)
            if box.incremental:
                uids = box.uids_after(last_uid)
            else:
                uids = [uid for uid in box.all_uids() if uid not in known and uid not in waiting]
            wanted = list(dict.fromkeys([*retry, *uids]))
            if self.progress:
                self.progress(0, len(wanted))
            if wanted:
                self.form_pool()  # started here, not raced for by the preparing threads
                with ThreadPoolExecutor(PREPARE_THREADS, thread_name_prefix="prepare") as preparing:
                    try:
                        self._work_through(box, wanted, last_uid, rules, report, preparing)
                    finally:  # on a lost connection: nothing half-prepared outlives the attempt
                        preparing.shutdown(wait=True, cancel_futures=True)
            self._move_processed(box, report)

    def _work_through(
        self,
        box: MailboxSession,
        wanted: list[str],
        last_uid: int,
        rules: Sequence[CaseRule],
        report: CycleReport,
        preparing: ThreadPoolExecutor,
    ) -> None:
        """Fetch in UID order, prepare a few mails ahead in threads, register strictly in UID order here (in
        batches of one transaction each)."""
        uidvalidity = box.uidvalidity
        window: list[tuple[FetchedMail, Future[Prepared | registry.Outcome]]] = []
        window_bytes = 0
        batch: list[tuple[Prepared, IncomingMail]] = []
        fetched = iter(box.fetch(wanted))
        while True:
            try:
                with self.timer("fetch"):
                    mail = next(fetched, None)
            except (SourceError, OSError):
                self._flush(batch, report)  # what is prepared is registered before the reconnect
                raise
            if mail is not None:
                report.fetched += 1
                if self.progress:
                    self.progress(report.fetched, len(wanted))
                above_mark = box.incremental and mail.uid.isdigit() and int(mail.uid) > last_uid
                window.append((mail, preparing.submit(self.prepare, mail, uidvalidity, check_known=not above_mark)))
                window_bytes += len(mail.raw)
            # Documents of the next mails are read in the pool while earlier ones are registered, in UID order.
            full = len(window) >= self.window_size or window_bytes >= WINDOW_BYTES
            while window and (mail is None or full):
                ahead, future = window.pop(0)
                window_bytes -= len(ahead.raw)
                try:
                    prepared: Prepared | registry.Outcome | Failed = future.result()
                except (DatabaseUnavailable, LeaseLost):
                    raise
                except Exception as exc:
                    log.exception("%s: mail %s failed", self.source.source_key, ahead.uid)
                    # Recorded in UID order with the rest of the window, so the high-water mark never
                    # passes a mail that is not yet registered.
                    prepared = Failed(ahead, uidvalidity, f"{type(exc).__name__}: {exc}")
                del future, ahead
                if isinstance(prepared, registry.Outcome):
                    report.counts["seen"] += 1
                elif isinstance(prepared, Failed):
                    self._flush(batch, report)  # failures are recorded in UID order with the rest
                    report.counts[self.fail(prepared.mail, prepared.uidvalidity, prepared.error)] += 1
                else:
                    self._add_to_batch(prepared, rules, batch, report)
                del prepared
                full = len(window) >= self.window_size or window_bytes >= WINDOW_BYTES
            if mail is None:
                self._flush(batch, report)
                break

    def _add_to_batch(
        self,
        prepared: Prepared,
        rules: Sequence[CaseRule],
        batch: list[tuple[Prepared, IncomingMail]],
        report: CycleReport,
    ) -> None:
        try:
            incoming = self.build(prepared, self.analysed(prepared), rules)
        except Exception as exc:
            self._flush(batch, report)
            log.exception("%s: mail %s failed", self.source.source_key, prepared.mail.uid)
            self.store.discard(prepared.staged)
            report.counts[self.fail(prepared.mail, prepared.uidvalidity, f"{type(exc).__name__}: {exc}")] += 1
            return
        batch.append((prepared, incoming))
        if len(batch) >= BATCH_MAILS or sum(len(p.mail.raw) for p, _ in batch) >= BATCH_BYTES:
            self._flush(batch, report)

    def _flush(self, batch: list[tuple[Prepared, IncomingMail]], report: CycleReport) -> None:
        """Register the batch in one transaction; when that is rolled back, each mail in a transaction of its own."""
        if not batch:
            return
        outcomes = self.register_batch(batch)
        if outcomes is None:
            outcomes = [self._register_alone(prepared, incoming, report) for prepared, incoming in batch]
        batch.clear()
        for outcome in outcomes:
            if outcome is not None:
                report.counts[outcome.status if outcome.kind == "new" else outcome.kind] += 1

    def _register_alone(
        self, prepared: Prepared, incoming: IncomingMail, report: CycleReport
    ) -> registry.Outcome | None:
        try:
            return self.register(prepared, incoming)
        except (DatabaseUnavailable, LeaseLost):
            raise
        except Exception as exc:
            log.exception("%s: mail %s failed", self.source.source_key, prepared.mail.uid)
            report.counts[self.fail(prepared.mail, prepared.uidvalidity, f"{type(exc).__name__}: {exc}")] += 1
            return None

    def _move_processed(self, box: MailboxSession, report: CycleReport) -> None:
        folder = self.settings.imap.processed_folder
        if not folder or not box.incremental:
            return
        with self.db.session() as session:
            uids = mailboxes.pending_moves(session, self.source.source_key, box.uidvalidity)
        if not uids:
            return
        with self.db.session() as session:
            self._fenced(session)  # a worker that lost the mailbox leaves the server alone too
        try:
            box.move(uids, folder)
        except ServerStepRefused as exc:  # registered already: the move waits, the intake goes on
            report.server_problem, report.moves_pending = str(exc), len(uids)
            return
        with self.db.session() as session:
            mailboxes.mark_moved(session, self.source.source_key, box.uidvalidity, uids)


# Photos and scans of a printed form: read by OCR when they look like a page (logos are skipped there).
SCAN_IMAGE_TYPES = ("image/jpeg", "image/png", "image/tiff")
SCAN_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def _parseable(attachment: Attachment) -> bool:
    name = (attachment.filename or "").lower()
    return (
        attachment.is_pdf
        or attachment.content_type in PARSEABLE_TYPES
        or name.endswith((".pdf", ".docx"))
        or attachment.content_type in SCAN_IMAGE_TYPES
        or name.endswith(SCAN_IMAGE_SUFFIXES)
    )


def receive_time(mail: FetchedMail, envelope: Envelope) -> tuple[datetime, str]:
    """The server's receive time: INTERNALDATE; for files, the newest Received header, the Date header, the mtime."""
    if mail.internaldate is not None:
        stamp = mail.internaldate
        if stamp.tzinfo is None:  # imapclient normalises to local time only when asked; treat naive as UTC
            stamp = stamp.replace(tzinfo=timezone.utc)
        return stamp, "internaldate"
    if envelope.received_at is not None:
        return envelope.received_at, "received-header"
    if envelope.date is not None:
        return envelope.date, "date-header"
    if mail.file_mtime is not None:
        return mail.file_mtime, "file-mtime"
    return datetime.now(timezone.utc), "fetch-time"


def private_person_in_form(form: FormResult | None) -> bool | None:
    """What the form's own respondent-type question says about a private person (None when it does not say)."""
    if form is None or not form.profile:
        return None
    try:
        profile = load_profile(form.profile)
    except (ValueError, OSError):
        return None
    return states_private_person(profile, form.fields)


def form_for_mail(settings: Settings, mail_text: str, stored: Mapping[str, str] | None = None) -> str | None:
    """The form (profile reference) of the single case that the text refers to, if it has one: a configured case,
    or one set up in the dashboard (`stored`: case number -> profile file)."""
    from postmottak.parsers.case_refs import find_case_references

    stored = stored or {}
    referenced = find_case_references(mail_text, [c.number for c in settings.cases] + list(stored))
    if len(referenced) != 1:
        return None
    number = next(iter(referenced))
    case = next((c for c in settings.cases if c.number == number), None)
    if case is not None:
        return form_reference(settings, case.form)
    return stored.get(number)
