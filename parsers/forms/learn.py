"""Learn a form profile from the blank form (.docx or .pdf): pure, bytes in, FormProfile out.

The blank is read as lines (table rows as cells joined by CELL_SEPARATOR) and each line is classified in form order:
- a table: a header row of column labels, then rows of "label | box | box | ..." -> a matrix (checkbox table);
  rows of "Label: | (empty)" -> inline fields;
- lines of boxes ("☐ option", one or several a line) under a question -> a choice group; several options on one
  line right after a question that is followed by answer space -> a choice with its explanation (e.g. Ja/Nei);
- "Label:" with its answer space (a placeholder, a line of underscores, or nothing) on the same line -> inline field;
- a line followed by answer space (a placeholder or a line of underscores) -> free-text question;
- any other short line followed by another label -> heading.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from .docx_reader import CELL_SEPARATOR as DOCX_CELL_SEPARATOR
from .docx_reader import DocxReadError, is_docx, read_docx
from .glyphs import GLYPH_TOKEN_PATTERN, glyph_state
from .pdf_reader import PdfReadError, read_pdf
from .profile import RESERVED_KEYS, ChoiceOption, FormProfile, FormSection
from .text_cleaning import join_wrapped_lines
from .text_lines import TextLine

CELL = DOCX_CELL_SEPARATOR.strip()
# Word's and LibreOffice's content-control placeholders: they mean "answer here".
DEFAULT_PLACEHOLDERS = [
    "Klikk eller trykk her for å skrive inn tekst.",
    "Klikk her for å skrive inn tekst.",
    "Click or tap here to enter text.",
    "Click here to enter text.",
]
MAX_LABEL_CHARS = 300  # longer lines are instructions, not labels
MAX_HEADING_CHARS = 120
MIN_FIELDS = 2  # fewer answerable fields found: not a form
# A question saying that several options may be ticked.
MULTIPLE_CHOICE_WORDS = r"\b(flere|alle som passer|ett eller flere|en eller flere)\b"

_GLYPH = re.compile(GLYPH_TOKEN_PATTERN)
_ANSWER_LINE = re.compile(r"^[\s_.…\-]{3,}$")


class LearnError(ValueError):
    """The blank cannot be learned from (unreadable, or no form labels found); the message is for staff."""


@dataclass
class _Line:
    text: str
    cells: list[str] = field(default_factory=list)


def read_blank(data: bytes, filename: str | None = None) -> list[_Line]:
    """The blank's lines, table rows split into cells."""
    try:
        if data[:1024].find(b"%PDF-") >= 0:
            lines = read_pdf(data, table_cells=True).lines
        elif is_docx(data):
            lines = read_docx(data, table_rows=True)
        else:
            raise LearnError(f"{filename or 'Filen'} er verken en Word-fil (.docx) eller en PDF.")
    except (PdfReadError, DocxReadError) as exc:
        raise LearnError(f"{filename or 'Filen'} kan ikke leses: {exc.message}") from None
    merged: list[_Line] = []
    for line in lines:
        if not line.text.strip():
            continue
        current = _split(line)
        previous = merged[-1] if merged else None
        # A wrapped line (no paragraph break before it) continues the label above it, or the first cell of a
        # table row whose label wrapped.
        if (
            previous is not None
            and not line.paragraph_start
            and not current.cells
            and _options(current.text) is None
            and (current.text[:1].islower() or previous.text.endswith("-"))
            and not previous.text.endswith((":", "?"))
        ):
            if previous.cells:
                previous.cells[0] = join_wrapped_lines([previous.cells[0], current.text])
                previous.text = " ".join(c for c in previous.cells if c)
                continue
            if _options(previous.text) is None:
                previous.text = join_wrapped_lines([previous.text, current.text])
                continue
        merged.append(current)
    return merged


def _split(line: TextLine) -> _Line:
    cells = [cell.strip() for cell in line.text.split(CELL)]
    return _Line(" ".join(c for c in cells if c), cells if len(cells) > 1 else [])


def _is_placeholder(text: str, placeholders: list[str]) -> bool:
    stripped = text.strip()
    return bool(_ANSWER_LINE.match(stripped)) or any(stripped.casefold() == p.casefold() for p in placeholders)


