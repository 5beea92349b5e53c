"""Mail bytes -> Envelope: a tolerant, bounded MIME reader.

Why not ``email.parser``: it raises ``RecursionError`` on deeply nested input (2,000 nested multiparts or
3,000 nested message/rfc822 parts), offers no part/depth caps, and its header classes raise on odd input.
This module splits the MIME structure itself (linear per nesting level, nesting capped at 20) and uses only
small pure stdlib helpers (``email.utils.parsedate_tz``, ``base64``, ``binascii``, ``codecs``).

Everything here is pure: bytes in, dataclasses out, no I/O. ``parse_envelope`` never raises.

Decisions:
* Body: inline text/plain or text/html leaves without a filename (and not PDF by content). In
  multipart/alternative the alternative containing text/plain wins, the other renderings are dropped (not
  attachments); multipart/related uses its first part; other multiparts concatenate their body parts.
* Attachments: every other leaf, in document order, plus the attachments of forwarded messages (depth >= 1).
  A forwarded message's own body is in ``forwarded[i].body_text``, not an attachment of the outer mail.
* Caps: nesting 20 (deeper container -> one opaque attachment with the raw part), 1000 parts per parse
  (forwarded messages included), 2000 header fields per part, 10,000 characters per header value,
  100 distinct defect notes (repeats counted). Defects of forwarded messages are repeated in the outer
  envelope with the prefix "forwarded message: ".
* Charsets: declared -> utf-8 -> (declared with replacement) -> cp1252 -> latin-1; iso-8859-1 is read as
  cp1252 (WHATWG), codecs that are no mail charsets (punycode, unicode-escape, base64...) are refused.
"""

from __future__ import annotations

import binascii
import codecs
import hashlib
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_tz

from postmottak.parsers.html_text import html_to_text

MAX_DEPTH = 20
MAX_PARTS = 1000
MAX_HEADER_VALUE = 10_000
MAX_HEADER_FIELDS = 2_000
MAX_FILENAME_BYTES = 255
PDF_SNIFF_WINDOW = 1024


@dataclass(frozen=True)
class Address:
    name: str
    addr: str


@dataclass
class Attachment:
    filename: str | None
    content_type: str
    data: bytes
    size: int
    sha256: str
    is_pdf: bool
    inline: bool
    depth: int
    content_id: str | None = None  # normalised "<...>" from Content-ID, for inline images


@dataclass
class Envelope:
    message_id: str | None = None
    subject: str = ""
    sender: Address | None = None
    reply_to: list[Address] = field(default_factory=list)
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    return_path: str | None = None
    date: datetime | None = None
    received_at: datetime | None = None
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body_text: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    forwarded: list["Envelope"] = field(default_factory=list)
    is_report: bool = False
    report_type: str | None = None
    dsn_original_message_id: str | None = None
    # A delivery status report (RFC 3464) that says delivery failed - not merely delayed, relayed or delivered - and
    # the Status and Diagnostic-Code of the first failed recipient. A report without per-recipient fields counts as
    # failed. Only meaningful when is_report.
    dsn_failed: bool = False
    dsn_details: str = ""
    defects: list[str] = field(default_factory=list)
    body_content_type: str | None = None  # "text/plain" or "text/html" (what body_text came from), None without body


# --------------------------------------------------------------------------------------------------
# charsets


# Labels mail software uses that Python does not know, or where the WHATWG mapping is the better guess
# (iso-8859-1 mail routinely contains cp1252 punctuation such as the en dash).
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "x-sjis": "shift_jis",
    "x-euc-jp": "euc_jp",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "x-mac-roman": "mac_roman",
    "windows-874": "cp874",
    "x-user-defined": "latin-1",
}
# Python text codecs that are not mail charsets and are either dangerous to feed attacker data
# (quadratic punycode/idna) or would interpret escapes.
_REFUSED_CODECS = frozenset(
    {"punycode", "idna", "unicode-escape", "raw-unicode-escape", "undefined", "mbcs", "oem", "palmos"}
)


