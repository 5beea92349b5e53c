"""Checkbox glyphs: which characters mean a ticked or an empty box, and symbol-font decoding."""

from __future__ import annotations

import re

CANONICAL_CHECKED = "\u2612"  # ☒
CANONICAL_UNCHECKED = "\u2610"  # ☐

CHECKED_GLYPHS = frozenset(
    "\u2612\u2611\u2713\u2714\u2717\u2718\u22a0\u2297\u25a3\u25a0\u2613\U0001f5f9\U0001f5f7\U0001f5f8"
)
UNCHECKED_GLYPHS = frozenset("\u2610\u25a1\u25fb\u2751\u274f\u2752\u2750\u25a2\u2b1c\u25fd\u25ab")

# Symbol fonts without a real Unicode mapping: font char code -> Unicode meaning.
_WINGDINGS = {
    0x6E: "\u25a0",
    0x6F: "\u25a1",
    0x70: "\u25fb",
    0x71: "\u2751",
    0x72: "\u2752",
    0x78: "\u2612",
    0xA8: "\u25fb",
    0xFB: "\u2717",
    0xFC: "\u2713",
    0xFD: "\u2612",
    0xFE: "\u2611",
}
_WINGDINGS_2 = {
    0x4F: "\u2717",
    0x50: "\u2713",
    0x51: "\u2612",
    0x52: "\u2611",
    0x53: "\u2612",
    0x54: "\u2612",
    0xA3: "\u25a1",
}
_ZAPF_DINGBATS = {
    0x33: "\u2713",
    0x34: "\u2714",
    0x37: "\u2717",
    0x38: "\u2718",
    0x6E: "\u25a0",
    0x6F: "\u274f",
    0x70: "\u2750",
    0x71: "\u2751",
    0x72: "\u2752",
}
# Characters that are only suspicious when they come from a symbol font (Latin-1 code points).
SYMBOL_FONT_CODES = frozenset(chr(c) for table in (_WINGDINGS, _WINGDINGS_2, _ZAPF_DINGBATS) for c in table)


def is_symbol_font(fontname: str | None) -> bool:
    lowered = (fontname or "").lower()
    return "wingding" in lowered or "dingbat" in lowered


def decode_symbol_char(char: str, fontname: str | None = None) -> str:
    """Map a character drawn in a symbol font (or Word's private-use F0xx range) to its Unicode meaning."""
    if len(char) != 1:
        return char
    code = ord(char)
    if 0xF020 <= code <= 0xF0FF:
        code -= 0xF000
        table = _table_for(fontname) or _WINGDINGS
        return table.get(code, char)
    if fontname and is_symbol_font(fontname):
        symbol_table = _table_for(fontname)
        if symbol_table is not None:
            return symbol_table.get(code, char)
    return char


def _table_for(fontname: str | None) -> dict[int, str] | None:
    lowered = (fontname or "").lower()
    if "wingdings2" in lowered.replace(" ", "").replace("-", ""):
        return _WINGDINGS_2
    if "wingding" in lowered:
        return _WINGDINGS
    if "dingbat" in lowered:
        return _ZAPF_DINGBATS
    return None


def glyph_state(token: str) -> bool | None:
    """True for a ticked box, False for an empty one, None when the token says nothing."""
    token = token.strip()
    if not token:
        return None
    if len(token) == 1:
        decoded = decode_symbol_char(token)
        if decoded in CHECKED_GLYPHS:
            return True
        if decoded in UNCHECKED_GLYPHS:
            return False
        if decoded in "xX":
            return True
        return None
    if token.startswith("[") or token.startswith("("):
        inner = token[1:-1].strip()
        if token.startswith("(cid:"):
            return None
        return bool(inner)
    return None


_GLYPH_CHARS = "".join(sorted(CHECKED_GLYPHS | UNCHECKED_GLYPHS))
# One checkbox token: a glyph, a private-use symbol glyph, "(cid:N)" from fonts without a text
# map, or a typed "[X]" / "[ ]" / "(x)".
GLYPH_TOKEN_PATTERN = (
    r"(?:[" + re.escape(_GLYPH_CHARS) + r"\uf020-\uf0ff]"
    r"|\(cid:\d+\)"
    r"|\[[ \txX\u2713\u2714]?\]|\([ \txX]?\))"
)
