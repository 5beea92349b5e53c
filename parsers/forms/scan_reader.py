"""Scanned pages -> the lines the PDF text reader produces, so the form parser reads a scan like
a born-digital form.

Per page: OCR words (ocr.py) are grouped into lines; the profile's labels are located fuzzily
(label_locator.py) and written back in their printed spelling, so the parser's exact label
patterns find them; before each option label the checkbox is read from the pixels
(scan_boxes.py) and written as ☒ or ☐, as a PDF's glyph would be; placeholders are written in
their printed spelling, so the parser removes them. Lines become `PdfLine`s in points, and the
PDF reader's own layout step (page furniture, paragraphs, page breaks) makes the `TextLine`s.

What OCR contributes is kept in a `ScanReading` (word confidences, box confidences): the
evidence `scan_confidence.py` turns into per-field confidence after parsing.
"""

from __future__ import annotations

import io
import re
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PIL import Image, ImageOps

from .glyphs import CANONICAL_CHECKED, CANONICAL_UNCHECKED
from .label_locator import LabelMatch, find_label, line_starts, word_start
from .ocr import OcrPage, ocr_page
from .pdf_reader import PdfLine
from .profile import FormProfile, FormSection
from .scan_boxes import BoxReading, read_box_before

if TYPE_CHECKING:
    from pypdfium2 import PdfPage

# An image attachment is read only when it looks like a page: logos and signatures are not.
MIN_PAGE_SIDE_PX = 500
MIN_PAGE_PIXELS = 400_000
# Decoding more than this is refused (decompression bombs).
MAX_IMAGE_PIXELS = 80_000_000
# Assumed paper width (A4, inches) when an image says nothing of its resolution.
A4_WIDTH_INCHES = 8.27
# Words of punctuation only ("|", ".") below this confidence are specks, not text.
MIN_PUNCTUATION_CONFIDENCE = 60.0
# Lines whose height is within this share of the page's typical line height count as body text.
BODY_HEIGHT_RANGE = (0.75, 1.3)


@dataclass
class ScanReading:
    """What OCR contributed to one document."""

    pages: list[int] = field(default_factory=list)  # page indexes (0-based) read by OCR
    # The OCR words that are not printed labels, in reading order, with Tesseract's confidence (0..100).
    tokens: list[tuple[str, float]] = field(default_factory=list)
    # Field key -> the confidence (0..100) of each checkbox read from pixels for that field.
    box_confidences: dict[str, list[float]] = field(default_factory=dict)
    page_confidences: list[float] = field(default_factory=list)
    skew_degrees: list[float] = field(default_factory=list)


@dataclass
class _Item:
    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    confidence: float
    label: bool = False  # printed form text written in its printed spelling, not an answer


@dataclass
class _Edit:
    start: int
    end: int
    items: list[_Item]
    # Items left of the span (a checkbox read as letters) that go with it.
    swallow_before: set[int] = field(default_factory=set)
    drop_glued_prefix: bool = False


class _PageText:
    """OCR lines of all scanned pages as one text, each word's span known."""

    def __init__(self, pages: list[tuple[int, OcrPage]]) -> None:
        self.pages = pages
        self.lines: list[tuple[int, list[_Item]]] = []  # (position in `pages`, items)
        for position, (_index, page) in enumerate(pages):
            for items in _group_lines(page):
                self.lines.append((position, items))
        parts: list[str] = []
        self.spans: list[tuple[int, int, int, int]] = []  # (line, item, start, end)
        offset = 0
        for line_number, (_position, items) in enumerate(self.lines):
            if line_number:
                parts.append("\n")
                offset += 1
            for item_number, item in enumerate(items):
                if item_number:
                    parts.append(" ")
                    offset += 1
                parts.append(item.text)
                self.spans.append((line_number, item_number, offset, offset + len(item.text)))
                offset += len(item.text)
        self.text = "".join(parts)
        self.starts = line_starts(self.text)

    def items_in(self, start: int, end: int) -> list[int]:
        """Indexes into `spans` of the words overlapping [start, end)."""
        return [k for k, (_l, _i, s, e) in enumerate(self.spans) if s < end and e > start]

    def item(self, span_index: int) -> _Item:
        line, item, _s, _e = self.spans[span_index]
        return self.lines[line][1][item]