def _lookup_codec(charset: str | None) -> str | None:
    if not charset:
        return None
    label = charset.strip().strip("\"'").strip().lower()
    if not label or len(label) > 40:
        return None
    label = _CHARSET_ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except Exception:
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED_CODECS:
        return None
    return info.name


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text of ``data``: declared charset, else utf-8, else cp1252, else latin-1 (never fails)."""
    codec = _lookup_codec(charset)
    if codec is not None:
        try:
            return data.decode(codec)
        except Exception:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if codec is not None:  # a known charset with a few bad bytes: keep the charset, mark the bad bytes
        try:
            return data.decode(codec, errors="replace")
        except Exception:
            pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1", errors="replace")


def _decode_header_bytes(raw: bytes) -> str:
    # RFC 6532 allows raw UTF-8 in headers; older software sends raw 8-bit cp1252/latin-1.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


# --------------------------------------------------------------------------------------------------
# RFC 2047 encoded words

_ENCODED_WORD = re.compile(r"=\?([^?\s*]{1,40})(?:\*[^?\s]*)?\?([bBqQ])\?([^?]*)\?=")
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_JUNK = bytes(b for b in range(256) if b not in _B64_ALPHABET)  # padding "=" included
_B64_CHUNK = 1 << 20
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")


def _b64_lenient(data: bytes | memoryview) -> bytes:
    """Every byte outside the base64 alphabet (padding too) is dropped, a dangling last character as well.

    Decoded in chunks of whole quads, so a 30 MB part is never copied or cleaned as a whole (decoding alphabet-only
    quads chunk by chunk gives exactly the bytes of decoding them at once); BytesIO hands its buffer over uncopied."""
    view = memoryview(data)
    out = io.BytesIO()
    carry = b""
    try:
        for offset in range(0, len(view), _B64_CHUNK):
            cleaned = carry + bytes(view[offset : offset + _B64_CHUNK]).translate(None, _B64_JUNK)
            whole = len(cleaned) - len(cleaned) % 4
            out.write(binascii.a2b_base64(cleaned[:whole]))
            carry = cleaned[whole:]
        if len(carry) % 4 == 1:
            carry = carry[:-1]
        out.write(binascii.a2b_base64(carry + b"=" * (-len(carry) % 4)))
    except (binascii.Error, ValueError):
        return b""
    return out.getvalue()


def _q_decode(text: str) -> bytes:
    raw = text.encode("utf-8", errors="replace").replace(b"_", b" ")
    return _QP_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


def decode_rfc2047(value: str) -> str:
    """Decode encoded words; whitespace between adjacent encoded words is dropped and their bytes are joined
    before decoding when they share a charset (mailers split multi-byte characters across words)."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: list[tuple[str, bytearray]] = []

    def flush() -> None:
        for charset, data in pending:
            out.append(decode_bytes(bytes(data), charset))
        pending.clear()

    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        if not (pending and between.strip() == ""):
            flush()
            out.append(between)
        charset = match.group(1).lower()
        text = match.group(3)
        if match.group(2) in "bB":
            data = _b64_lenient(text.encode("ascii", errors="ignore"))
        else:
            data = _q_decode(text)
        if pending and pending[-1][0] == charset:
            pending[-1][1].extend(data)
        else:
            pending.append((charset, bytearray(data)))
        pos = match.end()
    flush()
    out.append(value[pos:])
    return "".join(out)


_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LINE_BREAKS = re.compile(r"[\r\n\t]+")


def _clean_line(text: str) -> str:
    """One-line text: line breaks and tabs -> space, other control characters removed, ends stripped."""
    return _CONTROL_CHARS.sub("", _LINE_BREAKS.sub(" ", text)).strip()


# --------------------------------------------------------------------------------------------------
# header section

_HEADER_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_BLANK_LINE = re.compile(rb"\n\r?\n")
_UNIX_FROM = re.compile(rb"From [^\s:]+(?:[ \t]|\r?\n)")  # mbox separator line "From sender date", not "From : x"


@dataclass
class _HeaderField:
    name: str  # lower-cased
    value: str  # unfolded, raw-decoded (encoded words still encoded), capped


def _split_header_section(
    raw: bytes | memoryview, defects: list[str], allow_unix_from: bool
) -> tuple[list[_HeaderField], memoryview]:
    """Header fields and the body that follows the first blank line (or the first line that is no header).
    The body is a view into ``raw``, not a copy (a big part would otherwise be copied at every nesting level)."""
    view = memoryview(raw)
    start = 0
    if allow_unix_from and _UNIX_FROM.match(view):
        newline = _find_newline(view, 0)
        start = len(view) if newline < 0 else newline + 1
    if view[start : start + 1].tobytes() == b"\n":
        return [], view[start + 1 :]
    if view[start : start + 2].tobytes() == b"\r\n":
        return [], view[start + 2 :]
    blank = _BLANK_LINE.search(view, start)
    if blank is None:
        header_end, body_start = len(view), len(view)
    else:
        header_end, body_start = blank.start() + 1, blank.end()
    lines = bytes(view[start:header_end]).split(b"\n")
    fields: list[tuple[bytes, list[bytes]]] = []
    offset = start
    capped = False
    for index, line in enumerate(lines):
        line_length = len(line) + 1
        content = line[:-1] if line.endswith(b"\r") else line
        if not content:
            offset += line_length
            continue
        if content[:1] in (b" ", b"\t"):
            if fields and not capped:
                fields[-1][1].append(content)
            elif not fields:
                defects.append("header section starts with a continuation line; ignored")
            offset += line_length
            continue
        match = _HEADER_NAME.match(content)
        if match is None:
            if fields and index + 1 < len(lines) and _looks_like_header_line(lines[index + 1]):
                # one mangled line amid real headers: skip it rather than losing From/Subject below it
                defects.append("header line without a colon skipped")
                offset += line_length
                continue
            defects.append("line without a colon in the header section; the rest is read as body")
            body_start = offset
            break
        if len(fields) >= MAX_HEADER_FIELDS:
            if not capped:
                defects.append(f"more than {MAX_HEADER_FIELDS} header fields; the rest was skipped")
                capped = True
        else:
            fields.append((match.group(1), [content[match.end() :]]))
        offset += line_length
    result: list[_HeaderField] = []
    for name, chunks in fields:
        raw_value = b"".join(chunks)
        if len(raw_value) > 4 * MAX_HEADER_VALUE:
            raw_value = raw_value[: 4 * MAX_HEADER_VALUE]
        value = _decode_header_bytes(raw_value).strip()
        lower = name.decode("ascii").lower()
        if len(value) > MAX_HEADER_VALUE:
            value = value[:MAX_HEADER_VALUE]
            defects.append(f"header {lower} longer than {MAX_HEADER_VALUE} characters; truncated")
        result.append(_HeaderField(lower, value))
    return result, view[body_start:]


