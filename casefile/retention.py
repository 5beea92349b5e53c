"""Storage limitation: the raw content of mail that is not a response is deleted after a configured time.

Kinds (by the record's status and reason): `duplicate`; `unrelated` (ignored: no reference to a configured case);
`ignored` (every other ignored mail: machine mail, mail staff ignored). Registered mail, mail waiting for review
and failed mail are never touched; nor is any file another live record still uses (the store is content-addressed,
so a duplicate shares its raw file with the original).

Crash safety, per record: (1) the tombstone (who, when, which rule, the files as they were) is committed with the
record's body text cleared, (2) the files are deleted, (3) the tombstone is marked complete. A crash after (1)
leaves a record with a tombstone whose files may still exist; the next run's repair pass finishes the deletes. At
no point does a record point at a missing file without a tombstone saying why.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from postmottak.casefile import models as m
from postmottak.casefile.db import Database

UNRELATED_REASON = "no reference to a configured case"
KINDS = ("ignored", "duplicate", "unrelated")
RUN_ACTION = "retention_run"
DELETE_ACTION = "retention_delete"


class FileDeleter(Protocol):
    """The document store, either backend (casefile/storage.py, casefile/blobstore.py)."""

    def delete_if_untouched(self, relative: str, since: float) -> bool | None: ...


@dataclass
class RetentionReport:
    dry_run: bool
    candidates: Counter[str] = field(default_factory=Counter)  # kind -> records
    deleted_records: int = 0
    deleted_files: int = 0
    kept_files: int = 0  # still used by a live record, or touched recently
    repaired: int = 0  # unfinished tombstones of an earlier run completed
    record_ids: list[int] = field(default_factory=list)


def kind_of(record: m.IntakeRecord) -> str | None:
    if record.status == m.DUPLICATE:
        return "duplicate"
    if record.status == m.IGNORED:
        return "unrelated" if (record.reason or "") == UNRELATED_REASON else "ignored"
    return None


def _no_tombstone() -> Any:
    return ~exists().where(m.ContentTombstone.intake_id == m.IntakeRecord.id)


def candidates(session: Session, days: dict[str, int | None], now: datetime) -> list[tuple[m.IntakeRecord, str, int]]:
    """Records whose raw content is due for deletion: (record, kind, days of the rule)."""
    configured = {kind: value for kind, value in days.items() if value is not None}
    if not configured:
        return []
    oldest_cutoff = now - timedelta(days=min(configured.values()))
    query = (
        select(m.IntakeRecord)
        .where(
            m.IntakeRecord.status.in_([m.IGNORED, m.DUPLICATE]),
            m.IntakeRecord.created_at < oldest_cutoff,
            _no_tombstone(),
            ~exists().where(m.JournalEntry.intake_id == m.IntakeRecord.id),
        )
        .order_by(m.IntakeRecord.id)
    )
    due = []
    for record in session.scalars(query):
        kind = kind_of(record)
        if kind is None or kind not in configured:
            continue
        if record.created_at < now - timedelta(days=configured[kind]):
            due.append((record, kind, configured[kind]))
    return due


def record_files(session: Session, record: m.IntakeRecord) -> list[dict[str, str]]:
    files = [{"kind": "raw", "path": record.raw_path, "sha256": record.raw_sha256}]
    for document in record.documents:
        files.append({"kind": "document", "path": document.storage_path, "sha256": document.sha256})
    document_ids = [d.id for d in record.documents]
    derived: list[tuple[str, type[m.ArchivalVersion] | type[m.SearchableVersion]]] = [
        ("archival", m.ArchivalVersion),  # the PDF/A version made for the archive
        ("searchable", m.SearchableVersion),  # a scan's searchable PDF
    ]
    for kind, model in derived:
        if not document_ids:
            break
        query = select(model.storage_path, model.sha256).where(model.document_id.in_(document_ids))
        for path, sha256 in session.execute(query):
            if path and sha256:
                files.append({"kind": kind, "path": path, "sha256": sha256})
    return files


def path_in_use(session: Session, path: str) -> bool:
    """Is this stored file still used by a record whose content has not been deleted?"""
    live_raw = select(m.IntakeRecord.id).where(m.IntakeRecord.raw_path == path, _no_tombstone())
    live_document = (
        select(m.Document.id)
        .join(m.IntakeRecord, m.IntakeRecord.id == m.Document.intake_id)
        .where(m.Document.storage_path == path, _no_tombstone())
    )
    live_archival = (
        select(m.ArchivalVersion.id)
        .join(m.Document, m.Document.id == m.ArchivalVersion.document_id)
        .join(m.IntakeRecord, m.IntakeRecord.id == m.Document.intake_id)
        .where(m.ArchivalVersion.storage_path == path, _no_tombstone())
    )
    live_searchable = (
        select(m.SearchableVersion.id)
        .join(m.Document, m.Document.id == m.SearchableVersion.document_id)
        .join(m.IntakeRecord, m.IntakeRecord.id == m.Document.intake_id)
        .where(m.SearchableVersion.storage_path == path, _no_tombstone())
    )
    live = (live_raw, live_document, live_archival, live_searchable)
    return bool(session.scalar(select(or_(*(exists(query) for query in live)))))


def delete_files(session: Session, store: FileDeleter, files: list[dict[str, str]], started: float) -> tuple[int, int]:
    """Delete the files no live record uses, from the configured store (files or database, and the other backend's
    copy a migration left); returns (deleted, kept).

    A file written or reused (`put` touches it, in either backend) since the run started is kept: a mail being
    registered at this moment may be about to point at it."""
    deleted = kept = 0
    for path in sorted({f["path"] for f in files}):
        if path_in_use(session, path):
            kept += 1
            continue
        outcome = store.delete_if_untouched(path, started)
        if outcome is True:
            deleted += 1
        elif outcome is False:
            kept += 1
        # None: gone already (an earlier run died after deleting it)
    return deleted, kept


def complete(db: Database, store: FileDeleter, tombstone_id: int, started: float) -> tuple[int, int]:
    with db.session() as session:
        tombstone = session.get(m.ContentTombstone, tombstone_id)
        assert tombstone is not None
        deleted, kept = delete_files(session, store, list(tombstone.files), started)
        tombstone.completed_at = datetime.now(timezone.utc)
    return deleted, kept


def tombstone(
    session: Session, record: m.IntakeRecord, rule: str, actor: str, note: str | None = None
) -> m.ContentTombstone:
    """Write the tombstone and clear the body text, in the caller's transaction (commit it before deleting)."""
    row = m.ContentTombstone(intake_id=record.id, rule=rule, deleted_by=actor, files=record_files(session, record))
    session.add(row)
    record.body_text = ""
    session.add(
        m.AuditEvent(
            actor=actor,
            action=DELETE_ACTION,
            intake_id=record.id,
            case_id=record.case_id,
            before={"status": record.status, "raw_sha256": record.raw_sha256, "filer": len(row.files)},
            after={"innhold": "slettet", "regel": rule},
            note=note,
        )
    )
    session.flush()
    return row


