"""Property-based tests (hypothesis): the parsers never raise and case matching is exact."""

from __future__ import annotations

import os
import re
from email.headerregistry import Address as StdAddress
from email.message import EmailMessage
from email.policy import SMTPUTF8
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from postmottak.parsers.case_refs import find_case_references, normalise_case_number
from postmottak.parsers.envelope import Envelope, parse_envelope
from postmottak.parsers.machine import machine_reason
from tests.parsers.mail_builders import mixed_mail, multipart, pdf_part, simple_mail, text_part

# POSTMOTTAK_PROPERTY_EXAMPLES=20000 for a long fuzzing run; no deadline (no timing asserts in tests).
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("POSTMOTTAK_PROPERTY_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "mail-corpus"
SEED_MAILS: list[bytes] = [
    simple_mail(),
    mixed_mail([text_part(), pdf_part()], subject="=?utf-8?q?H=C3=B8ringssvar?="),
    mixed_mail(
        [
            multipart("alt", [text_part("a\n"), text_part("<p>b</p>", "html")], "alternative"),
            pdf_part(None, disposition="inline"),
        ]
    ),
    mixed_mail(
        [
            text_part(),
            "Content-Type: message/rfc822\n\nFrom: a@b.no\nSubject: inner\n\n"
            + multipart("in", [text_part(), pdf_part()]),
        ]
    ),
]
if CORPUS.is_dir():  # the corpus adds real-world oddities; the built mails alone still exercise the mutations
    SEED_MAILS += [path.read_bytes() for path in sorted(CORPUS.rglob("*.eml"))]

INTERESTING = [
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"--",
    b"=?utf-8?b?",
    b"=?iso-8859-1?q?=F8",
    b"?=",
    b"boundary=",
    b'"',
    b"\x00",
    b"\xff",
    b"<",
    b">",
    b"(",
    b")",
    b";",
    b":",
    b"*0*=utf-8''%C3",
    b"%PDF-",
    b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"begin 644 x\r\n",
    b" ",
    b"\t",
]


def _assert_no_internal_error(env: Envelope) -> None:
    assert isinstance(env, Envelope)
    # the catch-all in parse_envelope must never be what saved us
    assert not any(defect.startswith("parser error") for defect in env.defects), env.defects
    assert isinstance(env.body_text, str) and isinstance(env.subject, str)
    assert machine_reason(env) is None or isinstance(machine_reason(env), str)
    assert all(a.size == len(a.data) for a in env.attachments)


@PROPERTY_SETTINGS
@given(st.binary(max_size=4000))
def test_parse_envelope_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    _assert_no_internal_error(parse_envelope(raw))


@PROPERTY_SETTINGS
@given(st.lists(st.one_of(st.sampled_from(INTERESTING), st.binary(max_size=30)), max_size=60))
def test_parse_envelope_never_raises_on_mime_like_token_soup(tokens: list[bytes]) -> None:
    _assert_no_internal_error(parse_envelope(b"".join(tokens)))


@st.composite
def mutated_mail(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEED_MAILS)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["insert", "delete", "replace", "truncate", "duplicate"]))
        if operation == "insert":
            data[position:position] = draw(st.one_of(st.sampled_from(INTERESTING), st.binary(min_size=1, max_size=20)))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 200))]
        elif operation == "replace" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif operation == "truncate":
            del data[position:]
        elif operation == "duplicate":
            data[position:position] = data[position : position + draw(st.integers(1, 500))]
    return bytes(data)


@PROPERTY_SETTINGS
@given(mutated_mail())
def test_parse_envelope_never_raises_on_mutated_mails(raw: bytes) -> None:
    _assert_no_internal_error(parse_envelope(raw))


_HEADER_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Zs", "Cf", "Co", "Cn")),
    min_size=1,
    max_size=30,
)


@PROPERTY_SETTINGS
@given(st.lists(_HEADER_TEXT, min_size=1, max_size=6), _HEADER_TEXT, st.text(max_size=200))
def test_subject_name_and_body_roundtrip_through_stdlib_generator(words: list[str], name: str, body: str) -> None:
    """Whatever the stdlib (as a sending client) encodes, we decode to the same text."""
    subject = " ".join(words)
    assume("=?" not in subject and "=?" not in name)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = StdAddress(display_name=name, addr_spec="kari@example.no")
    message.set_content(body)
    raw = message.as_bytes()
    env = parse_envelope(raw)
    subject_field = re.search(rb"^Subject: .*(?:\r?\n[ \t].*)*", raw, re.MULTILINE)
    assert subject_field is not None
    if b"\n" in subject_field.group():
        # CPython's folder can put a space exactly between two encoded words, where RFC 2047 says it is
        # ignored; a conforming decoder then loses it. Everything else must survive.
        assert env.subject.replace(" ", "") == subject.replace(" ", "")
    else:
        assert env.subject == subject
    assert env.sender is not None and env.sender.name == name and env.sender.addr == "kari@example.no"
    expected_body = body.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    expected_body = expected_body[1:] if expected_body.startswith("\ufeff") else expected_body  # BOM dropped
    assert env.body_text.rstrip("\n") == expected_body.rstrip("\n")