_NEWLINE = re.compile(rb"\n")


def _find_newline(view: memoryview, position: int) -> int:
    """``bytes.find(b"\\n", position)`` for a memoryview (which has no find)."""
    match = _NEWLINE.search(view, position)
    return -1 if match is None else match.start()


def _looks_like_header_line(line: bytes) -> bool:
    return line[:1] in (b" ", b"\t") or _HEADER_NAME.match(line) is not None


class _Headers:
    def __init__(self, fields: list[_HeaderField]):
        self.fields = fields
        self._first: dict[str, str] = {}
        for f in fields:
            self._first.setdefault(f.name, f.value)

    def get(self, name: str) -> str | None:
        return self._first.get(name)

    def get_all(self, name: str) -> list[str]:
        return [f.value for f in self.fields if f.name == name]


# --------------------------------------------------------------------------------------------------
# structured header values


def _split_unquoted(value: str, separator: str) -> list[str]:
    """Split on ``separator`` outside double quotes (backslash escapes honoured)."""
    if '"' not in value:  # no quotes, so no escapes either: every separator splits
        return value.split(separator)
    parts: list[str] = []
    current: list[str] = []
    in_quotes = False
    escaped = False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and in_quotes:
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            in_quotes = not in_quotes
        elif char == separator and not in_quotes:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if value.startswith('"'):
        inner = value[1:-1] if value.endswith('"') and len(value) > 1 else value[1:]
        return re.sub(r"\\(.)", r"\1", inner)
    return value


_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


def _percent_decode(text: str) -> bytes:
    raw = text.encode("utf-8", errors="replace")
    return _PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


def _parse_parameterised(value: str | None) -> tuple[str, dict[str, str]]:
    """``type/subtype; a=b; c*=utf-8''x`` -> ("type/subtype", {"a": "b", "c": "x"}) with RFC 2231 and
    RFC 2047 (in quoted values, common in practice) decoded. Main value lower-cased."""
    if not value:
        return "", {}
    pieces = _split_unquoted(value, ";")
    main = _unquote(pieces[0]).strip().lower()
    plain: dict[str, str] = {}
    extended: dict[str, str] = {}
    continuations: dict[str, dict[int, tuple[bool, str]]] = {}
    for piece in pieces[1:]:
        if "=" not in piece:
            continue
        name, _, raw_value = piece.partition("=")
        name = name.strip().lower()
        if not name:
            continue
        continuation = re.fullmatch(r"(.+?)\*(\d{1,3})(\*?)", name)
        if continuation:
            base, index, encoded = continuation.group(1), int(continuation.group(2)), bool(continuation.group(3))
            continuations.setdefault(base, {}).setdefault(index, (encoded, _unquote(raw_value)))
        elif name.endswith("*"):
            extended.setdefault(name[:-1], _unquote(raw_value))
        else:
            plain.setdefault(name, _unquote(raw_value))
    params = {name: decode_rfc2047(text) for name, text in plain.items()}
    for name, text in extended.items():
        params[name] = _decode_rfc2231(text)
    for name, segments in continuations.items():
        charset: str | None = None
        data = bytearray()
        for position, index in enumerate(sorted(segments)):
            encoded, text = segments[index]
            if encoded:
                if position == 0 and text.count("'") >= 2:
                    charset, _, text = text.split("'", 2)
                data.extend(_percent_decode(text))
            else:
                data.extend(text.encode("utf-8", errors="replace"))
        decoded = decode_bytes(bytes(data), charset or "utf-8")
        params[name] = decode_rfc2047(decoded) if charset is None else decoded
    return main, params


def _decode_rfc2231(text: str) -> str:
    """``charset'language'percent-encoded`` (RFC 2231 extended value); utf-8 when the charset is missing."""
    charset = None
    if text.count("'") >= 2:
        charset, _, text = text.split("'", 2)
    return decode_bytes(_percent_decode(text), charset or "utf-8")


_ANGLE_ID = re.compile(r"<([^<>]*)>")
_COMMENT = re.compile(r"\([^()]*\)")


