"""Turn the raw text of one form section into a field value."""

from __future__ import annotations

import functools
import re

_CONJUNCTIONS_AFTER_HYPHEN = re.compile(r"(?:og|eller|and|or|samt|enn|til|som)\b", re.IGNORECASE)


def flexible_pattern(phrase: str) -> str:
    """Regex for a phrase with any whitespace (or none) between words and after hyphens."""
    words = phrase.split()
    parts = []
    for index, word in enumerate(words):
        optional_colon = index == len(words) - 1 and word.endswith(":") and len(word) > 1
        core = word[:-1] if optional_colon else word
        escaped = re.escape(core).replace(r"\-", r"-\s*").replace(r"/", r"\s*/\s*")
        parts.append(escaped + (r"\s*:?" if optional_colon else ""))
    return r"\s*".join(parts)


@functools.lru_cache(maxsize=64)
def placeholder_regex(placeholders: tuple[str, ...]) -> re.Pattern[str] | None:
    if not placeholders:
        return None
    return re.compile("|".join(flexible_pattern(p) for p in placeholders), re.IGNORECASE)


def join_wrapped_lines(lines: list[str]) -> str:
    """Join the visual lines of one paragraph with single spaces; a line ending in a hyphen
    inside a word ("e-" + "helse") joins without a space unless a conjunction follows
    ("primær-" + "og sekundær")."""
    text = ""
    for line in lines:
        if not text:
            text = line
        elif re.search(r"\w-$", text) and re.match(r"\w", line) and not _CONJUNCTIONS_AFTER_HYPHEN.match(line):
            text += line
        else:
            text += " " + line
    return text


def clean_section_text(
    raw: str, placeholders: tuple[str, ...], *, paragraphs: bool = True, compact: bool = False
) -> str | None:
    pattern = placeholder_regex(placeholders)
    if pattern is not None:
        raw = pattern.sub(" ", raw)
    blocks = []
    for block in re.split(r"\n[ \t]*\n", raw):
        lines = [" ".join(line.split()) for line in block.split("\n")]
        joined = join_wrapped_lines([line for line in lines if line])
        if joined:
            blocks.append(joined)
    if not blocks:
        return None
    if compact:
        return "".join("".join(blocks).split()) or None
    return ("\n\n" if paragraphs else " ").join(blocks)
