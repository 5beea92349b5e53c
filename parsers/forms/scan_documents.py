"""OCR at the document level: which pages need it, and what comes back when Tesseract is missing.

Used by documents.read_document only where a page has no usable text: image-only pages of a PDF
(a scanner's output, or scanned pages inside a born-digital PDF) and image attachments that look
like a page. Born-digital pages are never OCR'd.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ocr import OcrUnavailable, tesseract_available
from .pdf_reader import layout_pages, pdf_pages
from .profile import FormProfile
from .scan_reader import ScanReading, image_scanned_pages, pdf_image_only_pages, pdf_scanned_pages, read_scanned_pages
from .text_layer import TextLayer, build_text_layer
from .text_lines import TextLine

# Tesseract may spend this long (wall time) on one page before it is stopped; the form worker's own limit
# still bounds the whole document.
PAGE_TIMEOUT_S = 120.0

MANUAL_ENTRY = (
    "tekstgjenkjenning (OCR) er ikke installert på serveren, så skannede svar må føres inn manuelt "
    "(scans will need manual entry: Tesseract is not installed)."
)


@dataclass
class ScannedText:
    status: str  # "ok" or a DocumentStatus
    lines: list[TextLine] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reading: ScanReading | None = None
    # Tesseract is missing: the document is a scan nobody can read here.
    needs_manual_entry: bool = False
    # The searchable PDF made from the same Tesseract run (or why it could not be made).
    text_layer: TextLayer | None = None


def ocr_pdf(
    data: bytes,
    name: str,
    text_lines: list[TextLine],
    page_count: int,
    pages_read: int,
    min_chars: int,
    profile: FormProfile,
    chars_by_page: dict[int, int],
) -> ScannedText | None:
    """OCR of a PDF's image-only pages merged with its text pages; None when every page has text.
    `chars_by_page`: the visible characters of `text_lines` on each page (visible_chars_by_page)."""
    try:
        scanned = pdf_image_only_pages(data, chars_by_page, pages_read, min_chars)
    except Exception:  # pdfium could read the text but not the page objects: keep the text reading
        return None
    if not scanned:
        return None
    some_text = sum(chars_by_page.values()) >= min_chars
    if not tesseract_available():
        return _unavailable(name, text_lines, some_text)
    try:
        pages = pdf_scanned_pages(data, scanned, timeout_s=PAGE_TIMEOUT_S, searchable=True)
    except OcrUnavailable:
        return _unavailable(name, text_lines, some_text)
    except RuntimeError as exc:  # pytesseract: the page's time limit
        return ScannedText("timeout", text_lines, [f"{name}: tekstgjenkjenningen (OCR) tok for lang tid ({exc})."])
    by_page, reading = read_scanned_pages(pages, profile)
    merged = [by_page.get(index, page) for index, page in enumerate(pdf_pages(data, pages_read))]
    return ScannedText("ok", layout_pages(merged), [], reading, text_layer=build_text_layer(pages, data))


def visible_chars_by_page(lines: list[TextLine]) -> dict[int, int]:
    """Per page, the characters of its lines that are not whitespace."""
    chars_by_page: dict[int, int] = {}
    for line in lines:
        # str.split() splits at exactly the characters str.isspace() is true of.
        chars_by_page[line.page] = chars_by_page.get(line.page, 0) + len("".join(line.text.split()))
    return chars_by_page


def ocr_image(data: bytes, name: str, max_pages: int, profile: FormProfile) -> ScannedText | None:
    """OCR of an image attachment that looks like a page (or pages, TIFF); None for a logo or the like."""
    from .scan_reader import ImageReadError, open_page_images

    try:
        if not open_page_images(data, max_pages):
            return None
    except ImageReadError as exc:
        return ScannedText(exc.status, warnings=[f"{name}: {exc.message}"])
    if not tesseract_available():
        return _unavailable(name, [], False)
    try:
        pages = image_scanned_pages(data, max_pages, timeout_s=PAGE_TIMEOUT_S, searchable=True)
    except OcrUnavailable:
        return _unavailable(name, [], False)
    except RuntimeError as exc:
        return ScannedText("timeout", warnings=[f"{name}: tekstgjenkjenningen (OCR) tok for lang tid ({exc})."])
    by_page, reading = read_scanned_pages(pages, profile)
    lines = layout_pages([by_page[index] for index in sorted(by_page)])
    return ScannedText("ok", lines, [], reading, text_layer=build_text_layer(pages))


def _unavailable(name: str, text_lines: list[TextLine], some_text: bool) -> ScannedText:
    if some_text:  # a mixed PDF: its text pages still count
        warning = f"{name} har skannede sider uten tekstlag; {MANUAL_ENTRY}"
        return ScannedText("ok", text_lines, [warning], needs_manual_entry=True)
    warning = f"{name} er skannet (bilde uten tekstlag); {MANUAL_ENTRY}"
    return ScannedText("unreadable", text_lines, [warning], needs_manual_entry=True)
