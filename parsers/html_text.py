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
        "br", "div", "tr", "dd", "dt", "hr", "section", "article", "header", "footer", "nav", "aside",
        "main", "figure", "figcaption", "address", "form", "fieldset", "center", "caption", "tbody",
        "thead", "tfoot", "body", "html",
    }
)
# Elements that separate paragraphs (blank line).
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "ul", "ol", "dl", "pre"})
_CELL = frozenset({"td", "th"})

# `[^<>]*` stops at the next "<", so a failed attempt never scans past it: overall linear.
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:_-]{0,40})(?=[\s/>])[^<>]*>")
_DECLARATION = re.compile(r"<[!?][^<>]*>")
_WHITESPACE = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_SPACES_AROUND_NEWLINE = re.compile(r"[ \t]*\n[ \t]*")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def html_to_text(markup: str) -> str:
    """Readable text of an HTML document: scripts/styles dropped, blocks -> newlines, entities decoded."""
    chunks: list[str] = []
    pos = 0
    length = len(markup)
    pre_depth = 0

    def emit_text(raw: str) -> None:
        text = html.unescape(raw)
        if pre_depth:
            chunks.append(text.replace("\r\n", "\n").replace("\u00a0", " "))
        else:
            chunks.append(_WHITESPACE.sub(" ", text))

    while pos < length:
        lt = markup.find("<", pos)
        if lt < 0:
            emit_text(markup[pos:])
            break
        if lt > pos:
            emit_text(markup[pos:lt])
        if markup.startswith("<!--", lt):
            end = markup.find("-->", lt + 4)
            pos = length if end < 0 else end + 3
            continue
        tag = _TAG.match(markup, lt)
        if tag is None:
            declaration = _DECLARATION.match(markup, lt)
            if declaration is not None:
                pos = declaration.end()
            else:  # a lone "<" is text
                emit_text("<")
                pos = lt + 1
            continue
        pos = tag.end()
        closing = tag.group(1) == "/"
        name = tag.group(2).lower()
        if not closing and name in _HIDDEN_CONTENT:
            end_tag = re.compile(r"</" + re.escape(name) + r"\s*>", re.IGNORECASE).search(markup, pos)
            pos = length if end_tag is None else end_tag.end()
            continue
        if name == "pre":
            pre_depth = max(0, pre_depth - 1) if closing else pre_depth + 1
        if name == "li":
            if not closing:
                chunks.append("\n- ")
        elif name in _PARAGRAPH:
            chunks.append("\n\n")
        elif name in _LINE_BREAK:
            chunks.append("\n")
        elif name in _CELL:
            chunks.append(" ")
    text = "".join(chunks)
    text = _SPACES_AROUND_NEWLINE.sub("\n", text)
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()
