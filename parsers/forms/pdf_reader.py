"""PDF -> TextLines. Text comes from pypdfium2 (fast, C), and so do checkboxes drawn as vector squares
(vector_boxes.py); pdfplumber's table finder reads the ruling lines of tables, and pdfplumber is a second,
independent text backend."""

from __future__ import annotations

import ctypes
import io
import math
import operator
import re
import statistics
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

from .controls import ControlKind, FormControl, choice_rendering, mark, place_controls
from .glyphs import CANONICAL_CHECKED, CANONICAL_UNCHECKED, SYMBOL_FONT_CODES, decode_symbol_char
from .text_lines import TextLine, normalise_line
from .vector_boxes import Shape, checkboxes, is_box_object, page_shapes, plumber_shapes, ruling_paths

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
    # (table, row, column) of the table cell the line stands in; None outside tables.
    cell: tuple[int, int, int] | None = None

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
    data: bytes,
    *,
    backend: Backend = "pdfium",
    max_pages: int = DEFAULT_MAX_PAGES,
    table_cells: bool = False,
    controls: list[FormControl] | None = None,
    vector_boxes: bool = False,
) -> PdfLayout:
    """The lines of a PDF. With `table_cells`, wide horizontal gaps (table columns) are kept as CELL_SEPARATOR.

    Form fields (AcroForm) are read from their values (pdfium backend): with `table_cells` (learning) every field
    is drawn into the lines as answer space, boxes or a drop-down's options; with `controls` (a list to fill)
    the fields of a filled form are drawn from their values and collected, each with its offset in the text
    (controls.place_controls). A form whose fields hold no values is read from its printed text alone.

    With `vector_boxes`, checkboxes drawn as small squares with no glyph in them are read as ☒/☐ characters (the
    pdfplumber backend always reads them)."""
    page_count = pdf_page_count(data)
    pages_read = min(page_count, max_pages)
    cell_gap = CELL_GAP if table_cells else None
    # Reading a response (not learning): text in ruled tables is read cell by cell (see tables below).
    tables = None if table_cells else _RuledTables(data, pages_read, controls)
    if backend == "pdfium":
        fields = _FormFields(controls, learning=table_cells) if (controls is not None or table_cells) else None
        pages = _pdfium_pages(data, pages_read, cell_gap, fields, tables, vector_boxes)
    else:
        pages = _pdfplumber_pages(data, pages_read, cell_gap, tables)
    warnings: list[str] = []
    if page_count > pages_read:
        warnings.append(f"PDF-en har {page_count} sider; bare de første {pages_read} er lest.")
    char_count = sum(len(line.text) for page_lines, _size in pages for line in page_lines)
    lines = _layout(pages)
    if controls is not None:
        lines = place_controls(lines, controls)
    return PdfLayout(
        lines=lines, page_count=page_count, pages_read=pages_read, char_count=char_count, warnings=warnings
    )


def pdf_page_count(data: bytes) -> int:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise _classify_pdfium_error(exc, data) from None
    try:
        return len(pdf)
    finally:
        pdf.close()


def _classify_pdfium_error(exc: Exception, data: bytes) -> PdfReadError:
    message = str(exc)
    # pdfium's last error is one value for the whole process, so the message alone is not trusted to call a file
    # encrypted: an encrypted PDF names its /Encrypt dictionary in the trailer.
    if "password" in message.lower() and b"/Encrypt" in data:
        return PdfReadError("encrypted", "PDF-en er kryptert (passordbeskyttet) og kan ikke leses.")
    return PdfReadError("unreadable", f"PDF-en er skadet eller ufullstendig og kan ikke leses ({message}).")


# --- pdfium backend -------------------------------------------------------------------------


