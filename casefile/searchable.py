"""Searchable versions (PDF with the OCR'd text as an invisible layer) of scanned documents: look-ups for staff.

Made by the worker from the Tesseract run that read the document (parsers/forms/text_layer.py) and stored beside
the original, which stays the document of record (the Noark extract archives the original, never this copy).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from postmottak.casefile import models as m

MADE = "made"
FAILED = "failed"


def versions_of(session: Session, record: m.IntakeRecord) -> dict[int, m.SearchableVersion]:
    """The searchable versions of a record's documents, by document id (made or failed)."""
    ids = [document.id for document in record.documents]
    if not ids:
        return {}
    rows = session.scalars(select(m.SearchableVersion).where(m.SearchableVersion.document_id.in_(ids)))
    return {row.document_id: row for row in rows}


def version_of(session: Session, intake_id: int, document_id: int) -> m.SearchableVersion:
    """The stored searchable version of a document, only through the record it belongs to."""
    row = session.scalar(
        select(m.SearchableVersion)
        .join(m.Document, m.Document.id == m.SearchableVersion.document_id)
        .where(
            m.SearchableVersion.document_id == document_id,
            m.Document.intake_id == intake_id,
            m.SearchableVersion.status == MADE,
        )
    )
    if row is None or row.storage_path is None:
        raise LookupError(f"no searchable version of document {document_id} in intake record {intake_id}")
    return row
