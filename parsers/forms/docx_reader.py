"""DOCX -> TextLines with python-docx, walking the body XML so that content controls,
symbol glyphs (w:sym) and legacy form checkboxes keep their meaning."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, overload

from .controls import FormControl, choice_rendering, mark, place_controls
from .glyphs import CANONICAL_CHECKED, CANONICAL_UNCHECKED, decode_symbol_char, is_symbol_font
from .text_lines import TextLine, normalise_line

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_W14 = "{http://schemas.microsoft.com/office/word/2010/wordml}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"

MAX_UNCOMPRESSED_BYTES = 60 * 1024 * 1024


class _XmlElement(Protocol):
    """The part of lxml's element interface read here (python-docx's XML elements are lxml elements)."""

    @property
    def tag(self) -> object: ...  # a str, except for comments and processing instructions

    @property
    def text(self) -> str | None: ...

    def getparent(self) -> _XmlElement | None: ...

    def iter(self, *tags: str) -> Iterator[_XmlElement]: ...

    def __iter__(self) -> Iterator[_XmlElement]: ...

    def find(self, path: str) -> _XmlElement | None: ...

    @overload
    def get(self, key: str) -> str | None: ...

    @overload
    def get(self, key: str, default: str) -> str: ...


class DocxReadError(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def is_docx(data: bytes) -> bool:
    if not data.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return False


# Between the cells of a table row when a form is read for learning (see learn.py).
CELL_SEPARATOR = " \u00a6 "
# What an empty text or date content control shows when a blank is read for learning: answer space.
ANSWER_SPACE = "Klikk eller trykk her for å skrive inn tekst."


@dataclass
class _Controls:
    """Content controls read from their structure (see controls.py): `found` collects them (None: render only);
    `learning` shows an empty control as answer space, otherwise as nothing."""

    found: list[FormControl] | None
    learning: bool
    # Marks (and for learning, answer space) to put before a paragraph: block-level controls and table cells.
    before: dict[_XmlElement, str] = field(default_factory=dict)
    # Paragraphs of an empty block-level control (their text is its placeholder).
    hidden: set[_XmlElement] = field(default_factory=set)

    def add(self, control: FormControl) -> str:
        if self.found is None:
            return ""
        self.found.append(control)
        return mark(len(self.found) - 1)


def read_docx(data: bytes, *, table_rows: bool = False, controls: list[FormControl] | None = None) -> list[TextLine]:
    """The lines of a Word document. With `table_rows`, each table row is one line, its cells joined by
    CELL_SEPARATOR (the shape learning needs); otherwise every cell paragraph is a line of its own.

    With `controls` (a list to fill) or `table_rows`, content controls are read from their structure: a
    placeholder is no answer, a drop-down shows its options with the chosen one ticked; with `controls` each
    control (and each answer cell of a table) is collected with its offset in the text of the lines."""
    import docx

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(info.file_size for info in archive.infolist())
        if total > MAX_UNCOMPRESSED_BYTES:
            raise DocxReadError("too_large", f"Word-filen pakker ut til {total // (1024 * 1024)} MB og er for stor.")
        document = docx.Document(io.BytesIO(data))
    except DocxReadError:
        raise
    except Exception as exc:  # python-docx raises many kinds on corrupt files
        raise DocxReadError("unreadable", f"Word-filen er skadet og kan ikke leses ({type(exc).__name__}).") from None

    body: _XmlElement = document.element.body
    ctx = _Controls(controls, table_rows) if (controls is not None or table_rows) else None
    if ctx is not None:
        _block_controls(body, ctx)
    lines: list[TextLine] = []
    for paragraph in body.iter(f"{_W}p", f"{_W}tr"):
        if table_rows and paragraph.tag == f"{_W}tr":
            if not _has_ancestor(paragraph, (f"{_W}tr",)):
                cells = [
                    _cell_text(cell, ctx)
                    for cell in paragraph.iter(f"{_W}tc")
                    if _nearest(cell, f"{_W}tr") is paragraph
                ]
                text = CELL_SEPARATOR.join(cells).strip()
                if text.replace("\u00a6", "").strip():
                    lines.append(TextLine(text=text, paragraph_start=True))
            continue
        if paragraph.tag == f"{_W}tr" or (table_rows and _has_ancestor(paragraph, (f"{_W}tr",))):
            continue
        if _has_ancestor(paragraph, (f"{_MC}Fallback", f"{_W}txbxContent")) and not _is_own_textbox(paragraph):
            continue
        pieces: list[str] = []
        _paragraph(paragraph, pieces, ctx)
        for i, segment in enumerate("".join(pieces).split("\n")):
            text = normalise_line(segment)
            if text:
                lines.append(TextLine(text=text, paragraph_start=(i == 0)))
    return place_controls(lines, controls) if controls is not None else lines


def _nearest(element: _XmlElement, tag: str) -> _XmlElement | None:
    parent = element.getparent()
    while parent is not None and parent.tag != tag:
        parent = parent.getparent()
    return parent


def _cell_text(cell: _XmlElement, ctx: _Controls | None) -> str:
    parts: list[str] = []
    for paragraph in cell.iter(f"{_W}p"):
        pieces: list[str] = []
        _paragraph(paragraph, pieces, ctx)
        parts.append(normalise_line("".join(pieces).replace("\n", " ")))
    return " ".join(part for part in parts if part)


def _has_ancestor(element: _XmlElement, tags: tuple[str, ...]) -> bool:
    parent = element.getparent()
    while parent is not None:
        if parent.tag in tags:
            return True
        parent = parent.getparent()
    return False


def _is_own_textbox(paragraph: _XmlElement) -> bool:
    # Text boxes appear as mc:Choice (kept) and mc:Fallback (dropped) copies.
    return _has_ancestor(paragraph, (f"{_W}txbxContent",)) and not _has_ancestor(paragraph, (f"{_MC}Fallback",))


_SKIPPED = {
    f"{_W}delText",
    f"{_W}instrText",
    f"{_W}txbxContent",
    f"{_W}pPr",
    f"{_W}rPr",
    f"{_W}sdtPr",
    f"{_MC}Fallback",
    f"{_W}del",
    f"{_W}footnoteReference",
    f"{_W}commentReference",
}


def _paragraph(paragraph: _XmlElement, out: list[str], ctx: _Controls | None) -> None:
    if ctx is not None:
        out.append(ctx.before.get(paragraph, ""))
        if paragraph in ctx.hidden:
            return
    _walk(paragraph, out, ctx)


def _block_controls(body: _XmlElement, ctx: _Controls) -> None:
    """Content controls around whole paragraphs (rich-text answer blocks), and the answer cells of tables: a
    mark before their first paragraph; an empty control's placeholder paragraphs hidden."""
    for sdt in body.iter(f"{_W}sdt"):
        paragraphs = list(sdt.iter(f"{_W}p"))
        if not paragraphs:
            continue  # inline: read where it stands (_walk)
        if any(True for _ in sdt.iter(f"{_W}tc")) or sum(1 for _ in sdt.iter(f"{_W}sdt")) > 1:
            continue  # a container of rows, cells or other controls: its parts are read on their own
        properties = sdt.find(f"{_W}sdtPr")
        if properties is not None and any(properties.find(kind) is not None for kind in _NOT_ANSWERS):
            continue  # a checkbox (read inline), a table of contents, a cover page, ...
        empty = _showing_placeholder(sdt)
        texts: list[str] = []
        for paragraph in paragraphs:
            pieces: list[str] = []
            _walk(paragraph, pieces, None)
            text = " ".join("".join(pieces).split())
            if text:
                texts.append(text)
        value = None if empty or not texts else "\n\n".join(texts)
        name, title = _tag_and_alias(sdt)
        marks = ctx.add(FormControl("text", "content_control", name, title, value))
        if empty:
            ctx.hidden.update(paragraphs)
            marks += ANSWER_SPACE if ctx.learning else ""
        ctx.before[paragraphs[0]] = ctx.before.get(paragraphs[0], "") + marks
    if ctx.found is None:
        return
    for row in body.iter(f"{_W}tr"):
        cells = [cell for cell in row.iter(f"{_W}tc") if _nearest(cell, f"{_W}tr") is row]
        for cell in cells[1:] if len(cells) >= 2 else []:
            first = cell.find(f"{_W}p")
            if first is not None:
                ctx.before[first] = ctx.add(FormControl("table_cell", "table")) + ctx.before.get(first, "")


