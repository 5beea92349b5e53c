"""build_message writes exactly the bytes the email package writes for the same receipt as an EmailMessage.

The reference below is the plain EmailMessage construction; build_message must match it byte for byte (or fail
with the same error) for ordinary receipts and for hostile or unusual values: long and non-ASCII names and
subjects, odd original Message-IDs, bodies with long lines, trailing spaces, '=' and stray line breaks.
"""

from __future__ import annotations

import random
import unicodedata
from datetime import datetime, timedelta, timezone
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import pytest

from postmottak.intake.receipt_message import (
    MailAddress,
    build_message,
    clean_message_id,
    prepare_address,
    receipt_subject,
    render_body,
    sanitise_text,
)


def reference_message(
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
    chosen = policy.SMTPUTF8 if smtputf8 else policy.SMTP
    message = EmailMessage(policy=chosen)
    message["From"] = _address(sanitise_text(sender_name, 100), sender.header)
    message["To"] = _address(sanitise_text(recipient_name, 100), recipient.header)
    message["Subject"] = sanitise_text(subject)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = f"<{message_id}>"
    original = clean_message_id(in_reply_to)
    if original:
        message["In-Reply-To"] = f"<{original}>"
        message["References"] = f"<{original}>"
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"
    message["MIME-Version"] = "1.0"
    message.set_content(body, subtype="plain", charset="utf-8", cte="quoted-printable")
    return message.as_bytes(policy=chosen)


def _address(display_name: str, addr_spec: str) -> Address:
    local, _, domain = addr_spec.rpartition("@")
    return Address(display_name=display_name, username=local, domain=domain)


def assert_same_bytes(**values: Any) -> None:
    try:
        expected: bytes | tuple[type, str] = reference_message(**values)
    except (ValueError, TypeError, LookupError) as exc:
        expected = (type(exc), str(exc))
    try:
        actual: bytes | tuple[type, str] = build_message(**values)
    except (ValueError, TypeError, LookupError) as exc:
        actual = (type(exc), str(exc))
    assert actual == expected, values


NAMES = [
    None,
    "",
    "Kari Nordmann",
    "Åse Ødegård",
    'Kari "K" Nordmann, Oslo',
    "Ola (ikke svar) Nordmann",
    "=?utf-8?q?Kari?=",
    "Bærum kommune, Plan- og bygningsetaten ved saksbehandler Ærlig Ødegård-Åsen",
    "x" * 100,
    "ø" * 100,
    "Mr. O'Neil; <admin@example.no>",
    "Ω \\ backslash",
]
SUBJECTS = [
    receipt_subject("22/414"),
    "Kvittering",
    "Kvittering for mottatt høringssvar - sak 22/414 " + "og en lang tittel med æøå " * 5,
    "a" * 200,
    "=?utf-8?b?SMO4cmluZw==?= svar",
]
ORIGINAL_IDS = [
    None,
    "<CAF=abc123@mail.example.no>",
    "<x@example.no>",
    "<" + "a" * 60 + "@example.no>",
    "<" + "b" * 240 + "@example.no>",
    '<"quoted"@example.no>',
    "<a(comment)b@example.no>",
    "<=?utf-8?q?x?=@example.no>",
    "<back\\slash@example.no>",
    "<no-at-sign>",
    "<a@b@c>",
    "<ends-with-space@x.no >",
]
DATES = [
    datetime(2022, 9, 20, 8, 2, 3, 123456, tzinfo=timezone.utc),
    datetime(2022, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=1))),
    datetime(2023, 3, 26, 1, 0, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
    datetime(2023, 3, 26, 1, 0),
]


def realistic_body() -> str:
    from postmottak.intake.receipt_message import ReceiptFacts, ReceiptTemplate

    facts = ReceiptFacts(
        case_number="22/414",
        case_title="Høring - Nasjonal e-helsestrategi for helse- og omsorgssektoren",
        deadline=datetime(2022, 10, 1).date(),
        timezone="Europe/Oslo",
        received_at=DATES[0],
        on_time=True,
        journal_number="2022/414-1",
        original_subject="Høringssvar - sak 22/414",
        attachments=[("høringssvar.pdf", 123_456), ("vedlegg 2.docx", 2_048)],
        contact_address="postmottak@ehelse.no",
    )
    return render_body(ReceiptTemplate.load(), facts)


def random_body(rng: random.Random) -> str:
    alphabet = "abc æøå=.- \t\r\n\x0b\x0c\x85\u2028€😀" + "x" * 20
    lines = []
    for _ in range(rng.randint(0, 12)):
        length = rng.choice([0, 1, 40, 74, 75, 76, 77, 78, 79, 150])
        lines.append("".join(rng.choice(alphabet) for _ in range(length)))
    text = rng.choice(["\n", "\r\n", "\r"]).join(lines)
    return text + rng.choice(["", "\n", " ", "=", "\t\n"])


