"""The case database, shaped on Noark 5 so that the archival extract is a mapping, not a redesign.

Noark 5 names in brackets:
- Case [saksmappe]: a consultation, number = year/sequence.
- IntakeRecord: exactly one per fetched mail, with its status. Registered mail also gets a
- JournalEntry [journalpost, "Inngående dokument"] with the sender [korrespondansepart "Avsender"], and
- Document rows [dokumentbeskrivelse + dokumentobjekt] for the mail's files.
- MailLocation: where a mail was seen (source, UIDVALIDITY, UID); the unique key that stops a second fetch of the
  same mail from creating a second record, even with two workers.
- DedupKey: Message-ID and raw SHA-256 of every original mail; the unique key that makes a second registration of
  the same mail a `duplicate` instead.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from postmottak.casefile.records import (
    DUPLICATE as DUPLICATE,
)
from postmottak.casefile.records import (
    FAILED as FAILED,
)
from postmottak.casefile.records import (
    IGNORED as IGNORED,
)
from postmottak.casefile.records import (
    INTAKE_STATUSES as INTAKE_STATUSES,
)
from postmottak.casefile.records import (
    NEEDS_REVIEW as NEEDS_REVIEW,
)
from postmottak.casefile.records import (
    RECEIPT_STATUSES as RECEIPT_STATUSES,
)
from postmottak.casefile.records import (
    REGISTERED as REGISTERED,
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_system_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on every backend: stored as UTC, read back as UTC (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the case database")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


# Intake and receipt statuses (REGISTERED, ..., RECEIPT_STATUSES) are defined with the records, casefile/records.py.


class Case(Base):
    """saksmappe"""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_system_id)
    number: Mapped[str] = mapped_column(String(32), unique=True)  # "22/414" as configured
    year: Mapped[int] = mapped_column(Integer)  # saksaar, four digits
    sequence: Mapped[int] = mapped_column(Integer)  # sakssekvensnummer
    title: Mapped[str] = mapped_column(Text)
    deadline: Mapped[date] = mapped_column(Date)
    # The time of day of the deadline in `timezone` (None: the end of the deadline day).
    deadline_time: Mapped[time | None] = mapped_column(Time, nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Oslo")
    # A packaged profile's name or a profile file's path.
    form_profile: Mapped[str | None] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(128))
    # Last document number (journalpostnummer) handed out within the case.
    last_document_number: Mapped[int] = mapped_column(Integer, default=0)

    entries: Mapped[list[JournalEntry]] = relationship(back_populates="case")

    __table_args__ = (UniqueConstraint("year", "sequence", name="uq_case_year_sequence"),)


class Consultation(Base):
    """A consultation set up in the dashboard: what a `[[cases]]` entry says, with the form's profile learned from
    its blank. A `[[cases]]` entry of the same number wins; the case itself is the `cases` row of the number."""

    __tablename__ = "consultations"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(Text)
    deadline: Mapped[date] = mapped_column(Date)
    deadline_time: Mapped[time | None] = mapped_column(Time, nullable=True)
    timezone: Mapped[str] = mapped_column(String(64))
    keywords: Mapped[list[Any]] = mapped_column(JSON)
    profile_toml: Mapped[str] = mapped_column(Text)
    blank_sha256: Mapped[str] = mapped_column(String(64))
    blank_filename: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MailboxState(Base):
    """Incremental fetch position of one source folder: UIDVALIDITY and the highest UID handled."""

    __tablename__ = "mailbox_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_key: Mapped[str] = mapped_column(String(512), unique=True)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_poll_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class IntakeRecord(Base):
    """One fetched mail, whatever it turned out to be."""

    __tablename__ = "intake_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(Text)  # why ignored / needs review / failed
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    raw_sha256: Mapped[str] = mapped_column(String(64), index=True)
    raw_size: Mapped[int] = mapped_column(BigInteger)
    raw_path: Mapped[str] = mapped_column(String(255))  # relative to the storage root
    received_at: Mapped[datetime]  # server receive time (IMAP INTERNALDATE), tz-aware
    received_at_source: Mapped[str] = mapped_column(
        String(32)
    )  # internaldate | received-header | date-header | file-mtime
    date_header: Mapped[datetime | None]
    sender_name: Mapped[str | None] = mapped_column(Text)
    sender_address: Mapped[str | None] = mapped_column(String(512), index=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    in_reply_to: Mapped[list[Any]] = mapped_column(JSON, default=list)
    references: Mapped[list[Any]] = mapped_column(JSON, default=list)
    machine_reason: Mapped[str | None] = mapped_column(Text)
    parse_defects: Mapped[list[Any]] = mapped_column(JSON, default=list)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("intake_records.id"))
    source_key: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    case: Mapped[Case | None] = relationship()
    journal_entry: Mapped[JournalEntry | None] = relationship(back_populates="intake", uselist=False)
    documents: Mapped[list[Document]] = relationship(
        back_populates="intake", order_by="Document.number", cascade="all, delete-orphan"
    )
    locations: Mapped[list[MailLocation]] = relationship(back_populates="intake")
    form: Mapped[FormResultRow | None] = relationship(back_populates="intake", uselist=False)
    receipt: Mapped[Receipt | None] = relationship(
        back_populates="intake", uselist=False, foreign_keys="Receipt.intake_id"
    )


class MailLocation(Base):
    """Where a mail was seen. Unique per (source, UIDVALIDITY, UID): a mail is processed once per location."""

    __tablename__ = "mail_locations"

    id: Mapped[int] = mapped_column(primary_key=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake_records.id"), index=True)
    source_key: Mapped[str] = mapped_column(String(512))
    uidvalidity: Mapped[int] = mapped_column(BigInteger, default=0)
    uid: Mapped[str] = mapped_column(String(512))  # IMAP UID, or a file name for folder sources
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Post-commit side effect on the server (move to processed_folder); null = still to do.
    moved_at: Mapped[datetime | None]

    intake: Mapped[IntakeRecord] = relationship(back_populates="locations")

    __table_args__ = (UniqueConstraint("source_key", "uidvalidity", "uid", name="uq_location"),)


class DedupKey(Base):
    """`mid:<message-id>` and `sha:<raw sha256>` of each original mail (not of duplicates)."""

    __tablename__ = "dedup_keys"

    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake_records.id"), index=True)


class ProcessingFailure(Base):
    """A mail that could not be processed yet: retried with backoff, then left to staff."""

    __tablename__ = "processing_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_key: Mapped[str] = mapped_column(String(512))
    uidvalidity: Mapped[int] = mapped_column(BigInteger, default=0)
    uid: Mapped[str] = mapped_column(String(512))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text)
    first_failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    intake_id: Mapped[int | None] = mapped_column(ForeignKey("intake_records.id"))

    __table_args__ = (UniqueConstraint("source_key", "uidvalidity", "uid", name="uq_failure_location"),)


class JournalEntry(Base):
    """journalpost, type "Inngående dokument", with its sender (korrespondansepart "Avsender")."""

    __tablename__ = "journal_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_system_id)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake_records.id"), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    journal_year: Mapped[int] = mapped_column(Integer)  # journalaar
    journal_sequence: Mapped[int] = mapped_column(Integer)  # journalsekvensnummer
    document_number: Mapped[int] = mapped_column(Integer)  # journalpostnummer within the case
    journal_date: Mapped[date] = mapped_column(Date)  # journaldato
    received_at: Mapped[datetime]  # mottattDato
    entry_type: Mapped[str] = mapped_column(String(64), default="Inngående dokument")
    title: Mapped[str] = mapped_column(Text)
    correspondent_role: Mapped[str] = mapped_column(String(32), default="Avsender")
    correspondent_name: Mapped[str | None] = mapped_column(Text)
    correspondent_email: Mapped[str | None] = mapped_column(String(512))
    correspondent_is_private_person: Mapped[bool | None] = mapped_column(Boolean)
    on_time: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128), default="postmottak")

    case: Mapped[Case] = relationship(back_populates="entries")
    intake: Mapped[IntakeRecord] = relationship(back_populates="journal_entry")

    __table_args__ = (
        UniqueConstraint("journal_year", "journal_sequence", name="uq_journal_number"),
        UniqueConstraint("case_id", "document_number", name="uq_case_document_number"),
    )

    @property
    def journal_number(self) -> str:
        """Case number with document number, as staff write it: "2022/414-5"."""
        return f"{self.case.year}/{self.case.sequence}-{self.document_number}"


_CANCELLED_COPIED = (
    "system_id",
    "intake_id",
    "case_id",
    "journal_year",
    "journal_sequence",
    "document_number",
    "journal_date",
    "received_at",
    "entry_type",
    "title",
    "correspondent_role",
    "correspondent_name",
    "correspondent_email",
    "correspondent_is_private_person",
    "on_time",
    "created_at",
    "created_by",
)


class CancelledJournalEntry(Base):
    """A journalpost whose registration was undone (Noark journalstatus "Utgår"): its number is never given again
    and the journals list it, without documents. The mail went back to the review queue and may be registered
    again with a new number, so one mail can have several cancelled entries beside its one journal entry.
    Migration 0009."""

    __tablename__ = "cancelled_journal_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[str] = mapped_column(String(36), unique=True)  # the cancelled entry's own
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake_records.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    journal_year: Mapped[int] = mapped_column(Integer)
    journal_sequence: Mapped[int] = mapped_column(Integer)
    document_number: Mapped[int] = mapped_column(Integer)
    journal_date: Mapped[date] = mapped_column(Date)
    received_at: Mapped[datetime]
    entry_type: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    correspondent_role: Mapped[str] = mapped_column(String(32))
    correspondent_name: Mapped[str | None] = mapped_column(Text)
    correspondent_email: Mapped[str | None] = mapped_column(String(512))
    correspondent_is_private_person: Mapped[bool | None] = mapped_column(Boolean)
    on_time: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    cancelled_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_by: Mapped[str] = mapped_column(String(128))

    case: Mapped[Case] = relationship()
    intake: Mapped[IntakeRecord] = relationship()

    __table_args__ = (
        UniqueConstraint("journal_year", "journal_sequence", name="uq_cancelled_journal_number"),
        UniqueConstraint("case_id", "document_number", name="uq_cancelled_case_document_number"),
    )

    @classmethod
    def of(cls, entry: JournalEntry, by: str) -> CancelledJournalEntry:
        """The entry as cancelled, with everything the journals show of it."""
        return cls(**{name: getattr(entry, name) for name in _CANCELLED_COPIED}, cancelled_by=by)

    @property
    def journal_number(self) -> str:
        return f"{self.case.year}/{self.case.sequence}-{self.document_number}"


class Document(Base):
    """dokumentbeskrivelse + dokumentobjekt (one version, one variant: the file as received)."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_system_id)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake_records.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # dokumentnummer within the mail, 1-based
    role: Mapped[str] = mapped_column(String(16))  # main | attachment  (Hoveddokument | Vedlegg)
    kind: Mapped[str] = mapped_column(String(16), default="file")  # file | body (the mail text as a document)
    title: Mapped[str] = mapped_column(Text)
    filename: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    storage_path: Mapped[str] = mapped_column(String(255))
    is_form: Mapped[bool] = mapped_column(Boolean, default=False)
    depth: Mapped[int] = mapped_column(Integer, default=0)  # 1+ = inside a forwarded message

    intake: Mapped[IntakeRecord] = relationship(back_populates="documents")

    __table_args__ = (UniqueConstraint("intake_id", "number", name="uq_document_number"),)


