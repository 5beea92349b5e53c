"""The receipt as a mail (RFC 3834 auto-reply): text from the staff-editable template, safe headers, SMTP addresses.

Pure: no I/O. Every value from the original mail that ends up in the receipt (the respondent's name and subject,
attachment names) is decoded, stripped of control characters (CR/LF included) and capped, so a hostile subject
cannot add headers or recipients. Addresses are checked and converted for SMTP: an internationalised domain is
IDNA-encoded; a non-ASCII local part needs SMTPUTF8 and is otherwise refused with a clear reason.
"""

from __future__ import annotations

import functools
import re
import secrets
import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email import policy, quoprimime
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

RECEIPT_SUBJECT = "Kvittering for mottatt høringssvar"
RECEIPT_MESSAGE_ID_PREFIX = "kvittering-"
DEFAULT_TEMPLATE = Path(__file__).resolve().parents[1] / "config" / "receipt_template.txt"
SECTIONS = ("kvittering", "i tide", "for sent", "vedlegg", "ingen vedlegg")
PLACEHOLDERS = frozenset(
    {
        "saksnummer",
        "sakstittel",
        "mottatt",
        "frist",
        "fristsetning",
        "journalnummer",
        "emne",
        "vedlegg",
        "kontaktadresse",
    }
)
ATTACHMENT_PLACEHOLDERS = PLACEHOLDERS | {"filnavn", "storrelse"}
HEADER_TEXT_LIMIT = 200
MONTHS = (
    "januar",
    "februar",
    "mars",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "desember",
)
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_LOCAL_FORBIDDEN = set('"(),:;<>[\\]@')
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # Unicode category Cc except LF and tab


# ------------------------------------------------------------------------------------------ header values


def decode_text(value: str) -> str:
    """Decode RFC 2047 encoded words that are still in a value (a header taken over verbatim)."""
    if not _ENCODED_WORD.search(value):
        return value
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


def sanitise_text(value: str | None, max_length: int = HEADER_TEXT_LIMIT) -> str:
    """One safe line: decoded, control and format characters (CR, LF, NUL, bidi overrides...) gone, capped."""
    text = decode_text(value or "")
    if not text.isprintable():  # printable: no control, format, separator (but the space) or unassigned character
        cleaned: list[str] = []
        for char in text:
            category = unicodedata.category(char)
            if category in ("Cc", "Zl", "Zp") or char.isspace():
                cleaned.append(" ")
            elif category in ("Cf", "Cs", "Cn"):
                continue
            else:
                cleaned.append(char)
        text = "".join(cleaned)
    line = " ".join(text.split())
    if len(line) > max_length:
        line = line[: max_length - 1].rstrip() + "…"
    return line


# ------------------------------------------------------------------------------------------ addresses


class UnsendableAddress(ValueError):
    """An address the receipt cannot be sent to; the message is the reason recorded for staff."""


@dataclass(frozen=True)
class MailAddress:
    smtp: str  # for MAIL FROM / RCPT TO
    header: str  # addr-spec for the From/To header
    needs_smtputf8: bool


@functools.lru_cache(maxsize=1024)  # the sender's domain for every receipt, and respondents' shared domains
def ascii_domain(domain: str) -> str:
    """The A-label form of a domain (IDNA 2008 with UTS #46 mapping, falling back to IDNA 2003)."""
    domain = domain.strip().rstrip(".")
    try:
        import idna

        encoded = idna.encode(domain, uts46=True).decode("ascii")
    except ImportError:  # pragma: no cover - idna is normally installed
        encoded = domain.encode("idna").decode("ascii")
    except (idna.IDNAError, UnicodeError):
        try:
            encoded = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise UnsendableAddress(
                f"the domain {sanitise_text(domain)!r} is not a valid domain name ({exc})"
            ) from None
    encoded = encoded.lower()
    labels = encoded.split(".")
    if not labels or any(not _LDH_LABEL.match(label) for label in labels) or len(encoded) > 253:
        raise UnsendableAddress(f"the domain {sanitise_text(domain)!r} is not a valid domain name")
    return encoded