# Content controls that are not answers to read as text.
_NOT_ANSWERS = (
    f"{_W14}checkbox",
    f"{_W}docPartObj",
    f"{_W}docPartList",
    f"{_W}group",
    f"{_W}bibliography",
    f"{_W}citation",
    f"{_W}equation",
    f"{_W}picture",
)


def _showing_placeholder(sdt: _XmlElement) -> bool:
    return sdt.find(f"{_W}sdtPr/{_W}showingPlcHdr") is not None


def _tag_and_alias(sdt: _XmlElement) -> tuple[str | None, str | None]:
    tag = sdt.find(f"{_W}sdtPr/{_W}tag")
    alias = sdt.find(f"{_W}sdtPr/{_W}alias")
    return (
        tag.get(f"{_W}val") if tag is not None else None,
        alias.get(f"{_W}val") if alias is not None else None,
    )


def _inline_control(sdt: _XmlElement, out: list[str], ctx: _Controls) -> bool:
    """A content control inside a paragraph, read from its properties; False when it is not one read here."""
    properties = sdt.find(f"{_W}sdtPr")
    content = sdt.find(f"{_W}sdtContent")
    if properties is None or content is None:
        return False
    name, title = _tag_and_alias(sdt)
    empty = _showing_placeholder(sdt)
    state = _content_control_checkbox_state(sdt)
    if state is not None:
        out.append(ctx.add(FormControl("checkbox", "content_control", name, title, checked=state)))
        out.append(CANONICAL_CHECKED if state else CANONICAL_UNCHECKED)
        return True
    pieces: list[str] = []
    _walk(content, pieces, ctx)
    shown = " ".join("".join(pieces).split())
    listing = properties.find(f"{_W}dropDownList")
    if listing is None:
        listing = properties.find(f"{_W}comboBox")
    if listing is not None:
        options = [
            item.get(f"{_W}displayText") or item.get(f"{_W}value") or "" for item in listing.iter(f"{_W}listItem")
        ]
        options = [option for option in options if option.strip()]
        chosen = None if empty or not shown else shown
        out.append(ctx.add(FormControl("drop_down", "content_control", name, title, chosen, options=options)))
        out.append(choice_rendering(options, chosen))
        return True
    date = properties.find(f"{_W}date")
    is_text = (
        date is not None
        or any(properties.find(f"{_W}{kind}") is not None for kind in ("text", "richText"))
        or not any(True for child in properties if child.tag not in _PLAIN_PROPERTIES)
    )
    if not is_text:
        return False
    value = None if empty or not shown else shown
    if value is None and not empty and date is not None:
        parts = (date.get(f"{_W}fullDate") or "")[:10].split("-")
        value = f"{parts[2]}.{parts[1]}.{parts[0]}" if len(parts) == 3 else None
    out.append(ctx.add(FormControl("date" if date is not None else "text", "content_control", name, title, value)))
    out.append(value if value is not None else (ANSWER_SPACE if ctx.learning else ""))
    return True


