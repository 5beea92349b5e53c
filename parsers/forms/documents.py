"""Documents in, text and form out: format sniffing, text extraction, form parsing, and
choosing which of a mail's documents is the form. Pure and in-process (see
intake/form_worker.py for the isolated runner)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from pydantic import BaseModel, Field

from .controls import FormControl
from .docx_reader import DocxReadError, is_docx, read_docx
from .form_parser import count_labels, parse_text
from .models import DocumentInput, DocumentsAnalysis, FormResult, SourceFormat
from .pdf_reader import DEFAULT_MAX_PAGES, PdfReadError, read_pdf
from .profile import FormProfile, resolve_profile
from .scan_confidence import mark_ocr_fields
from .scan_documents import ScannedText, ocr_image, ocr_pdf, visible_chars_by_page
from .scan_reader import ScanReading, is_image
from .text_layer import TextLayer
from .text_lines import TextLine, lines_to_text, normalise_line

MAX_DOCUMENT_BYTES = 40 * 1024 * 1024
DEFAULT_MAX_CHARS = 200_000
# Fewer visible characters than this on a PDF's pages means no text layer (a scan).
MIN_TEXT_CHARS = 20

_TEXT_SUFFIXES = (".txt", ".text", ".csv", ".md")


@dataclass
class ReadDocument:
    format: str  # "pdf" | "docx" | "text" | "empty" | "unknown"
    status: str  # "ok" or a DocumentStatus for a failure
    lines: list[TextLine] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    page_count: int | None = None
    # Set when pages were read by OCR: the evidence for per-field confidence.
    ocr: ScanReading | None = None
    # A scan that cannot be read here (no OCR installed): staff type it in.
    needs_manual_entry: bool = False
    # Word content controls, PDF form fields and Word table cells, placed in the lines' text.
    controls: list[FormControl] = field(default_factory=list)
    # Pages read by OCR: the searchable PDF made from the same run (or why it could not be made).
    text_layer: TextLayer | None = None


def sniff_format(data: bytes, filename: str | None = None, content_type: str | None = None) -> str:
    if not data:
        return "empty"
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if is_docx(data):
        return "docx"
    if is_image(data):
        return "image"
    name = (filename or "").lower()
    if (content_type or "").lower().startswith("text/plain") or name.endswith(_TEXT_SUFFIXES):
        return "text"
    return "unknown"


def read_document(
    data: bytes, filename: str | None = None, content_type: str | None = None, profile: FormProfile | None = None
) -> ReadDocument:
    """Lines of the document; pages without usable text are read by OCR (labels located with `profile`)."""
    kind = sniff_format(data, filename, content_type)
    name = filename or "dokumentet"
    if kind == "empty":
        return ReadDocument(kind, "empty", warnings=[f"{name} er tomt (0 byte)."])
    if len(data) > MAX_DOCUMENT_BYTES:
        return ReadDocument(
            kind, "too_large", warnings=[f"{name} er for stort ({len(data) // (1024 * 1024)} MB) til å leses."]
        )
    controls: list[FormControl] = []
    if kind == "pdf":
        try:
            layout = read_pdf(data, controls=controls)
        except PdfReadError as exc:
            return ReadDocument(kind, exc.status, warnings=[f"{name}: {exc.message}"])
        warnings = [f"{name}: {w}" for w in layout.warnings]
        chars_by_page = visible_chars_by_page(layout.lines)
        scanned = ocr_pdf(
            data,
            name,
            layout.lines,
            layout.page_count,
            layout.pages_read,
            MIN_TEXT_CHARS,
            resolve_profile(profile),
            chars_by_page,
        )
        if scanned is not None:
            return _scanned_document(kind, scanned, warnings, layout.page_count)
        visible = sum(chars_by_page.values())
        if visible < MIN_TEXT_CHARS and layout.page_count > 0:
            warnings.append(f"{name} har ikke noe tekstlag (skannet bilde?) og kan ikke leses maskinelt.")
            return ReadDocument(kind, "unreadable", layout.lines, warnings, layout.page_count)
        return ReadDocument(kind, "ok", layout.lines, warnings, layout.page_count, controls=controls)
    if kind == "docx":
        try:
            return ReadDocument(kind, "ok", read_docx(data, controls=controls), controls=controls)
        except DocxReadError as exc:
            return ReadDocument(kind, exc.status, warnings=[f"{name}: {exc.message}"])
    if kind == "text":
        return ReadDocument(kind, "ok", _text_lines(data.decode("utf-8", errors="replace")))
    if kind == "image":
        scanned = ocr_image(data, name, DEFAULT_MAX_PAGES, resolve_profile(profile))
        if scanned is None:  # a logo, a signature: not a page
            return ReadDocument(kind, "unsupported")
        return _scanned_document(kind, scanned, [], None)
    lowered = (filename or "").lower()
    if lowered.endswith(".pdf"):
        return ReadDocument(kind, "unreadable", warnings=[f"{name} heter .pdf, men er ikke en PDF."])
    if lowered.endswith(".docx"):
        return ReadDocument(kind, "unreadable", warnings=[f"{name} heter .docx, men er ikke en Word-fil."])
    return ReadDocument(kind, "unsupported")


def _scanned_document(kind: str, scanned: ScannedText, warnings: list[str], page_count: int | None) -> ReadDocument:
    return ReadDocument(
        kind,
        scanned.status,
        scanned.lines,
        warnings + scanned.warnings,
        page_count,
        scanned.reading,
        scanned.needs_manual_entry,
        text_layer=scanned.text_layer,
    )


def _text_lines(text: str) -> list[TextLine]:
    lines: list[TextLine] = []
    blank_before = True
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = normalise_line(raw)
        if not line:
            blank_before = True
            continue
        lines.append(TextLine(line, paragraph_start=blank_before))
        blank_before = False
    return lines


def extract_text(data: bytes, filename: str | None = None, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Plain text of a PDF/DOCX/text attachment ("" when it has none or cannot be read)."""
    document = read_document(data, filename)
    return lines_to_text(document.lines)[:max_chars]