ASCII_SENDER = prepare_address("postmottak@ehelse.no", smtputf8_offered=False)
RECIPIENTS = [
    prepare_address("kari@example.no", smtputf8_offered=False),
    prepare_address("postmottak@bærum.kommune.no", smtputf8_offered=False),
    prepare_address("åse.ødegård@bærum.no", smtputf8_offered=True),
]


def base(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "sender": ASCII_SENDER,
        "sender_name": "Postmottak e-helse",
        "recipient": RECIPIENTS[0],
        "recipient_name": "Åse Ødegård",
        "subject": receipt_subject("22/414"),
        "body": realistic_body(),
        "message_id": "kvittering-17-0123456789abcdef@ehelse.no",
        "in_reply_to": "<orig-1@example.no>",
        "date": DATES[0],
        "smtputf8": False,
    }
    values.update(changes)
    return values


@pytest.mark.parametrize("smtputf8", [False, True])
def test_an_ordinary_receipt_is_byte_for_byte_the_email_package_message(smtputf8: bool) -> None:
    assert_same_bytes(**base(smtputf8=smtputf8))
    assert_same_bytes(**base(smtputf8=smtputf8, recipient=RECIPIENTS[2], in_reply_to=None))


@pytest.mark.parametrize("smtputf8", [False, True])
def test_unusual_header_values_give_the_email_package_bytes(smtputf8: bool) -> None:
    for name in NAMES:
        for recipient in RECIPIENTS:
            assert_same_bytes(
                **base(smtputf8=smtputf8, recipient_name=name, sender_name=name or "", recipient=recipient)
            )
    for subject in SUBJECTS:
        assert_same_bytes(**base(smtputf8=smtputf8, subject=subject))
    for original in ORIGINAL_IDS:
        assert_same_bytes(**base(smtputf8=smtputf8, in_reply_to=original))
    for date in DATES:
        assert_same_bytes(**base(smtputf8=smtputf8, date=date))
    for message_id in ("kvittering-1-ab@ehelse.no", "kvittering-" + "9" * 70 + "@ehelse.no", "a(b)@c", "x"):
        assert_same_bytes(**base(smtputf8=smtputf8, message_id=message_id))


def test_plain_header_lines_around_the_folding_limit_give_the_email_package_bytes() -> None:
    for length in range(50, 90):
        local = "a" * length
        assert_same_bytes(**base(in_reply_to=f"<{local}@x.no>", message_id=f"{local}@ehelse.no"))
        assert_same_bytes(**base(in_reply_to=f"<{local[: length // 2]} {local[length // 2 :]}@x.no>"))


def test_random_bodies_and_values_give_the_email_package_bytes() -> None:
    rng = random.Random(20240414)
    printable = [chr(c) for c in range(0x21, 0x7F)]
    for _ in range(300):
        original = "<" + "".join(rng.choice(printable) for _ in range(rng.randint(1, 90))) + ">"
        assert_same_bytes(
            **base(
                body=random_body(rng),
                in_reply_to=original,
                recipient_name=rng.choice(NAMES),
                subject=rng.choice(SUBJECTS),
                date=rng.choice(DATES),
                recipient=rng.choice(RECIPIENTS),
                smtputf8=rng.random() < 0.5,
            )
        )


def test_a_body_the_email_package_refuses_fails_the_same_way() -> None:
    assert_same_bytes(**base(body="lone surrogate \udcff"))
    assert_same_bytes(**base(recipient_name="x\udcff"))


def test_control_characters_removed_from_the_body_are_exactly_category_cc() -> None:
    from postmottak.intake.receipt_message import _CONTROL_CHARS

    for code in range(0x110000):
        char = chr(code)
        expected = unicodedata.category(char) == "Cc" and char not in "\n\t"
        assert bool(_CONTROL_CHARS.match(char)) == expected, hex(code)


@pytest.mark.parametrize(
    "value",
    ["Åse Ødegård", "tab\there", "nbsp\u00a0here", "zero\u200bwidth", "line\u2028sep", "private\ue000use", "ok", ""],
)
def test_sanitise_text_of_printable_and_unprintable_text_matches_the_character_rules(value: str) -> None:
    cleaned = []
    for char in value:
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp") or char.isspace():
            cleaned.append(" ")
        elif category not in ("Cf", "Cs", "Cn"):
            cleaned.append(char)
    assert sanitise_text(value) == " ".join("".join(cleaned).split())
