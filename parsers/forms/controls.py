"""Form controls read from a document's structure: Word content controls (w:sdt) and PDF form fields (AcroForm).

A reader renders each control into the document's lines from its stored state (a checkbox as ☒/☐ from w14:checked
or the field's /V, a drop-down as its options with the chosen one ticked, an empty or placeholder control as
nothing) and marks where it sits with one private-use character. `place_controls` strips the marks and records
each control's offset in the text, so the form parser can tell which field's answer came from which control
(`read_by`), and take a text field's value from the control itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from .text_lines import TextLine

ControlKind = Literal["text", "date", "drop_down", "checkbox", "table_cell"]
# How a control's answer was read (a FieldAnswer.read_by value).
ControlSource = Literal["content_control", "acroform", "table"]

_MARK_BASE = 0xF0000  # Supplementary Private Use Area-A: never in a real document's text
_MARK_LIMIT = 0xFFFFD


@dataclass
class FormControl:
    kind: ControlKind
    source: ControlSource
    # The control's own name: a content control's tag, a PDF field's name.
    name: str | None = None
    # Its title: a content control's alias, a PDF field's tooltip.
    title: str | None = None
    # A text, date or drop-down control's answer (None: empty or showing its placeholder); paragraphs "\n\n".
    value: str | None = None
    checked: bool | None = None
    options: list[str] = field(default_factory=list)
    # A PDF checkbox's or radio button's export value (its on-state name, or its /Opt entry).
    export: str | None = None
    # Position in the document text (lines_to_text of the placed lines); -1 when it could not be placed.
    offset: int = -1

    @property
    def answers_text(self) -> bool:
        return self.kind in ("text", "date")

    @property
    def answers_choice(self) -> bool:
        return self.kind in ("checkbox", "drop_down")


def mark(index: int) -> str:
    return chr(_MARK_BASE + index) if _MARK_BASE + index <= _MARK_LIMIT else ""


def _mark_index(char: str) -> int | None:
    code = ord(char)
    return code - _MARK_BASE if _MARK_BASE <= code <= _MARK_LIMIT else None


def choice_rendering(options: list[str], chosen: str | list[str] | None) -> str:
    """A drop-down or list box as a line of boxes: "☒ chosen ☐ other ..." (every chosen option ticked; an answer
    not among the options is kept as text)."""
    from .glyphs import CANONICAL_CHECKED, CANONICAL_UNCHECKED

    given = [chosen] if isinstance(chosen, str) else list(chosen or [])
    wanted = {c.strip().casefold() for c in given if c.strip()}
    parts = [f"{CANONICAL_CHECKED if o.strip().casefold() in wanted else CANONICAL_UNCHECKED} {o}" for o in options]
    known = {o.strip().casefold() for o in options}
    parts.extend(c.strip() for c in given if c.strip() and c.strip().casefold() not in known)
    return " ".join(parts)


def strip_marks(text: str) -> str:
    return "".join(c for c in text if _mark_index(c) is None)


# Any mark: a line without one (most lines) is not looked at character by character.
_MARKS = re.compile(f"[{chr(_MARK_BASE)}-{chr(_MARK_LIMIT)}]")


def place_controls(lines: list[TextLine], controls: list[FormControl]) -> list[TextLine]:
    """The lines without their marks (lines left empty dropped); each marked control gets its offset in
    lines_to_text of the result. A control alone on a line is placed at the end of the line before it."""
    out: list[TextLine] = []
    length = 0  # of lines_to_text(out)
    for line in lines:
        found: list[tuple[int, int]] = []  # (control index, offset in the stripped line)
        if _MARKS.search(line.text) is None:
            text = " ".join(line.text.split())
        else:
            kept: list[str] = []
            for char in line.text:
                index = _mark_index(char)
                if index is None:
                    kept.append(char)
                else:
                    found.append((index, len(" ".join("".join(kept).split()))))
            text = " ".join("".join(kept).split())
        if not text:
            for index, _column in found:
                if 0 <= index < len(controls):
                    controls[index].offset = length
            continue
        start = length + (0 if not out else (2 if line.paragraph_start else 1))
        for index, column in found:
            if 0 <= index < len(controls):
                controls[index].offset = start + min(column + (1 if column else 0), len(text))
        out.append(line if text == line.text else TextLine(text, line.paragraph_start, line.page))
        length = start + len(text)
    return out