def _strip_comments(value: str) -> str:
    for _ in range(10):  # nested comments, bounded
        stripped = _COMMENT.sub(" ", value)
        if stripped == value:
            break
        value = stripped
    return value


def _extract_message_ids(value: str | None, bare_needs_at: bool) -> list[str]:
    if not value:
        return []
    ids: list[str] = []
    found = _ANGLE_ID.findall(value)
    if found:
        for inner in found:
            compact = "".join(_strip_comments(inner).split())
            if compact:
                ids.append(f"<{compact}>")
        return ids
    for token in re.split(r"[\s,]+", _strip_comments(value)):
        token = token.strip("<>;")
        if token and (("@" in token) or not bare_needs_at):
            ids.append(f"<{token}>")
    return ids


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        text = re.sub(r"\s*:\s*", ":", _strip_comments(value[:300])).strip()
        parts = parsedate_tz(text)
        if parts is None:
            return None
        offset = parts[9]
        tz = timezone.utc if offset is None else timezone(timedelta(seconds=offset))
        return datetime(*parts[:6], tzinfo=tz)
    except Exception:
        return None


# --------------------------------------------------------------------------------------------------
# addresses


def normalise_domain(domain: str) -> str:
    """Lower-cased Unicode form; ``xn--`` labels decoded (bounded label length, so punycode stays cheap)."""
    domain = domain.strip().rstrip(".")
    if domain.startswith("["):  # domain literal
        return domain
    labels = []
    for label in domain.lower().split("."):
        if label.startswith("xn--") and len(label) <= 63:
            try:
                label = label[4:].encode("ascii").decode("punycode").lower()
            except Exception:
                pass
        labels.append(label)
    return unicodedata.normalize("NFC", ".".join(labels))


def normalise_address(raw: str) -> str:
    """``local@domain`` with the domain normalised; whitespace outside quotes removed."""
    text = raw.strip()
    if '"' not in text:
        text = "".join(text.split())
    text = _CONTROL_CHARS.sub("", text)
    if "@" not in text:
        return unicodedata.normalize("NFC", text)
    local, _, domain = text.rpartition("@")
    return unicodedata.normalize("NFC", local) + "@" + normalise_domain(domain)


@dataclass
class _MailboxTokens:
    display: list[str] = field(default_factory=list)
    angle: str | None = None
    comments: list[str] = field(default_factory=list)


_QUOTED_SPACE = "\x00"  # placeholder for spaces in a quoted local part outside <>


def _tokenise_address_list(value: str) -> list[_MailboxTokens]:
    items: list[_MailboxTokens] = []
    current = _MailboxTokens()
    angle: list[str] | None = None
    i = 0
    length = len(value)
    while i < length:
        char = value[i]
        if char == '"':
            j = i + 1
            buf: list[str] = []
            while j < length and value[j] != '"':
                if value[j] == "\\" and j + 1 < length:
                    j += 1
                buf.append(value[j])
                j += 1
            text = "".join(buf)
            if angle is not None:
                angle.append(f'"{text}"')
            elif j + 1 < length and value[j + 1] == "@":  # quoted local part of a bare address
                current.display.append(f'"{text.replace(" ", _QUOTED_SPACE)}"')
            else:
                current.display.append(text)
            i = j + 1
            continue
        if char == "(" and angle is None:
            depth = 1
            j = i + 1
            buf = []
            while j < length and depth:
                if value[j] == "\\" and j + 1 < length:
                    j += 1
                elif value[j] == "(":
                    depth += 1
                elif value[j] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                buf.append(value[j])
                j += 1
            current.comments.append("".join(buf))
            current.display.append(" ")
            i = j + 1
            continue
        if angle is not None:
            if char == ">":
                current.angle = "".join(angle)
                angle = None
            else:
                angle.append(char)
        elif char == "<":
            angle = []
        elif char in ",;":
            items.append(current)
            current = _MailboxTokens()
        elif char == ":":
            current.display = []  # group name: not a mailbox
        else:
            current.display.append(char)
        i += 1
    if angle is not None:
        current.angle = "".join(angle)
    items.append(current)
    return items


def _display_name(text: str) -> str:
    return " ".join(_clean_line(decode_rfc2047(text)).split())


def _mailbox_to_address(tokens: _MailboxTokens) -> Address | None:
    display = "".join(tokens.display)
    comment_name = _display_name(tokens.comments[0]) if tokens.comments else ""
    if tokens.angle is not None:
        route_free = _strip_comments(tokens.angle).strip()
        if route_free.startswith("@") and ":" in route_free:  # obsolete source route <@a,@b:user@host>
            route_free = route_free.rsplit(":", 1)[1]
        name = _display_name(display) or comment_name
        return Address(name=name, addr=normalise_address(route_free))
    compact = re.sub(r"\s*@\s*", "@", display)
    words = compact.split()
    if not words:
        return None
    with_at = [w for w in words if "@" in w]
    if with_at:
        addr_word = with_at[0]
        rest = [w for w in words if w is not addr_word]
        name = _display_name(" ".join(rest)) or comment_name
        return Address(name=name, addr=normalise_address(addr_word.replace(_QUOTED_SPACE, " ")))
    if len(words) == 1:  # e.g. "MAILER-DAEMON" without a domain
        return Address(name=comment_name, addr=normalise_address(words[0]))
    return None