def _pdfium_pages(
    data: bytes,
    pages_read: int,
    cell_gap: float | None = None,
    fields: _FormFields | None = None,
    tables: _RuledTables | None = None,
    vector_boxes: bool = False,
) -> list[tuple[list[PdfLine], tuple[float, float]]]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise _classify_pdfium_error(exc, data) from None
    # Per page: its characters (read while the page is open), the spaces after its last one, and its size; lines are
    # made once every page is read, since the ruled-table finder is asked about all pages with enough drawn paths at
    # once.
    read: list[tuple[list[_Row], int, tuple[float, float]]] = []
    candidates: set[int] = set()
    try:
        if fields is not None:
            fields.read(pdf, pages_read)
        reader = _PdfiumChars()
        for page_index in range(pages_read):
            page = pdf[page_index]
            width, height = page.get_size()
            textpage = page.get_textpage()
            rows, spaces = reader.rows(textpage.raw, height)
            if tables is not None and ruling_paths(page.raw, MIN_TABLE_PATHS) >= MIN_TABLE_PATHS:
                candidates.add(page_index)
            if vector_boxes:
                boxes = _vector_box_chars(page_shapes(page.raw, height), _row_chars(rows, spaces))
                box_rows, spaces = _char_rows(boxes, spaces)
                rows.extend(box_rows)
            textpage.close()
            page.close()
            read.append((rows, spaces, (width, height)))
    finally:
        pdf.close()
    if tables is not None:
        tables.candidates = candidates
    result = []
    for page_index, (rows, spaces, size) in enumerate(read):
        if fields is not None:
            field_rows, spaces = _char_rows(fields.chars(page_index, size[1]), spaces)
            rows.extend(field_rows)
        # The table reader takes Chars; only a page it reads (one with enough drawn paths) is made into them.
        lines = (
            tables.lines(_row_chars(rows, spaces), page_index)
            if tables is not None and page_index in candidates
            else None
        )
        result.append((lines or _group_rows(rows, page_index, cell_gap), size))
    return result


# A character as read: text, x0, x1, top, bottom, font size, baseline (top-down page coordinates), and the number of
# spaces before it in content order (spaces carry no position, so they are not characters of their own).
_Row = tuple[str, float, float, float, float, float, float, int]


def _char_rows(chars: list[Char], spaces: int = 0) -> tuple[list[_Row], int]:
    """`chars` as rows (each space counted on the character after it), and the spaces after the last one; `spaces`:
    those before the first."""
    rows: list[_Row] = []
    for c in chars:
        if c.text == " ":
            spaces += 1
            continue
        rows.append((c.text, c.x0, c.x1, c.top, c.bottom, c.size, c.baseline, spaces))
        spaces = 0
    return rows, spaces


def _row_chars(rows: list[_Row], spaces: int) -> list[Char]:
    """The Chars that `rows` were read as (the inverse of _char_rows), `spaces` after the last."""
    chars: list[Char] = []
    for text, x0, x1, top, bottom, size, baseline, before in rows:
        chars.extend([_SPACE] * before)
        chars.append(Char(text, x0, x1, top, bottom, size, baseline))
    chars.extend([_SPACE] * spaces)
    return chars


