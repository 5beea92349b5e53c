"""The mail factory produces what it promises: stdlib-parseable, defect-free mail with the stated properties."""

from __future__ import annotations

import io
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pdfplumber
import pypdfium2 as pdfium
import pytest

from tests import mailfactory as mf
from tests.servers.dovecot import DovecotServer


def parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def defects(message: EmailMessage) -> list[object]:
    return [defect for part in message.walk() for defect in part.defects]


def pdf_text(data: bytes) -> str:
    """Text of a PDF via pdfium (pdfplumber's renderer): ~70x faster than pdfplumber for whole mailboxes."""
    document = pdfium.PdfDocument(data)
    try:
        return "\n".join(document[index].get_textpage().get_text_range() for index in range(len(document)))
    finally:
        document.close()


def pdfplumber_text(data: bytes) -> str:
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return "\n".join(page.extract_text() or "" for page in pdf.pages)


def all_text(message: EmailMessage) -> str:
    """Decoded headers, text parts and PDF text of a mail, embedded messages included."""
    chunks = [f"{name}: {value}" for name, value in message.items()]
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type.startswith("text/"):
            chunks.append(part.get_content())
        elif content_type == "application/pdf":
            chunks.append(pdf_text(part.get_content()))
        elif content_type == "message/rfc822":
            chunks.append("\n".join(f"{n}: {v}" for n, v in part.get_content().items()))
    return "\n".join(chunks)


# --------------------------------------------------------------------------------------------- PDFs


def test_plain_pdf_is_a_real_pdf_with_norwegian_text() -> None:
    data = mf.plain_pdf(["Høringssvar fra Ålesund kommune", "Kontaktperson: Øyvind Åsheim", "x " * 200])
    assert data.startswith(b"%PDF-")
    text = pdfplumber_text(data)  # the library the form parser uses
    assert "Høringssvar fra Ålesund kommune" in text
    assert "Øyvind Åsheim" in text
    assert mf.plain_pdf(["a", "b"]) == mf.plain_pdf(["a", "b"])  # deterministic


def test_generated_form_pdf_carries_the_form_wording() -> None:
    text = pdf_text(mf._generated_form_pdf("Tromsø kommune", "Lars Ørnes", "lars.ornes@tromso.kommune.no"))
    assert "Høringssvarskjema" in text
    assert "Saksnummer 22/414" in text
    assert "[X] Kommune/KS" in text
    assert "Tromsø kommune" in text
    assert "lars.ornes@tromso.kommune.no" in text


def test_form_pdf_uses_fixtures_when_present() -> None:
    data = mf.form_pdf(0, "Kreftforeningen", "Hege Bråten")
    assert data.startswith(b"%PDF-")
    real = mf.real_form_pdfs()
    if real:
        assert data == real[0].read_bytes()
        assert mf.form_pdf(len(real)) == data  # cycles
    else:
        assert "Kreftforeningen" in pdf_text(data)


# --------------------------------------------------------------------------------------------- response_mail


def test_response_mail_defaults() -> None:
    message = parse(mf.response_mail())
    assert not defects(message)
    assert message["Subject"] == "Høringssvar - sak 22/414"
    assert message["From"].addresses[0].display_name == "Åse Ødegård"
    assert message["From"].addresses[0].addr_spec == "ase.odegard@baerum.kommune.no"
    assert message["To"] == mf.POSTMOTTAK
    assert message["Message-ID"].endswith("@baerum.kommune.no>")
    assert "22/414" in message.get_body(("plain",)).get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "Høringssvar Bærum kommune.pdf"
    assert attachment.get_content().startswith(b"%PDF-")