def _strip_placeholders(text: str, placeholders: list[str]) -> str:
    for placeholder in placeholders:
        text = re.sub(re.escape(placeholder), " ", text, flags=re.IGNORECASE)
    return re.sub(r"[_…]{3,}|\.{4,}", " ", text).strip()


def _options(text: str) -> list[str] | None:
    """The option labels of a line of boxes ("☐ A ☐ B"), or None when the line does not start with a box."""
    first = _GLYPH.match(text.strip())
    if not first or glyph_state(first.group(0)) is None:  # a bullet from a symbol font is not a box
        return None
    parts = [part.strip(" \t" + CELL) for part in _GLYPH.split(text.strip())]
    labels = [part for part in parts if part]
    return labels or None


def _is_matrix_row(line: _Line) -> bool:
    return (
        len(line.cells) >= 3
        and bool(line.cells[0])
        and all(_GLYPH.fullmatch(cell.strip()) for cell in line.cells[1:] if cell.strip())
        and sum(1 for cell in line.cells[1:] if cell.strip()) >= 2
    )


def learn_profile(
    data: bytes,
    *,
    name: str,
    case_number: str | None = None,
    title: str | None = None,
    filename: str | None = None,
) -> FormProfile:
    lines = read_blank(data, filename)
    if not lines:
        raise LearnError(f"{filename or 'Filen'} har ingen tekst å lære et skjema fra (skannet bilde?).")
    placeholders = list(DEFAULT_PLACEHOLDERS)
    sections: list[FormSection] = []
    keys: set[str] = set(RESERVED_KEYS)  # never one of the parsed result's own keys
    index = 0
    pending_question: str | None = None  # a line that may be the question of the options or table after it

    def answer_space_follows(position: int) -> bool:
        return position < len(lines) and _is_placeholder(lines[position].text, placeholders)

    def flush_heading() -> None:
        nonlocal pending_question
        if pending_question is not None and len(pending_question) <= MAX_HEADING_CHARS:
            sections.append(FormSection(kind="heading", label=pending_question))
        pending_question = None

    while index < len(lines):
        line = lines[index]
        # A checkbox table: header row, then rows of boxes.
        if _is_matrix_row(line) and index > 0 and len(lines[index - 1].cells) >= 3:
            header = lines[index - 1].cells
            columns = [c for c in header[1:] if c]
            rows: list[str] = []
            while index < len(lines) and _is_matrix_row(lines[index]):
                rows.append(lines[index].cells[0])
                index += 1
            label = pending_question or header[0] or "Tabell"
            pending_question = None
            sections.append(
                FormSection(
                    kind="matrix",
                    label=label,
                    field=_key(label, keys),
                    options=[ChoiceOption(value=c, label=c) for c in columns],
                    rows=rows,
                )
            )
            continue
        if len(line.cells) >= 3 and index + 1 < len(lines) and _is_matrix_row(lines[index + 1]):
            index += 1  # the table's header row: read with the rows
            continue
        # Boxes: a choice group under its question.
        options = _options(line.text)
        if options is not None:
            groups = [options]
            one_line = len(options) > 1
            index += 1
            while index < len(lines) and (more := _options(lines[index].text)) is not None:
                groups.append(more)
                index += 1
                one_line = False
            labels = [option for group in groups for option in group]
            question = pending_question or labels[0]
            pending_question = None
            choice_options = [ChoiceOption(value=label, label=label) for label in labels]
            if one_line and answer_space_follows(index):
                sections.append(
                    FormSection(
                        kind="text",
                        label=question,
                        field=_key(question, keys, "tekst"),
                        choice_field=_key(question, keys),
                        choices=choice_options,
                    )
                )
                index += 1
            else:
                multiple = bool(re.search(MULTIPLE_CHOICE_WORDS, question, re.IGNORECASE))
                sections.append(
                    FormSection(
                        kind="checkboxes",
                        label=question,
                        field=_key(question, keys),
                        options=choice_options,
                        multiple=multiple,
                    )
                )
            continue
        # A table row "Label: | (empty)" or "Label: | placeholder": an inline field.
        if (
            line.cells
            and line.cells[0].endswith(":")
            and all(not c or _is_placeholder(c, placeholders) for c in line.cells[1:])
        ):
            flush_heading()
            label = line.cells[0]
            sections.append(FormSection(kind="inline", label=label, field=_key(label, keys)))
            index += 1
            continue
        text = line.text
        if len(text) > MAX_LABEL_CHARS or _is_placeholder(text, placeholders):
            flush_heading()
            index += 1
            continue
        stripped = _strip_placeholders(text, placeholders)
        has_inline_space = stripped != text.strip()
        if has_inline_space and stripped.endswith(":"):
            flush_heading()
            sections.append(FormSection(kind="inline", label=stripped, field=_key(stripped, keys)))
            index += 1
            continue
        if answer_space_follows(index + 1):
            flush_heading()
            kind: Literal["inline", "text"] = "inline" if text.endswith(":") and len(text) <= 80 else "text"
            sections.append(FormSection(kind=kind, label=text, field=_key(text, keys)))
            index += 2
            continue
        if text.endswith(":") and len(text) <= 80 and _next_is_label(lines, index + 1, placeholders):
            flush_heading()
            sections.append(FormSection(kind="inline", label=text, field=_key(text, keys)))
            index += 1
            continue
        flush_heading()
        pending_question = text
        index += 1
    flush_heading()
    answerable = [s for s in sections if s.kind != "heading"]
    if len(answerable) < MIN_FIELDS:
        raise LearnError(
            f"Fant ikke noe skjema i {filename or 'filen'}: ingen ledetekster med svarfelt eller avkrysningsbokser."
        )
    sections = _drop_leading_headings(sections)
    return FormProfile(
        name=name,
        title=title or _first_heading(sections) or name,
        case_number=case_number,
        min_labels_for_form=max(2, min(len(sections), (len(sections) + 1) // 2)),
        placeholders=placeholders,
        sections=sections,
    )


def _next_is_label(lines: list[_Line], position: int, placeholders: list[str]) -> bool:
    """An empty inline field: the next line is a label of its own (ends with ":" or a question), not text."""
    if position >= len(lines):
        return True
    following = lines[position].text
    return following.endswith((":", "?")) and _options(following) is None


def _drop_leading_headings(sections: list[FormSection]) -> list[FormSection]:
    """The title and instructions before the first field are headings too; keep at most the last two of them
    (they anchor the form without making it fragile)."""
    first = next((i for i, s in enumerate(sections) if s.kind != "heading"), len(sections))
    return sections[max(0, first - 2) :]


def _first_heading(sections: list[FormSection]) -> str | None:
    return next((s.label for s in sections if s.kind == "heading"), None)


_FOLD = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "Æ": "ae", "Ø": "o", "Å": "a"})