class _PdfiumChars:
    """Reads the characters of pdfium text pages as rows.

    This runs for every character of every page, and Python's overhead around the C calls is most of a text PDF's
    read time: the calls are bound once without ctypes' per-call argument conversion (_bare) and get ready C values
    (the text page as a void pointer, out-parameters by reusable references); a code point's text is worked out once
    per document, and a symbol-font character's meaning once per font."""

    def __init__(self) -> None:
        import pypdfium2.raw as pdfium_c

        self.get_unicode = _bare(pdfium_c.FPDFText_GetUnicode, ctypes.c_uint)
        self.get_box = _bare(pdfium_c.FPDFText_GetLooseCharBox)
        self.get_origin = _bare(pdfium_c.FPDFText_GetCharOrigin)
        self.get_size = _bare(pdfium_c.FPDFText_GetFontSize, ctypes.c_double)
        self.get_font = _bare(pdfium_c.FPDFText_GetFontInfo, ctypes.c_ulong)
        self.rect = pdfium_c.FS_RECTF()
        self.origin_x, self.origin_y = ctypes.c_double(), ctypes.c_double()
        self.font_buffer = ctypes.create_string_buffer(256)
        self.font_buffer_size = ctypes.c_ulong(len(self.font_buffer))
        self.flags_ref = ctypes.byref(ctypes.c_int())
        # Code point -> its text, for the characters taken as they are ("" for a space); the others (skipped, a
        # U+FFFE to ask about again, symbol-font candidates) are not kept.
        self.texts: dict[int, str] = {}
        # (character, its font's name as pdfium gives it) -> the character's meaning (glyphs.decode_symbol_char).
        self.symbols: dict[tuple[str, bytes | None], str] = {}

    def rows(self, raw: Any, height: float) -> tuple[list[_Row], int]:
        """The text page's characters (`height`: the page's), and the spaces after the last one."""
        import pypdfium2.raw as pdfium_c

        text_ref = ctypes.c_void_p(ctypes.cast(raw, ctypes.c_void_p).value)
        get_unicode, get_box, get_origin, get_size = self.get_unicode, self.get_box, self.get_origin, self.get_size
        rect, origin_y = self.rect, self.origin_y
        rect_ref, x_ref, y_ref = ctypes.byref(rect), ctypes.byref(self.origin_x), ctypes.byref(origin_y)
        unpack_rect = _RECT.unpack_from  # FS_RECTF: left, top, right, bottom
        texts = self.texts
        symbol_codes = SYMBOL_FONT_CODES
        rows: list[_Row] = []
        append = rows.append
        spaces = 0
        count = pdfium_c.FPDFText_CountChars(raw)
        codes = _page_codes(raw, count)
        if codes is None:
            codes = [get_unicode(text_ref, i) for i in range(count)]
        for i in range(count):
            code = codes[i]
            text = texts.get(code)
            symbol = False
            if not text:
                if text == "":
                    spaces += 1
                    continue
                if code == 0xFFFE:
                    code = get_unicode(text_ref, i)  # the page text shows U+0002 (a line-end hyphen) as U+FFFE too
                if code in _SKIPPED_CODES:
                    continue
                # pdfium reports a hyphen at a line end as U+0002.
                text = "-" if code == 0x02 else chr(code)
                if text.isspace():
                    texts[code] = ""
                    spaces += 1
                    continue
                symbol = text in symbol_codes or 0xF020 <= code <= 0xF0FF
                if not symbol:
                    texts[code] = text
            if not get_box(text_ref, i, rect_ref):
                continue
            if symbol:
                text = self._symbol(text_ref, i, text)
            get_origin(text_ref, i, x_ref, y_ref)
            left, top, right, bottom = unpack_rect(rect)
            append(
                (
                    text,
                    left,
                    right,
                    height - top,
                    height - bottom,
                    get_size(text_ref, i),
                    height - origin_y.value,
                    spaces,
                )
            )
            spaces = 0
        return rows, spaces

    def _symbol(self, text_ref: Any, index: int, text: str) -> str:
        """What a character that may be drawn in a symbol font means, by the name of its font."""
        buffer = self.font_buffer
        n = self.get_font(text_ref, index, buffer, self.font_buffer_size, self.flags_ref)
        font = buffer.raw[: max(0, n - 1)] if n else None
        key = (text, font)
        meaning = self.symbols.get(key)
        if meaning is None:
            meaning = decode_symbol_char(text, font.decode("utf-8", "replace") if font is not None else None)
            self.symbols[key] = meaning
        return meaning


_RECT = struct.Struct("4f")
_SKIPPED_CODES = frozenset((0x0D, 0x0A, 0xFFFE, 0))


def _bare(function: Any, restype: Any = ctypes.c_int) -> Any:
    """`function` (a pypdfium2 binding) without ctypes' argument conversion: called with C values (ints, void
    pointers, byref references), it skips the per-argument type checks that cost more than the call itself."""
    bare = type(function)(ctypes.cast(function, ctypes.c_void_p).value)
    bare.restype = restype
    return bare


# --- form fields (AcroForm), read from their values with pdfium -----------------------------


@dataclass(slots=True)
class _Widget:
    page: int
    kind: str  # "text" | "checkbox" | "drop_down"
    name: str | None
    tooltip: str | None
    value: str | None
    checked: bool
    options: list[str]
    left: float
    top: float  # PDF user space (origin bottom left)
    right: float
    bottom: float
    export: str | None = None  # a checkbox's or radio button's export value
    chosen: list[str] = field(default_factory=list)  # a list box's selected options (several when multi-select)


