"""Archival versions (PDF/A-2b) of a case's documents: made once, stored beside the originals, recorded in the
case database so every later extract carries the same bytes and the same Noark 5 konvertering.

The conversions run outside any database transaction (LibreOffice takes seconds): read what needs converting,
convert, then write the results in one short transaction. Failures are stored with their reason (shown to staff,
listed in the extract's report) and retried on the next run; they never stop the other documents or the export.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.casefile.noark5.convert import TARGET_DETAILS, TARGET_PUID, Converted, SourceFile, convert_all
from postmottak.casefile.noark5.formats import identify
from postmottak.casefile.noark5.pdfa import check_pdfa
from postmottak.casefile.storage import DocumentStore

CONVERTED = "converted"
ARCHIVAL_AS_RECEIVED = "archival_as_received"
FAILED = "failed"


@dataclass(frozen=True)
class Failure:
    journal_number: str
    document_number: int
    title: str
    error: str


@dataclass
class ArchivalSummary:
    converted: int = 0
    as_received: int = 0
    already_done: int = 0
    failures: list[Failure] = field(default_factory=list)
    extra: dict[str, Converted] = field(default_factory=dict)  # results for `extra_sources`, by key


def _case_documents(session: Session, case_number: str) -> list[tuple[m.JournalEntry, m.Document]]:
    rows = session.execute(
        select(m.JournalEntry, m.Document)
        .join(m.Case, m.Case.id == m.JournalEntry.case_id)
        .join(m.Document, m.Document.intake_id == m.JournalEntry.intake_id)
        .where(m.Case.number == case_number)
        .order_by(m.JournalEntry.journal_year, m.JournalEntry.journal_sequence, m.Document.number)
    ).all()
    return [(entry, document) for entry, document in rows]


def versions_by_document(session: Session, document_ids: list[int]) -> dict[int, m.ArchivalVersion]:
    if not document_ids:
        return {}
    rows = session.scalars(select(m.ArchivalVersion).where(m.ArchivalVersion.document_id.in_(document_ids)))
    return {row.document_id: row for row in rows}


def prepare_case(
    db: Database,
    store: DocumentStore,
    case_number: str,
    actor: str = "postmottak",
    extra_sources: Sequence[SourceFile] = (),
) -> ArchivalSummary:
    """Make the archival version of every document of the case that has none yet (or whose last try failed).

    `extra_sources` (keys must not be document ids) are converted in the same batch - one LibreOffice start-up -
    and returned in `summary.extra`; the publication uses it for its generated PDFs."""
    summary = ArchivalSummary()
    labels: dict[str, tuple[str, int, str]] = {}
    sources: list[SourceFile] = []
    as_received: dict[str, tuple[str, str]] = {}
    missing: dict[str, str] = {}
    with db.session() as session:
        pairs = _case_documents(session, case_number)
        done = versions_by_document(session, [document.id for _, document in pairs])
        for entry, document in pairs:
            existing = done.get(document.id)
            if existing is not None and existing.status != FAILED and existing.source_sha256 == document.sha256:
                summary.already_done += 1
                continue
            key = str(document.id)
            labels[key] = (entry.journal_number, document.number, document.title or document.filename or "Dokument")
            try:
                data = store.read(document.storage_path)
            except OSError:
                missing[key] = "originalfilen finnes ikke i lageret (slettet eller skadet)"
                continue
            fmt = identify(data, document.content_type)
            if fmt.is_pdf and fmt.is_archive_format and check_pdfa(data).ok:
                as_received[key] = (fmt.format, fmt.details)
                continue
            sources.append(SourceFile(key, data, document.content_type, document.filename))
    results = convert_all([*sources, *extra_sources])
    summary.extra = {source.key: results[source.key] for source in extra_sources}
    formats = {source.key: identify(source.data, source.content_type) for source in sources}
    now = datetime.now(timezone.utc)
    with db.session() as session:
        for key in labels:
            document_id = int(key)
            stored_document = session.get(m.Document, document_id)
            assert stored_document is not None
            row = session.scalar(select(m.ArchivalVersion).where(m.ArchivalVersion.document_id == document_id))
            if row is None:
                row = m.ArchivalVersion(document_id=document_id)
                session.add(row)
            row.source_sha256, row.converted_at, row.converted_by = stored_document.sha256, now, actor
            row.sha256 = row.size = row.storage_path = row.tool = row.error = None
            row.to_format = row.format_details = None
            if key in as_received:
                row.status, row.from_format = ARCHIVAL_AS_RECEIVED, as_received[key][0]
                row.to_format, row.format_details = as_received[key]
                summary.as_received += 1
                continue
            if key in missing:
                row.status, row.from_format, row.error = FAILED, stored_document.content_type[:255], missing[key]
                summary.failures.append(Failure(*labels[key], missing[key]))
                continue
            result = results[key]
            row.from_format, row.tool = formats[key].format[:255], result.tool
            if result.data is None:
                row.status, row.error = FAILED, result.error
                summary.failures.append(Failure(*labels[key], result.error or "ukjent feil"))
                continue
            digest, relative = store.put(result.data)
            row.status, row.sha256, row.size, row.storage_path = CONVERTED, digest, len(result.data), relative
            row.to_format, row.format_details = TARGET_PUID, TARGET_DETAILS
            summary.converted += 1
    return summary


def failures_for_case(session: Session, case_number: str) -> list[Failure]:
    """The documents of a case whose archival version could not be made, for staff."""
    pairs = _case_documents(session, case_number)
    versions = versions_by_document(session, [document.id for _, document in pairs])
    failures = []
    for entry, document in pairs:
        version = versions.get(document.id)
        if version is not None and version.status == FAILED:
            failures.append(
                Failure(
                    entry.journal_number,
                    document.number,
                    document.title or document.filename or "Dokument",
                    version.error or "",
                )
            )
    return failures