def _key(label: str, taken: set[str], suffix: str | None = None) -> str:
    """A stable field key from the label: lower-case ASCII words joined by "_" (unique in the profile)."""
    folded = unicodedata.normalize("NFKD", label.translate(_FOLD)).encode("ascii", "ignore").decode().lower()
    words = re.findall(r"[a-z0-9]+", folded)
    base = "_".join(words)[:40].strip("_") or "felt"
    if suffix:
        base = f"{base}_{suffix}"
    key, number = base, 2
    while key in taken:
        key, number = f"{base}_{number}", number + 1
    taken.add(key)
    return key


def profile_to_toml(profile: FormProfile) -> str:
    """The profile in the format of parsers/forms/profiles/*.toml (for a person to read and edit)."""
    out = [
        "# Form profile learned from the blank form. It may be edited; see parsers/forms/profiles/.",
        f"name = {_toml(profile.name)}",
        f"title = {_toml(profile.title)}",
    ]
    if profile.case_number:
        out.append(f"case_number = {_toml(profile.case_number)}")
    out.append(f"min_labels_for_form = {profile.min_labels_for_form}")
    out.append("placeholders = [" + ", ".join(_toml(p) for p in profile.placeholders) + "]")
    for section in profile.sections:
        out.append("")
        out.append("[[sections]]")
        data = section.model_dump(exclude_defaults=True)
        for key in ("kind", "label", "field", "choice_field", "multiple"):
            if key in data:
                out.append(f"{key} = {_toml(data[key])}")
        if section.rows:
            out.append("rows = [\n" + "".join(f"    {_toml(r)},\n" for r in section.rows) + "]")
        for key, options in (("options", section.options), ("choices", section.choices)):
            if options:
                out.append(
                    f"{key} = [\n"
                    + "".join(f"    {{ value = {_toml(o.value)}, label = {_toml(o.label)} }},\n" for o in options)
                    + "]"
                )
    return "\n".join(out) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