class _FormFields:
    """The widgets of a PDF's form fields, drawn into its pages as characters (see read_pdf)."""

    def __init__(self, found: list[FormControl] | None, *, learning: bool) -> None:
        self.found = found
        self.learning = learning
        self.widgets: list[_Widget] = []

    def read(self, pdf: Any, pages_read: int) -> None:
        import pypdfium2.raw as pdfium_c

        if pdfium_c.FPDF_GetFormType(pdf.raw) == pdfium_c.FORMTYPE_NONE:
            return
        pdf.init_forms()
        form = pdf.formenv.raw if pdf.formenv is not None else None
        if form is None:
            return
        kinds = {
            pdfium_c.FPDF_FORMFIELD_TEXTFIELD: "text",
            pdfium_c.FPDF_FORMFIELD_CHECKBOX: "checkbox",
            pdfium_c.FPDF_FORMFIELD_RADIOBUTTON: "checkbox",
            pdfium_c.FPDF_FORMFIELD_COMBOBOX: "drop_down",
            pdfium_c.FPDF_FORMFIELD_LISTBOX: "drop_down",
        }
        rect = pdfium_c.FS_RECTF()
        for page_index in range(pages_read):
            page = pdf[page_index]
            try:
                for i in range(pdfium_c.FPDFPage_GetAnnotCount(page.raw)):
                    annot = pdfium_c.FPDFPage_GetAnnot(page.raw, i)
                    try:
                        if pdfium_c.FPDFAnnot_GetSubtype(annot) != pdfium_c.FPDF_ANNOT_WIDGET:
                            continue
                        kind = kinds.get(pdfium_c.FPDFAnnot_GetFormFieldType(form, annot))
                        if kind is None or not pdfium_c.FPDFAnnot_GetRect(annot, ctypes.byref(rect)):
                            continue
                        value = _annot_text(pdfium_c.FPDFAnnot_GetFormFieldValue, form, annot)
                        options, chosen = _options(form, annot) if kind == "drop_down" else ([], [])
                        export = None
                        if kind == "checkbox":
                            export = _annot_text(pdfium_c.FPDFAnnot_GetFormFieldExportValue, form, annot)
                        self.widgets.append(
                            _Widget(
                                page_index,
                                kind,
                                _annot_text(pdfium_c.FPDFAnnot_GetFormFieldName, form, annot),
                                _annot_text(pdfium_c.FPDFAnnot_GetFormFieldAlternateName, form, annot),
                                value.strip() if value and value.strip() else None,
                                kind == "checkbox" and bool(pdfium_c.FPDFAnnot_IsChecked(form, annot)),
                                options,
                                min(rect.left, rect.right),
                                max(rect.top, rect.bottom),
                                max(rect.left, rect.right),
                                min(rect.top, rect.bottom),
                                export.strip() if export and export.strip() else None,
                                chosen,
                            )
                        )
                    finally:
                        pdfium_c.FPDFPage_CloseAnnot(annot)
            finally:
                page.close()
        if not self.learning and not any(
            w.checked or w.chosen or (w.value and w.kind != "checkbox") for w in self.widgets
        ):
            self.widgets = []  # no values: the printed text is all there is to read

    def chars(self, page_index: int, page_height: float) -> list[Char]:
        out: list[Char] = []
        for widget in self.widgets:
            if widget.page != page_index:
                continue
            top, bottom = page_height - widget.top, page_height - widget.bottom
            x = widget.left
            if widget.kind == "checkbox":
                glyph = CANONICAL_CHECKED if widget.checked else CANONICAL_UNCHECKED
                out.extend(self._mark(widget, x, top, bottom))
                out.append(Char(glyph, x, widget.right, top, bottom, 0.0, bottom))
                continue
            # Text on one line at the top of the field (a tall field is answer space under its label).
            size = min(bottom - top, 10.0)
            line_top = top + max(0.0, (bottom - top - size) / 2) if bottom - top <= 24 else top + 2
            out.extend(self._mark(widget, x, line_top, line_top + size))
            if widget.kind == "drop_down":
                text = choice_rendering(widget.options, widget.chosen or widget.value)
            else:
                text = "____" if self.learning else ""
            for char in text:
                if char == " ":
                    x += 0.3 * size
                    out.append(_SPACE)
                    continue
                out.append(Char(char, x, x + 0.55 * size, line_top, line_top + size, size, line_top + size))
                x += 0.55 * size
        return out

    def _mark(self, widget: _Widget, x: float, top: float, bottom: float) -> list[Char]:
        if self.found is None:
            return []
        value = widget.value if widget.kind != "checkbox" else None
        if value is not None and widget.kind == "text":
            value = "\n\n".join(
                line.strip() for line in value.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()
            )
        kind: ControlKind = (
            "checkbox" if widget.kind == "checkbox" else "drop_down" if widget.kind == "drop_down" else "text"
        )
        self.found.append(
            FormControl(
                kind,
                "acroform",
                widget.name,
                widget.tooltip,
                value,
                widget.checked if widget.kind == "checkbox" else None,
                list(widget.options),
                widget.export,
            )
        )
        return [Char(mark(len(self.found) - 1), x - 0.2, x - 0.1, top, bottom, 0.0, bottom)]