def parse_form(data: bytes, filename: str | None = None, profile: FormProfile | str | None = None) -> FormResult:
    """Parse one document as the form. Pure, in-process; never raises on bad input."""
    resolved = resolve_profile(profile)
    document = read_document(data, filename, profile=resolved)
    return form_from_document(document, data, resolved)


def form_from_document(document: ReadDocument, data: bytes, profile: FormProfile) -> FormResult:
    source: SourceFormat = (
        cast(SourceFormat, document.format) if document.format in ("pdf", "docx", "text") else "unknown"
    )
    if document.status != "ok":
        warnings = document.warnings or [f"Dokumentet kan ikke leses ({document.status})."]
        return FormResult.of_profile(
            profile,
            form_status="unreadable",
            profile=profile.name,
            warnings=warnings,
            warning_codes=[f"document.{document.status}"] * len(warnings),
            source_format=source,
            page_count=document.page_count,
        )
    outcome = parse_text(lines_to_text(document.lines), profile, controls=document.controls)
    if document.format == "pdf" and outcome.options_without_glyph and document.ocr is None:
        # Labels without glyphs: the boxes may be drawn as vector squares; read the PDF again with them.
        try:
            cells: list[FormControl] = []
            lines = read_pdf(data, controls=cells, vector_boxes=True).lines
            vector = parse_text(lines_to_text(lines), profile, checkbox_read_by="vector_box", controls=cells)
        except Exception:  # the fast read succeeded; keep its result
            vector = None
        if vector is not None and vector.options_without_glyph < outcome.options_without_glyph:
            outcome = vector
    result = outcome.result
    if document.ocr is not None:
        result = mark_ocr_fields(result, document.ocr, profile)
    extra_warnings = [w for w in document.warnings]
    codes = ["document.note"] * len(extra_warnings)
    if document.text_layer is not None and document.text_layer.error:
        extra_warnings.append(f"Søkbar PDF (tekstlag) kunne ikke lages: {document.text_layer.error}")
        codes.append("ocr.text_layer_failed")
    return result.model_copy(
        update={
            "warnings": extra_warnings + result.warnings,
            "warning_codes": codes + result.warning_codes,
            "source_format": source,
            "page_count": document.page_count,
        }
    )


