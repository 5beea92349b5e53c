"""DOCX -> TextLines with python-docx, walking the body XML so that content controls,
symbol glyphs (w:sym) and legacy form checkboxes keep their meaning."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Protocol, overload

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


def read_docx(data: bytes, *, table_rows: bool = False) -> list[TextLine]:
    """The lines of a Word document. With `table_rows`, each table row is one line, its cells joined by
    CELL_SEPARATOR (the shape learning needs); otherwise every cell paragraph is a line of its own."""
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
    lines: list[TextLine] = []
    for paragraph in body.iter(f"{_W}p", f"{_W}tr"):
        if table_rows and paragraph.tag == f"{_W}tr":
            if not _has_ancestor(paragraph, (f"{_W}tr",)):
                cells = [
                    _cell_text(cell) for cell in paragraph.iter(f"{_W}tc") if _nearest(cell, f"{_W}tr") is paragraph
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
        _walk(paragraph, pieces)
        for i, segment in enumerate("".join(pieces).split("\n")):
            text = normalise_line(segment)
            if text:
                lines.append(TextLine(text=text, paragraph_start=(i == 0)))
    return lines


def _nearest(element: _XmlElement, tag: str) -> _XmlElement | None:
    parent = element.getparent()
    while parent is not None and parent.tag != tag:
        parent = parent.getparent()
    return parent


def _cell_text(cell: _XmlElement) -> str:
    parts: list[str] = []
    for paragraph in cell.iter(f"{_W}p"):
        pieces: list[str] = []
        _walk(paragraph, pieces)
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


def _walk(element: _XmlElement, out: list[str]) -> None:
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
            state = _content_control_checkbox_state(child)
            if state is None:
                content = child.find(f"{_W}sdtContent")
                if content is not None:
                    _walk(content, out)
            else:
                out.append(CANONICAL_CHECKED if state else CANONICAL_UNCHECKED)
        elif tag == f"{_W}fldChar":
            state = _legacy_checkbox_state(child)
            if state is not None:
                out.append(CANONICAL_CHECKED if state else CANONICAL_UNCHECKED)
        else:
            _walk(child, out)


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
