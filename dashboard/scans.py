"""Scanned responses: each OCR'd page as an image beside the fields read from it, and the searchable PDF.

The page images are rendered here from the searchable version (the PDF the worker made with Tesseract, whose
scanned pages are a plain image each), never from the sender's original file, and only its OCR'd pages: no
untrusted PDF is rendered in the web process. The searchable PDF is a document download like the others (in the
audit trail).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from postmottak.casefile import models as m
from postmottak.casefile import review, searchable
from postmottak.dashboard.downloads import disposition, read_stored
from postmottak.dashboard.security import StaffUser, current_user

router = APIRouter()

# Width (pixels) of a rendered page: legible on screen, a few hundred kB as PNG.
PAGE_WIDTH_PX = 1000
# Codes the form reader writes per OCR'd field (parsers/forms/scan_confidence.py): ocr.field:<key>:<confidence>.
FIELD_CODES = ("ocr.field:", "ocr.low_confidence:")


@dataclass
class OcrField:
    key: str
    label: str
    confidence: float
    low: bool


@dataclass
class ScanPages:
    """What the intake detail page shows of one scanned document."""

    document: m.Document
    version: m.SearchableVersion
    pages: list[int]  # 1-based
    fields: list[OcrField] = field(default_factory=list)


def scan_pages(session: Session, record: m.IntakeRecord, labels: dict[str, str]) -> list[ScanPages]:
    """The record's documents read by OCR that have a searchable version, the form's OCR'd fields with the form."""
    versions = searchable.versions_of(session, record)
    form_document = record.form.document_id if record.form is not None else None
    result = []
    for document in record.documents:
        version = versions.get(document.id)
        if version is None or version.status != searchable.MADE or not version.storage_path:
            continue
        fields = ocr_fields(record.form.data, labels) if document.id == form_document and record.form else []
        result.append(ScanPages(document, version, [int(page) for page in version.ocr_pages], fields))
    return result


def ocr_fields(form_data: dict[str, Any], labels: dict[str, str]) -> list[OcrField]:
    """The form's fields read by OCR with their confidence (0..100), in form order."""
    found: dict[str, OcrField] = {}
    for code in form_data.get("warning_codes") or []:
        if not isinstance(code, str) or not code.startswith(FIELD_CODES):
            continue
        kind, key, value = code.rsplit(":", 2)[0], code.split(":")[1], code.rsplit(":", 1)[1]
        try:
            confidence = float(value)
        except ValueError:
            continue
        found[key] = OcrField(key, labels.get(key, key), confidence, kind == "ocr.low_confidence")
    order = {key: position for position, key in enumerate(labels)}
    return sorted(found.values(), key=lambda item: order.get(item.key, len(order)))


def _version(request: Request, intake_id: int, document_id: int) -> tuple[m.SearchableVersion, m.Document]:
    with request.app.state.db.session() as session:
        try:
            version = searchable.version_of(session, intake_id, document_id)
            document = review.document_of(session, intake_id, document_id)
        except LookupError:
            raise HTTPException(404) from None
        session.expunge(version)
        session.expunge(document)
        return version, document


@router.get("/intake/{intake_id}/documents/{document_id}/searchable.pdf")
def searchable_pdf(
    request: Request, intake_id: int, document_id: int, user: StaffUser = Depends(current_user)
) -> Response:

    version, document = _version(request, intake_id, document_id)
    assert version.storage_path is not None
    data = read_stored(request, version.storage_path)
    name = (document.filename or document.title or "dokument").rsplit(".", 1)[0] + " (søkbar).pdf"
    with request.app.state.db.session() as session:
        review.record_access(
            session,
            actor=user.username,
            action="download",
            intake_id=intake_id,
            note=f"søkbar PDF (OCR) av dokument {document_id}: {document.filename or document.title}",
        )
    return Response(
        data, media_type="application/pdf", headers={"Content-Disposition": disposition("attachment", name)}
    )


@router.get("/intake/{intake_id}/documents/{document_id}/pages/{page}.png")
def page_image(
    request: Request, intake_id: int, document_id: int, page: int, user: StaffUser = Depends(current_user)
) -> Response:
    version, _document = _version(request, intake_id, document_id)
    if page not in [int(p) for p in version.ocr_pages]:
        raise HTTPException(404)
    assert version.storage_path is not None
    png = render_page(read_stored(request, version.storage_path), page - 1)
    if png is None:
        raise HTTPException(404)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=600"})


def render_page(pdf: bytes, index: int, width_px: int = PAGE_WIDTH_PX) -> bytes | None:
    """One page of a PDF as a greyscale PNG `width_px` wide (None when the page does not exist)."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        if not 0 <= index < len(document):
            return None
        page = document[index]
        width_pt = page.get_width() or 1.0
        image = page.render(scale=min(4.0, width_px / width_pt), grayscale=True).to_pil()
        page.close()
    finally:
        document.close()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()