class FormResultRow(Base):
    """The parsed form of a registered response (parsers.forms.FormResult as JSON)."""

    __tablename__ = "form_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake_records.id"), unique=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    profile: Mapped[str] = mapped_column(String(128))
    form_status: Mapped[str] = mapped_column(String(16), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    parsed_at: Mapped[datetime] = mapped_column(default=utcnow)

    intake: Mapped[IntakeRecord] = relationship(back_populates="form")
    answers: Mapped[list[FormAnswer]] = relationship(
        back_populates="form_result", order_by="FormAnswer.position", cascade="all, delete-orphan"
    )


class FieldCorrection(Base):
    """A staff correction of a parsed field; the parsed value stays in form_results."""

    __tablename__ = "field_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake_records.id"), index=True)
    field: Mapped[str] = mapped_column(String(64))
    parsed_value: Mapped[Any] = mapped_column(JSON)
    corrected_value: Mapped[Any] = mapped_column(JSON)
    corrected_by: Mapped[str] = mapped_column(String(128))
    corrected_at: Mapped[datetime] = mapped_column(default=utcnow)


class Receipt(Base):
    """Outbox row for the automatic receipt (kvittering), written in the registering transaction."""

    __tablename__ = "receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake_records.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    to_address: Mapped[str | None] = mapped_column(String(512), index=True)
    reason: Mapped[str | None] = mapped_column(Text)  # why suppressed / failed / bounced
    message_id: Mapped[str | None] = mapped_column(String(998), unique=True)
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    smtp_response: Mapped[str | None] = mapped_column(Text)
    bounced_at: Mapped[datetime | None]
    bounce_intake_id: Mapped[int | None] = mapped_column(ForeignKey("intake_records.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    intake: Mapped[IntakeRecord] = relationship(back_populates="receipt", foreign_keys=[intake_id])


class PollRun(Base):
    """One worker cycle, for status, the dashboard and metrics."""

    __tablename__ = "poll_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_key: Mapped[str] = mapped_column(String(512))
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # archivist | reader
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditEvent(Base):
    """Every staff action: who, when, what, before and after."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    intake_id: Mapped[int | None] = mapped_column(ForeignKey("intake_records.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    note: Mapped[str | None] = mapped_column(Text)


class Sequence(Base):
    """Named counters (journal sequence per year) incremented atomically."""

    __tablename__ = "sequences"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


Index("ix_intake_case_status", IntakeRecord.case_id, IntakeRecord.status)
# Migration 0002: the receipts rate limit compares lower(to_address); pending IMAP moves are the few unmoved rows.
Index("ix_receipts_to_address_lower", func.lower(Receipt.to_address))
Index(
    "ix_mail_locations_pending_move",
    MailLocation.source_key,
    MailLocation.uidvalidity,
    sqlite_where=MailLocation.moved_at.is_(None),
    postgresql_where=MailLocation.moved_at.is_(None),
)


# Migration 0005: workers and the leases through which each mailbox is read by exactly one of them.
class Worker(Base):
    """One running worker process: its last heartbeat, and what its registering transactions did."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime] = mapped_column(index=True)
    stopped_at: Mapped[datetime | None]
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)  # registering transactions the fence refused


class MailboxLease(Base):
    """Who reads a mailbox now. `token` grows with every grant; a registering transaction checks it (fencing)."""

    __tablename__ = "mailbox_leases"

    mailbox: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(64))
    token: Mapped[int] = mapped_column(BigInteger, default=0)
    acquired_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]