def _options(form: Any, annot: Any) -> tuple[list[str], list[str]]:
    """A combo or list box's option labels, and those selected (every one of a multi-select list box)."""
    import pypdfium2.raw as pdfium_c

    options: list[str] = []
    chosen: list[str] = []
    for n in range(max(0, pdfium_c.FPDFAnnot_GetOptionCount(form, annot))):
        label = _annot_text(pdfium_c.FPDFAnnot_GetOptionLabel, form, annot, n)
        if label and label.strip():
            options.append(label.strip())
            if pdfium_c.FPDFAnnot_IsOptionSelected(form, annot, n):
                chosen.append(label.strip())
    return options, chosen


def _annot_text(function: Any, *args: Any) -> str | None:
    """A UTF-16LE string from a pdfium FPDFAnnot_* getter (first call for the size, second for the text)."""
    size = function(*args, None, 0)
    if size <= 2:
        return None
    buffer = ctypes.create_string_buffer(size)
    function(*args, ctypes.cast(buffer, ctypes.POINTER(ctypes.c_ushort)), size)
    return buffer.raw[: size - 2].decode("utf-16-le", errors="replace")


# --- ruled tables: text read cell by cell --------------------------------------------------

# pdfplumber's table finder on the ruling lines drawn on the page (its "lines" strategy), with its tolerances in
# points: segments this close snap and join into one ruling line, and lines this close intersect.
TABLE_SETTINGS: dict[str, Any] = {
    "vertical_strategy": "lines",
    "horizontal_strategy": "lines",
    "snap_tolerance": 3,
    "join_tolerance": 3,
    "intersection_tolerance": 3,
}
# A page with fewer drawn paths that could be ruling lines (vector_boxes.ruling_paths) than this has no ruled table
# worth looking for (pdfplumber is not asked).
MIN_TABLE_PATHS = 4
# A character belongs to a cell when its centre lies within the cell grown by this many points.
CELL_TOLERANCE = 1.0
# A table needs at least this many rows and columns: one ruled box around text is a frame, not a table.
MIN_TABLE_ROWS = 1
MIN_TABLE_COLUMNS = 2

# (x0, top, x1, bottom) of a table cell, top-down page coordinates.
_CellBox = tuple[float, float, float, float]
# A table as its rows, each row its cells left to right.
_Table = list[list[_CellBox]]