@PROPERTY_SETTINGS
@given(st.lists(_HEADER_TEXT, min_size=1, max_size=6))
def test_utf8_raw_headers_roundtrip(words: list[str]) -> None:
    subject = " ".join(words)
    assume("=?" not in subject)
    message = EmailMessage(policy=SMTPUTF8)
    message["Subject"] = subject
    message["From"] = "kari@example.no"
    message.set_content("x")
    assert parse_envelope(message.as_bytes()).subject == subject


# --------------------------------------------------------------------------------------------------
# case references

# Two-digit years 69-99 mean the 1900s (see parsers.case_refs); the 2000s are what this office has.
_YEARS = st.one_of(st.integers(10, 68), st.integers(2000, 2068))
_SEQUENCES = st.integers(1, 10**6)
# surrounding text that cannot glue digits or "/digits" onto the number
_SURROUNDING = st.text(
    alphabet=st.characters(blacklist_characters="0123456789/", blacklist_categories=("Nd", "Cs")), max_size=40
)


def _short(year: int) -> int:
    return year % 100


@PROPERTY_SETTINGS
@given(_YEARS, _SEQUENCES, _SURROUNDING, _SURROUNDING, st.integers(0, 3), st.one_of(st.none(), st.integers(1, 999)))
def test_embedded_case_number_matches(
    year: int, sequence: int, before: str, after: str, zeros: int, document: int | None
) -> None:
    written = f"{year}/{'0' * zeros}{sequence}" + (f"-{document}" if document is not None else "")
    text = f"{before} {written} {after}"
    configured = f"{_short(year):02d}/{sequence}"
    assert find_case_references(text, [configured]) == {configured}
    assert find_case_references(text, [f"20{_short(year):02d}/{sequence}"]) == {f"20{_short(year):02d}/{sequence}"}


@PROPERTY_SETTINGS
@given(_YEARS, _SEQUENCES, _SURROUNDING, _SURROUNDING)
def test_neighbouring_case_numbers_never_match(year: int, sequence: int, before: str, after: str) -> None:
    text = f"{before} {year}/{sequence} {after}"
    short = _short(year)
    others = [
        f"{short:02d}/{sequence + 1}",
        f"{short:02d}/{sequence * 10}",
        f"{short:02d}/{sequence * 10 + 7}",
        f"{(short + 1) % 100:02d}/{sequence}",
    ]
    if sequence >= 10:
        others.append(f"{short:02d}/{sequence // 10}")
    assert find_case_references(text, others) == set()


@PROPERTY_SETTINGS
@given(_YEARS, _SEQUENCES, st.integers(0, 9), st.integers(1, 9))
def test_case_number_glued_to_digits_never_matches(year: int, sequence: int, digit: int, leading: int) -> None:
    configured = f"{_short(year):02d}/{sequence}"
    for text in (
        f"{year}/{sequence}{digit}",
        f"{leading}{year}/{sequence}",
        f"{year}/{sequence}/{digit}",
        f"{digit}/{year}/{sequence}",
    ):
        assert find_case_references(text, [configured]) == set(), text


@PROPERTY_SETTINGS
@given(st.text(max_size=300), st.lists(st.text(max_size=12), max_size=5))
def test_find_case_references_total_and_returns_only_configured(text: str, configured: list[str]) -> None:
    found = find_case_references(text, configured)
    assert found <= set(configured)


@PROPERTY_SETTINGS
@given(_YEARS, _SEQUENCES)
def test_normalise_case_number_two_and_four_digit_years_agree(year: int, sequence: int) -> None:
    assert normalise_case_number(f"{year}/{sequence}") == (year % 100, sequence)
    assert normalise_case_number(f"{year % 100:02d}/00{sequence}") == (year % 100, sequence)


BOUNDARY_PIECES = [b"-", b"--", b"\n", b"\r", b"\r\n", b" ", b"\t", b"a", b"b", b"ab", b"=_"]


@PROPERTY_SETTINGS
@given(
    boundary=st.lists(st.sampled_from([b"a", b"b", b"-", b" ", b"=", b"\n"]), min_size=1, max_size=4).map(b"".join),
    pieces=st.lists(st.one_of(st.sampled_from(BOUNDARY_PIECES), st.none()), max_size=16),
)
def test_boundary_lines_are_where_the_boundary_line_pattern_matches(
    boundary: bytes, pieces: list[bytes | None]
) -> None:
    """The multipart splitter finds boundary lines without a pattern per boundary; it finds exactly these."""
    from postmottak.parsers.envelope import _boundary_lines

    body = b"".join(b"--" + boundary if piece is None else piece for piece in pieces)
    pattern = re.compile(rb"^--" + re.escape(boundary) + rb"(--)?[ \t]*\r?$", re.MULTILINE)
    expected = [(match.start(), match.end(), match.group(1) is not None) for match in pattern.finditer(body)]
    view = memoryview(b"x\n" + body + b"\ny")[2:-2]  # a view into a larger buffer, as the parser passes it
    assert list(_boundary_lines(view, boundary)) == expected
    assert list(_boundary_lines(view, boundary, misses_allowed=1)) == expected, "after many lines that are none"