def prepare_address(address: str | None, *, smtputf8_offered: bool) -> MailAddress:
    """Check one mailbox address and give its SMTP and header forms, or raise UnsendableAddress with the reason."""
    if not address or not address.strip():
        raise UnsendableAddress("no recipient address")
    text = address.strip()
    shown = sanitise_text(text, 120)
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") or char.isspace() for char in text):
        raise UnsendableAddress(f"the address {shown!r} contains spaces or control characters")
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise UnsendableAddress(f"the address {shown!r} is not of the form name@domain")
    if domain.startswith("["):
        raise UnsendableAddress(f"the address {shown!r} uses an IP address literal, which receipts are not sent to")
    if (
        set(local) & _LOCAL_FORBIDDEN
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
        or len(local.encode("utf-8")) > 64
    ):
        raise UnsendableAddress(f"the address {shown!r} has an unusual local part (before the @) that is not sent to")
    local_is_ascii = local.isascii()
    if not local_is_ascii and not smtputf8_offered:
        raise UnsendableAddress(
            f"the address {shown!r} has non-ASCII characters before the @, and the SMTP server does not offer "
            "SMTPUTF8, which such addresses need"
        )
    a_label_domain = ascii_domain(domain)
    if local_is_ascii:
        addr = f"{local}@{a_label_domain}"
        return MailAddress(smtp=addr, header=addr, needs_smtputf8=False)
    # SMTPUTF8: the whole address may be UTF-8; show the domain in its readable form.
    try:
        import idna

        u_label_domain = idna.decode(a_label_domain)
    except Exception:
        u_label_domain = a_label_domain
    addr = f"{unicodedata.normalize('NFC', local)}@{u_label_domain}"
    return MailAddress(smtp=addr, header=addr, needs_smtputf8=True)


def new_message_id(receipt_id: int, sender: str) -> str:
    """Our receipt's Message-ID (without angle brackets), on the sender's domain so replies to it are recognised."""
    domain = ascii_domain(sender.rpartition("@")[2])
    return f"{RECEIPT_MESSAGE_ID_PREFIX}{receipt_id}-{secrets.token_hex(8)}@{domain}".lower()


_MSGID = re.compile(r"^[!-;=?-~]{1,250}$")  # printable ASCII without space, '<' and '>'


def clean_message_id(value: str | None) -> str | None:
    """The original Message-ID in a form safe for In-Reply-To/References, or None when it is unusable."""
    if not value:
        return None
    inner = value.strip().removeprefix("<").removesuffix(">").strip()
    return inner if _MSGID.match(inner) else None


# ------------------------------------------------------------------------------------------ template