class _RuledTables:
    """The ruled tables of a PDF's pages (found on demand), and a page's lines read cell by cell.

    A form made from a Word form with its fields in a table (label cell, answer cell) or a table of checkboxes
    reads as the Word document does: each cell a paragraph, the cells of a row in order; with `found` (a list of
    controls to fill) each answer cell (all but a row's first) is marked as a table cell (controls.py), so its
    field is recorded as read from a table."""

    def __init__(self, data: bytes, pages_read: int, found: list[FormControl] | None) -> None:
        self.data = data
        self.pages_read = pages_read
        self.found = found
        # The pages with enough drawn paths to hold a table: set by the pdfium backend as it reads the pages, else
        # looked up on first use.
        self.candidates: set[int] | None = None
        self.tables: dict[int, list[_Table]] | None = None

    def lines(self, chars: list[Char], page_index: int) -> list[PdfLine] | None:
        """The page's lines with its tables read cell by cell; None when the page has no ruled table."""
        if self.candidates is None:
            self.candidates = _pages_with_paths(self.data, self.pages_read)
        if page_index not in self.candidates:
            return None
        if self.tables is None:
            self.tables = _find_tables(self.data, self.candidates)
        tables = self.tables.get(page_index)
        if not tables:
            return None
        outside, cells = _split_by_cell(chars, tables)
        blocks = [(table[0][0][1], self._table_lines(cells, t, table, page_index)) for t, table in enumerate(tables)]
        return _merge_blocks(_group_lines(outside, page_index), blocks)

    def _table_lines(
        self, cells: dict[tuple[int, int, int], list[Char]], t: int, table: _Table, page_index: int
    ) -> list[PdfLine]:
        out: list[PdfLine] = []
        for r, row in enumerate(table):
            for c, box in enumerate(row):
                lines = _group_lines(cells.get((t, r, c), []), page_index)
                if c and self.found is not None:
                    self.found.append(FormControl("table_cell", "table"))
                    lines = _with_mark(lines, mark(len(self.found) - 1), box, page_index)
                for line in lines:
                    line.cell = (t, r, c)
                out.extend(lines)
        return out


def _pages_with_paths(data: bytes, pages_read: int) -> set[int]:
    """The pages with enough drawn paths (pdfium, without laying the page out) to hold a ruled table."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        pages = set()
        for index in range(pages_read):
            page = pdf[index]
            paths = ruling_paths(page.raw, MIN_TABLE_PATHS)
            page.close()
            if paths >= MIN_TABLE_PATHS:
                pages.add(index)
        return pages
    finally:
        pdf.close()


def _find_tables(data: bytes, pages: set[int]) -> dict[int, list[_Table]]:
    """Per page, its ruled tables top to bottom (checkboxes drawn as squares are not ruling lines)."""
    import pdfplumber

    found: dict[int, list[_Table]] = {}
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            for index in sorted(pages):
                page = pdf.pages[index]
                ruled = page.filter(lambda obj: not is_box_object(obj))
                tables = [_rows(table) for table in ruled.find_tables(TABLE_SETTINGS)]
                found[index] = sorted(
                    (t for t in tables if len(t) >= MIN_TABLE_ROWS and max(len(r) for r in t) >= MIN_TABLE_COLUMNS),
                    key=lambda t: t[0][0][1],
                )
                page.close()
    except Exception:  # the text is read without tables; pdfium has already read the file
        return {}
    return found


def _rows(table: Any) -> _Table:
    return [[tuple(cell) for cell in row.cells if cell is not None] for row in table.rows if any(row.cells)]


def _cell_of(char: Char, tables: list[_Table]) -> tuple[int, int, int] | None:
    x, y = (char.x0 + char.x1) / 2, (char.top + char.bottom) / 2
    for t, table in enumerate(tables):
        for r, row in enumerate(table):
            for c, (x0, top, x1, bottom) in enumerate(row):
                if (
                    x0 - CELL_TOLERANCE <= x <= x1 + CELL_TOLERANCE
                    and top - CELL_TOLERANCE <= y <= bottom + CELL_TOLERANCE
                ):
                    return (t, r, c)
    return None


def _split_by_cell(
    chars: list[Char], tables: list[_Table]
) -> tuple[list[Char], dict[tuple[int, int, int], list[Char]]]:
    """The characters outside every table, and those of each cell (a space goes with the character after it)."""
    outside: list[Char] = []
    cells: dict[tuple[int, int, int], list[Char]] = {}
    spaces = 0
    for char in chars:
        if char.text == " ":
            spaces += 1
            continue
        cell = _cell_of(char, tables)
        bucket = outside if cell is None else cells.setdefault(cell, [])
        bucket.extend([_SPACE] * min(spaces, 1))
        bucket.append(char)
        spaces = 0
    return outside, cells


def _with_mark(lines: list[PdfLine], marker: str, box: _CellBox, page_index: int) -> list[PdfLine]:
    """A cell's lines with `marker` before its text (an empty cell: a line of the marker alone)."""
    if lines:
        lines[0].text = marker + lines[0].text
        return lines
    x0, top, x1, bottom = box
    return [PdfLine(marker, x0, x1, top, bottom, 0.0, page_index, max(bottom - top, 1.0), bottom)]