def test_response_mail_message_ids_are_unique() -> None:
    ids = {parse(mf.response_mail(attachments=[]))["Message-ID"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize("subject_encoding", ["utf-8", "iso-8859-1"])
@pytest.mark.parametrize("transfer", ["base64", "quoted-printable", "8bit"])
def test_response_mail_encoding_variants(subject_encoding: mf.SubjectEncoding, transfer: mf.Transfer) -> None:
    body = "Høringssvar fra Ålesund kommune.\n\nMed vennlig hilsen\nØyvind Åsheim\n"
    raw = mf.response_mail(
        org="Ålesund kommune",
        sender_name="Øyvind Åsheim",
        body=body,
        subject_encoding=subject_encoding,
        transfer=transfer,
        attachments=[],
        date=datetime(2022, 9, 29, 14, 5, tzinfo=mf.OSLO),
    )
    message = parse(raw)
    assert not defects(message)
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    assert header_block.isascii()
    assert f"=?{subject_encoding}?".encode() in header_block.lower()
    assert message["Subject"] == "Høringssvar - sak 22/414"
    assert message["From"].addresses[0].display_name == "Øyvind Åsheim"
    assert message["Date"].datetime == datetime(2022, 9, 29, 14, 5, tzinfo=mf.OSLO)
    assert message["Content-Transfer-Encoding"] == transfer
    assert message.get_content_charset() == subject_encoding
    assert message.get_content().replace("\r\n", "\n") == body  # base64 bodies keep CRLF, as in real mail
    assert raw.isascii() == (transfer != "8bit")
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


def test_response_mail_refuses_latin1_for_unencodable_text() -> None:
    with pytest.raises(ValueError):
        mf.response_mail(org="NITO – Norges ingeniør- og teknologorganisasjon", subject_encoding="iso-8859-1")


@pytest.mark.parametrize("style", ["rfc2231", "rfc2047"])
def test_attachment_filename_styles(style: mf.AttachmentNameStyle) -> None:
    raw = mf.response_mail(
        attachments=[("Høringssvar Sør-Varanger.pdf", "application/pdf", mf.plain_pdf(["x"]))],
        attachment_name_style=style,
    )
    marker = b"filename*=utf-8''" if style == "rfc2231" else b'filename="=?utf-8?'
    assert marker in raw
    [attachment] = list(parse(raw).iter_attachments())
    assert attachment.get_filename() == "Høringssvar Sør-Varanger.pdf"


def test_response_mail_html_alternative() -> None:
    message = parse(mf.response_mail(html=True))
    assert not defects(message)
    assert "22/414" in message.get_body(("plain",)).get_content()
    assert "<p>" in message.get_body(("html",)).get_content()
    types = [part.get_content_type() for part in message.walk()]
    assert types == ["multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/pdf"]
    # MIME-Version only on the top level, as real clients do.
    assert [part for part in message.walk() if part["MIME-Version"]] == [message]


def test_response_mail_smtputf8_headers() -> None:
    raw = mf.response_mail(
        org="Øyvind Åsheim", sender_name="Øyvind Åsheim", sender_addr="øyvind@åsheim.no", utf8_headers=True
    )
    assert "From: Øyvind Åsheim <øyvind@åsheim.no>".encode() in raw
    message = parse(raw)
    assert str(message["From"]) == "Øyvind Åsheim <øyvind@åsheim.no>"
    assert message["Message-ID"].endswith("@åsheim.no>")
    # Stdlib gotcha worth knowing for the envelope parser: raw UTF-8 headers come back from .addresses with
    # surrogate escapes, so the address must be re-decoded.
    addr_spec = message["From"].addresses[0].addr_spec
    assert addr_spec.encode("ascii", "surrogateescape").decode("utf-8") == "øyvind@åsheim.no"


# --------------------------------------------------------------------------------------------- other kinds


def test_forwarded_mail_embeds_the_original() -> None:
    original = mf.response_mail(
        org="Kreftforeningen", sender_name="Hege Bråten", message_id="<orig-1@kreftforeningen.no>"
    )
    message = parse(mf.forwarded_mail(original))
    assert not defects(message)
    assert message["From"].addresses[0].addr_spec == "saksbehandler@ehelse.no"
    assert message["Subject"] == "VS: Høringssvar - sak 22/414"
    [embedded_part] = [part for part in message.walk() if part.get_content_type() == "message/rfc822"]
    embedded = embedded_part.get_content()
    assert embedded["Message-ID"] == "<orig-1@kreftforeningen.no>"
    assert embedded["From"].addresses[0].addr_spec == "hege.braten@kreftforeningen.no"
    [pdf] = list(embedded.iter_attachments())
    assert pdf.get_content().startswith(b"%PDF-")


@pytest.mark.parametrize(
    ("kind", "header", "value", "subject_prefix"),
    [
        ("exchange_oof", "X-Auto-Response-Suppress", "All", "Automatisk svar: "),
        ("auto_submitted", "Auto-Submitted", "auto-replied", "Fraværsmelding: "),
        ("precedence_bulk", "Precedence", "bulk", "Re: "),
    ],
)
def test_auto_reply_kinds(kind: mf.AutoReplyKind, header: str, value: str, subject_prefix: str) -> None:
    receipt_subject = "Kvittering for mottatt høringssvar - sak 22/414"
    message = parse(mf.auto_reply(receipt_subject, kind=kind, in_reply_to="<k@ehelse.no>"))
    assert not defects(message)
    assert message[header] == value
    assert message["Subject"] == f"{subject_prefix}Kvittering for mottatt høringssvar - sak 22/414"
    assert message["In-Reply-To"] == "<k@ehelse.no>"
    others = {"X-Auto-Response-Suppress", "Auto-Submitted", "Precedence"} - {header}
    assert not any(message[other] for other in others)


def test_bounce_is_a_delivery_status_report() -> None:
    message = parse(mf.bounce("<kvittering-7@ehelse.no>", "kari.nordbo@baerum.kommune.no"))
    assert not defects(message)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    assert message["Auto-Submitted"] == "auto-replied"
    parts = message.get_payload()
    assert [part.get_content_type() for part in parts] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    per_message, per_recipient = parts[1].get_payload()
    assert per_message["Reporting-MTA"] == "dns; mx01.ehelse.no"
    assert per_recipient["Final-Recipient"] == "rfc822; kari.nordbo@baerum.kommune.no"
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Status"] == "5.1.1"
    original_headers = BytesParser(policy=policy.default).parsebytes(parts[2].get_content().encode(), headersonly=True)
    assert original_headers["Message-ID"] == "<kvittering-7@ehelse.no>"
    assert original_headers["Subject"] == "Kvittering for mottatt høringssvar - sak 22/414"


def test_temporary_bounce_is_delayed() -> None:
    message = parse(mf.bounce("<k@ehelse.no>", "a@b.no", status="4.4.1", diagnostic="smtp; 451 4.4.1 timeout"))
    assert message.get_payload()[1].get_payload()[1]["Action"] == "delayed"


def test_list_and_html_only_mail() -> None:
    newsletter = parse(mf.list_mail())
    assert not defects(newsletter)
    assert newsletter["List-Id"] == "Nyhetsbrev fra KS <nyhetsbrev.ks.no>"
    assert newsletter["List-Unsubscribe"].strip().startswith("<https://")
    assert newsletter["Precedence"] == "list"
    assert newsletter.get_content_type() == "multipart/alternative"

    html_only = parse(mf.html_only_mail())
    assert not defects(html_only)
    assert [part.get_content_type() for part in html_only.walk()] == ["text/html"]
    assert html_only.get_body(("plain",)) is None
    assert "<h1>" in html_only.get_content()


# --------------------------------------------------------------------------------------------- mailbox


@pytest.fixture(scope="module")
def mailbox() -> list[mf.MailboxItem]:
    return mf.realistic_mailbox_items(mf.DEFAULT_MAILBOX_SIZE, mf.DEFAULT_SEED)


def test_mailbox_counts_match_expected(mailbox: list[mf.MailboxItem]) -> None:
    counts = Counter(item.kind for item in mailbox)
    assert {kind: counts[kind] for kind in mf.MAILBOX_KINDS} == {kind: mf.EXPECTED[kind] for kind in mf.MAILBOX_KINDS}
    assert len(mailbox) == mf.EXPECTED["total"] == mf.DEFAULT_MAILBOX_SIZE
    assert len({item.message_id for item in mailbox}) == mf.EXPECTED["distinct_message_ids"]
    response_kinds = (mf.KIND_ON_TIME, mf.KIND_LATE, mf.KIND_FORWARDED)
    assert len({item.message_id for item in mailbox if item.kind in response_kinds}) == mf.EXPECTED["responses"]
    # A mailbox large enough to look like the real consultation (88 responses).
    assert mf.EXPECTED["responses"] >= 80


def test_mailbox_parses_without_defects(mailbox: list[mf.MailboxItem]) -> None:
    for item in mailbox:
        message = parse(item.raw)
        assert not defects(message), item.kind
        assert message["Message-ID"] == item.message_id
        assert message["Date"].datetime.tzinfo is not None


def test_mailbox_dates(mailbox: list[mf.MailboxItem]) -> None:
    dates = [item.internaldate for item in mailbox]
    assert dates == sorted(dates)
    assert all(date.tzinfo is mf.OSLO for date in dates)
    assert datetime(2022, 9, 1, tzinfo=mf.OSLO) <= dates[0]
    assert dates[-1] < datetime(2022, 10, 6, tzinfo=mf.OSLO)
    for item in mailbox:
        if item.kind in (mf.KIND_ON_TIME, mf.KIND_FORWARDED):
            assert item.internaldate.date() <= mf.DEADLINE_DATE
        if item.kind == mf.KIND_LATE:
            assert item.internaldate.date() > mf.DEADLINE_DATE
    # The edge cases around midnight Oslo time: 23:40 on the deadline day is on time (the deadline day counts),
    # 00:20 the day after is late although it is still 2022-10-01 in UTC.
    [on_time_edge] = [i for i in mailbox if i.kind == mf.KIND_ON_TIME and i.internaldate.date() == mf.DEADLINE_DATE]
    assert on_time_edge.internaldate.hour == 23
    [late_edge] = [
        i
        for i in mailbox
        if i.kind == mf.KIND_LATE and i.internaldate.astimezone(timezone.utc).date() <= mf.DEADLINE_DATE
    ]
    assert late_edge.internaldate.date() == mf.DEADLINE_DATE + timedelta(days=1)


def test_mailbox_duplicate_is_identical(mailbox: list[mf.MailboxItem]) -> None:
    [duplicate] = [item for item in mailbox if item.kind == mf.KIND_DUPLICATE]
    [first] = [item for item in mailbox if item.message_id == duplicate.message_id and item is not duplicate]
    assert duplicate.duplicate_of == first.message_id
    assert duplicate.raw == first.raw
    assert duplicate.internaldate > first.internaldate


def test_mailbox_case_number_truth(mailbox: list[mf.MailboxItem]) -> None:
    """mentions_case_number is right, and needs-review mails mention the strategy but not the case."""
    for item in mailbox:
        text = all_text(parse(item.raw))
        assert ("22/414" in text) == item.mentions_case_number, (item.kind, item.message_id)
        if item.kind == mf.KIND_NEEDS_REVIEW:
            assert "e-helsestrategi" in text
        if item.kind == mf.KIND_UNRELATED:
            assert "e-helsestrategi" not in text


def test_mailbox_responses_carry_a_form_pdf(mailbox: list[mf.MailboxItem]) -> None:
    for item in mailbox:
        if item.kind not in (mf.KIND_ON_TIME, mf.KIND_LATE, mf.KIND_FORWARDED, mf.KIND_DUPLICATE):
            continue
        message = parse(item.raw)
        if item.kind == mf.KIND_FORWARDED:
            [embedded] = [p.get_content() for p in message.walk() if p.get_content_type() == "message/rfc822"]
            message = embedded
        pdfs = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
        assert pdfs, item.message_id
        assert any("Saksnummer 22/414" in pdf_text(p.get_content()) for p in pdfs)


def test_mailbox_is_varied(mailbox: list[mf.MailboxItem]) -> None:
    responses = [item for item in mailbox if item.kind in (mf.KIND_ON_TIME, mf.KIND_LATE)]
    raws = b"\n".join(item.raw for item in responses)
    assert b"=?iso-8859-1?" in raws.lower()
    assert b"Content-Transfer-Encoding: 8bit" in raws
    assert b"Content-Transfer-Encoding: base64\r\n\r\n" in raws
    assert b'filename="=?utf-8?' in raws
    assert b"outlook.com>" in raws
    assert re.search(rb"^Date: .*\+0000\r$", raws, re.MULTILINE)
    categories = {item.category for item in responses}
    assert {
        mf.CATEGORY_MUNICIPALITY,
        mf.CATEGORY_HEALTH_TRUST,
        mf.CATEGORY_UNION,
        mf.CATEGORY_PATIENT,
        mf.CATEGORY_RESEARCH,
        mf.CATEGORY_PRIVATE_PERSON,
        mf.CATEGORY_COMPANY,
    } <= categories
    auto_kinds = {parse(i.raw)["Subject"].split(":")[0] for i in mailbox if i.kind == mf.KIND_AUTO_REPLY}
    assert {"Automatisk svar", "Fraværsmelding", "Re"} <= auto_kinds


def test_mailbox_is_deterministic_per_seed() -> None:
    assert mf.realistic_mailbox(20, seed=1) == mf.realistic_mailbox(20, seed=1)
    assert mf.realistic_mailbox(20, seed=1) != mf.realistic_mailbox(20, seed=2)


@pytest.mark.parametrize("n", [10, 20, 88, 150])
def test_expected_counts_add_up(n: int) -> None:
    counts = mf.expected_counts(n)
    assert sum(counts[kind] for kind in mf.MAILBOX_KINDS) == n
    assert Counter(item.kind for item in mf.realistic_mailbox_items(n, seed=n)) == {
        kind: counts[kind] for kind in mf.MAILBOX_KINDS
    }


def test_expected_counts_rejects_tiny_mailboxes() -> None:
    with pytest.raises(ValueError):
        mf.expected_counts(mf.MIN_MAILBOX_SIZE - 1)


@pytest.mark.imap
def test_mailbox_round_trips_through_dovecot(dovecot_server: DovecotServer) -> None:
    mailbox = mf.realistic_mailbox(20, seed=7)
    uids = [dovecot_server.append(raw, internaldate) for raw, internaldate in mailbox]
    assert dovecot_server.fetch_all() == dict(zip(uids, (raw for raw, _ in mailbox), strict=False))

    client = dovecot_server.connect()
    try:
        client.normalise_times = False
        client.select_folder("INBOX", readonly=True)
        dates = {uid: data[b"INTERNALDATE"] for uid, data in client.fetch(uids, [b"INTERNALDATE"]).items()}
    finally:
        client.logout()
    assert [dates[uid] for uid in uids] == [internaldate for _, internaldate in mailbox]