class TemplateError(ValueError):
    """The receipt template cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class ReceiptTemplate:
    sections: Mapping[str, str]
    source: str = "receipt template"

    @classmethod
    def parse(cls, text: str, source: str = "receipt template") -> "ReceiptTemplate":
        sections: dict[str, list[str]] = {}
        current: list[str] | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if line.startswith("#"):
                continue
            header = re.fullmatch(r"\[\s*([^\]]+?)\s*\]\s*", line)
            if header:
                name = header.group(1).lower()
                if name not in SECTIONS:
                    raise TemplateError(f"{source}, line {number}: unknown section [{header.group(1)}]; use {_names()}")
                if name in sections:
                    raise TemplateError(f"{source}, line {number}: section [{name}] appears twice")
                current = sections[name] = []
                continue
            if current is None:
                if line.strip():
                    raise TemplateError(
                        f"{source}, line {number}: text before the first section; start with [kvittering]"
                    )
                continue
            current.append(line.rstrip())
        missing = [name for name in SECTIONS if name not in sections]
        if missing:
            raise TemplateError(f"{source}: missing section(s) {', '.join(f'[{n}]' for n in missing)}")
        parsed = {name: "\n".join(lines).strip("\n") for name, lines in sections.items()}
        template = cls(parsed, source)
        template.check()
        return template

    @classmethod
    def load(cls, path: Path | None = None) -> "ReceiptTemplate":
        chosen = path or DEFAULT_TEMPLATE
        try:
            text = chosen.read_text(encoding="utf-8")
        except OSError as exc:
            raise TemplateError(f"cannot read the receipt template {chosen}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise TemplateError(f"the receipt template {chosen} is not UTF-8 text") from None
        return cls.parse(text, str(chosen))

    def check(self) -> None:
        """Every placeholder is known and every section formats (so a typo stops sending before anything goes out)."""
        for name, text in self.sections.items():
            allowed = ATTACHMENT_PLACEHOLDERS if name == "vedlegg" else PLACEHOLDERS
            _format(text, {key: "" for key in allowed}, f"{self.source} [{name}]")


def _names() -> str:
    return ", ".join(f"[{name}]" for name in SECTIONS)


class _StrictFormatter(string.Formatter):
    def __init__(self, where: str) -> None:
        self.where = where

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if not re.fullmatch(r"\w+", field_name):
            raise TemplateError(f"{self.where}: placeholder {{{field_name}}} is not allowed (use plain names)")
        if field_name not in kwargs:
            known = ", ".join("{" + key + "}" for key in sorted(kwargs))
            raise TemplateError(f"{self.where}: unknown placeholder {{{field_name}}}; known: {known}")
        return kwargs[field_name], field_name


def _format(text: str, values: Mapping[str, str], where: str) -> str:
    try:
        return _StrictFormatter(where).vformat(text, (), dict(values))
    except TemplateError:
        raise
    except (ValueError, IndexError, KeyError) as exc:
        raise TemplateError(f"{where}: {exc} (write a literal brace as {{{{ or }}}})") from None


@dataclass(frozen=True)
class ReceiptFacts:
    case_number: str
    case_title: str
    deadline: date | None
    timezone: str
    received_at: datetime
    on_time: bool
    journal_number: str
    original_subject: str
    attachments: Sequence[tuple[str, int]]  # (file name, size in bytes)
    contact_address: str


def receipt_subject(case_number: str) -> str:
    return f"{RECEIPT_SUBJECT} - sak {sanitise_text(case_number, 32)}"


def norwegian_date(day: date) -> str:
    return f"{day.day}. {MONTHS[day.month - 1]} {day.year}"


def norwegian_datetime(moment: datetime, timezone: str) -> str:
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{norwegian_date(local.date())} kl. {local:%H:%M}"


def format_size(size: int) -> str:
    if size < 1000:
        return f"{size} byte"
    for unit, factor in (("kB", 1000), ("MB", 1000**2), ("GB", 1000**3)):
        value = size / factor
        if value < 1000 or unit == "GB":
            text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
            return f"{text.replace('.', ',')} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def render_body(template: ReceiptTemplate, facts: ReceiptFacts) -> str:
    values = {
        "saksnummer": sanitise_text(facts.case_number, 32),
        "sakstittel": sanitise_text(facts.case_title, 300),
        "mottatt": norwegian_datetime(facts.received_at, facts.timezone),
        "frist": norwegian_date(facts.deadline) if facts.deadline else "",
        "journalnummer": sanitise_text(facts.journal_number, 64),
        "emne": sanitise_text(facts.original_subject) or "(uten emne)",
        "kontaktadresse": sanitise_text(facts.contact_address, 254),
        "fristsetning": "",
        "vedlegg": "",
    }
    where = template.source
    values["fristsetning"] = _format(
        template.sections["i tide" if facts.on_time else "for sent"], values, f"{where} [fristsetning]"
    )
    if facts.attachments:
        lines = [
            _format(
                template.sections["vedlegg"],
                {**values, "filnavn": sanitise_text(name, 150) or "(uten navn)", "storrelse": format_size(size)},
                f"{where} [vedlegg]",
            )
            for name, size in facts.attachments
        ]
        values["vedlegg"] = "\n".join(lines)
    else:
        values["vedlegg"] = _format(template.sections["ingen vedlegg"], values, f"{where} [ingen vedlegg]")
    body = _format(template.sections["kvittering"], values, f"{where} [kvittering]")
    # No stray control characters from anywhere (the template included), tidy line ends.
    body = _CONTROL_CHARS.sub("", body)
    return "\n".join(line.rstrip() for line in body.splitlines()).strip("\n") + "\n"


# ------------------------------------------------------------------------------------------ the message


def build_message(
    *,
    sender: MailAddress,
    sender_name: str,
    recipient: MailAddress,
    recipient_name: str | None,
    subject: str,
    body: str,
    message_id: str,
    in_reply_to: str | None,
    date: datetime,
    smtputf8: bool,
) -> bytes:
    """The receipt as bytes with CRLF line ends, ready for SMTP DATA.

    The same bytes as an EmailMessage with these headers and `set_content(body, charset="utf-8",
    cte="quoted-printable")` written by its generator, built line by line so that the header registry parses only
    what needs it: To for each receipt, From, Subject and the fixed lines once per value (cached), other short
    plain-ASCII lines not at all. The body goes through the email package's own quoted-printable encoder."""
    lines = [
        _sender_header(smtputf8, sanitise_text(sender_name, 100), sender.header),
        _fold(smtputf8, "To", _address(sanitise_text(recipient_name, 100), recipient.header)),
        _repeated_header(smtputf8, "Subject", sanitise_text(subject)),
        _plain_header(smtputf8, "Date", format_datetime(date)),
        _plain_header(smtputf8, "Message-ID", f"<{message_id}>"),
    ]
    original = clean_message_id(in_reply_to)
    if original:
        lines.append(_plain_header(smtputf8, "In-Reply-To", f"<{original}>"))
        lines.append(_plain_header(smtputf8, "References", f"<{original}>"))
    lines += [_repeated_header(smtputf8, name, value) for name, value in _FIXED_HEADERS]
    # As EmailMessage.set_content encodes the text (UTF-8, split into lines, quoted-printable) and its generator
    # writes it (CRLF line ends).
    text = b"\n".join(body.encode("utf-8").splitlines()) + b"\n"
    payload = quoprimime.body_encode(text.decode("latin-1"), _MAX_LINE)
    lines += [b"\r\n", payload.replace("\n", "\r\n").encode("ascii")]
    return b"".join(lines)