def parse_address_list(value: str | None) -> list[Address]:
    """Addresses of a From/To/Cc/Reply-To value; groups flattened, unparseable entries skipped."""
    if not value:
        return []
    addresses = []
    for tokens in _tokenise_address_list(value):
        address = _mailbox_to_address(tokens)
        if address is not None:
            addresses.append(address)
    return addresses


# --------------------------------------------------------------------------------------------------
# MIME structure


@dataclass
class _Part:
    headers: _Headers
    content_type: str  # effective type used for structure ("text/plain" default)
    declared_type: str | None  # valid declared type, lower-cased
    params: dict[str, str]
    disposition: str
    filename: str | None
    depth: int  # forwarded-message depth (0 = top message)
    data: bytes = b""  # decoded payload for leaves, raw part for opaque parts
    children: list["_Part"] = field(default_factory=list)
    forwarded: Envelope | None = None
    opaque: bool = False
    container: bool = False  # a split multipart (even when it had no parts)

    @property
    def is_leaf(self) -> bool:
        return self.opaque or (not self.container and self.forwarded is None)


class _Budget:
    """Shared across one parse_envelope call, including forwarded messages."""

    def __init__(self) -> None:
        self.parts = 0
        self.exhausted = False


_UU_BEGIN = re.compile(rb"^begin[ \t]+\d+[ \t]+[^\r\n]*\r?$", re.MULTILINE)


def _uudecode(data: bytes) -> bytes:
    begin = _UU_BEGIN.search(data)
    lines = data[begin.end() :].splitlines() if begin else data.splitlines()
    out = bytearray()
    for line in lines:
        stripped = line.strip(b"\r")
        if stripped.strip() in (b"end", b"`", b""):
            if stripped.strip() == b"end":
                break
            continue
        try:
            out.extend(binascii.a2b_uu(stripped))
        except binascii.Error:
            try:  # lenient: trailing garbage (what the old uu module did)
                count = (((stripped[0] - 32) & 63) * 4 + 5) // 3
                out.extend(binascii.a2b_uu(stripped[:count]))
            except (binascii.Error, IndexError):
                pass
    return bytes(out)


def _decode_transfer_encoding(data: bytes | memoryview, encoding: str | None, defects: list[str]) -> bytes:
    label = (encoding or "").split(";")[0].strip().strip("\"'").lower().replace(" ", "-").replace("_", "-")
    if label == "base64":
        return _b64_lenient(data)
    if label == "quoted-printable":
        return binascii.a2b_qp(data)
    if label in ("x-uuencode", "uuencode", "x-uue", "uue"):
        return _uudecode(bytes(data))
    if label not in ("", "7bit", "8bit", "binary", "7-bit", "8-bit", "8bits", "7bits"):
        defects.append(f"unknown Content-Transfer-Encoding {label[:40]!r}; payload kept as is")
    return bytes(data)


def _split_multipart(body: memoryview, boundary: str, budget: _Budget, defects: list[str]) -> list[memoryview] | None:
    """The parts between boundary lines (views into ``body``), or None when no boundary line is present."""
    parts: list[memoryview] = []
    start: int | None = None
    closed = False
    for line_start, line_end, closing in _boundary_lines(body, boundary.encode("utf-8", errors="replace")):
        if start is not None:
            end = line_start
            if end > start and body[end - 1 : end].tobytes() == b"\n":
                end -= 2 if body[end - 2 : end].tobytes() == b"\r\n" else 1
            parts.append(body[start : max(start, end)])
            if budget.parts + len(parts) >= MAX_PARTS:
                if not budget.exhausted:
                    defects.append(f"more than {MAX_PARTS} MIME parts; the rest was not read")
                    budget.exhausted = True
                return parts
        if closing:
            closed = True
            break
        newline = _find_newline(body, line_end)
        start = len(body) if newline < 0 else newline + 1
    if start is None:
        return None
    if not closed:
        defects.append(f"multipart without closing boundary {boundary[:70]!r}")
        parts.append(body[start:])
    return parts


# "--" at the start of a line after the first: where a boundary line may begin. One pattern for every boundary: a
# pattern made from each mail's boundary took longer to compile than the search itself.
_LINE_DASHES = re.compile(rb"\n--")
# Lines that start with "--" but are no boundary line are looked at one by one; after this many, the rest of the body
# is searched with a pattern made for its boundary after all, so a body of nothing but such lines stays cheap.
MISSES_BEFORE_PATTERN = 64