# Properties any content control may have: one with only these is a rich-text control.
_PLAIN_PROPERTIES = {
    f"{_W}{name}"
    for name in ("alias", "tag", "id", "lock", "placeholder", "showingPlcHdr", "dataBinding", "temporary", "rPr")
} | {
    f"{_W14}appearance",
    f"{_W14}color",
    "{http://schemas.microsoft.com/office/word/2012/wordml}appearance",
    "{http://schemas.microsoft.com/office/word/2012/wordml}color",
}


def _walk(element: _XmlElement, out: list[str], ctx: _Controls | None = None) -> None:
    for child in element:
        tag = child.tag
        if tag in _SKIPPED or tag == f"{_W}p":
            continue
        if tag == f"{_W}t":
            text = child.text or ""
            font = _run_font(child.getparent())
            if font and is_symbol_font(font):
                text = "".join(decode_symbol_char(c, font) for c in text)
            out.append(text)
        elif tag == f"{_W}tab":
            out.append(" ")
        elif tag in (f"{_W}br", f"{_W}cr"):
            out.append("\n")
        elif tag == f"{_W}sym":
            code = int(child.get(f"{_W}char", "0"), 16)
            out.append(decode_symbol_char(chr(code), child.get(f"{_W}font")))
        elif tag == f"{_W}sdt":
            if ctx is not None and _inline_control(child, out, ctx):
                continue
            state = _content_control_checkbox_state(child)
            if state is None:
                content = child.find(f"{_W}sdtContent")
                if content is not None:
                    _walk(content, out, ctx)
            else:
                out.append(CANONICAL_CHECKED if state else CANONICAL_UNCHECKED)
        elif tag == f"{_W}fldChar":
            state = _legacy_checkbox_state(child)
            if state is not None:
                out.append(CANONICAL_CHECKED if state else CANONICAL_UNCHECKED)
        else:
            _walk(child, out, ctx)


def _run_font(run: _XmlElement | None) -> str | None:
    if run is None:
        return None
    fonts = run.find(f"{_W}rPr/{_W}rFonts")
    if fonts is None:
        return None
    return fonts.get(f"{_W}ascii") or fonts.get(f"{_W}hAnsi") or fonts.get(f"{_W}cs")


def _content_control_checkbox_state(sdt: _XmlElement) -> bool | None:
    checkbox = sdt.find(f"{_W}sdtPr/{_W14}checkbox")
    if checkbox is None:
        return None
    checked = checkbox.find(f"{_W14}checked")
    if checked is None:
        return False
    return checked.get(f"{_W14}val", "1").lower() in ("1", "true", "on")


def _legacy_checkbox_state(fld_char: _XmlElement) -> bool | None:
    checkbox = fld_char.find(f"{_W}ffData/{_W}checkBox")
    if checkbox is None:
        return None
    for name in ("checked", "default"):
        element = checkbox.find(f"{_W}{name}")
        if element is not None:
            return element.get(f"{_W}val", "1").lower() in ("1", "true", "on")
    return False