class LeaseGrant(Base):
    """Every grant of a lease: who took which mailbox when, from whom, and its last registering commit (which
    must come before the next grant's acquired_at: the fencing guarantee, checkable afterwards)."""

    __tablename__ = "lease_grants"
    __table_args__ = (UniqueConstraint("mailbox", "token", name="uq_lease_grants_mailbox_token"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(64), index=True)
    token: Mapped[int] = mapped_column(BigInteger)
    worker_id: Mapped[str] = mapped_column(String(64))
    previous_holder: Mapped[str | None] = mapped_column(String(64))
    previous_expired_at: Mapped[datetime | None]
    acquired_at: Mapped[datetime]
    commits: Mapped[int] = mapped_column(BigInteger, default=0)  # registering transactions that passed the fence
    last_commit_at: Mapped[datetime | None]


# Migration 0005: documents in the case database (`[storage] backend = "database"`), reachable from every host.
class StoredFile(Base):
    """A complete stored file (its chunks are all written when this row exists), keyed like the file store."""

    __tablename__ = "stored_files"

    relative_path: Mapped[str] = mapped_column(String(255), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    chunks: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredFileChunk(Base):
    """One piece (at most 1 MiB) of a stored file, so no file is ever held whole in one value."""

    __tablename__ = "stored_file_chunks"

    relative_path: Mapped[str] = mapped_column(String(255), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class FormAnswer(Base):
    """One field of a parsed form (parsers.forms.answers.FieldAnswer): the generic, per-field result.

    The parsed value as read; staff corrections live in field_corrections (migration 0003)."""

    __tablename__ = "form_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    form_result_id: Mapped[int] = mapped_column(ForeignKey("form_results.id"), index=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake_records.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # form order
    key: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))  # text | choice | matrix
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    # The answer of a text field as plain text, for search (JSON values are stored escaped).
    text_value: Mapped[str | None] = mapped_column(Text)
    read_by: Mapped[str] = mapped_column(String(32), default="text")
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)

    form_result: Mapped[FormResultRow] = relationship(back_populates="answers")

    __table_args__ = (UniqueConstraint("form_result_id", "key", name="uq_form_answer_key"),)


