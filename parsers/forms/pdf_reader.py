"""PDF -> TextLines. Text comes from pypdfium2 (fast, C); pdfplumber is used when geometry
is needed (checkboxes drawn as vector squares) and as a second, independent text backend."""

from __future__ import annotations

import ctypes
import io
import re
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .glyphs import CANONICAL_CHECKED, CANONICAL_UNCHECKED, SYMBOL_FONT_CODES, decode_symbol_char
from .text_lines import TextLine, normalise_line

if TYPE_CHECKING:
    from pdfplumber.page import Page

Backend = Literal["pdfium", "pdfplumber"]
DEFAULT_MAX_PAGES = 60


class PdfReadError(Exception):
    """The PDF cannot be read; `status` is a DocumentStatus ("encrypted", "unreadable", ...)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Char:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float = 0.0
    baseline: float = 0.0


_SPACE = Char(" ", 0, 0, 0, 0)


@dataclass(slots=True)
class PdfLine:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    first_word_width: float
    page: int
    size: float
    baseline: float

    @property
    def height(self) -> float:
        return self.size


@dataclass(slots=True)
class PdfLayout:
    lines: list[TextLine]
    page_count: int
    pages_read: int
    char_count: int
    warnings: list[str] = field(default_factory=list)


# A horizontal gap wider than this many line heights separates table cells (learning only; see learn.py).
CELL_GAP = 1.0
CELL_SEPARATOR = " \u00a6 "


def read_pdf(
    data: bytes, *, backend: Backend = "pdfium", max_pages: int = DEFAULT_MAX_PAGES, table_cells: bool = False
) -> PdfLayout:
    """The lines of a PDF. With `table_cells`, wide horizontal gaps (table columns) are kept as CELL_SEPARATOR."""
    page_count = pdf_page_count(data)
    pages_read = min(page_count, max_pages)
    cell_gap = CELL_GAP if table_cells else None
    if backend == "pdfium":
        pages = _pdfium_pages(data, pages_read, cell_gap)
    else:
        pages = _pdfplumber_pages(data, pages_read, cell_gap)
    warnings: list[str] = []
    if page_count > pages_read:
        warnings.append(f"PDF-en har {page_count} sider; bare de første {pages_read} er lest.")
    char_count = sum(len(line.text) for page_lines, _size in pages for line in page_lines)
    return PdfLayout(
        lines=_layout(pages), page_count=page_count, pages_read=pages_read, char_count=char_count, warnings=warnings
    )


def pdf_page_count(data: bytes) -> int:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise _classify_pdfium_error(exc) from None
    try:
        return len(pdf)
    finally:
        pdf.close()


def _classify_pdfium_error(exc: Exception) -> PdfReadError:
    message = str(exc)
    if "password" in message.lower():
        return PdfReadError("encrypted", "PDF-en er kryptert (passordbeskyttet) og kan ikke leses.")
    return PdfReadError("unreadable", f"PDF-en er skadet eller ufullstendig og kan ikke leses ({message}).")


# --- pdfium backend -------------------------------------------------------------------------


def _pdfium_pages(
    data: bytes, pages_read: int, cell_gap: float | None = None
) -> list[tuple[list[PdfLine], tuple[float, float]]]:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise _classify_pdfium_error(exc) from None
    result = []
    # The per-character calls are bound once and their out-parameters passed by reusable references: this loop runs
    # for every character of every page, and Python's overhead around the C calls is most of a text PDF's read time.
    count_chars = pdfium_c.FPDFText_CountChars
    get_unicode = pdfium_c.FPDFText_GetUnicode
    get_box = pdfium_c.FPDFText_GetLooseCharBox
    get_origin = pdfium_c.FPDFText_GetCharOrigin
    get_size = pdfium_c.FPDFText_GetFontSize
    get_font = pdfium_c.FPDFText_GetFontInfo
    try:
        rect = pdfium_c.FS_RECTF()
        origin_x, origin_y = ctypes.c_double(), ctypes.c_double()
        rect_ref, x_ref, y_ref = ctypes.byref(rect), ctypes.byref(origin_x), ctypes.byref(origin_y)
        font_buffer = ctypes.create_string_buffer(256)
        flags = ctypes.c_int()
        flags_ref = ctypes.byref(flags)
        symbol_codes = SYMBOL_FONT_CODES
        skipped = (0x0D, 0x0A, 0xFFFE, 0)
        for page_index in range(pages_read):
            page = pdf[page_index]
            width, height = page.get_size()
            textpage = page.get_textpage()
            raw = textpage.raw
            chars: list[Char] = []
            append = chars.append
            count = count_chars(raw)
            codes = _page_codes(raw, count)
            for i in range(count):
                code = codes[i] if codes is not None else get_unicode(raw, i)
                if code == 0xFFFE and codes is not None:
                    code = get_unicode(raw, i)  # the page text shows U+0002 (a line-end hyphen) as U+FFFE too
                if code in skipped:
                    continue
                # pdfium reports a hyphen at a line end as U+0002.
                text = "-" if code == 0x02 else chr(code)
                if text.isspace():
                    append(_SPACE)
                    continue
                if not get_box(raw, i, rect_ref):
                    continue
                if text in symbol_codes or 0xF020 <= code <= 0xF0FF:
                    n = get_font(raw, i, font_buffer, len(font_buffer), flags_ref)
                    fontname = font_buffer.raw[: max(0, n - 1)].decode("utf-8", "replace") if n else None
                    text = decode_symbol_char(text, fontname)
                get_origin(raw, i, x_ref, y_ref)
                append(
                    Char(
                        text,
                        rect.left,
                        rect.right,
                        height - rect.top,
                        height - rect.bottom,
                        get_size(raw, i),
                        height - origin_y.value,
                    )
                )
            textpage.close()
            page.close()
            result.append((_group_lines(chars, page_index, cell_gap), (width, height)))
    finally:
        pdf.close()
    return result


def _page_codes(raw: Any, count: int) -> list[int] | None:
    """Every character's code point from one call for the whole page (FPDFText_GetText), or None when the page text
    does not map one UTF-16 unit to each character (surrogate pairs): then each is asked for on its own."""
    import pypdfium2.raw as pdfium_c

    if count <= 0:
        return []
    buffer = (ctypes.c_ushort * (count + 1))()
    written = pdfium_c.FPDFText_GetText(raw, 0, count, buffer)
    if written != count + 1:
        return None
    codes = list(buffer[:count])
    if any(0xD800 <= code <= 0xDFFF for code in codes):
        return None
    return codes


# --- pdfplumber backend (with vector checkbox detection) ------------------------------------


def _pdfplumber_pages(
    data: bytes, pages_read: int, cell_gap: float | None = None
) -> list[tuple[list[PdfLine], tuple[float, float]]]:
    import pdfplumber
    from pdfminer.pdfdocument import PDFPasswordIncorrect

    result = []
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            for page_index, page in enumerate(pdf.pages[:pages_read]):
                page_height = float(page.height)
                chars = [
                    Char(
                        decode_symbol_char(c["text"], c.get("fontname")),
                        c["x0"],
                        c["x1"],
                        c["top"],
                        c["bottom"],
                        c["size"],
                        page_height - c["matrix"][5],
                    )
                    if not c["text"].isspace()
                    else _SPACE
                    for c in page.chars
                ]
                chars.extend(vector_checkbox_chars(page, chars))
                result.append((_group_lines(chars, page_index, cell_gap), (float(page.width), float(page.height))))
                page.close()
    except PDFPasswordIncorrect:
        raise PdfReadError("encrypted", "PDF-en er kryptert (passordbeskyttet) og kan ikke leses.") from None
    return result


# (x0, x1, top, bottom) of a drawn box or stroke.
_Box = tuple[float, float, float, float]


def vector_checkbox_chars(page: Page, text_chars: list[Char]) -> list[Char]:
    """Checkboxes drawn as small squares (no glyph): a synthetic ☒/☐ char per square.

    A square is ticked when another stroke (lines of an X, a tick polyline, a filled inner
    square) lies mostly inside it.
    """
    boxes: list[_Box] = []
    marks: list[_Box] = []
    for obj in list(page.rects) + list(page.curves):
        x0, x1, top, bottom = obj["x0"], obj["x1"], obj["top"], obj["bottom"]
        w, h = x1 - x0, bottom - top
        is_square = 4 <= w <= 24 and 4 <= h <= 24 and abs(w - h) <= 0.25 * max(w, h)
        closed = obj["object_type"] == "rect" or _is_closed_square_path(obj)
        if is_square and closed and not _filled_dark(obj):
            if not any(_same_box(b, (x0, x1, top, bottom)) for b in boxes):
                boxes.append((x0, x1, top, bottom))
        else:
            marks.append((x0, x1, top, bottom))
    for obj in page.lines:
        marks.append((obj["x0"], obj["x1"], obj["top"], obj["bottom"]))
    for obj in page.rects:
        if _filled_dark(obj):
            marks.append((obj["x0"], obj["x1"], obj["top"], obj["bottom"]))

    synthetic: list[Char] = []
    for x0, x1, top, bottom in boxes:
        if any(
            c.text != " " and _overlap_fraction((c.x0, c.x1, c.top, c.bottom), (x0, x1, top, bottom)) > 0.5
            for c in text_chars
        ):
            continue  # a glyph box already sits there
        size = max(x1 - x0, bottom - top)
        ticked = any(
            _overlap_fraction(mark, (x0 - 1.5, x1 + 1.5, top - 1.5, bottom + 1.5)) >= 0.6
            and max(mark[1] - mark[0], mark[3] - mark[2]) >= 0.3 * size
            and not _same_box(mark, (x0, x1, top, bottom))
            for mark in marks
        )
        synthetic.append(Char(CANONICAL_CHECKED if ticked else CANONICAL_UNCHECKED, x0, x1, top, bottom, 0.0, bottom))
    return synthetic


def _is_closed_square_path(obj: dict[str, Any]) -> bool:
    points: list[tuple[float, float]] = obj.get("pts") or []
    return len(points) >= 4 and abs(points[0][0] - points[-1][0]) < 1 and abs(points[0][1] - points[-1][1]) < 1


def _filled_dark(obj: dict[str, Any]) -> bool:
    if not obj.get("fill"):
        return False
    color = obj.get("non_stroking_color")
    if color is None:
        return True
    values: list[float] = list(color) if isinstance(color, (list, tuple)) else [color]
    if len(values) == 1:
        return values[0] < 0.5
    if len(values) == 3:
        return sum(values) / 3 < 0.5
    if len(values) == 4:
        return values[3] > 0.5
    return False


def _same_box(a: _Box, b: _Box, tolerance: float = 1.0) -> bool:
    return all(abs(p - q) <= tolerance for p, q in zip(a, b, strict=False))


def _overlap_fraction(inner: _Box, outer: _Box) -> float:
    """Share of `inner` (a box, or a flat line) that lies within `outer`."""

    def axis(i0: float, i1: float, o0: float, o1: float) -> float:
        if i1 - i0 < 0.5:  # flat along this axis: inside or not
            return 1.0 if o0 <= (i0 + i1) / 2 <= o1 else 0.0
        return max(0.0, min(i1, o1) - max(i0, o0)) / (i1 - i0)

    return axis(inner[0], inner[1], outer[0], outer[1]) * axis(inner[2], inner[3], outer[2], outer[3])


# --- shared: chars -> lines -> paragraphs ---------------------------------------------------


def _group_lines(chars: list[Char], page_index: int, cell_gap: float | None = None) -> list[PdfLine]:
    """Cluster characters into visual lines (by vertical centre) and spell each line left to right."""
    # Spaces carry no position: attach a space flag to the next real char in content order.
    marked: list[tuple[Char, bool]] = []
    pending_space = False
    for char in chars:
        if char.text == " ":
            pending_space = True
            continue
        marked.append((char, pending_space))
        pending_space = False
    if not marked:
        return []
    order = sorted(range(len(marked)), key=lambda i: (marked[i][0].top + marked[i][0].bottom) / 2)
    clusters: list[list[int]] = []
    cluster_mid = cluster_height = 0.0
    for i in order:
        c = marked[i][0]
        mid, height = (c.top + c.bottom) / 2, max(c.bottom - c.top, 1.0)
        if clusters and abs(mid - cluster_mid) <= 0.45 * max(cluster_height, height):
            clusters[-1].append(i)
        else:
            clusters.append([i])
            cluster_mid, cluster_height = mid, height
    lines: list[PdfLine] = []
    for cluster in clusters:
        cluster.sort(key=lambda i: (marked[i][0].x0, i))
        real = [marked[i][0] for i in cluster if marked[i][0].size > 0] or [marked[i][0] for i in cluster]
        size = statistics.median_low([c.size or (c.bottom - c.top) for c in real])
        baseline = statistics.median_low([c.baseline for c in real])
        height = size
        parts: list[str] = []
        previous: Char | None = None
        first_word_end: float | None = None
        for i in cluster:
            char, space_before = marked[i]
            if previous is not None:
                gap = char.x0 - previous.x1
                # A space char in the content stream counts only when it sits in a visible gap
                # (content order and visual order can differ).
                if cell_gap is not None and gap > cell_gap * height:
                    parts.append(CELL_SEPARATOR)
                    if first_word_end is None:
                        first_word_end = previous.x1
                elif gap > 0.18 * height or (space_before and gap > 0.05 * height):
                    parts.append(" ")
                    if first_word_end is None:
                        first_word_end = previous.x1
                elif (
                    gap < -0.6 * (char.x1 - char.x0) and char.text == parts[-1] and abs(gap + (char.x1 - char.x0)) < 0.5
                ):
                    continue  # duplicated char drawn twice for a fake-bold effect
            parts.append(char.text)
            previous = char
        assert previous is not None  # a cluster is never empty and its first char is always kept
        x0 = marked[cluster[0]][0].x0
        lines.append(
            PdfLine(
                text="".join(parts),
                x0=x0,
                x1=max(marked[i][0].x1 for i in cluster),
                top=min(marked[i][0].top for i in cluster),
                bottom=max(marked[i][0].bottom for i in cluster),
                first_word_width=(first_word_end if first_word_end is not None else previous.x1) - x0,
                page=page_index,
                size=size,
                baseline=baseline,
            )
        )
    return lines


_PAGE_NUMBER = re.compile(
    r"^(?:(?:side|page|s\.)\s*)?[-–—]?\s*\d{1,4}\s*[-–—]?(?:\s*(?:av|of|/)\s*\d{1,4})?$", re.IGNORECASE
)
_MARGIN_ZONE = 0.09
_PAGE_NUMBER_ZONE = 0.15


def _layout(pages: list[tuple[list[PdfLine], tuple[float, float]]]) -> list[TextLine]:
    body_pages = _drop_page_furniture(pages)
    body = [line for page_lines in body_pages for line in page_lines]
    if not body:
        return []
    wrap_pitch = _wrap_pitch_by_height(body)
    right_edge = max(line.x1 for line in body)
    page_tops = [min(line.top for line in lines) for lines in body_pages if lines]
    body_top = statistics.median(page_tops) if page_tops else 0.0

    out: list[TextLine] = []
    previous: PdfLine | None = None
    for line in body:
        text = normalise_line(line.text)
        if not text:
            continue
        if previous is None:
            paragraph = True
        elif line.page == previous.page:
            pitch = line.baseline - previous.baseline
            expected = wrap_pitch.get(_height_key(previous), 1.2 * previous.height)
            paragraph = pitch > 1.3 * expected
        else:
            # Across a page break: a paragraph ends there when the next line's first word would
            # have fitted on the last line, or the new page starts with blank space.
            space = 0.3 * line.height
            fits = previous.x1 + space + line.first_word_width < right_edge - 0.5 * line.height
            blank_at_top = line.top - body_top > 0.9 * line.height
            paragraph = fits or blank_at_top
        out.append(TextLine(text=text, paragraph_start=paragraph, page=line.page))
        previous = line
    return out


def _height_key(line: PdfLine) -> float:
    return round(line.height * 2) / 2


def _wrap_pitch_by_height(lines: list[PdfLine]) -> dict[float, float]:
    """The smallest plausible baseline-to-baseline distance per line height: the pitch of wrapped lines."""
    pitches: dict[float, list[float]] = {}
    for a, b in zip(lines, lines[1:], strict=False):
        if a.page != b.page or _height_key(a) != _height_key(b):
            continue
        pitch = b.baseline - a.baseline
        if pitch >= 0.8 * a.height:
            pitches.setdefault(_height_key(a), []).append(pitch)
    result = {}
    for key, values in pitches.items():
        values.sort()
        # The low quartile rather than the minimum: robust to one odd pair.
        result[key] = values[len(values) // 4] if len(values) >= 8 else values[0]
    return result


def _drop_page_furniture(pages: list[tuple[list[PdfLine], tuple[float, float]]]) -> list[list[PdfLine]]:
    """Remove page headers, footers and page numbers: page-number lines near the top or bottom
    edge, and lines in the margin zones that repeat (digits ignored) on several pages."""

    def key(line: PdfLine) -> str:
        return re.sub(r"\d+", "#", normalise_line(line.text).lower())

    def in_zone(line: PdfLine, size: tuple[float, float], zone: float) -> bool:
        height = size[1]
        return line.bottom < zone * height or line.top > (1 - zone) * height

    repeat_counts: dict[str, int] = {}
    for lines, size in pages:
        for text in {key(line) for line in lines if in_zone(line, size, _MARGIN_ZONE)}:
            repeat_counts[text] = repeat_counts.get(text, 0) + 1
    result = []
    for lines, size in pages:
        kept = []
        for line in lines:
            text = normalise_line(line.text)
            if in_zone(line, size, _PAGE_NUMBER_ZONE) and _PAGE_NUMBER.match(text):
                continue
            if len(pages) > 1 and in_zone(line, size, _MARGIN_ZONE) and repeat_counts.get(key(line), 0) >= 2:
                continue
            kept.append(line)
        result.append(kept)
    return result


# --- for readers that build the same pages another way (OCR of scanned pages) -----------------


def pdf_pages(data: bytes, pages_read: int) -> list[tuple[list[PdfLine], tuple[float, float]]]:
    """Per page: its visual lines and its size in points (pdfium text)."""
    return _pdfium_pages(data, pages_read)


def layout_pages(pages: list[tuple[list[PdfLine], tuple[float, float]]]) -> list[TextLine]:
    """Page furniture dropped, paragraphs and page breaks decided: the document's TextLines."""
    return _layout(pages)
