"""Find a form's printed labels in OCR text despite letter errors (æøå read as ae/o/a, "l" for "1", ...).

Works on a text made of lines; returns character spans. Labels are looked for at line starts
(after at most a little junk, such as a checkbox read as letters), options anywhere in a line.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz

# Similarity (0..100, Indel ratio) a label must reach; short labels need more, since one
# wrong letter is a larger share of them.
LONG_LABEL_CUTOFF = 84.0
SHORT_LABEL_CUTOFF = 89.0
SHORT_LABEL_CHARS = 14
# Junk tolerated before a label at a line start ("|", "E", a box read as "XI").
MAX_JUNK_BEFORE_LABEL = 4
# Letters glued before an option label (its checkbox read as "XI", "E", "[1").
MAX_GLUED_JUNK = 3


@dataclass(frozen=True, slots=True)
class LabelMatch:
    start: int
    end: int
    score: float


def cutoff_for(label: str) -> float:
    return SHORT_LABEL_CUTOFF if len(label) < SHORT_LABEL_CHARS else LONG_LABEL_CUTOFF


def _folded(text: str) -> str:
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else text


def line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(i + 1 for i, char in enumerate(text) if char == "\n")
    return starts


def find_label(
    text: str, label: str, cursor: int = 0, *, at_line_start: bool = True, starts: list[int] | None = None
) -> LabelMatch | None:
    """The first place at or after `cursor` where `label` stands (fuzzily), as a span of `text`."""
    if not label.strip():
        return None
    starts = starts if starts is not None else line_starts(text)
    folded_label = _folded(label)
    folded_text = _folded(text)
    cutoff = cutoff_for(label)
    for index, line_start in enumerate(starts):
        line_end = starts[index + 1] - 1 if index + 1 < len(starts) else len(text)
        if line_end <= cursor:
            continue
        begin = max(cursor, line_start)
        window_end = min(len(text), line_end + len(label) + 10)
        alignment = fuzz.partial_ratio_alignment(folded_label, folded_text[begin:window_end], score_cutoff=cutoff)
        if alignment is None:
            continue
        start = begin + alignment.dest_start
        if start >= line_end:
            continue  # the best place is on a later line; that line gets its own turn
        if at_line_start and len(text[line_start:start].strip()) > MAX_JUNK_BEFORE_LABEL:
            continue
        if not at_line_start and start - word_start(text, start) > MAX_GLUED_JUNK:
            continue  # inside a longer word ("kommune" in "Fylkeskommune")
        end = _best_end(text, folded_text, folded_label, start, begin + alignment.dest_end)
        score = fuzz.ratio(folded_label, folded_text[start:end])
        return LabelMatch(start, end, score)
    return None


def word_start(text: str, position: int) -> int:
    """Where the word holding `position` begins."""
    while position > 0 and text[position - 1] not in " \n":
        position -= 1
    return position


def _best_end(text: str, folded_text: str, folded_label: str, start: int, end: int) -> int:
    """The word boundary near `end` that makes the span most like the label (OCR may add or drop letters)."""
    slack = 4 + len(folded_label) // 10
    nearby = range(max(start + 1, end - slack), min(len(text), end + slack) + 1)
    candidates = [e for e in nearby if e == len(text) or text[e] in " \n"]
    if not candidates:
        return end
    return max(candidates, key=lambda e: (fuzz.ratio(folded_label, folded_text[start:e]), -abs(e - end)))