# Records and privacy (migration 0004): archival versions, exemption from publication, tombstones of deleted content.


class ArchivalVersion(Base):
    """The archival format (PDF/A-2b) of one document, made once and kept: dokumentobjekt variantformat
    "Arkivformat" with its Noark 5 konvertering. status: converted | archival_as_received | failed."""

    __tablename__ = "archival_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), unique=True)
    status: Mapped[str] = mapped_column(String(32))
    source_sha256: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    storage_path: Mapped[str | None] = mapped_column(String(255))
    from_format: Mapped[str] = mapped_column(String(255))  # konvertertFraFormat
    to_format: Mapped[str | None] = mapped_column(String(255))  # konvertertTilFormat (PUID)
    format_details: Mapped[str | None] = mapped_column(Text)
    tool: Mapped[str | None] = mapped_column(Text)  # konverteringsverktoey
    error: Mapped[str | None] = mapped_column(Text)  # why the conversion or the PDF/A check failed
    converted_at: Mapped[datetime] = mapped_column(default=utcnow)
    converted_by: Mapped[str] = mapped_column(String(128), default="postmottak")


class SearchableVersion(Base):
    """A document read by OCR (a scan, a photo) as a searchable PDF: the page images with the recognised text as an
    invisible layer, stored beside the original, which stays the document (and what the Noark extract archives).
    status: made | failed (`error` says why; the mail was registered all the same). Migration 0008."""

    __tablename__ = "searchable_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    source_sha256: Mapped[str] = mapped_column(String(64))  # the original it was made from
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    storage_path: Mapped[str | None] = mapped_column(String(255))
    ocr_pages: Mapped[list[Any]] = mapped_column(JSON, default=list)  # 1-based pages that carry OCR'd text
    text: Mapped[str] = mapped_column(Text, default="")  # the OCR'd text, for search
    tool: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PublicationExemption(Base):
    """A response (document_id null) or one document exempt from publication (unntatt offentlighet), decided by
    staff with its legal basis (skjermingshjemmel) and whether the sender's name is screened too."""

    __tablename__ = "publication_exemptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake_records.id"), index=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    legal_basis: Mapped[str] = mapped_column(Text)  # "Offl. § 13 jf. fvl. § 13"
    access_code: Mapped[str] = mapped_column(String(16))  # tilgangsrestriksjon, e.g. "13", "26", "UO"
    screen_names: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_by: Mapped[str] = mapped_column(String(128))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("intake_id", "document_id", name="uq_exemption_target"),)