def _group_lines(page: OcrPage) -> list[list[_Item]]:
    """Tesseract's lines, merged where two sit at the same height (a label and its value read as
    separate blocks), top to bottom, words left to right."""
    grouped: dict[tuple[int, int, int], list[_Item]] = {}
    for word in page.words:
        if word.confidence < MIN_PUNCTUATION_CONFIDENCE and not any(c.isalnum() for c in word.text):
            continue  # a speck or a box edge read as "|", "." or "'"
        grouped.setdefault(word.line_key, []).append(
            _Item(word.text, word.x0, word.top, word.x1, word.bottom, word.confidence)
        )
    lines = sorted(grouped.values(), key=lambda items: statistics.median((i.top + i.bottom) / 2 for i in items))
    merged: list[list[_Item]] = []
    for items in lines:
        mid = statistics.median((i.top + i.bottom) / 2 for i in items)
        height = statistics.median(i.bottom - i.top for i in items)
        if merged:
            last = merged[-1]
            last_mid = statistics.median((i.top + i.bottom) / 2 for i in last)
            overlaps = any(not (i.x1 < j.x0 or j.x1 < i.x0) for i in items for j in last)
            if abs(mid - last_mid) < 0.4 * height and not overlaps:
                merged[-1] = sorted(last + items, key=lambda i: i.x0)
                continue
        merged.append(sorted(items, key=lambda i: i.x0))
    return merged


def read_scanned_pages(
    pages: list[tuple[int, OcrPage]], profile: FormProfile
) -> tuple[dict[int, tuple[list[PdfLine], tuple[float, float]]], ScanReading]:
    """OCR'd pages -> per page index, the PDF reader's (lines, page size in points); and the evidence."""
    page_text = _PageText(pages)
    reading = ScanReading(
        pages=[index for index, _page in pages],
        page_confidences=[_mean_confidence(page) for _index, page in pages],
        skew_degrees=[page.skew_degrees for _index, page in pages],
    )
    edits = _label_edits(page_text, profile, reading)
    lines = _apply_edits(page_text, edits)
    reading.tokens = [(item.text, item.confidence) for _position, items in lines for item in items if not item.label]
    result: dict[int, tuple[list[PdfLine], tuple[float, float]]] = {}
    for position, (index, page) in enumerate(pages):
        page_lines = [items for line_position, items in lines if line_position == position and items]
        result[index] = (_pdf_lines(page_lines, page, index), _page_size_points(page))
    return result, reading


def _mean_confidence(page: OcrPage) -> float:
    weights = [(len(word.text), word.confidence) for word in page.words]
    total = sum(w for w, _c in weights)
    return round(sum(w * c for w, c in weights) / total, 1) if total else 0.0


# --- labels, options, placeholders ------------------------------------------------------------


def _label_edits(page_text: _PageText, profile: FormProfile, reading: ScanReading) -> list[_Edit]:
    text, starts = page_text.text, page_text.starts
    # Pass 1: the section labels, in order; each section's options lie between its label and the next.
    found: list[tuple[FormSection, LabelMatch, str]] = []
    cursor = 0
    for section in profile.sections:
        match = find_label(text, section.label, cursor, starts=starts)
        printed = section.label
        if match is None and section.anchor:
            match = find_label(text, section.anchor, cursor, starts=starts)
            printed = section.anchor
        if match is None:
            continue
        found.append((section, match, printed))
        cursor = match.end
    edits: list[_Edit] = []
    for number, (section, match, printed) in enumerate(found):
        edits.append(_label_edit(page_text, match, printed, whole_line_junk=True))
        limit = found[number + 1][1].start if number + 1 < len(found) else len(text)
        options = list(section.options) or list(section.choices)
        key = section.field if section.options else section.choice_field
        cursor = match.end
        for option in options:
            option_match = find_label(text[:limit], option.label, cursor, at_line_start=False, starts=starts)
            if option_match is None:
                continue
            edits.append(_option_edit(page_text, option_match, option.label, key, reading))
            cursor = option_match.end
    taken = [(edit.start, edit.end) for edit in edits]
    for placeholder in profile.placeholders:
        cursor = 0
        while (match := find_label(text, placeholder, cursor, at_line_start=False, starts=starts)) is not None:
            cursor = match.end
            if any(match.start < end and match.end > start for start, end in taken):
                continue
            edits.append(_label_edit(page_text, match, placeholder, whole_line_junk=False))
            taken.append((match.start, match.end))
    return edits


def _union(items: list[_Item], text: str, confidence: float = 100.0, label: bool = True) -> _Item:
    return _Item(
        text,
        min(i.x0 for i in items),
        min(i.top for i in items),
        max(i.x1 for i in items),
        max(i.bottom for i in items),
        confidence,
        label,
    )