def repair(db: Database, store: FileDeleter, started: float) -> int:
    """Finish the deletes of tombstones a crashed run left incomplete."""
    with db.session() as session:
        pending = list(session.scalars(select(m.ContentTombstone.id).where(m.ContentTombstone.completed_at.is_(None))))
    for tombstone_id in pending:
        complete(db, store, tombstone_id, started)
    return len(pending)


def run(
    db: Database,
    store: FileDeleter,
    days: dict[str, int | None],
    actor: str,
    *,
    dry_run: bool,
    now: datetime | None = None,
) -> RetentionReport:
    now = now or datetime.now(timezone.utc)
    report = RetentionReport(dry_run=dry_run)
    started = time.time()
    if not dry_run:
        report.repaired = repair(db, store, started)
    with db.session() as session:
        due = [(record.id, kind, rule_days) for record, kind, rule_days in candidates(session, days, now)]
    for _, kind, _ in due:
        report.candidates[kind] += 1
    report.record_ids = [record_id for record_id, _, _ in due]
    if dry_run:
        return report
    for record_id, kind, rule_days in due:
        with db.session() as session:
            record = session.get(m.IntakeRecord, record_id)
            if (
                record is None
                or kind_of(record) != kind
                or session.scalar(select(m.ContentTombstone.id).where(m.ContentTombstone.intake_id == record_id))
            ):
                continue  # changed since it was selected (staff registered it, another run took it)
            tombstone_id = tombstone(session, record, f"retention.{kind}_days={rule_days}", actor).id
        deleted, kept = complete(db, store, tombstone_id, started)
        report.deleted_records += 1
        report.deleted_files += deleted
        report.kept_files += kept
    with db.session() as session:
        session.add(
            m.AuditEvent(
                actor=actor,
                action=RUN_ACTION,
                after={
                    "poster": report.deleted_records,
                    "filer": report.deleted_files,
                    "beholdt": report.kept_files,
                    "reparert": report.repaired,
                    **{f"{k}_days": v for k, v in days.items()},
                },
            )
        )
    return report


@dataclass
class KindPreview:
    """What a run now would delete of one kind: the rule, how many records, the oldest one's time."""

    kind: str
    days: int | None
    count: int = 0
    oldest: datetime | None = None


def preview(session: Session, days: dict[str, int | None], now: datetime | None = None) -> list[KindPreview]:
    """The dry run for staff: per kind (in KINDS order) its rule and the records due now, with the oldest."""
    now = now or datetime.now(timezone.utc)
    rows = {kind: KindPreview(kind, days.get(kind)) for kind in KINDS}
    for record, kind, _ in candidates(session, days, now):
        row = rows[kind]
        row.count += 1
        if row.oldest is None or record.received_at < row.oldest:
            row.oldest = record.received_at
    return list(rows.values())


def last_run(session: Session) -> m.AuditEvent | None:
    return session.scalar(
        select(m.AuditEvent).where(m.AuditEvent.action == RUN_ACTION).order_by(m.AuditEvent.at.desc()).limit(1)
    )


def due(session: Session, every: timedelta, now: datetime | None = None) -> bool:
    """Has the last retention run been longer ago than `every` (or never)?"""
    now = now or datetime.now(timezone.utc)
    last = session.scalar(
        select(m.AuditEvent.at).where(m.AuditEvent.action == RUN_ACTION).order_by(m.AuditEvent.at.desc()).limit(1)
    )
    return last is None or now - last >= every
