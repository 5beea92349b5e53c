"""parse_envelope on hand-built, realistic Norwegian mails: headers, addresses, bodies, attachments, caps."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage

import pytest

from postmottak.parsers.envelope import MAX_DEPTH, MAX_PARTS, Address, Envelope, parse_envelope
from tests.parsers.mail_builders import (
    DOCX_BYTES,
    PDF_BYTES,
    b64,
    binary_part,
    crlf,
    headers_block,
    mixed_mail,
    multipart,
    pdf_part,
    simple_mail,
    text_part,
)

OSLO_SUMMER = timezone(timedelta(hours=2))


# --------------------------------------------------------------------------------------------------
# subject and other unstructured headers


@pytest.mark.parametrize(
    ("raw_subject", "expected"),
    [
        # UTF-8, base64
        (
            "=?UTF-8?B?SMO4cmluZ3NzdmFyIGZyYSBCw6ZydW0ga29tbXVuZSDigJMgc2FrIDIyLzQxNA==?=",
            "Høringssvar fra Bærum kommune – sak 22/414",
        ),
        # ISO-8859-1, quoted-printable, underscores are spaces
        ("=?ISO-8859-1?Q?H=F8ringssvar_fra_B=E6rum_kommune?=", "Høringssvar fra Bærum kommune"),
        # windows-1252 en dash inside a label declared iso-8859-1 (WHATWG mapping)
        ("=?iso-8859-1?q?sak_22/414_=96_svar?=", "sak 22/414 – svar"),
        # adjacent encoded words: the whitespace between them disappears
        ("=?utf-8?q?H=C3=B8rings?= =?utf-8?q?svar?=", "Høringssvar"),
        # a multi-byte character split across two encoded words (bytes are joined before decoding)
        ("=?utf-8?b?SMM=?= =?utf-8?b?uHJpbmc=?=", "Høring"),
        # plain text around encoded words keeps its spaces
        ("Re: =?utf-8?q?H=C3=B8ring?= - sak 22/414", "Re: Høring - sak 22/414"),
        # lower-case q, different charsets side by side
        ("=?iso-8859-1?q?=D8stfold?= =?utf-8?q?_=E2=80=93_svar?=", "Østfold – svar"),
        # RFC 2231 language tag inside an encoded word
        ("=?utf-8*no?q?Bl=C3=A5b=C3=A6r?=", "Blåbær"),
        # unknown charset: utf-8 bytes still decoded
        ("=?x-bogus?q?H=C3=B8ring?=", "Høring"),
        # unknown charset with latin-1 bytes: cp1252 fallback
        ("=?NONE?q?H=F8ring?=", "Høring"),
        # broken base64 padding
        ("=?UTF-8?B?VEVTVA=?=", "TEST"),
        # raw UTF-8 (RFC 6532)
        ("Høringssvar – Sykehuset Østfold HF", "Høringssvar – Sykehuset Østfold HF"),
        # control characters removed, tab -> space
        ("Sak\t22/414\x07\x1b ok", "Sak 22/414 ok"),
    ],
)
def test_subject_decoding(raw_subject: str, expected: str) -> None:
    env = parse_envelope(simple_mail(subject=raw_subject))
    assert env.subject == expected


def test_folded_subject_is_unfolded() -> None:
    raw = crlf(
        "From: a@example.no\nSubject: =?utf-8?q?H=C3=B8ringssvar_fra?=\n =?utf-8?q?_Sykehuset_=C3=98stfold_HF?=\n"
        "  - sak 22/414\n\nbody\n"
    )
    assert parse_envelope(raw).subject == "Høringssvar fra Sykehuset Østfold HF  - sak 22/414"


def test_subject_with_encoded_newline_becomes_one_line() -> None:
    env = parse_envelope(simple_mail(subject="=?utf-8?q?linje_1=0D=0Alinje_2?="))
    assert env.subject == "linje 1 linje 2"


def test_missing_subject_is_empty_string() -> None:
    env = parse_envelope(crlf("From: a@example.no\n\nbody\n"))
    assert env.subject == ""


def test_latin1_raw_8bit_header_falls_back_to_cp1252() -> None:
    raw = b"From: a@example.no\r\nSubject: H\xf8ringssvar \x96 B\xe6rum\r\n\r\nbody\r\n"
    assert parse_envelope(raw).subject == "Høringssvar – Bærum"


# --------------------------------------------------------------------------------------------------
# addresses


@pytest.mark.parametrize(
    ("from_value", "expected"),
    [
        ('"Sykehuset Østfold HF" <postmottak@so-hf.no>', Address("Sykehuset Østfold HF", "postmottak@so-hf.no")),
        (
            "=?ISO-8859-1?Q?Sykehuset_=D8stfold_HF?= <postmottak@so-hf.no>",
            Address("Sykehuset Østfold HF", "postmottak@so-hf.no"),
        ),
        (
            "=?UTF-8?B?U3lrZWh1c2V0IMOYc3Rmb2xkIEhG?= <postmottak@so-hf.no>",
            Address("Sykehuset Østfold HF", "postmottak@so-hf.no"),
        ),
        ("Bærum kommune <postmottak@bærum.kommune.no>", Address("Bærum kommune", "postmottak@bærum.kommune.no")),
        ("Bærum kommune <postmottak@xn--brum-voa.kommune.no>", Address("Bærum kommune", "postmottak@bærum.kommune.no")),
        ("postmottak@XN--BRUM-VOA.Kommune.NO", Address("", "postmottak@bærum.kommune.no")),
        ("Ola.Nordmann@BAERUM.Kommune.NO.", Address("", "Ola.Nordmann@baerum.kommune.no")),
        ("jørn.støylen@eksempel.no (Jørn Støylen)", Address("Jørn Støylen", "jørn.støylen@eksempel.no")),
        ('"Nordmann, Kari" <kari@example.no>', Address("Nordmann, Kari", "kari@example.no")),
        ("Kari Nordmann kari@example.no", Address("Kari Nordmann", "kari@example.no")),
        ("<kari @ example.no>", Address("", "kari@example.no")),
        ("Pete(A wonderful \\) chap) <pete(his account)@silly.test(his host)>", Address("Pete", "pete@silly.test")),
        ("<@relay.example:kari@example.no>", Address("", "kari@example.no")),
        ('"kari nordmann"@example.no', Address("", '"kari nordmann"@example.no')),
        ("Mail Delivery System <>", Address("Mail Delivery System", "")),
        ("<>", Address("", "")),
        ("MAILER-DAEMON", Address("", "MAILER-DAEMON")),
    ],
)
def test_sender_address(from_value: str, expected: Address) -> None:
    env = parse_envelope(simple_mail(sender=from_value))
    assert env.sender == expected


@pytest.mark.parametrize("from_value", ["", "   ", "just some words", ",,,"])
def test_unparseable_or_empty_from_gives_no_sender(from_value: str) -> None:
    env = parse_envelope(simple_mail(sender=from_value))
    assert env.sender is None


def test_missing_from_gives_no_sender() -> None:
    assert parse_envelope(crlf("Subject: x\n\nbody\n")).sender is None


def test_to_cc_reply_to_lists_and_groups() -> None:
    extra = (
        "Cc: Saksbehandler: ola@dir.example.no, =?utf-8?q?P=C3=A5l?= <pal@dir.example.no>;, arkiv@dir.example.no\n"
        "Reply-To: Svar <svar@so-hf.no>, svar2@so-hf.no"
    )
    env = parse_envelope(
        simple_mail(
            to='postmottak@dir.example.no, "Leder, Ida" <ida@dir.example.no>, undisclosed-recipients:;', extra=extra
        )
    )
    assert env.to == [Address("", "postmottak@dir.example.no"), Address("Leder, Ida", "ida@dir.example.no")]
    assert env.cc == [
        Address("", "ola@dir.example.no"),
        Address("Pål", "pal@dir.example.no"),
        Address("", "arkiv@dir.example.no"),
    ]
    assert env.reply_to == [Address("Svar", "svar@so-hf.no"), Address("", "svar2@so-hf.no")]


def test_multiple_to_headers_are_combined() -> None:
    raw = crlf("From: a@example.no\nTo: b@example.no\nTo: c@example.no\n\nbody\n")
    assert [a.addr for a in parse_envelope(raw).to] == ["b@example.no", "c@example.no"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Return-Path: <>", ""),
        ("Return-Path: <bounce+abc@Lists.Example.NO>", "bounce+abc@lists.example.no"),
        ("Return-Path: kari@example.no", "kari@example.no"),
        ("Return-Path: <MAILER-DAEMON>", "MAILER-DAEMON"),
    ],
)
def test_return_path(header: str, expected: str) -> None:
    raw = crlf(f"{header}\nFrom: a@example.no\n\nbody\n")
    assert parse_envelope(raw).return_path == expected


def test_missing_return_path_is_none() -> None:
    assert parse_envelope(crlf("From: a@example.no\n\nbody\n")).return_path is None


def test_top_return_path_wins() -> None:
    raw = crlf("Return-Path: <>\nReturn-Path: <x@example.no>\nFrom: a@example.no\n\nbody\n")
    assert parse_envelope(raw).return_path == ""


# --------------------------------------------------------------------------------------------------
# ids and dates


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc123@example.no>", "<abc123@example.no>"),
        ("  <abc123@example.no>  (Outlook)", "<abc123@example.no>"),
        ("<abc 123 @ example.no>", "<abc123@example.no>"),
        ("<1234   @   local(blah)  .machine .example>", "<1234@local.machine.example>"),
        ("abc123@example.no", "<abc123@example.no>"),
        ("", None),
        ("<>", None),
        ("   ", None),
    ],
)
def test_message_id_normalised(value: str, expected: str | None) -> None:
    env = parse_envelope(simple_mail(message_id=value))
    assert env.message_id == expected


def test_missing_message_id_is_none() -> None:
    assert parse_envelope(crlf("From: a@example.no\n\nbody\n")).message_id is None


def test_in_reply_to_and_references() -> None:
    extra = (
        "In-Reply-To: <kvittering-1@dir.example.no> (sent by postmottak)\n"
        "References: <a@x.no> <b@x.no>\n <kvittering-1@dir.example.no>"
    )
    env = parse_envelope(simple_mail(extra=extra))
    assert env.in_reply_to == ["<kvittering-1@dir.example.no>"]
    assert env.references == ["<a@x.no>", "<b@x.no>", "<kvittering-1@dir.example.no>"]


def test_in_reply_to_phrase_without_ids_is_empty() -> None:
    env = parse_envelope(simple_mail(extra="In-Reply-To: Your message of Monday"))
    assert env.in_reply_to == []


def test_dates_are_timezone_aware() -> None:
    env = parse_envelope(simple_mail())
    assert env.date == datetime(2022, 9, 14, 10, 14, 58, tzinfo=OSLO_SUMMER)
    assert env.received_at == datetime(2022, 9, 14, 10, 15, 2, tzinfo=OSLO_SUMMER)
    assert env.date.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Thu, 29 Sep 2022 23:59:59 -0000", datetime(2022, 9, 29, 23, 59, 59, tzinfo=timezone.utc)),
        ("29 Sep 2022 23:59:59 GMT", datetime(2022, 9, 29, 23, 59, 59, tzinfo=timezone.utc)),
        ("Fri, 30 Sep 22 08:00 +0100", datetime(2022, 9, 30, 8, 0, tzinfo=timezone(timedelta(hours=1)))),
        (
            "Fri, 21 Nov 1997 09(comment):   55  :  06 -0600",
            datetime(1997, 11, 21, 9, 55, 6, tzinfo=timezone(timedelta(hours=-6))),
        ),
        ("not a date", None),
        ("Thu, 32 Sep 2022 25:99:99 +0200", None),
        ("", None),
    ],
)
def test_date_parsing(value: str, expected: datetime | None) -> None:
    raw = crlf(f"From: a@example.no\nDate: {value}\n\nbody\n")
    env = parse_envelope(raw)
    assert env.date == expected
    if expected is not None:
        assert env.date.tzinfo is not None
    if value and expected is None:
        assert "Date header could not be parsed" in env.defects


def test_received_at_uses_topmost_parseable_received() -> None:
    raw = crlf(
        "Received: from a by b with LMTP; garbage date\n"
        "Received: from c by d; Fri, 30 Sep 2022 23:59:00 +0200\n"
        "Received: from e by f; Fri, 30 Sep 2022 23:58:00 +0200\n"
        "From: a@example.no\n\nbody\n"
    )
    assert parse_envelope(raw).received_at == datetime(2022, 9, 30, 23, 59, tzinfo=OSLO_SUMMER)


def test_no_received_gives_none() -> None:
    assert parse_envelope(crlf("From: a@example.no\n\nbody\n")).received_at is None


# --------------------------------------------------------------------------------------------------
# classification headers


def test_headers_dict_lower_cased_decoded_first_occurrence() -> None:
    extra = (
        "Auto-Submitted: auto-replied\n"
        "auto-submitted: no\n"
        "X-Auto-Response-Suppress: All\n"
        "List-Id: =?utf-8?q?H=C3=B8ringer?= <horinger.lists.example.no>\n"
        "Precedence:   bulk  "
    )
    env = parse_envelope(simple_mail(extra=extra))
    assert env.headers["auto-submitted"] == "auto-replied"
    assert env.headers["x-auto-response-suppress"] == "All"
    assert env.headers["list-id"] == "Høringer <horinger.lists.example.no>"
    assert env.headers["precedence"] == "bulk"
    assert env.headers["content-type"] == "text/plain; charset=utf-8"
    assert env.headers["subject"] == "Høringssvar"


def test_header_with_space_before_colon() -> None:
    env = parse_envelope(crlf("From  : John Doe <jdoe@machine.example>\nSubject   : Saying Hello\n\nhi\n"))
    assert env.sender == Address("John Doe", "jdoe@machine.example")
    assert env.subject == "Saying Hello"


def test_one_mangled_header_line_does_not_lose_the_rest() -> None:
    raw = crlf(
        "Received: from x by y; Wed, 14 Sep 2022 10:15:02 +0200\nquite Delivered-To: z\nFrom: a@example.no\nSubject: Svar\n\nbody\n"
    )
    env = parse_envelope(raw)
    assert env.sender == Address("", "a@example.no")
    assert env.subject == "Svar"
    assert env.body_text == "body\n"
    assert "header line without a colon skipped" in env.defects


def test_mbox_from_line_is_skipped() -> None:
    raw = crlf("From kari@example.no Wed Sep 14 10:15:02 2022\nFrom: Kari <kari@example.no>\nSubject: s\n\nbody\n")
    env = parse_envelope(raw)
    assert env.sender == Address("Kari", "kari@example.no")
    assert env.subject == "s"


# --------------------------------------------------------------------------------------------------
# bodies


def test_plain_text_body_utf8() -> None:
    env = parse_envelope(simple_mail(body="Hei,\nvedlagt er vårt høringssvar i sak 22/414.\n"))
    assert env.body_text == "Hei,\nvedlagt er vårt høringssvar i sak 22/414.\n"
    assert env.body_content_type == "text/plain"
    assert env.attachments == []


def test_lf_and_crlf_mails_parse_the_same() -> None:
    crlf_mail = simple_mail()
    lf_mail = crlf_mail.replace(b"\r\n", b"\n")
    a, b = parse_envelope(crlf_mail), parse_envelope(lf_mail)
    assert (a.subject, a.sender, a.body_text, a.date) == (b.subject, b.sender, b.body_text, b.date)


def test_quoted_printable_latin1_body() -> None:
    raw = crlf(
        headers_block()
        + "\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
        + "Vi st=F8tter forslaget, men savner en l=F8sning for =\nB=E6rum =96 se vedlegg.\n"
    )
    assert parse_envelope(raw).body_text == "Vi støtter forslaget, men savner en løsning for Bærum – se vedlegg.\n"


def test_base64_body_with_bad_padding_and_junk() -> None:
    encoded = b64("Hilsen Åse".encode()).strip().rstrip("=") + "!!"
    raw = crlf(
        headers_block() + f"\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n{encoded}\n"
    )
    assert parse_envelope(raw).body_text == "Hilsen Åse"


@pytest.mark.parametrize(
    ("charset", "payload", "expected"),
    [
        ("x-bogus-charset", "Høringssvar".encode("utf-8"), "Høringssvar"),
        ("x-bogus-charset", "Høringssvar – ok".encode("cp1252"), "Høringssvar – ok"),
        ("utf-8", "Høring ".encode() + b"\xff" + " svar".encode(), "Høring \ufffd svar"),
        ("windows-1252", "Bærum – svar".encode("cp1252"), "Bærum – svar"),
        ('"ISO-8859-1"', "Østfold".encode("latin-1"), "Østfold"),
        ("us-ascii", "Ærlig talt".encode(), "Ærlig talt"),
        ("iso-2022-jp", "まみむめも".encode("iso-2022-jp"), "まみむめも"),
        ("base64", b"plain text", "plain text"),  # a bytes codec name is no charset
    ],
)
def test_body_charsets(charset: str, payload: bytes, expected: str) -> None:
    raw = crlf(headers_block() + f"\nContent-Type: text/plain; charset={charset}\n\n") + payload
    assert parse_envelope(raw).body_text == expected


def test_html_only_mail_converted_to_text() -> None:
    html = (
        "<html><head><style>p {color: red}</style><title>Tittel</title></head>\n<body>"
        "<h1>H&oslash;ringssvar</h1><p>Vi viser til h&#248;ringen i sak 22/414.<br>Med vennlig hilsen</p>"
        "<script>alert('x')</script><ul><li>Punkt&nbsp;1</li>\n<li>Punkt 2</li></ul>"
        "<p>B&aelig;rum&nbsp;kommune &amp; Asker &lt;ok&gt;</p><!-- kommentar --></body></html>"
    )
    raw = crlf(headers_block() + f"\nContent-Type: text/html; charset=utf-8\n\n{html}\n")
    env = parse_envelope(raw)
    assert env.body_text == (
        "Høringssvar\n\nVi viser til høringen i sak 22/414.\nMed vennlig hilsen\n\n"
        "- Punkt 1\n- Punkt 2\n\nBærum kommune & Asker <ok>"
    )
    assert env.body_content_type == "text/html"
    assert env.attachments == []


def test_alternative_prefers_plain_and_drops_html_alternative() -> None:
    alternative = multipart("alt", [text_part("Ren tekst\n"), text_part("<p>HTML</p>", "html")], "alternative")
    env = parse_envelope(mixed_mail([alternative, pdf_part()]))
    assert env.body_text == "Ren tekst\n"
    assert [a.filename for a in env.attachments] == ["Høringssvar.pdf"]


def test_alternative_with_only_html_uses_html() -> None:
    alternative = multipart("alt", [text_part("<p>Bare <b>HTML</b></p>", "html")], "alternative")
    env = parse_envelope(mixed_mail([alternative]))
    assert env.body_text == "Bare HTML"


def test_related_html_body_with_inline_image() -> None:
    related = multipart(
        "rel",
        [
            text_part('<p>Se logo <img src="cid:logo@x"></p>', "html"),
            binary_part(
                b"\x89PNG\r\n\x1a\nfake", "Content-Type: image/png\nContent-ID: <logo@x>\nContent-Disposition: inline"
            ),
        ],
        "related",
    )
    alternative = multipart("alt", [text_part("Se logo\n"), related], "alternative")
    env = parse_envelope(mixed_mail([alternative]))
    assert env.body_text == "Se logo\n"
    assert len(env.attachments) == 1
    image = env.attachments[0]
    assert (image.content_type, image.inline, image.filename, image.content_id, image.is_pdf) == (
        "image/png",
        True,
        None,
        "<logo@x>",
        False,
    )


def test_text_parts_around_attachments_are_joined() -> None:
    env = parse_envelope(mixed_mail([text_part("Første del\n"), pdf_part(), text_part("Andre del\n")]))
    assert env.body_text == "Første del\n\nAndre del\n"


def test_text_file_attachment_is_not_body() -> None:
    attached_text = (
        "Content-Type: text/plain; charset=utf-8\nContent-Disposition: attachment; filename=notat.txt\n\nnotat\n"
    )
    env = parse_envelope(mixed_mail([text_part("Hei\n"), attached_text]))
    assert env.body_text == "Hei\n"
    assert [(a.filename, a.content_type, a.data, a.inline) for a in env.attachments] == [
        ("notat.txt", "text/plain", b"notat\r\n", False)
    ]


def test_part_without_content_type_is_text_plain_body() -> None:
    env = parse_envelope(mixed_mail(["\nuten content-type\n", pdf_part()]))
    assert env.body_text == "uten content-type\n"


def test_attachment_only_mail_has_empty_body() -> None:
    raw = crlf(headers_block() + "\n" + binary_part(PDF_BYTES, 'Content-Type: application/pdf; name="svar.pdf"'))
    env = parse_envelope(raw)
    assert env.body_text == ""
    assert env.body_content_type is None
    assert [(a.filename, a.is_pdf, a.depth) for a in env.attachments] == [("svar.pdf", True, 0)]


# --------------------------------------------------------------------------------------------------
# attachments and filenames


def test_attachment_fields_exact() -> None:
    env = parse_envelope(mixed_mail([text_part(), pdf_part("Høringssvar 22-414.pdf")]))
    (attachment,) = env.attachments
    assert attachment.filename == "Høringssvar 22-414.pdf"
    assert attachment.content_type == "application/pdf"
    assert attachment.data == PDF_BYTES
    assert attachment.size == len(PDF_BYTES)
    assert attachment.sha256 == hashlib.sha256(PDF_BYTES).hexdigest()
    assert attachment.is_pdf is True
    assert attachment.inline is False
    assert attachment.depth == 0


@pytest.mark.parametrize(
    ("disposition_params", "expected"),
    [
        ("filename*=UTF-8''H%C3%B8ringssvar%20%C3%98stfold.pdf", "Høringssvar Østfold.pdf"),
        ("filename*=utf-8'no'H%C3%B8ringssvar.pdf", "Høringssvar.pdf"),
        ("filename*=iso-8859-1''H%F8ringssvar.pdf", "Høringssvar.pdf"),
        (
            "filename*0*=UTF-8''H%C3%B8ringssvar%20;\n filename*1*=%C3%98stfold;\n filename*2=\".pdf\"",
            "Høringssvar Østfold.pdf",
        ),
        ('filename*1="del2.pdf"; filename*0="del1-"', "del1-del2.pdf"),
        ('filename="=?UTF-8?Q?H=C3=B8ringssvar_Sykehuset_=C3=98stfold.pdf?="', "Høringssvar Sykehuset Østfold.pdf"),
        ('filename="=?ISO-8859-1?B?SPhyaW5nc3N2YXIucGRm?="', "Høringssvar.pdf"),
        ('filename="Høringssvar fra Bærum.pdf"', "Høringssvar fra Bærum.pdf"),
        ("filename=\"plain.pdf\"; filename*=UTF-8''%C3%A6%C3%B8%C3%A5.pdf", "æøå.pdf"),
        ("filename=unquoted.pdf", "unquoted.pdf"),
        ('filename="with \\"quotes\\".pdf"', 'with "quotes".pdf'),
    ],
)
def test_filename_decoding(disposition_params: str, expected: str) -> None:
    part = binary_part(
        PDF_BYTES, f"Content-Type: application/pdf\nContent-Disposition: attachment;\n {disposition_params}"
    )
    env = parse_envelope(mixed_mail([text_part(), part]))
    assert env.attachments[0].filename == expected


def test_filename_from_content_type_name_when_no_disposition() -> None:
    part = binary_part(PDF_BYTES, 'Content-Type: application/pdf; name="=?utf-8?q?Sv=C3=A6r.pdf?="')
    env = parse_envelope(mixed_mail([text_part(), part]))
    assert (env.attachments[0].filename, env.attachments[0].inline) == ("Svær.pdf", True)


def test_stdlib_generated_attachment_roundtrip() -> None:
    message = EmailMessage()
    message["From"] = "Sykehuset Østfold HF <postmottak@so-hf.no>"
    message["To"] = "postmottak@direktoratet.example.no"
    message["Subject"] = "Høringssvar – sak 22/414"
    message["Message-ID"] = "<svar-1@so-hf.no>"
    message.set_content("Vedlagt er høringssvaret vårt.\n")
    message.add_attachment(
        PDF_BYTES, maintype="application", subtype="pdf", filename="Høringssvar Østfold – endelig.pdf"
    )
    env = parse_envelope(message.as_bytes())
    assert env.subject == "Høringssvar – sak 22/414"
    assert env.sender == Address("Sykehuset Østfold HF", "postmottak@so-hf.no")
    assert env.body_text == "Vedlagt er høringssvaret vårt.\n"
    assert [(a.filename, a.is_pdf, a.data) for a in env.attachments] == [
        ("Høringssvar Østfold – endelig.pdf", True, PDF_BYTES)
    ]


@pytest.mark.parametrize(
    ("filename_param", "expected"),
    [
        ('filename="../../etc/passwd"', "passwd"),
        ('filename="/abs/x.pdf"', "x.pdf"),
        ('filename="C:\\\\x\\\\y.pdf"', "y.pdf"),
        ("filename*=UTF-8''C%3A%5Cx%5Cy.pdf", "y.pdf"),
        ("filename*=UTF-8''a%00b.pdf", "ab.pdf"),
        ("filename*=UTF-8''..%2F..%2Fsecret.pdf", "secret.pdf"),
        ("filename*=UTF-8''svar%E2%80%AEfdp.exe", "svarfdp.exe"),  # right-to-left override removed
        ('filename=".."', None),
        ('filename="../"', None),
        ('filename=""', None),
        ('filename="  "', None),
        ("filename*=UTF-8''Ho%CC%88ring.pdf", "Höring.pdf"),  # NFD from macOS -> NFC
    ],
)
def test_filename_sanitising(filename_param: str, expected: str | None) -> None:
    part = binary_part(PDF_BYTES, f"Content-Type: application/pdf\nContent-Disposition: attachment; {filename_param}")
    env = parse_envelope(mixed_mail([text_part(), part]))
    assert env.attachments[0].filename == expected


def test_overlong_filename_capped_keeping_extension() -> None:
    long_name = "a" * 1000 + ".pdf"
    part = binary_part(
        PDF_BYTES, f'Content-Type: application/pdf\nContent-Disposition: attachment; filename="{long_name}"'
    )
    name = parse_envelope(mixed_mail([text_part(), part])).attachments[0].filename
    assert name == "a" * 251 + ".pdf"


def test_overlong_multibyte_filename_capped_at_255_utf8_bytes() -> None:
    long_name = "ø" * 300 + ".pdf"
    part = binary_part(
        PDF_BYTES, f'Content-Type: application/pdf\nContent-Disposition: attachment; filename="{long_name}"'
    )
    name = parse_envelope(mixed_mail([text_part(), part])).attachments[0].filename
    assert name == "ø" * 125 + ".pdf"
    assert len(name.encode("utf-8")) <= 255


@pytest.mark.parametrize(
    ("headers", "data", "filename", "content_type", "inline"),
    [
        ("Content-Type: application/octet-stream", PDF_BYTES, None, "application/octet-stream", True),
        ("Content-Type: application/pdf\nContent-Disposition: inline", PDF_BYTES, None, "application/pdf", True),
        (
            "Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document\n"
            'Content-Disposition: attachment; filename="Høringssvar.docx"',
            PDF_BYTES,
            "Høringssvar.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            False,
        ),
        ("", PDF_BYTES, None, "application/octet-stream", True),  # no headers at all: text/plain by default
        ("Content-Type: text/plain", b"\xef\xbb\xbf \r\n" + PDF_BYTES, None, "text/plain", True),
        (
            "Content-Type: image/jpeg\nContent-Disposition: weird-value",
            b"\n" * 1000 + PDF_BYTES,
            None,
            "image/jpeg",
            False,
        ),
    ],
)
def test_pdf_recognised_by_content(
    headers: str, data: bytes, filename: str | None, content_type: str, inline: bool
) -> None:
    env = parse_envelope(mixed_mail([text_part("Svar vedlagt\n"), binary_part(data, headers)]))
    assert env.body_text == "Svar vedlagt\n"
    (attachment,) = env.attachments
    assert (attachment.is_pdf, attachment.filename, attachment.content_type, attachment.inline) == (
        True,
        filename,
        content_type,
        inline,
    )
    assert attachment.data == data


@pytest.mark.parametrize(
    "data",
    [
        b"%PDX-1.4 not a pdf",
        DOCX_BYTES,
        b"\n" * 1025 + PDF_BYTES,  # more than 1024 bytes before the header
        b"Hello %PDF-1.4",  # not at the start
        b"",
    ],
)
def test_not_pdf_by_content(data: bytes) -> None:
    part = binary_part(data, 'Content-Type: application/pdf\nContent-Disposition: attachment; filename="svar.pdf"')
    env = parse_envelope(mixed_mail([text_part(), part]))
    assert env.attachments[0].is_pdf is False


def test_docx_attachment_kept_with_declared_type() -> None:
    part = binary_part(
        DOCX_BYTES,
        "Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document\n"
        "Content-Disposition: attachment; filename=svar.docx",
    )
    (attachment,) = parse_envelope(mixed_mail([text_part(), part])).attachments
    assert (attachment.filename, attachment.is_pdf, attachment.data) == ("svar.docx", False, DOCX_BYTES)


# --------------------------------------------------------------------------------------------------
# forwarded messages


def _inner_message(
    subject: str, parts: list[str], sender: str = "Sykehuset Østfold HF <postmottak@so-hf.no>", boundary: str = "inner"
) -> str:
    return (
        f"From: {sender}\nTo: kari@example.no\nSubject: {subject}\nDate: Mon, 12 Sep 2022 09:00:00 +0200\n"
        f"Message-ID: <inner-{len(subject)}@so-hf.no>\nMIME-Version: 1.0\n" + multipart(boundary, parts)
    )


def test_forwarded_message_with_pdf_inside() -> None:
    inner = _inner_message("=?utf-8?q?H=C3=B8ringssvar?=", [text_part("Indre tekst\n"), pdf_part("Indre svar.pdf")])
    forwarded = f'Content-Type: message/rfc822\nContent-Disposition: attachment; filename="svar.eml"\n\n{inner}'
    env = parse_envelope(mixed_mail([text_part("Videresender svaret.\n"), forwarded], subject="VS: Høringssvar"))
    assert env.subject == "VS: Høringssvar"
    assert env.body_text == "Videresender svaret.\n"
    assert len(env.forwarded) == 1
    inner_env = env.forwarded[0]
    assert isinstance(inner_env, Envelope)
    assert inner_env.subject == "Høringssvar"
    assert inner_env.sender == Address("Sykehuset Østfold HF", "postmottak@so-hf.no")
    assert inner_env.message_id == "<inner-28@so-hf.no>"
    assert inner_env.body_text == "Indre tekst\n"
    assert [(a.filename, a.is_pdf, a.depth) for a in inner_env.attachments] == [("Indre svar.pdf", True, 1)]
    assert [(a.filename, a.is_pdf, a.depth) for a in env.attachments] == [("Indre svar.pdf", True, 1)]


def test_forwarded_twice_and_document_order() -> None:
    innermost = _inner_message(
        "innerst", [text_part("x\n"), pdf_part("dypest.pdf")], sender="a@b.no", boundary="deepest"
    )
    middle = _inner_message(
        "midten",
        [text_part("y\n"), pdf_part("midten.pdf"), f"Content-Type: message/rfc822\n\n{innermost}"],
        sender="c@d.no",
    )
    env = parse_envelope(
        mixed_mail(
            [
                text_part("topp\n"),
                pdf_part("først.pdf"),
                f"Content-Type: message/rfc822\n\n{middle}",
                pdf_part("sist.pdf"),
            ]
        )
    )
    assert [(a.filename, a.depth) for a in env.attachments] == [
        ("først.pdf", 0),
        ("midten.pdf", 1),
        ("dypest.pdf", 2),
        ("sist.pdf", 0),
    ]
    assert [f.subject for f in env.forwarded] == ["midten"]
    assert [f.subject for f in env.forwarded[0].forwarded] == ["innerst"]


def test_base64_encoded_forwarded_message() -> None:
    inner = crlf("From: a@b.no\nSubject: innpakket\n\nhei\n")
    part = f"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n{b64(inner)}"
    env = parse_envelope(mixed_mail([text_part(), part]))
    assert env.forwarded[0].subject == "innpakket"
    assert env.forwarded[0].body_text == "hei\n"


# --------------------------------------------------------------------------------------------------
# reports (bounces, read receipts)


def _bounce(original_part: str, report_type: str = "delivery-status") -> bytes:
    human = text_part("Meldingen kunne ikke leveres til kari@ukjent.example.no.\n")
    status = "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.no\n\nFinal-Recipient: rfc822; kari@ukjent.example.no\nAction: failed\nStatus: 5.1.1\n"
    body = multipart("rep", [human, status, original_part], "report", f"; report-type={report_type}")
    return crlf(
        "Return-Path: <>\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.no>\nTo: postmottak@dir.example.no\n"
        "Subject: Undelivered Mail Returned to Sender\nAuto-Submitted: auto-replied\n" + body + "\n"
    )


def test_bounce_with_returned_message() -> None:
    original = (
        "Content-Type: message/rfc822\n\nFrom: postmottak@dir.example.no\nTo: kari@ukjent.example.no\n"
        "Subject: Kvittering for mottatt høringssvar\nMessage-ID: <kvittering-42@dir.example.no>\n\nTakk.\n"
    )
    env = parse_envelope(_bounce(original))
    assert env.is_report is True
    assert env.report_type == "delivery-status"
    assert env.dsn_original_message_id == "<kvittering-42@dir.example.no>"
    assert env.body_text == "Meldingen kunne ikke leveres til kari@ukjent.example.no.\n"
    assert env.return_path == ""
    assert [a.content_type for a in env.attachments] == ["message/delivery-status"]


def test_bounce_with_headers_only() -> None:
    original = "Content-Type: text/rfc822-headers\n\nFrom: postmottak@dir.example.no\nMessage-ID:\n <kvittering-43@dir.example.no>\n"
    env = parse_envelope(_bounce(original))
    assert env.dsn_original_message_id == "<kvittering-43@dir.example.no>"
    assert [a.content_type for a in env.attachments] == ["message/delivery-status", "text/rfc822-headers"]


def test_read_receipt_original_message_id() -> None:
    notification = (
        "Content-Type: message/disposition-notification\n\nReporting-UA: outlook\n"
        "Original-Message-ID: <kvittering-44@dir.example.no>\nDisposition: automatic-action/MDN-sent-automatically; displayed\n"
    )
    env = parse_envelope(_bounce(notification, "disposition-notification"))
    assert env.report_type == "disposition-notification"
    assert env.dsn_original_message_id == "<kvittering-44@dir.example.no>"


def test_ordinary_mail_is_no_report() -> None:
    env = parse_envelope(simple_mail())
    assert (env.is_report, env.report_type, env.dsn_original_message_id) == (False, None, None)


# --------------------------------------------------------------------------------------------------
# broken structure


def test_missing_closing_boundary() -> None:
    raw = crlf(
        headers_block()
        + '\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nhei\n--b\n'
        + pdf_part()
    )
    env = parse_envelope(raw)
    assert env.body_text == "hei"
    assert [a.is_pdf for a in env.attachments] == [True]
    assert "multipart without closing boundary 'b'" in env.defects


def test_multipart_without_boundary_parameter_read_as_text() -> None:
    raw = crlf(headers_block() + "\nContent-Type: multipart/mixed\n\nbare tekst\n")
    env = parse_envelope(raw)
    assert env.body_text == "bare tekst\n"
    assert "multipart/mixed without boundary parameter; read as text/plain" in env.defects


def test_similar_boundaries_are_not_confused() -> None:
    inner = multipart("AB", [text_part("indre\n")], "alternative")
    raw = crlf(headers_block() + "\n" + multipart("A", [inner, pdf_part()]) + "\n")
    env = parse_envelope(raw)
    assert env.body_text == "indre\n"
    assert len(env.attachments) == 1


def test_unknown_transfer_encoding_is_a_defect_payload_kept() -> None:
    raw = crlf(headers_block() + "\nContent-Type: text/plain\nContent-Transfer-Encoding: x-weird\n\nrå tekst\n")
    env = parse_envelope(raw)
    assert env.body_text == "rå tekst\n"
    assert "unknown Content-Transfer-Encoding 'x-weird'; payload kept as is" in env.defects


def test_uuencoded_attachment() -> None:
    import binascii

    encoded = binascii.b2a_uu(PDF_BYTES[:45]).decode() + binascii.b2a_uu(PDF_BYTES[45:90]).decode()
    part = f'Content-Type: application/pdf; name="gammel.pdf"\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 gammel.pdf\n{encoded}`\nend\n'
    env = parse_envelope(mixed_mail([text_part(), part]))
    assert env.attachments[0].data == PDF_BYTES[:90]
    assert env.attachments[0].is_pdf is True


# --------------------------------------------------------------------------------------------------
# hostile input and caps


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe" * 1000,
        b"\r\n\r\n\r\n",
        b"no headers here at all",
        b"Subject: only a header",
        b"From: \r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"=?utf-8?b?" * 1000,
        b"Subject: " + b"=?utf-8?q?" * 2000 + b"\r\n\r\n",
        bytes(range(256)) * 50,
    ],
)
def test_never_raises_on_junk(raw: bytes) -> None:
    env = parse_envelope(raw)
    assert isinstance(env, Envelope)
    assert isinstance(env.body_text, str)


def test_empty_input() -> None:
    env = parse_envelope(b"")
    assert (env.message_id, env.subject, env.sender, env.body_text, env.attachments, env.date) == (
        None,
        "",
        None,
        "",
        [],
        None,
    )


def test_one_megabyte_header_value_capped() -> None:
    raw = b"From: a@example.no\r\nSubject: " + b"x" * 1_000_000 + b"\r\nX-After: kept\r\n\r\nbody\r\n"
    env = parse_envelope(raw)
    assert env.subject == "x" * 10_000
    assert env.headers["x-after"] == "kept"
    assert env.body_text == "body\n"
    assert "header subject longer than 10000 characters; truncated" in env.defects


def test_one_megabyte_of_folded_header() -> None:
    raw = b"From: a@example.no\r\nReferences: " + b"<a@b>\r\n " * 150_000 + b"<last@b>\r\n\r\nbody\r\n"
    env = parse_envelope(raw)
    assert env.body_text == "body\n"
    assert len(env.headers["references"]) == 10_000
    assert env.references[0] == "<a@b>"


def test_one_megabyte_of_header_fields_capped() -> None:
    raw = b"From: a@example.no\r\n" + b"X-Spam: y\r\n" * 100_000 + b"Subject: too late\r\n\r\nbody\r\n"
    env = parse_envelope(raw)
    assert env.sender == Address("", "a@example.no")
    assert env.subject == ""  # beyond the field cap
    assert env.body_text == "body\n"
    assert "more than 2000 header fields; the rest was skipped" in env.defects


def test_five_thousand_parts_capped() -> None:
    parts = [
        binary_part(
            b"data %d" % i,
            f'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="f{i}.bin"',
        )
        for i in range(5000)
    ]
    env = parse_envelope(mixed_mail(parts))
    assert len(env.attachments) == MAX_PARTS - 1  # the root counts as a part too
    assert env.attachments[0].filename == "f0.bin"
    assert env.attachments[-1].filename == "f998.bin"
    assert f"more than {MAX_PARTS} MIME parts; the rest was not read" in env.defects


def _nested_multiparts(levels: int) -> bytes:
    head, tail = "", ""
    for level in range(levels):
        head += f'Content-Type: multipart/mixed; boundary="b{level}"\n\n--b{level}\n'
        tail = f"\n--b{level}--\n" + tail
    return crlf("From: a@example.no\nSubject: dyp\n" + head + "Content-Type: text/plain\n\ninnerst" + tail)


def test_nesting_fifty_multiparts_deep() -> None:
    env = parse_envelope(_nested_multiparts(50))
    assert f"MIME nesting deeper than {MAX_DEPTH} levels; deeper content kept as an opaque attachment" in env.defects
    assert env.body_text == ""
    (opaque,) = env.attachments
    assert opaque.content_type == "multipart/mixed"
    assert opaque.data.startswith(b'Content-Type: multipart/mixed; boundary="b20"\r\n')
    assert b"innerst" in opaque.data


def test_nesting_twenty_multiparts_is_fine() -> None:
    env = parse_envelope(_nested_multiparts(MAX_DEPTH))
    assert env.body_text == "innerst"
    assert env.defects == []


def test_nesting_fifty_forwarded_messages_deep() -> None:
    message = "From: a@example.no\nSubject: innerst\n\ntekst\n"
    for level in range(50):
        message = f"From: a@example.no\nSubject: nivå {level}\nContent-Type: message/rfc822\n\n{message}"
    env = parse_envelope(crlf(message))
    chain = []
    current = env
    while current.forwarded:
        current = current.forwarded[0]
        chain.append(current)
    assert len(chain) == MAX_DEPTH
    assert any(
        d.endswith(f"MIME nesting deeper than {MAX_DEPTH} levels; deeper content kept as an opaque attachment")
        for d in env.defects
    )
    (opaque,) = env.attachments
    assert opaque.depth == MAX_DEPTH
    assert b"innerst" in opaque.data


def test_hostile_html_of_unclosed_markup_gives_a_text_body() -> None:
    html = "<!" * 300_000 + "<a " * 300_000 + "<![" * 100_000
    raw = crlf(headers_block() + "\nContent-Type: text/html\n\n") + html.encode()
    env = parse_envelope(raw)
    assert isinstance(env.body_text, str)


def test_string_input_is_accepted() -> None:
    env = parse_envelope("From: a@example.no\r\nSubject: s\r\n\r\nbody")  # type: ignore[arg-type]
    assert env.subject == "s"


# --------------------------------------------------------------------------------------------------
# HTML to text details


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("a < b and c > d", "a < b and c > d"),
        ("<pre>  kode\n    innrykk</pre>etter", "kode\ninnrykk\n\netter"),
        (
            "<table><tr><td>Navn</td><td>Kari</td></tr><tr><td>Sak</td><td>22/414</td></tr></table>",
            "Navn Kari\nSak 22/414",
        ),
        ("<div>en</div><div>to</div>", "en\nto"),
        ("<p>uavsluttet <style>p{}", "uavsluttet"),
        ("<SCRIPT type='x'>var a = '<p>';</SCRIPT>synlig", "synlig"),
        ("&AElig;&#216;&#xc5; &euro; &ukjent; &amp", "ÆØÅ € &ukjent; &"),
        ("<!DOCTYPE html><?xml version='1.0'?><![CDATA[x]]>tekst", "tekst"),
        ("", ""),
    ],
)
def test_html_to_text(markup: str, expected: str) -> None:
    from postmottak.parsers.html_text import html_to_text

    assert html_to_text(markup) == expected


def test_repeated_defects_are_summarised() -> None:
    raw = b"From: a@example.no\r\n" + b"bad line\r\nX-A: b\r\n" * 500 + b"\r\nbody"
    env = parse_envelope(raw)
    assert env.defects == ["header line without a colon skipped (x500)"]
    assert env.sender == Address("", "a@example.no")