_POLICIES = {False: policy.SMTP, True: policy.SMTPUTF8}
_MAX_LINE = 78  # the SMTP policies' max_line_length
_FIXED_HEADERS = (
    ("Auto-Submitted", "auto-replied"),
    ("X-Auto-Response-Suppress", "All"),
    ("MIME-Version", "1.0"),
    ("Content-Type", 'text/plain; charset="utf-8"'),  # what set_content gives
    ("Content-Transfer-Encoding", "quoted-printable"),
)
_PLAIN_VALUE = re.compile(r"[!-~]+(?: [!-~]+)*")  # printable ASCII words between single spaces
_SPECIAL_IN_PLAIN = re.compile(r'=\?|[()"\\]')  # what could start an encoded word, a comment or a quoted string


def _fold(smtputf8: bool, name: str, value: str | Address) -> bytes:
    """One header line as EmailMessage stores it (parsed by the header registry) and its generator writes it."""
    chosen = _POLICIES[smtputf8]
    name, header = chosen.header_store_parse(name, value)
    return chosen.fold_binary(name, header)


_repeated_header = functools.lru_cache(maxsize=256)(_fold)  # the subject (one per case) and the fixed lines


@functools.lru_cache(maxsize=16)
def _sender_header(smtputf8: bool, display_name: str, addr_spec: str) -> bytes:
    return _fold(smtputf8, "From", _address(display_name, addr_spec))


def _plain_header(smtputf8: bool, name: str, value: str) -> bytes:
    """Date, Message-ID, In-Reply-To, References: a short line of plain ASCII is written by the registry as it is,
    so it is written here without parsing it; anything else goes through the registry."""
    line = f"{name}: {value}"
    if len(line) <= _MAX_LINE and _PLAIN_VALUE.fullmatch(value) and not _SPECIAL_IN_PLAIN.search(value):
        return line.encode("ascii") + b"\r\n"
    return _fold(smtputf8, name, value)


def _address(display_name: str, addr_spec: str) -> Address:
    local, _, domain = addr_spec.rpartition("@")
    return Address(display_name=display_name, username=local, domain=domain)