def _label_edit(page_text: _PageText, match: LabelMatch, printed: str, *, whole_line_junk: bool) -> _Edit:
    covered = page_text.items_in(match.start, match.end)
    edit = _Edit(match.start, match.end, [_union([page_text.item(k) for k in covered], printed)])
    if whole_line_junk:
        # Junk before a label at a line start ("|", a stray mark) would hide it from the parser.
        line = page_text.spans[covered[0]][0]
        edit.swallow_before = {k for k in range(covered[0]) if page_text.spans[k][0] == line}
        edit.drop_glued_prefix = True
    return edit


def _option_edit(page_text: _PageText, match: LabelMatch, printed: str, key: str | None, reading: ScanReading) -> _Edit:
    covered = page_text.items_in(match.start, match.end)
    first = page_text.item(covered[0])
    line_number = page_text.spans[covered[0]][0]
    position, items = page_text.lines[line_number]
    page = page_text.pages[position][1]
    height = statistics.median(i.bottom - i.top for i in items)
    glued = match.start > word_start(page_text.text, match.start)
    word_x0 = first.x0
    box = read_box_before(page.image, (int(word_x0), int(first.top), int(first.x1), int(first.bottom)), height)
    label_item = _union([page_text.item(k) for k in covered], printed)
    if box is None:
        return _Edit(match.start, match.end, [label_item])
    if key:
        reading.box_confidences.setdefault(key, []).append(round(100 * box.confidence, 1))
    mark = CANONICAL_CHECKED if box.ticked else CANONICAL_UNCHECKED
    glyph = _Item(mark, box.x0, box.top, box.x1, box.bottom, 100 * box.confidence, True)
    label_item.x0 = max(label_item.x0, box.x1 + 1)
    edit = _Edit(match.start, match.end, [glyph, label_item], drop_glued_prefix=glued)
    # Words on the line that sit on the box (the box and its tick read as letters) go with it.
    edit.swallow_before = {
        k for k in range(covered[0]) if page_text.spans[k][0] == line_number and _on_box(page_text.item(k), box)
    }
    return edit


def _on_box(item: _Item, box: BoxReading) -> bool:
    overlap = max(0.0, min(item.x1, box.x1) - max(item.x0, box.x0))
    return overlap >= 0.5 * max(1.0, min(item.x1 - item.x0, box.x1 - box.x0))


def _apply_edits(page_text: _PageText, edits: list[_Edit]) -> list[tuple[int, list[_Item]]]:
    first_of: dict[int, _Edit] = {}
    consumed: set[int] = set()
    prefix: dict[int, str] = {}
    suffix: dict[int, str] = {}
    for edit in edits:
        covered = page_text.items_in(edit.start, edit.end)
        if not covered or any(k in consumed for k in covered):
            continue
        group = sorted(set(covered) | (edit.swallow_before - consumed))
        first_of[group[0]] = edit
        consumed.update(group)
        _l, _i, start, _e = page_text.spans[covered[0]]
        if start < edit.start and not edit.drop_glued_prefix:
            prefix[covered[0]] = page_text.text[start : edit.start]
        _l, _i, _s, end = page_text.spans[covered[-1]]
        if end > edit.end and page_text.text[edit.end : end].strip():
            suffix[covered[-1]] = page_text.text[edit.end : end]
    result: list[tuple[int, list[_Item]]] = []
    span_index = 0
    for position, items in page_text.lines:
        out: list[_Item] = []
        for item in items:
            k = span_index
            span_index += 1
            if k not in consumed:
                out.append(item)
                continue
            if k in prefix:
                out.append(_Item(prefix[k], item.x0, item.top, item.x0, item.bottom, item.confidence))
            if k in first_of:
                out.extend(first_of[k].items)
            if k in suffix:
                out.append(_Item(suffix[k].strip(), item.x1, item.top, item.x1, item.bottom, item.confidence))
        result.append((position, out))
    return result


# --- lines in points, as the PDF reader makes them --------------------------------------------


def _page_size_points(page: OcrPage) -> tuple[float, float]:
    factor = 72.0 / page.dpi
    return page.image.shape[1] * factor, page.image.shape[0] * factor


def _pdf_lines(lines: list[list[_Item]], page: OcrPage, page_index: int) -> list[PdfLine]:
    if not lines:
        return []
    factor = 72.0 / page.dpi
    heights = [statistics.median(i.bottom - i.top for i in items) for items in lines]
    typical = statistics.median(heights)
    result = []
    for items, height in zip(lines, heights, strict=True):
        # One size for all body lines: the layout step compares line pitch per size, and OCR boxes
        # vary with ascenders and descenders where a PDF's font size would not.
        low, high = BODY_HEIGHT_RANGE
        size = typical if low * typical <= height <= high * typical else height
        x0 = items[0].x0
        result.append(
            PdfLine(
                text=_page_number_digits(" ".join(item.text for item in items)),
                x0=x0 * factor,
                x1=max(i.x1 for i in items) * factor,
                top=min(i.top for i in items) * factor,
                bottom=max(i.bottom for i in items) * factor,
                first_word_width=(items[0].x1 - x0) * factor,
                page=page_index,
                size=size * factor,
                baseline=statistics.median(i.bottom for i in items) * factor,
            )
        )
    return result


