"""The pure receipt builder: header sanitising, addresses for SMTP, the template."""

from __future__ import annotations

from datetime import date, datetime, timezone
from email import policy
from email.parser import BytesParser

import pytest

from postmottak.intake.receipt_message import (
    DEFAULT_TEMPLATE,
    ReceiptFacts,
    ReceiptTemplate,
    TemplateError,
    UnsendableAddress,
    build_message,
    clean_message_id,
    format_size,
    new_message_id,
    prepare_address,
    receipt_subject,
    render_body,
    sanitise_text,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Høringssvar\r\nBcc: x@y.no", "Høringssvar Bcc: x@y.no"),
        ("=?utf-8?q?H=C3=B8ring=0D=0ABcc:_x@y.no?=", "Høring Bcc: x@y.no"),
        ("a\x00b\tc\u2028d\u202eevil", "a b c devil"),
        ("  mange   mellomrom  ", "mange mellomrom"),
        (None, ""),
    ],
)
def test_sanitise_text(raw: str | None, clean: str) -> None:
    assert sanitise_text(raw) == clean


def test_sanitise_caps_length() -> None:
    text = sanitise_text("x" * 1000)
    assert len(text) == 200 and text.endswith("…")


def test_prepare_address() -> None:
    assert prepare_address("Kari@Example.no", smtputf8_offered=False).smtp == "Kari@example.no"
    idn = prepare_address("postmottak@bærum.kommune.no", smtputf8_offered=True)
    assert idn.smtp == "postmottak@xn--brum-voa.kommune.no" and not idn.needs_smtputf8
    utf8 = prepare_address("åse@bærum.no", smtputf8_offered=True)
    assert utf8.smtp == "åse@bærum.no" and utf8.needs_smtputf8
    with pytest.raises(UnsendableAddress, match="SMTPUTF8"):
        prepare_address("åse@example.no", smtputf8_offered=False)
    for bad in [
        "",
        "no-at-sign",
        "a b@example.no",
        "a@b@example.no",
        "x@[127.0.0.1]",
        "x@exa_mple.no",
        "x..y@example.no",
        '"quoted"@example.no',
        "x@example.no\r\nRCPT TO:<y@z.no>",
    ]:
        with pytest.raises(UnsendableAddress):
            prepare_address(bad, smtputf8_offered=True)


def test_message_ids() -> None:
    assert new_message_id(12, "postmottak@Ehelse.no").startswith("kvittering-12-")
    assert new_message_id(12, "postmottak@ehelse.no").endswith("@ehelse.no")
    assert clean_message_id("<abc@x.no>") == "abc@x.no"
    assert clean_message_id("<abc@x.no>\r\nBcc: y@z.no") is None
    assert clean_message_id("<æøå@x.no>") is None and clean_message_id(None) is None


def test_format_size() -> None:
    assert [format_size(n) for n in (0, 999, 1000, 2048, 123_456, 1_500_000)] == [
        "0 byte",
        "999 byte",
        "1,0 kB",
        "2,0 kB",
        "123 kB",
        "1,5 MB",
    ]


def test_default_template_has_everything_the_receipt_must_say() -> None:
    template = ReceiptTemplate.load(DEFAULT_TEMPLATE)
    facts = ReceiptFacts(
        case_number="22/414",
        case_title="Høring - Nasjonal e-helsestrategi",
        deadline=date(2022, 10, 1),
        timezone="Europe/Oslo",
        received_at=datetime(2022, 10, 1, 21, 40, tzinfo=timezone.utc),
        on_time=True,
        journal_number="2022/414-7",
        original_subject="Svar {saksnummer}",
        attachments=[("skjema.pdf", 5000)],
        contact_address="postmottak@ehelse.no",
    )
    body = render_body(template, facts)
    assert "Mottatt: 1. oktober 2022 kl. 23:40" in body  # Oslo time, not UTC
    assert "Emne: Svar {saksnummer}" in body  # values are never re-read as placeholders
    for expected in (
        "22/414",
        "Høring - Nasjonal e-helsestrategi",
        "2022/414-7",
        "skjema.pdf (5,0 kB)",
        "offentleglova",
        "postmottak@ehelse.no",
        "innen fristen 1. oktober 2022",
    ):
        assert expected in body
    late = render_body(template, ReceiptFacts(**{**facts.__dict__, "on_time": False}))
    assert "etter fristen" in late and "innen fristen" not in late


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Hei", "text before the first section"),
        ("[kvittering]\n{x}\n[i tide]\n[for sent]\n[vedlegg]\n[ingen vedlegg]\n", "unknown placeholder {x}"),
        ("[kvittering]\n{emne.__class__}\n[i tide]\n[for sent]\n[vedlegg]\n[ingen vedlegg]\n", "not allowed"),
        ("[kvittering]\n{\n[i tide]\n[for sent]\n[vedlegg]\n[ingen vedlegg]\n", "literal brace"),
        ("[kvittering]\nx\n", "missing section"),
        ("[kvittering]\n[kvitering]\n", "unknown section"),
    ],
)
def test_template_errors_say_what_to_fix(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("{", r"\{").replace("}", r"\}")):
        ReceiptTemplate.parse(text)


def test_built_message_parses_back() -> None:
    sender = prepare_address("postmottak@ehelse.no", smtputf8_offered=False)
    recipient = prepare_address("kari@example.no", smtputf8_offered=False)
    raw = build_message(
        sender=sender,
        sender_name="Postmottak",
        recipient=recipient,
        recipient_name='Kari "K" Nordmann, Oslo',
        subject=receipt_subject("22/414"),
        body="Hei\n",
        message_id="kvittering-1-ab@ehelse.no",
        in_reply_to="<x@example.no>",
        date=datetime.now(timezone.utc),
        smtputf8=False,
    )
    assert raw.isascii() and b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert [a.addr_spec for a in msg["To"].addresses] == ["kari@example.no"]
    assert msg["To"].addresses[0].display_name == 'Kari "K" Nordmann, Oslo'
    assert msg["Message-ID"] == "<kvittering-1-ab@ehelse.no>"
