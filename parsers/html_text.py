"""HTML -> plain text for HTML-only mails.

A small linear-time tokenizer instead of ``html.parser.HTMLParser``: on CPython 3.11 the stdlib parser is
quadratic on inputs like ``"<!" * 10**6`` (minutes) and can even raise ``AssertionError`` on ``"<![<!["``,
and mail bodies are attacker-controlled. Entities are decoded with ``html.unescape`` (stdlib).
"""

from __future__ import annotations

import html
import re

# Elements whose content is never shown to a reader.
_HIDDEN_CONTENT = frozenset({"script", "style", "title", "template", "noscript", "xml"})
# Elements that end a line.
_LINE_BREAK = frozenset(
    {
        "div",
        "tr",
        "dd",
        "dt",
        "hr",
        "section",
        "article",
        "header",
        "footer",
        "nav",
        "aside",
        "main",
        "figure",
        "figcaption",
        "address",
        "form",
        "fieldset",
        "center",
        "caption",
        "tbody",
        "thead",
        "tfoot",
        "body",
        "html",
    }
)
# Elements that separate paragraphs (blank line).
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "ul", "ol", "dl", "pre"})
_CELL = frozenset({"td", "th"})

# `[^<>]*` stops at the next "<", so a failed attempt never scans past it: overall linear.
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:_-]{0,40})(?=[\s/>])[^<>]*>")
_DECLARATION = re.compile(r"<[!?][^<>]*>")
# Block boundaries are first written as marks (control characters removed from the input) and merged at the end.
_LINE_MARK, _PARAGRAPH_MARK, _CELL_MARK = "\x00", "\x01", "\x02"
_MARKS_REMOVED = {0: None, 1: None, 2: None}
_BLOCK_RUN = re.compile(r"[ \t\x02]*[\x00\x01][\x00\x01\x02 \t\n]*")
_CELL_RUN = re.compile(r"\x02+")
_WHITESPACE = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_SPACES_AROUND_NEWLINE = re.compile(r"[ \t]*\n[ \t]*")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def html_to_text(markup: str) -> str:
    """Readable text of an HTML document: scripts/styles dropped, blocks -> newlines, entities decoded."""
    markup = markup.translate(_MARKS_REMOVED)
    chunks: list[str] = []
    pos = 0
    length = len(markup)
    pre_depth = 0

    def emit_text(raw: str) -> None:
        if not raw:
            return
        text = html.unescape(raw)
        if pre_depth:
            chunks.append(text.replace("\r\n", "\n").replace("\u00a0", " "))
        else:
            chunks.append(_WHITESPACE.sub(" ", text))

    text_start = 0  # start of text not yet emitted; a lone "<" stays part of it
    while True:
        lt = markup.find("<", pos)
        if lt < 0:
            break
        if markup.startswith("<!--", lt):
            emit_text(markup[text_start:lt])
            end = markup.find("-->", lt + 4)
            pos = text_start = length if end < 0 else end + 3
            continue
        tag = _TAG.match(markup, lt)
        if tag is None:
            declaration = _DECLARATION.match(markup, lt)
            if declaration is not None:
                emit_text(markup[text_start:lt])
                pos = text_start = declaration.end()
            else:
                pos = lt + 1
            continue
        emit_text(markup[text_start:lt])
        pos = text_start = tag.end()
        closing = tag.group(1) == "/"
        name = tag.group(2).lower()
        if not closing and name in _HIDDEN_CONTENT:
            end_tag = re.compile(r"</" + re.escape(name) + r"\s*>", re.IGNORECASE).search(markup, pos)
            pos = text_start = length if end_tag is None else end_tag.end()
            continue
        if name == "pre":
            pre_depth = max(0, pre_depth - 1) if closing else pre_depth + 1
        if name == "br":
            chunks.append("\n")
        elif name == "li":
            if not closing:
                chunks.append(_LINE_MARK + "- ")
        elif name in _PARAGRAPH:
            chunks.append(_PARAGRAPH_MARK)
        elif name in _LINE_BREAK:
            chunks.append(_LINE_MARK)
        elif name in _CELL:
            chunks.append(_CELL_MARK)
    emit_text(markup[text_start:])
    text = "".join(chunks)
    # Adjacent block boundaries (</div><div>) make one break, not several.
    text = _BLOCK_RUN.sub(lambda m: "\n\n" if _PARAGRAPH_MARK in m.group() else "\n", text)
    text = _CELL_RUN.sub(" ", text)
    text = _SPACES_AROUND_NEWLINE.sub("\n", text)
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip(" \n")