def _merge_blocks(outside: list[PdfLine], blocks: list[tuple[float, list[PdfLine]]]) -> list[PdfLine]:
    """The lines outside tables with each table's lines put in where the table starts."""
    out: list[PdfLine] = []
    pending = sorted(blocks, key=lambda block: block[0])
    for line in outside:
        while pending and pending[0][0] <= line.top:
            out.extend(pending.pop(0)[1])
        out.append(line)
    for _top, lines in pending:
        out.extend(lines)
    return out


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
    data: bytes, pages_read: int, cell_gap: float | None = None, tables: _RuledTables | None = None
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
                chars.extend(_vector_box_chars(plumber_shapes(page), chars))
                lines = tables.lines(chars, page_index) if tables is not None else None
                lines = lines or _group_lines(chars, page_index, cell_gap)
                result.append((lines, (float(page.width), float(page.height))))
                page.close()
    except PDFPasswordIncorrect:
        raise PdfReadError("encrypted", "PDF-en er kryptert (passordbeskyttet) og kan ikke leses.") from None
    return result


def _vector_box_chars(shapes: list[Shape], chars: list[Char]) -> list[Char]:
    """A ☒/☐ char per checkbox drawn as a small square with no glyph in it (vector_boxes.py)."""
    return [
        Char(CANONICAL_CHECKED if ticked else CANONICAL_UNCHECKED, x0, x1, top, bottom, 0.0, bottom)
        for (x0, x1, top, bottom), ticked in checkboxes(shapes, chars)
    ]


# --- shared: chars -> lines -> paragraphs ---------------------------------------------------


def _group_lines(chars: list[Char], page_index: int, cell_gap: float | None = None) -> list[PdfLine]:
    """Cluster characters into visual lines (by vertical centre) and spell each line left to right."""
    return _group_rows(_char_rows(chars)[0], page_index, cell_gap)


def _group_rows(rows: list[_Row], page_index: int, cell_gap: float | None = None) -> list[PdfLine]:
    """_group_lines of characters read as rows (this runs for every character of a document)."""
    if not rows:
        return []
    mids = [(row[3] + row[4]) / 2 for row in rows]
    order = sorted(range(len(rows)), key=mids.__getitem__)
    clusters: list[list[int]] = []
    cluster: list[int] = []
    cluster_mid = cluster_height = 0.0
    for i in order:
        row = rows[i]
        mid, height = mids[i], row[4] - row[3]
        height = 1.0 if 1.0 > height else height  # max(height, 1.0), without the call
        if cluster and abs(mid - cluster_mid) <= 0.45 * (height if height > cluster_height else cluster_height):
            cluster.append(i)
        else:
            cluster = [i]
            clusters.append(cluster)
            cluster_mid, cluster_height = mid, height
    lines: list[PdfLine] = []
    for cluster in clusters:
        # Left to right; characters at the same x in content order (two stable sorts: by index, then by x).
        cluster.sort()
        members = [rows[i] for i in cluster]
        members.sort(key=_x0)
        sizes = [row[5] for row in members if row[5] > 0]
        if sizes:
            baselines = [row[6] for row in members if row[5] > 0]
        else:
            sizes = [row[5] or (row[4] - row[3]) for row in members]
            baselines = [row[6] for row in members]
        size = _median_low(sizes)
        baseline = _median_low(baselines)
        space_gap, spaced_gap = 0.18 * size, 0.05 * size
        cell_limit = math.inf if cell_gap is None else cell_gap * size
        first = members[0]
        parts = [first[0]]
        previous_x1 = first[2]
        first_word_end: float | None = None
        for text, x0, x1, _top, _bottom, _size, _baseline, spaces in members[1:]:
            gap = x0 - previous_x1
            # A space char in the content stream counts only when it sits in a visible gap
            # (content order and visual order can differ).
            if gap > cell_limit:
                parts.append(CELL_SEPARATOR)
                if first_word_end is None:
                    first_word_end = previous_x1
            elif gap > space_gap or (spaces and gap > spaced_gap):
                parts.append(" ")
                if first_word_end is None:
                    first_word_end = previous_x1
            elif gap < -0.6 * (x1 - x0) and text == parts[-1] and abs(gap + (x1 - x0)) < 0.5:
                continue  # duplicated char drawn twice for a fake-bold effect
            parts.append(text)
            previous_x1 = x1
        x0 = first[1]
        lines.append(
            PdfLine(
                text="".join(parts),
                x0=x0,
                x1=max([row[2] for row in members]),
                top=min([row[3] for row in members]),
                bottom=max([row[4] for row in members]),
                first_word_width=(first_word_end if first_word_end is not None else previous_x1) - x0,
                page=page_index,
                size=size,
                baseline=baseline,
            )
        )
    return lines