def _boundary_lines(
    body: memoryview, boundary: bytes, misses_allowed: int = MISSES_BEFORE_PATTERN
) -> Iterator[tuple[int, int, bool]]:
    """(start, end, closing) of each line "--boundary" or "--boundary--" followed by nothing but spaces or tabs and
    a CR: what ``re.finditer(rb"^--" + re.escape(boundary) + rb"(--)?[ \t]*\r?$", body, re.MULTILINE)`` finds."""
    candidate = 0 if body[:2].tobytes() == b"--" else _next_line_dashes(body, 0)
    misses = 0
    while candidate >= 0:
        found = _boundary_line_end(body, candidate + 2, boundary)
        if found is not None:
            yield candidate, found[0], found[1]
            candidate = _next_line_dashes(body, found[0])
            continue
        misses += 1
        if misses > misses_allowed:
            pattern = re.compile(rb"^--" + re.escape(boundary) + rb"(--)?[ \t]*\r?$", re.MULTILINE)
            for match in pattern.finditer(body, candidate):  # ^ matches at `candidate`: it follows a newline
                yield match.start(), match.end(), match.group(1) is not None
            return
        candidate = _next_line_dashes(body, candidate)


def _next_line_dashes(body: memoryview, position: int) -> int:
    match = _LINE_DASHES.search(body, position)
    return -1 if match is None else match.start() + 1


def _boundary_line_end(body: memoryview, position: int, boundary: bytes) -> tuple[int, bool] | None:
    """Where the boundary line whose boundary should begin at `position` ends, and whether it is the closing one;
    None when it is no boundary line."""
    if body[position : position + len(boundary)].tobytes() != boundary:
        return None
    position += len(boundary)
    if body[position : position + 2].tobytes() == b"--":
        end = _line_end(body, position + 2)
        if end is not None:
            return end, True
    end = _line_end(body, position)
    return None if end is None else (end, False)


def _line_end(body: memoryview, position: int) -> int | None:
    """The end of the line (its LF, or the end of the body) when only spaces, tabs and a CR come before it."""
    size = len(body)
    while position < size and body[position] in (0x20, 0x09):
        position += 1
    if position < size and body[position] == 0x0D:
        position += 1
    return position if position == size or body[position] == 0x0A else None


def _content_disposition(headers: _Headers) -> tuple[str, dict[str, str]]:
    return _parse_parameterised(headers.get("content-disposition"))


_VALID_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")


def _build_part(
    raw: bytes | memoryview,
    headers: _Headers,
    body: memoryview,
    nest: int,
    msg_depth: int,
    default_type: str,
    budget: _Budget,
    defects: list[str],
) -> _Part:
    budget.parts += 1
    declared_main, params = _parse_parameterised(headers.get("content-type"))
    declared_type: str | None = declared_main if _VALID_TYPE.fullmatch(declared_main) else None
    if declared_main and declared_type is None:
        if declared_main == "text":
            declared_type = "text/plain"
        else:
            defects.append(f"invalid Content-Type {declared_main[:60]!r}; read as {default_type}")
    content_type = declared_type or default_type
    disposition, disposition_params = _content_disposition(headers)
    filename_raw = disposition_params.get("filename") or params.get("name")
    part = _Part(
        headers=headers,
        content_type=content_type,
        declared_type=declared_type,
        params=params,
        disposition=disposition,
        filename=sanitise_filename(filename_raw) if filename_raw is not None else None,
        depth=msg_depth,
    )
    is_container = content_type.startswith("multipart/") or content_type in ("message/rfc822", "message/global")
    if is_container and nest >= MAX_DEPTH:
        defects.append(f"MIME nesting deeper than {MAX_DEPTH} levels; deeper content kept as an opaque attachment")
        part.opaque = True
        part.data = bytes(raw)
        return part
    if content_type.startswith("multipart/"):
        boundary = params.get("boundary", "")
        pieces = _split_multipart(body, boundary, budget, defects) if boundary else None
        if pieces is None:
            defects.append(
                f"{content_type} without {'boundary parameter' if not boundary else 'boundary lines'}; read as text/plain"
            )
            part.content_type = "text/plain"
            part.declared_type = None
            part.data = _decode_transfer_encoding(body, headers.get("content-transfer-encoding"), defects)
            return part
        part.container = True
        child_default = "message/rfc822" if content_type == "multipart/digest" else "text/plain"
        for piece in pieces:
            if budget.parts >= MAX_PARTS:
                if not budget.exhausted:
                    defects.append(f"more than {MAX_PARTS} MIME parts; the rest was not read")
                    budget.exhausted = True
                break
            fields, child_body = _split_header_section(piece, defects, allow_unix_from=False)
            part.children.append(
                _build_part(piece, _Headers(fields), child_body, nest + 1, msg_depth, child_default, budget, defects)
            )
        return part
    payload = _decode_transfer_encoding(body, headers.get("content-transfer-encoding"), defects)
    if content_type in ("message/rfc822", "message/global"):
        part.forwarded = _parse_message(payload, nest + 1, msg_depth + 1, budget)
        return part
    part.data = payload
    return part