_PAGE_NUMBER_READ = re.compile(r"(?i)^(side|page|s\.)\s*([\dlIO|]{1,4})\s*(av|of)\s*([\dlIO|]{1,4})\W?$")
_AS_DIGIT = str.maketrans({"l": "1", "I": "1", "|": "1", "O": "0"})


def _page_number_digits(text: str) -> str:
    """ "Side l av 2" (OCR read 1 as l) -> "Side 1 av 2", so the layout step drops it as a page number."""
    match = _PAGE_NUMBER_READ.match(text)
    if match is None:
        return text
    word, number, of, total = match.groups()
    return f"{word} {number.translate(_AS_DIGIT)} {of} {total.translate(_AS_DIGIT)}"


# --- where the page images come from ----------------------------------------------------------


def pdf_scanned_pages(
    data: bytes, page_indexes: list[int], *, timeout_s: float, searchable: bool = False
) -> list[tuple[int, OcrPage]]:
    """OCR of the given pages of a PDF, each rendered at about its scan's own resolution (with `searchable`, each
    also as Tesseract's searchable PDF page)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    pages = []
    try:
        for index in page_indexes:
            page = pdf[index]
            dpi = _scan_dpi(page)
            image = page.render(scale=dpi / 72, grayscale=True).to_pil()
            page.close()
            pages.append((index, ocr_page(image, dpi, timeout_s=timeout_s, searchable=searchable)))
    finally:
        pdf.close()
    return pages


def pdf_image_only_pages(data: bytes, text_chars_by_page: dict[int, int], page_count: int, min_chars: int) -> list[int]:
    """Pages with (almost) no text that carry an image: the pages a scanner made."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    pdf = pdfium.PdfDocument(data)
    try:
        result = []
        for index in range(page_count):
            if text_chars_by_page.get(index, 0) >= min_chars:
                continue
            page = pdf[index]
            if any(True for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2)):
                result.append(index)
            page.close()
        return result
    finally:
        pdf.close()


def _scan_dpi(page: PdfPage) -> float:
    """The resolution of the largest image on the page (pixels per inch as placed), within 100..300."""
    import pypdfium2.raw as pdfium_c

    best = 0.0
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2):
        try:
            width_px, _height_px = obj.get_px_size()
            left, _bottom, right, _top = obj.get_pos()
        except Exception:
            continue
        if right - left > 1:
            best = max(best, width_px / ((right - left) / 72.0))
    return min(300.0, max(100.0, best)) if best else 300.0


IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*")


def is_image(data: bytes) -> bool:
    return data.startswith(IMAGE_SIGNATURES)


class ImageReadError(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def open_page_images(data: bytes, max_pages: int) -> list[tuple[Image.Image, float]]:
    """The pages of a JPEG/PNG/TIFF as (image, dpi); [] when the image is too small to be a page."""
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        image = Image.open(io.BytesIO(data))
        frames = []
        for frame_index in range(min(getattr(image, "n_frames", 1), max_pages)):
            image.seek(frame_index)
            frame = ImageOps.exif_transpose(image.copy())
            frames.append(frame)
    except Image.DecompressionBombError:
        raise ImageReadError("too_large", "bildet er for stort til å leses.") from None
    except (OSError, ValueError, SyntaxError, EOFError):
        return []  # a broken image is not a page anyone can read: left as an unsupported attachment
    pages = []
    for frame in frames:
        width, height = frame.size
        if min(width, height) < MIN_PAGE_SIDE_PX or width * height < MIN_PAGE_PIXELS:
            continue
        dpi = frame.info.get("dpi", (0, 0))[0] if isinstance(frame.info.get("dpi"), tuple) else 0
        if not dpi or dpi < 50 or dpi > 1200:
            dpi = min(width, height) / A4_WIDTH_INCHES
        pages.append((frame, float(dpi)))
    return pages


def image_scanned_pages(
    data: bytes, max_pages: int, *, timeout_s: float, searchable: bool = False
) -> list[tuple[int, OcrPage]]:
    images = open_page_images(data, max_pages)
    return [
        (index, ocr_page(image, dpi, timeout_s=timeout_s, searchable=searchable))
        for index, (image, dpi) in enumerate(images)
    ]