_x0 = operator.itemgetter(1)


def _median_low(values: list[float]) -> float:
    """statistics.median_low of a non-empty list, without its checks and conversions."""
    values.sort()
    return values[(len(values) - 1) // 2]


_PAGE_NUMBER = re.compile(
    r"^(?:(?:side|page|s\.)\s*)?[-–—]?\s*\d{1,4}\s*[-–—]?(?:\s*(?:av|of|/)\s*\d{1,4})?$", re.IGNORECASE
)
_MARGIN_ZONE = 0.09
_PAGE_NUMBER_ZONE = 0.15


def _layout(pages: list[tuple[list[PdfLine], tuple[float, float]]]) -> list[TextLine]:
    body_pages = _drop_page_furniture(pages)
    body = [item for page_lines in body_pages for item in page_lines]
    if not body:
        return []
    wrap_pitch = _wrap_pitch_by_height([line for line, _text in body])
    right_edge = max(line.x1 for line, _text in body)
    page_tops = [min(line.top for line, _text in items) for items in body_pages if items]
    body_top = statistics.median(page_tops) if page_tops else 0.0

    out: list[TextLine] = []
    previous: PdfLine | None = None
    for line, text in body:
        if not text:
            continue
        if previous is None:
            paragraph = True
        elif line.cell != previous.cell:
            paragraph = True  # each table cell is a paragraph of its own, as in the Word document
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


def _drop_page_furniture(
    pages: list[tuple[list[PdfLine], tuple[float, float]]],
) -> list[list[tuple[PdfLine, str]]]:
    """Remove page headers, footers and page numbers: page-number lines near the top or bottom
    edge, and lines in the margin zones that repeat (digits ignored) on several pages. Each line kept comes with its
    text normalised (normalise_line)."""

    def key(text: str) -> str:
        return _DIGITS.sub("#", text.lower())

    def in_zone(line: PdfLine, size: tuple[float, float], zone: float) -> bool:
        height = size[1]
        return line.bottom < zone * height or line.top > (1 - zone) * height

    texts = [[(line, normalise_line(line.text)) for line in lines] for lines, _size in pages]
    repeat_counts: dict[str, int] = {}
    for (_lines, size), items in zip(pages, texts, strict=True):
        for text in {key(text) for line, text in items if in_zone(line, size, _MARGIN_ZONE)}:
            repeat_counts[text] = repeat_counts.get(text, 0) + 1
    result = []
    for (_lines, size), items in zip(pages, texts, strict=True):
        kept = []
        for line, text in items:
            if in_zone(line, size, _PAGE_NUMBER_ZONE) and _PAGE_NUMBER.match(text):
                continue
            if len(pages) > 1 and in_zone(line, size, _MARGIN_ZONE) and repeat_counts.get(key(text), 0) >= 2:
                continue
            kept.append((line, text))
        result.append(kept)
    return result


_DIGITS = re.compile(r"\d+")


# --- for readers that build the same pages another way (OCR of scanned pages) -----------------


def pdf_pages(data: bytes, pages_read: int) -> list[tuple[list[PdfLine], tuple[float, float]]]:
    """Per page: its visual lines and its size in points (pdfium text)."""
    return _pdfium_pages(data, pages_read)


def layout_pages(pages: list[tuple[list[PdfLine], tuple[float, float]]]) -> list[TextLine]:
    """Page furniture dropped, paragraphs and page breaks decided: the document's TextLines."""
    return _layout(pages)