class SingleDocumentAnalysis(BaseModel):
    """What one document contributes to a DocumentsAnalysis (the unit the isolated runner computes)."""

    text: str = ""
    status: str = "other"
    warnings: list[str] = Field(default_factory=list)
    labels_found: int = 0
    form: FormResult | None = None
    text_layer: TextLayer | None = None  # pages read by OCR: the searchable PDF


def analyse_single_document(
    doc: DocumentInput, profile: FormProfile | str | None = None, max_chars: int = DEFAULT_MAX_CHARS
) -> SingleDocumentAnalysis:
    resolved = resolve_profile(profile)
    filename, content_type, data = doc
    document = read_document(data, filename, content_type, resolved)
    text = lines_to_text(document.lines)
    if document.status != "ok":
        # A scan nobody can read here is shown to staff as an unreadable form to type in.
        manual = form_from_document(document, data, resolved) if document.needs_manual_entry else None
        return SingleDocumentAnalysis(
            text=text[:max_chars], status=document.status, warnings=document.warnings, form=manual
        )
    if document.format == "unknown":
        return SingleDocumentAnalysis(status="unsupported")
    labels = count_labels(text, resolved)
    form = form_from_document(document, data, resolved) if labels >= resolved.min_labels_for_form else None
    return SingleDocumentAnalysis(
        text=text[:max_chars],
        status="other",
        warnings=document.warnings,
        labels_found=labels,
        form=form,
        text_layer=document.text_layer,
    )


def combine_analyses(singles: list[SingleDocumentAnalysis], filenames: list[str | None]) -> DocumentsAnalysis:
    """Pick the form among the documents: the one with the most of the profile's labels."""
    candidates = [
        i for i, single in enumerate(singles) if single.form is not None and single.form.form_status != "not_a_form"
    ]
    # A scan left for manual entry (an unreadable form) is the form only when nothing readable is.
    readable = [i for i in candidates if (form := singles[i].form) is not None and form.form_status != "unreadable"]
    form_index = max(readable or candidates, key=lambda i: (singles[i].labels_found, -i)) if candidates else None
    statuses = [single.status for single in singles]
    warnings: list[str] = []
    if form_index is not None:
        statuses[form_index] = "form"
        others = [i for i in readable if i != form_index]
        if others:
            names = ", ".join(filenames[i] or f"dokument {i + 1}" for i in others)
            warnings.append(
                f"Flere dokumenter ser ut som skjemaet; brukte {filenames[form_index] or f'dokument {form_index + 1}'}, ikke {names}."
            )
    elif any(status not in ("other", "unsupported") for status in statuses):
        warnings.append("Fant ikke skjemaet; minst ett vedlegg kunne ikke leses.")
    return DocumentsAnalysis(
        texts=[single.text for single in singles],
        form_index=form_index,
        form=singles[form_index].form if form_index is not None else None,
        document_statuses=statuses,
        document_warnings=[single.warnings for single in singles],
        warnings=warnings,
        text_layers=[single.text_layer for single in singles],
    )


def analyse_documents(docs: list[DocumentInput], profile: str | FormProfile | None = None) -> DocumentsAnalysis:
    """Text of every document, and the form among them. Pure, in-process."""
    docs = [DocumentInput(*doc) for doc in docs]
    singles = [analyse_single_document(doc, profile) for doc in docs]
    return combine_analyses(singles, [doc.filename for doc in docs])
