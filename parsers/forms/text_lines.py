"""The reader-independent form of a document: lines of text with paragraph breaks."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TextLine:
    text: str
    # A blank line (paragraph break) comes before this line.
    paragraph_start: bool
    page: int = 0


_SPACE_LIKE = dict.fromkeys(map(ord, "\u00a0\u2007\u202f\u2009\u200a\u2002\u2003\u2004\u2005\u2006\t\u000b\u000c"), " ")
_DROPPED = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\ufeff\u2060\x00"), None)
# Any character of either table: str.translate looks up every character of the text in its table (raising and
# catching a KeyError for each one not in it), so a text without any is not translated.
_TRANSLATED = re.compile("[" + "".join(re.escape(chr(code)) for code in (*_SPACE_LIKE, *_DROPPED)) + "]")


def normalise_line(text: str) -> str:
    """NFC, odd spaces to plain spaces, soft hyphens and zero-width characters removed, runs of spaces collapsed."""
    text = unicodedata.normalize("NFC", text)
    if _TRANSLATED.search(text):
        text = text.translate(_SPACE_LIKE).translate(_DROPPED)
    # Ligatures from PDF fonts (ﬁ, ﬂ) but not other compatibility forms.
    text = text.replace("\ufb01", "fi").replace("\ufb02", "fl").replace("\ufb00", "ff")
    return " ".join(text.split())


def lines_to_text(lines: list[TextLine]) -> str:
    """Join lines: "\\n" between wrapped lines, "\\n\\n" before a paragraph."""
    parts: list[str] = []
    for line in lines:
        if not line.text:
            continue
        if parts:
            parts.append("\n\n" if line.paragraph_start else "\n")
        parts.append(line.text)
    return "".join(parts)