def sanitise_filename(name: str) -> str | None:
    """A safe base name: no directories or drive, no control/format characters, NFC, at most 255 UTF-8 bytes
    (so also at most 255 characters), extension kept when shortening. None when nothing usable remains."""
    text = unicodedata.normalize("NFC", _clean_line(name).replace("\\", "/"))
    text = text.rsplit("/", 1)[-1]
    text = re.sub(r"^[A-Za-z]:", "", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"))
    text = text.strip()
    if not text.strip("."):
        return None
    if len(text.encode("utf-8")) > MAX_FILENAME_BYTES:
        stem, dot, extension = text.rpartition(".")
        if not dot or not stem or len(extension.encode("utf-8")) > 16:
            stem, extension = text, ""
        suffix = f".{extension}" if extension else ""
        budget_bytes = MAX_FILENAME_BYTES - len(suffix.encode("utf-8"))
        stem = stem.encode("utf-8")[:budget_bytes].decode("utf-8", errors="ignore")
        text = stem + suffix
    return text


_PDF_PREFIX_JUNK = b" \t\r\n\x0c\x00\xef\xbb\xbf\xfe\xff"


def looks_like_pdf(data: bytes) -> bool:
    """PDF by content: ``%PDF-`` after at most 1024 bytes of whitespace/BOM/NUL."""
    head = data[: PDF_SNIFF_WINDOW + 5]
    stripped = head.lstrip(_PDF_PREFIX_JUNK)
    return stripped.startswith(b"%PDF-") and len(head) - len(stripped) <= PDF_SNIFF_WINDOW


def _is_body_candidate(part: _Part) -> bool:
    return (
        part.is_leaf
        and not part.opaque
        and part.content_type in ("text/plain", "text/html")
        and part.disposition != "attachment"
        and part.filename is None
        and not looks_like_pdf(part.data)
    )


def _select_body(part: _Part, suppressed: set[int]) -> list[_Part]:
    """The leaves that make up the readable body. Unchosen alternatives go to ``suppressed``."""
    if part.forwarded is not None or part.opaque:
        return []
    if not part.container:
        return [part] if _is_body_candidate(part) else []
    if not part.children:
        return []
    if part.content_type == "multipart/alternative":
        choices = [_select_body(child, suppressed) for child in part.children]
        chosen = next((c for c in choices if any(p.content_type == "text/plain" for p in c)), None)
        if chosen is None:
            chosen = next((c for c in choices if c), [])
        for choice in choices:
            if choice is not chosen:
                suppressed.update(id(p) for p in choice)
        return chosen
    if part.content_type == "multipart/related":
        return _select_body(part.children[0], suppressed)
    selected: list[_Part] = []
    for child in part.children:
        selected.extend(_select_body(child, suppressed))
    return selected


def _walk(part: _Part) -> Iterator[_Part]:
    yield part
    for child in part.children:
        yield from _walk(child)


def _make_attachment(part: _Part) -> Attachment:
    data = part.data
    content_id = _extract_message_ids(part.headers.get("content-id"), bare_needs_at=False)
    return Attachment(
        filename=part.filename,
        content_type=part.declared_type or "application/octet-stream",
        data=data,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        is_pdf=looks_like_pdf(data),
        inline=part.disposition in ("", "inline"),
        depth=part.depth,
        content_id=content_id[0] if content_id else None,
    )


def _body_text(parts: list[_Part]) -> tuple[str, str | None]:
    texts = []
    kind: str | None = None
    for part in parts:
        text = decode_bytes(part.data, part.params.get("charset"))
        if part.content_type == "text/html":
            text = html_to_text(text)
            kind = kind or "text/html"
        else:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            kind = "text/plain"
        texts.append(text.lstrip("\ufeff").replace("\x00", ""))
    return "\n".join(t for t in texts if t), kind


def _dsn_original_id(root: _Part) -> str | None:
    for part in _walk(root):
        if part.forwarded is not None and part.forwarded.message_id:
            return part.forwarded.message_id
        if part.content_type in ("text/rfc822-headers", "message/global-headers") and part.is_leaf:
            fields, _ = _split_header_section(part.data, [], allow_unix_from=False)
            ids = _extract_message_ids(_Headers(fields).get("message-id"), bare_needs_at=False)
            if ids:
                return ids[0]
    for part in _walk(root):  # read receipts (MDN) name the original in their own fields
        if part.content_type == "message/disposition-notification" and part.is_leaf:
            fields, _ = _split_header_section(part.data, [], allow_unix_from=False)
            ids = _extract_message_ids(_Headers(fields).get("original-message-id"), bare_needs_at=False)
            if ids:
                return ids[0]
    return None


MAX_DSN_DETAILS = 500


def _delivery_status(root: _Part) -> tuple[bool, str]:
    """Whether a delivery report says delivery failed, with the Status and Diagnostic-Code of the first failed
    recipient. The message/delivery-status part is blocks of fields separated by blank lines: one per message,
    then one per recipient (those carry an Action)."""
    recipients: list[_Headers] = []
    for part in _walk(root):
        if part.content_type != "message/delivery-status" or not part.is_leaf:
            continue
        rest = memoryview(part.data)
        while len(rest) and len(recipients) < MAX_PARTS:
            before = len(rest)
            fields, rest = _split_header_section(rest, [], allow_unix_from=False)
            if not fields:
                if len(rest) < before:  # an extra blank line between blocks
                    continue
                break  # text that is no field: the end of what can be read
            block = _Headers(fields)
            if block.get("action"):
                recipients.append(block)
    if not recipients:
        return True, ""
    failed = [block for block in recipients if (block.get("action") or "").strip().lower() == "failed"]
    if not failed:
        return False, ""
    details = " ".join(
        " ".join(value.split()) for name in ("status", "diagnostic-code") if (value := failed[0].get(name))
    )
    return True, details[:MAX_DSN_DETAILS]


def _fill_from_headers(envelope: Envelope, headers: _Headers, defects: list[str]) -> None:
    envelope.message_id = next(iter(_extract_message_ids(headers.get("message-id"), bare_needs_at=False)), None)
    envelope.subject = _clean_line(decode_rfc2047(headers.get("subject") or ""))
    from_value = headers.get("from")
    senders = parse_address_list(from_value)
    envelope.sender = senders[0] if senders else None
    if from_value and not senders:
        defects.append("From header could not be parsed")
    envelope.reply_to = parse_address_list(headers.get("reply-to"))
    envelope.to = [a for value in headers.get_all("to") for a in parse_address_list(value)][:MAX_PARTS]
    envelope.cc = [a for value in headers.get_all("cc") for a in parse_address_list(value)][:MAX_PARTS]
    return_path = headers.get("return-path")
    if return_path is not None:
        addresses = parse_address_list(return_path)
        envelope.return_path = addresses[0].addr if addresses else ""
    date_value = headers.get("date")
    envelope.date = _parse_date(date_value)
    if date_value and envelope.date is None:
        defects.append("Date header could not be parsed")
    for received in headers.get_all("received"):
        if ";" in received:
            envelope.received_at = _parse_date(received.rsplit(";", 1)[1])
            if envelope.received_at is not None:
                break
    envelope.in_reply_to = _extract_message_ids(headers.get("in-reply-to"), bare_needs_at=True)
    envelope.references = _extract_message_ids(headers.get("references"), bare_needs_at=True)
    envelope.headers = {f.name: _clean_line(decode_rfc2047(f.value)) for f in reversed(headers.fields)}


def _parse_message(raw: bytes, nest: int, msg_depth: int, budget: _Budget) -> Envelope:
    defects: list[str] = []
    fields, body = _split_header_section(raw, defects, allow_unix_from=True)
    headers = _Headers(fields)
    envelope = Envelope()
    _fill_from_headers(envelope, headers, defects)
    root = _build_part(raw, headers, body, nest, msg_depth, "text/plain", budget, defects)

    suppressed: set[int] = set()
    body_parts = _select_body(root, suppressed)
    body_ids = {id(p) for p in body_parts}
    envelope.body_text, envelope.body_content_type = _body_text(body_parts)

    for part in _walk(root):
        if part.forwarded is not None:
            envelope.forwarded.append(part.forwarded)
            envelope.attachments.extend(part.forwarded.attachments)
            defects.extend(f"forwarded message: {d}" for d in part.forwarded.defects)
        elif part.is_leaf and id(part) not in body_ids and id(part) not in suppressed:
            envelope.attachments.append(_make_attachment(part))
        if part.content_type == "multipart/report" and not envelope.is_report:
            envelope.is_report = True
            envelope.report_type = (part.params.get("report-type") or "").strip().lower() or None
    if envelope.is_report:
        envelope.dsn_original_message_id = _dsn_original_id(root)
        envelope.dsn_failed, envelope.dsn_details = _delivery_status(root)
    envelope.defects = _summarise_defects(defects)
    return envelope


MAX_DEFECTS = 100


def _summarise_defects(defects: list[str]) -> list[str]:
    """Repeated notes once with a count, and at most MAX_DEFECTS of them (hostile mail can repeat a defect
    100,000 times)."""
    counts: dict[str, int] = {}
    for defect in defects:
        counts[defect] = counts.get(defect, 0) + 1
    summary = [defect if count == 1 else f"{defect} (x{count})" for defect, count in counts.items()]
    if len(summary) > MAX_DEFECTS:
        summary = summary[:MAX_DEFECTS] + [f"{len(summary) - MAX_DEFECTS} more kinds of defects not listed"]
    return summary


def parse_envelope(raw: bytes) -> Envelope:
    """Parse one RFC 5322 message. Never raises; anything broken or capped is noted in ``defects``."""
    try:
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="replace")
        return _parse_message(bytes(raw), 0, 0, _Budget())
    except Exception as error:  # last-resort guard: the intake must get an Envelope for every mail
        return Envelope(defects=[f"parser error: {type(error).__name__}"])