class ContentTombstone(Base):
    """Raw mail and attachments of a record deleted from storage (retention or erasure). Written and committed
    before any file is deleted; `completed_at` is set when every file is gone (a repair pass finishes the rest)."""

    __tablename__ = "content_tombstones"

    id: Mapped[int] = mapped_column(primary_key=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake_records.id"), unique=True)
    rule: Mapped[str] = mapped_column(String(128))  # "retention.ignored_days=30" | "privacy.erase"
    deleted_by: Mapped[str] = mapped_column(String(128))
    deleted_at: Mapped[datetime] = mapped_column(default=utcnow)
    files: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"path", "sha256", "kind"}] as they were
    completed_at: Mapped[datetime | None]


class NotificationState(Base):
    """Staff notifications: one row per incident kind ("stall", "failed_mail", "smtp_refused") and the digest.

    An incident is alerted once when it opens (then at most once per rate-limit period while it grows) and gets an
    all-clear when it ends; the digest row remembers when the last daily digest went out. Migration 0006."""

    __tablename__ = "notification_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_at: Mapped[datetime | None]
    last_sent_at: Mapped[datetime | None]
    detail: Mapped[str | None] = mapped_column(Text)  # what the last alert said (the all-clear refers to it)
    seen: Mapped[int] = mapped_column(BigInteger, default=0)  # e.g. the highest failed intake id already alerted


class NotificationOptOut(Base):
    """A staff member who asked (in the dashboard) not to get digests and alerts. Migration 0006."""

    __tablename__ = "notification_opt_outs"

    username: Mapped[str] = mapped_column(String(128), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
