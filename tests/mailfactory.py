"""Realistic test mail for case 22/414 ("Høring - Nasjonal e-helsestrategi", deadline 2022-10-01, Europe/Oslo).

Every builder returns raw RFC 5322 bytes (CRLF), made with the stdlib email package the way real clients would
send them: Outlook-style multipart/alternative with a PDF form, old iso-8859-1 clients, SMTPUTF8 senders,
forwarded responses, auto-replies, bounces, newsletters. `realistic_mailbox(n, seed)` gives a deterministic,
dated mix for filling a Dovecot mailbox; `expected_counts(n)` / `EXPECTED` say how many of each kind it holds.

Deadline rule used for the on-time/late split: a response is on time when its INTERNALDATE, seen in
Europe/Oslo, falls on or before 2022-10-01. The mailbox includes one response at 23:40 Oslo on 2022-10-01
(on time: the deadline day counts, so an exclusive "before 2022-10-01 00:00" rule gets it wrong) and one at
00:20 Oslo on 2022-10-02 (late, though still 2022-10-01 22:20 UTC, so comparing in UTC gets it wrong).
"""

from __future__ import annotations

import hashlib
import io
import random
import textwrap
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, formataddr
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")
POSTMOTTAK = "postmottak@ehelse.no"
CASE_NUMBER = "22/414"
CASE_TITLE = "Høring - Nasjonal e-helsestrategi for helse- og omsorgssektoren"
DEADLINE_DATE = datetime(2022, 10, 1, tzinfo=OSLO).date()
FORMS_DIR = Path(__file__).resolve().parent / "fixtures" / "forms"

SubjectEncoding = Literal["utf-8", "iso-8859-1"]
Transfer = Literal["base64", "quoted-printable", "8bit"]
AttachmentNameStyle = Literal["rfc2231", "rfc2047"]
AutoReplyKind = Literal["exchange_oof", "auto_submitted", "precedence_bulk"]
Attachment = tuple[str, str, bytes]  # (filename, content type, data)

# Long raw header values set with set_raw (pre-encoded iso-8859-1 words, RFC 2047 filenames) stay as written.
_POLICY = policy.SMTP.clone(refold_source="none")
_POLICY_UTF8 = policy.SMTPUTF8.clone(refold_source="none")

# ----------------------------------------------------------------------------------------------- catalogue

# The form's own organisation types (the checkboxes in the høringssvarskjema).
CATEGORY_STATE = "Statlig etat, ombud eller fagråd"
CATEGORY_COUNTY = "Fylkeskommune/Statsforvalteren"
CATEGORY_MUNICIPALITY = "Kommune/KS"
CATEGORY_HEALTH_TRUST = "RHF/Helseforetak"
CATEGORY_UNION = "Fag- og interesseorganisasjoner"
CATEGORY_PATIENT = "Pasient- og brukerorganisasjon"
CATEGORY_RESEARCH = "Forskning- og utdanningsorganisasjon"
CATEGORY_PRIVATE_PERSON = "Privatperson"
CATEGORY_COMPANY = "Privat virksomhet/næringsliv"
CATEGORY_OTHER = "Annen enn nevnt ovenfor"
FORM_CATEGORIES = (
    CATEGORY_STATE,
    CATEGORY_COUNTY,
    CATEGORY_MUNICIPALITY,
    CATEGORY_HEALTH_TRUST,
    CATEGORY_UNION,
    CATEGORY_PATIENT,
    CATEGORY_RESEARCH,
    CATEGORY_PRIVATE_PERSON,
    CATEGORY_COMPANY,
    CATEGORY_OTHER,
)


@dataclass(frozen=True)
class Organisation:
    name: str
    category: str
    domain: str
    functional_address: str | None = None  # e.g. the municipality's own postmottak


ORGANISATIONS: tuple[Organisation, ...] = (
    Organisation("Bærum kommune", CATEGORY_MUNICIPALITY, "baerum.kommune.no", "post@baerum.kommune.no"),
    Organisation("Tromsø kommune", CATEGORY_MUNICIPALITY, "tromso.kommune.no", "postmottak@tromso.kommune.no"),
    Organisation("Ålesund kommune", CATEGORY_MUNICIPALITY, "alesund.kommune.no", "postmottak@alesund.kommune.no"),
    Organisation("Oslo kommune", CATEGORY_MUNICIPALITY, "oslo.kommune.no"),
    Organisation("Bergen kommune", CATEGORY_MUNICIPALITY, "bergen.kommune.no", "postmottak@bergen.kommune.no"),
    Organisation("Lørenskog kommune", CATEGORY_MUNICIPALITY, "lorenskog.kommune.no"),
    Organisation("Sør-Varanger kommune", CATEGORY_MUNICIPALITY, "sor-varanger.kommune.no"),
    Organisation("Bø kommune", CATEGORY_MUNICIPALITY, "bo.kommune.no"),
    Organisation("KS", CATEGORY_MUNICIPALITY, "ks.no", "ks@ks.no"),
    Organisation("Helse Sør-Øst RHF", CATEGORY_HEALTH_TRUST, "helse-sorost.no", "postmottak@helse-sorost.no"),
    Organisation("Sykehuset Østfold HF", CATEGORY_HEALTH_TRUST, "so-hf.no", "postmottak@so-hf.no"),
    Organisation("Helse Nord RHF", CATEGORY_HEALTH_TRUST, "helse-nord.no"),
    Organisation("Oslo universitetssykehus HF", CATEGORY_HEALTH_TRUST, "ous-hf.no"),
    Organisation("Helse Bergen HF", CATEGORY_HEALTH_TRUST, "helse-bergen.no"),
    Organisation("Norsk Sykepleierforbund", CATEGORY_UNION, "nsf.no", "post@nsf.no"),
    Organisation("NITO – Norges ingeniør- og teknologorganisasjon", CATEGORY_UNION, "nito.no"),
    Organisation("Den norske legeforening", CATEGORY_UNION, "legeforeningen.no"),
    Organisation("Fagforbundet", CATEGORY_UNION, "fagforbundet.no"),
    Organisation("Norsk Psykologforening", CATEGORY_UNION, "psykologforeningen.no"),
    Organisation("Funksjonshemmedes Fellesorganisasjon", CATEGORY_PATIENT, "ffo.no", "post@ffo.no"),
    Organisation("Kreftforeningen", CATEGORY_PATIENT, "kreftforeningen.no"),
    Organisation("Mental Helse", CATEGORY_PATIENT, "mentalhelse.no"),
    Organisation("Diabetesforbundet", CATEGORY_PATIENT, "diabetes.no"),
    Organisation("Universitetet i Bergen", CATEGORY_RESEARCH, "uib.no", "post@uib.no"),
    Organisation("NTNU", CATEGORY_RESEARCH, "ntnu.no"),
    Organisation("UiT Norges arktiske universitet", CATEGORY_RESEARCH, "uit.no"),
    Organisation("SINTEF", CATEGORY_RESEARCH, "sintef.no"),
    Organisation("Helsedirektoratet", CATEGORY_STATE, "helsedir.no", "postmottak@helsedir.no"),
    Organisation("Folkehelseinstituttet", CATEGORY_STATE, "fhi.no"),
    Organisation("Datatilsynet", CATEGORY_STATE, "datatilsynet.no", "postkasse@datatilsynet.no"),
    Organisation("Statsforvalteren i Vestland", CATEGORY_COUNTY, "statsforvalteren.no"),
    Organisation("Viken fylkeskommune", CATEGORY_COUNTY, "viken.no"),
    Organisation("DIPS AS", CATEGORY_COMPANY, "dips.no"),
    Organisation("Helsetek Norge AS", CATEGORY_COMPANY, "helsetek.example.no"),
    Organisation("Abelia", CATEGORY_OTHER, "abelia.no"),
)

PERSON_NAMES: tuple[str, ...] = (
    "Øyvind Åsheim",
    "Åse Ødegård",
    "Kari Nordbø",
    "Lars Ørnes",
    "Ingrid Bækken",
    "Håkon Sæbø",
    "Marte Kjærnes",
    "Jørgen Løkken",
    "Siri Åmodt",
    "Bjørn Ølstad",
    "Ragnhild Grønvold",
    "Tor Egil Østby",
    "Ane Mæhlum",
    "Sindre Våge",
    "Hege Bråten",
    "Eirik Hølaas",
    "Solveig Fjærli",
    "Per-Åge Næss",
)
PRIVATE_MAIL_DOMAINS = ("gmail.com", "online.no", "hotmail.com", "icloud.com", "outlook.com")
TITLES = ("rådgiver", "seniorrådgiver", "spesialrådgiver", "fagsjef", "kommunalsjef", "avdelingsdirektør")


def _ascii_fold(text: str) -> str:
    table = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "Æ": "Ae", "Ø": "O", "Å": "A", "é": "e", "ü": "u"})
    return text.translate(table)


def address_for(name: str, domain: str) -> str:
    """`Øyvind Åsheim`, `nito.no` -> `oyvind.asheim@nito.no`."""
    local = ".".join(part for part in _ascii_fold(name).lower().replace("-", " ").split())
    return f"{local}@{domain}"


def organisation(name: str) -> Organisation:
    for org in ORGANISATIONS:
        if org.name == name:
            return org
    domain = _ascii_fold(name).lower().replace(" ", "-").replace("–", "").replace("--", "-") + ".example.no"
    return Organisation(name, CATEGORY_OTHER, domain)


def _domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1] if "@" in address else "example.no"


def new_message_id(domain: str) -> str:
    return f"<{uuid.uuid4().hex}@{domain}>"


# ----------------------------------------------------------------------------------------------- PDFs


def plain_pdf(text_lines: Sequence[str], title: str = "Dokument") -> bytes:
    """A small real PDF (reportlab, Helvetica) with the given lines; long lines wrap, pages break.

    Output is byte-for-byte deterministic (reportlab's invariant mode), so mailboxes built from a seed repeat.
    Helvetica has no ballot-box glyphs: write checkboxes as "[X]" / "[ ]".
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=1)
    canvas.setTitle(title)
    canvas.setAuthor("postmottak test")
    width, height = A4
    margin, leading = 56, 14
    y = height - margin
    canvas.setFont("Helvetica", 10.5)
    for line in text_lines:
        for piece in textwrap.wrap(line, width=95) or [""]:
            if y < margin:
                canvas.showPage()
                canvas.setFont("Helvetica", 10.5)
                y = height - margin
            canvas.drawString(margin, y, piece)
            y -= leading
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def form_text_lines(
    org: str,
    contact: str,
    email: str,
    category: str | None = None,
    answers: Sequence[str] | None = None,
) -> list[str]:
    """The wording of the høringssvarskjema, filled in for `org` (used when no real form PDFs exist)."""
    category = category or organisation(org).category
    lines = [
        "Høringssvarskjema: Nasjonal e-helsestrategi for helse- og omsorgssektoren",
        "",
        "Merk skjemaet med «Saksnummer 22/414», lagre som PDF og send på e-post til postmottak@ehelse.no",
        "Saksnummer 22/414",
        "Frist: 01.10.2022",
        "",
        "Kryss av for type organisasjon/virksomhet:",
    ]
    lines += [f"[{'X' if option == category else ' '}] {option}" for option in FORM_CATEGORIES]
    lines += [
        "",
        "Kontaktinformasjon",
        f"Navn på virksomheten (statlig etat, kommune, privatperson osv.): {org}",
        f"Kontaktperson: {contact}",
        f"E-postadresse: {email}",
        "",
    ]
    default_answers = (
        "Ja. Vi støtter de fem strategiske målene, men etterlyser tydeligere prioritering og finansiering.",
        "Mål 2: Enklere arbeidshverdag bør måles gjennom helsepersonells egen opplevelse.",
        "Oppfølgingen bør skje i tett samarbeid med kommunene og KS.",
        "Ingen ytterligere innspill.",
    )
    questions = (
        "1) Kan dere stille dere bak de fem strategiske målene?",
        "2) Har dere tilbakemelding på de fem strategiske målene med målindikatorer?",
        "3) Har dere tilbakemeldinger på prosessen for hvordan strategien skal følges opp?",
        "4) Andre innspill og tilbakemeldinger?",
    )
    for question, answer in zip(questions, answers or default_answers, strict=False):
        lines += [question, answer, ""]
    return lines


def real_form_pdfs() -> list[Path]:
    """Real filled-in form PDFs provided by tests/fixtures/forms/*.pdf (sub-folders such as bad/ excluded)."""
    return sorted(FORMS_DIR.glob("*.pdf")) if FORMS_DIR.is_dir() else []


def form_pdf(
    index: int = 0,
    org: str = "Bærum kommune",
    contact: str = "Åse Ødegård",
    email: str | None = None,
) -> bytes:
    """A form PDF: a real one from tests/fixtures/forms when any exist (cycled by index), else a generated one
    with the form's wording filled in for `org`. Either way it carries "Saksnummer 22/414"."""
    real = real_form_pdfs()
    if real:
        return real[index % len(real)].read_bytes()
    return _generated_form_pdf(org, contact, email or address_for(contact, organisation(org).domain))


@lru_cache(maxsize=256)
def _generated_form_pdf(org: str, contact: str, email: str) -> bytes:
    return plain_pdf(form_text_lines(org, contact, email), title="Høringssvarskjema")


# ----------------------------------------------------------------------------------------------- building blocks


def fits_latin1(*texts: str) -> bool:
    try:
        for text in texts:
            text.encode("iso-8859-1")
    except UnicodeEncodeError:
        return False
    return True


def _encoded_word(text: str, charset: str) -> str:
    return Header(text, charset).encode(maxlinelen=0)


def _set_address_header(
    msg: EmailMessage, header: str, display_name: str, addr: str, charset: SubjectEncoding, utf8: bool
) -> None:
    if charset == "iso-8859-1" and not utf8 and not display_name.isascii():
        msg.set_raw(header, f"{_encoded_word(display_name, 'iso-8859-1')} <{addr}>")
    elif utf8 and not addr.isascii():
        # headerregistry.Address refuses non-ASCII local parts even under SMTPUTF8; write the header as is.
        msg.set_raw(header, f"{display_name} <{addr}>" if display_name else addr)
    else:
        msg[header] = formataddr((display_name, addr)) if display_name else addr


def _set_subject(msg: EmailMessage, subject: str, charset: SubjectEncoding, utf8: bool) -> None:
    if charset == "iso-8859-1" and not utf8 and not subject.isascii():
        msg.set_raw("Subject", _encoded_word(subject, "iso-8859-1"))
    else:
        msg["Subject"] = subject


def _date_header(date: datetime | None) -> str:
    when = date or datetime.now(OSLO)
    if when.tzinfo is None:
        raise ValueError("date must be timezone-aware")
    return format_datetime(when)


def _html_from_text(text: str, charset: str = "utf-8") -> str:
    from html import escape

    paragraphs = "".join(f"<p>{escape(p).replace(chr(10), '<br>')}</p>" for p in text.split("\n\n"))
    return (
        f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={charset}"></head>'
        f'<body><div style="font-family:Calibri,sans-serif;font-size:11pt">{paragraphs}</div></body></html>'
    )


def _add_attachment(msg: EmailMessage, attachment: Attachment, name_style: AttachmentNameStyle) -> None:
    filename, content_type, data = attachment
    maintype, _, subtype = content_type.partition("/")
    msg.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    if name_style == "rfc2047" and not filename.isascii():
        # Outlook and many webmailers put an RFC 2047 encoded word inside the quoted filename (not RFC 2231).
        part = msg.get_payload()[-1]
        encoded = _encoded_word(filename, "utf-8")
        del part["Content-Type"]
        del part["Content-Disposition"]
        part.set_raw("Content-Type", f'{content_type}; name="{encoded}"')
        part.set_raw("Content-Disposition", f'attachment; filename="{encoded}"')


def _strip_nested_mime_version(part: EmailMessage) -> None:
    """The stdlib stamps MIME-Version on every sub-part it creates; real clients put it on the top level only.
    Embedded message/rfc822 parts are left alone (their own top level keeps it)."""
    if part.get_content_maintype() != "multipart":
        return
    for sub in part.get_payload():
        del sub["MIME-Version"]
        _strip_nested_mime_version(sub)


def _set_stable_boundaries(msg: EmailMessage) -> None:
    """The stdlib picks random MIME boundaries; derive them from the Message-ID so equal input gives equal bytes."""
    seed = hashlib.sha1(str(msg.get("Message-ID", "")).encode("utf-8")).hexdigest()[:20]
    multiparts = [part for part in msg.walk() if part.is_multipart() and part.get_content_maintype() == "multipart"]
    for number, part in enumerate(multiparts):
        part.set_boundary(f"----=_Part_{number}_{seed}")


def _finish(msg: EmailMessage, utf8: bool = False) -> bytes:
    _strip_nested_mime_version(msg)
    _set_stable_boundaries(msg)
    return msg.as_bytes(policy=_POLICY_UTF8 if utf8 else _POLICY)


def default_response_body(org: str, sender_name: str, title: str | None = None) -> str:
    signature = sender_name if org == sender_name else f"{sender_name}\n{title or 'rådgiver'}\n{org}"
    return (
        "Hei,\n\n"
        f"Vedlagt følger høringssvar fra {org} til {CASE_TITLE} (sak {CASE_NUMBER}).\n\n"
        "Vi takker for muligheten til å gi innspill.\n\n"
        f"Med vennlig hilsen\n{signature}\n"
    )


# ----------------------------------------------------------------------------------------------- builders


def response_mail(
    *,
    org: str = "Bærum kommune",
    sender_name: str = "Åse Ødegård",
    sender_addr: str | None = None,
    to_addr: str = POSTMOTTAK,
    subject: str = f"Høringssvar - sak {CASE_NUMBER}",
    body: str | None = None,
    attachments: Sequence[Attachment] | None = None,
    message_id: str | None = None,
    date: datetime | None = None,
    subject_encoding: SubjectEncoding = "utf-8",
    transfer: Transfer = "quoted-printable",
    html: bool = False,
    attachment_name_style: AttachmentNameStyle = "rfc2231",
    utf8_headers: bool = False,
    cc: Sequence[str] = (),
    extra_headers: Mapping[str, str] | None = None,
) -> bytes:
    """A consultation response. attachments=None attaches one form PDF for `org`; pass [] for none.

    subject_encoding also sets the body charset (old clients send iso-8859-1 throughout); transfer is the
    Content-Transfer-Encoding of the text part(s); html=True makes the text multipart/alternative as Outlook
    does; utf8_headers=True writes raw UTF-8 headers (an SMTPUTF8 message, e.g. for øyvind@åsheim.no).
    """
    org_info = organisation(org)
    sender_addr = sender_addr or address_for(sender_name, org_info.domain)
    body = body if body is not None else default_response_body(org, sender_name)
    if subject_encoding == "iso-8859-1" and not fits_latin1(subject, sender_name, body):
        raise ValueError("subject/sender/body has characters outside iso-8859-1; use subject_encoding='utf-8'")
    if attachments is None:
        attachments = [(f"Høringssvar {org}.pdf", "application/pdf", form_pdf(0, org, sender_name, sender_addr))]

    msg = EmailMessage(policy=_POLICY_UTF8 if utf8_headers else _POLICY)
    _set_address_header(msg, "From", sender_name, sender_addr, subject_encoding, utf8_headers)
    msg["To"] = to_addr
    if cc:
        msg["Cc"] = ", ".join(cc)
    _set_subject(msg, subject, subject_encoding, utf8_headers)
    msg["Date"] = _date_header(date)
    msg["Message-ID"] = message_id or new_message_id(_domain_of(sender_addr))
    msg["MIME-Version"] = "1.0"
    for name, value in (extra_headers or {}).items():
        msg[name] = value
    msg.set_content(body, charset=subject_encoding, cte=transfer)
    if html:
        html_body = _html_from_text(body, subject_encoding)
        msg.add_alternative(html_body, subtype="html", charset=subject_encoding, cte=transfer)
    for attachment in attachments:
        _add_attachment(msg, attachment, attachment_name_style)
    return _finish(msg, utf8_headers)


def forwarded_mail(
    original: bytes,
    forwarder_addr: str = "saksbehandler@ehelse.no",
    forwarder_name: str = "Sigrid Håland",
    to_addr: str = POSTMOTTAK,
    note: str = "Til journalføring. Høringssvaret kom til meg direkte.\n\nHilsen Sigrid",
    subject: str | None = None,
    message_id: str | None = None,
    date: datetime | None = None,
) -> bytes:
    """A colleague forwards a mail to postmottak "as attachment" (message/rfc822), subject "VS: ..."."""
    original_message = BytesParser(policy=_POLICY).parsebytes(original)
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = formataddr((forwarder_name, forwarder_addr))
    msg["To"] = to_addr
    msg["Subject"] = subject if subject is not None else f"VS: {original_message.get('Subject', '')}"
    msg["Date"] = _date_header(date)
    msg["Message-ID"] = message_id or new_message_id(_domain_of(forwarder_addr))
    msg["MIME-Version"] = "1.0"
    msg.set_content(note, charset="utf-8", cte="quoted-printable")
    msg.add_attachment(original_message)
    return _finish(msg)


_AUTO_REPLY_TEXT = {
    "exchange_oof": (
        "Automatisk svar: {subject}",
        "Takk for din e-post. Jeg er på kurs og tilbake på kontoret mandag 10. oktober.\n"
        "Haster det, ta kontakt med sentralbordet.\n",
    ),
    "auto_submitted": (
        "Fraværsmelding: {subject}",
        "Jeg har avspasering og leser ikke e-post før 5. oktober.\n",
    ),
    "precedence_bulk": (
        "Re: {subject}",
        "Jeg er på ferie til og med 7. oktober med begrenset tilgang til e-post.\n",
    ),
}


def auto_reply(
    to_original_subject: str = f"Kvittering for mottatt høringssvar - sak {CASE_NUMBER}",
    kind: AutoReplyKind = "exchange_oof",
    sender_name: str = "Lars Ørnes",
    sender_addr: str = "lars.ornes@tromso.kommune.no",
    to_addr: str = POSTMOTTAK,
    in_reply_to: str | None = None,
    message_id: str | None = None,
    date: datetime | None = None,
) -> bytes:
    """An automatic reply (to one of our receipts, typically). Each kind marks itself differently:

    exchange_oof: Exchange/Outlook out-of-office: X-Auto-Response-Suppress + "Automatisk svar:" (no
        Auto-Submitted, as older Exchange sends it).
    auto_submitted: RFC 3834 `Auto-Submitted: auto-replied`.
    precedence_bulk: a vacation(1)-style responder: `Precedence: bulk` and a plain "Re:" subject.
    """
    subject_template, text = _AUTO_REPLY_TEXT[kind]
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = formataddr((sender_name, sender_addr))
    msg["To"] = to_addr
    msg["Subject"] = subject_template.format(subject=to_original_subject)
    msg["Date"] = _date_header(date)
    msg["Message-ID"] = message_id or new_message_id(_domain_of(sender_addr))
    msg["MIME-Version"] = "1.0"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    if kind == "exchange_oof":
        msg["X-Auto-Response-Suppress"] = "All"
        msg["Thread-Topic"] = to_original_subject
        msg["Content-Language"] = "nb-NO"
    elif kind == "auto_submitted":
        msg["Auto-Submitted"] = "auto-replied"
    elif kind == "precedence_bulk":
        msg["Precedence"] = "bulk"
    else:
        raise ValueError(f"unknown auto-reply kind {kind!r}")
    msg.set_content(text, charset="utf-8", cte="quoted-printable")
    return _finish(msg)


def bounce(
    original_message_id: str,
    recipient: str,
    original_subject: str = f"Kvittering for mottatt høringssvar - sak {CASE_NUMBER}",
    original_from: str = POSTMOTTAK,
    status: str = "5.1.1",
    diagnostic: str | None = None,
    reporting_mta: str = "mx01.ehelse.no",
    to_addr: str = POSTMOTTAK,
    message_id: str | None = None,
    date: datetime | None = None,
    original_date: datetime | None = None,
) -> bytes:
    """A Postfix-style non-delivery report (multipart/report; report-type=delivery-status) for a mail we sent:
    a human-readable part, a message/delivery-status part and a text/rfc822-headers part carrying the original
    Message-ID. Written as raw text, as MTAs generate it."""
    when = date or datetime.now(OSLO)
    sent = original_date or (when - timedelta(seconds=3))
    diagnostic = diagnostic or f"smtp; 550 {status} <{recipient}>: Recipient address rejected: User unknown"
    boundary = f"{uuid.uuid5(uuid.NAMESPACE_URL, original_message_id + recipient).hex}/{reporting_mta}"
    action = "failed" if status.startswith("5") else "delayed"
    own_id = message_id or f"<{uuid.uuid5(uuid.NAMESPACE_DNS, original_message_id).hex}@{reporting_mta}>"
    original_headers = (
        f"From: {original_from}\r\n"
        f"To: {recipient}\r\n"
        f"Subject: {original_subject if original_subject.isascii() else _encoded_word(original_subject, 'utf-8')}\r\n"
        f"Date: {format_datetime(sent)}\r\n"
        f"Message-ID: {original_message_id}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n"
    )
    text = (
        f"Return-Path: <>\r\n"
        f"Date: {format_datetime(when)}\r\n"
        f"From: MAILER-DAEMON@{reporting_mta} (Mail Delivery System)\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"To: {to_addr}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        f'\tboundary="{boundary}"\r\n'
        "Content-Transfer-Encoding: 7bit\r\n"
        f"Message-ID: {own_id}\r\n"
        "\r\n"
        "This is a MIME-encapsulated message.\r\n"
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        f"This is the mail system at host {reporting_mta}.\r\n"
        "\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients. It's attached below.\r\n"
        "\r\n"
        f"<{recipient}>: host mx.{_domain_of(recipient)} said: {diagnostic.removeprefix('smtp; ')}\r\n"
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Description: Delivery report\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        f"Reporting-MTA: dns; {reporting_mta}\r\n"
        f"X-Postfix-Queue-ID: {uuid.uuid5(uuid.NAMESPACE_OID, own_id).hex[:11].upper()}\r\n"
        f"X-Postfix-Sender: rfc822; {original_from}\r\n"
        f"Arrival-Date: {format_datetime(sent)}\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Remote-MTA: dns; mx.{_domain_of(recipient)}\r\n"
        f"Diagnostic-Code: {diagnostic}\r\n"
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Description: Undelivered Message Headers\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        f"{original_headers}"
        "\r\n"
        f"--{boundary}--\r\n"
    )
    return text.encode("ascii")


def list_mail(
    list_name: str = "Nyhetsbrev fra KS",
    list_id: str = "nyhetsbrev.ks.no",
    sender_addr: str = "nyhetsbrev@ks.no",
    subject: str = "Nyhetsbrev september: Kommuneøkonomi og digitalisering i skolen",
    text: str = (
        "Dette er månedens nyhetsbrev.\n\n"
        "- Kommuneproposisjonen: hva betyr den for din kommune?\n"
        "- Påmelding til Kommunalpolitisk toppmøte er åpen.\n\n"
        "Du mottar denne e-posten fordi du abonnerer på nyhetsbrevet."
    ),
    to_addr: str = POSTMOTTAK,
    message_id: str | None = None,
    date: datetime | None = None,
) -> bytes:
    """A newsletter / mailing-list mail (List-Id, List-Unsubscribe, Precedence: list), text + HTML."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = formataddr((list_name, sender_addr))
    msg["To"] = to_addr
    msg["Subject"] = subject
    msg["Date"] = _date_header(date)
    msg["Message-ID"] = message_id or new_message_id(_domain_of(sender_addr))
    msg["MIME-Version"] = "1.0"
    msg["List-Id"] = f"{list_name} <{list_id}>"
    domain = _domain_of(sender_addr)
    msg["List-Unsubscribe"] = f"<https://{domain}/avmeld?liste={list_id}>, <mailto:avmeld@{domain}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Precedence"] = "list"
    msg.set_content(text, charset="utf-8", cte="quoted-printable")
    msg.add_alternative(_html_from_text(text), subtype="html", charset="utf-8", cte="quoted-printable")
    return _finish(msg)


def html_only_mail(
    subject: str = "Invitasjon: Frokostseminar om kunstig intelligens i offentlig sektor",
    html: str = (
        "<html><body><h1>Velkommen til frokostseminar</h1>"
        "<p>Bli med når vi diskuterer <b>kunstig intelligens</b> i offentlig forvaltning. "
        "Gratis deltakelse, begrenset antall plasser.</p>"
        '<p><a href="https://arrangement.example.no/pamelding">Meld deg på her</a></p></body></html>'
    ),
    sender_name: str = "Arrangementsteamet",
    sender_addr: str = "arrangement@konferanse.example.no",
    to_addr: str = POSTMOTTAK,
    message_id: str | None = None,
    date: datetime | None = None,
    transfer: Transfer = "quoted-printable",
) -> bytes:
    """A text/html-only mail (no text/plain alternative), as marketing tools and some web clients send."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = formataddr((sender_name, sender_addr))
    msg["To"] = to_addr
    msg["Subject"] = subject
    msg["Date"] = _date_header(date)
    msg["Message-ID"] = message_id or new_message_id(_domain_of(sender_addr))
    msg["MIME-Version"] = "1.0"
    msg.set_content(html, subtype="html", charset="utf-8", cte=transfer)
    return _finish(msg)


def plain_mail(
    subject: str,
    body: str,
    sender_name: str,
    sender_addr: str,
    to_addr: str = POSTMOTTAK,
    message_id: str | None = None,
    date: datetime | None = None,
    attachments: Sequence[Attachment] = (),
) -> bytes:
    """An ordinary person-to-person mail (for unrelated traffic and needs-review cases)."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = formataddr((sender_name, sender_addr))
    msg["To"] = to_addr
    msg["Subject"] = subject
    msg["Date"] = _date_header(date)
    msg["Message-ID"] = message_id or new_message_id(_domain_of(sender_addr))
    msg["MIME-Version"] = "1.0"
    msg.set_content(body, charset="utf-8", cte="quoted-printable")
    for attachment in attachments:
        _add_attachment(msg, attachment, "rfc2231")
    return _finish(msg)


# ----------------------------------------------------------------------------------------------- mailbox

KIND_ON_TIME = "response_on_time"
KIND_LATE = "response_late"
KIND_FORWARDED = "forwarded_response"
KIND_NEEDS_REVIEW = "needs_review"
KIND_AUTO_REPLY = "auto_reply"
KIND_BOUNCE = "bounce"
KIND_UNRELATED = "unrelated"
KIND_DUPLICATE = "duplicate"
MAILBOX_KINDS = (
    KIND_ON_TIME,
    KIND_LATE,
    KIND_FORWARDED,
    KIND_NEEDS_REVIEW,
    KIND_AUTO_REPLY,
    KIND_BOUNCE,
    KIND_UNRELATED,
    KIND_DUPLICATE,
)
DEFAULT_MAILBOX_SIZE = 100
DEFAULT_SEED = 414
MIN_MAILBOX_SIZE = 10


@dataclass(frozen=True)
class MailboxItem:
    """One mail of a realistic mailbox, with the truth about it for assertions."""

    kind: str
    raw: bytes
    internaldate: datetime  # tz-aware, Europe/Oslo
    message_id: str
    sender_addr: str
    org: str | None = None  # respondent organisation (responses, forwarded and needs-review)
    category: str | None = None  # the form's organisation type
    has_pdf: bool = False
    mentions_case_number: bool = False  # "22/414" anywhere in headers or text (incl. PDFs)
    duplicate_of: str | None = None  # for KIND_DUPLICATE: Message-ID of the first delivery


def expected_counts(n: int = DEFAULT_MAILBOX_SIZE) -> dict[str, int]:
    """How many mails of each kind realistic_mailbox(n, seed) holds (independent of seed), plus totals:
    `total`, `distinct_message_ids` (the duplicate repeats one) and `responses` (on time + late + forwarded,
    each counted once)."""
    if n < MIN_MAILBOX_SIZE:
        raise ValueError(f"realistic_mailbox needs n >= {MIN_MAILBOX_SIZE}")
    counts = {
        KIND_LATE: max(2, round(n * 0.05)),  # at least the 00:20-after-midnight edge case and one more
        KIND_FORWARDED: max(1, round(n * 0.02)),
        KIND_NEEDS_REVIEW: max(1, round(n * 0.04)),
        KIND_AUTO_REPLY: max(1, round(n * 0.04)),
        KIND_BOUNCE: max(1, round(n * 0.03)),
        KIND_UNRELATED: max(1, round(n * 0.06)),
        KIND_DUPLICATE: 1,
    }
    counts = {KIND_ON_TIME: n - sum(counts.values()), **counts}
    if counts[KIND_ON_TIME] < 2:
        raise ValueError(f"realistic_mailbox needs n >= {MIN_MAILBOX_SIZE}")
    counts["total"] = n
    counts["distinct_message_ids"] = n - counts[KIND_DUPLICATE]
    counts["responses"] = counts[KIND_ON_TIME] + counts[KIND_LATE] + counts[KIND_FORWARDED]
    return counts


EXPECTED: dict[str, int] = expected_counts(DEFAULT_MAILBOX_SIZE)
"""Counts for realistic_mailbox(DEFAULT_MAILBOX_SIZE, any seed)."""


_ON_TIME_EDGE = datetime(2022, 10, 1, 23, 40, tzinfo=OSLO)  # last minutes of the deadline day: on time
_LATE_EDGE = datetime(2022, 10, 2, 0, 20, tzinfo=OSLO)  # 2022-10-01 22:20 UTC: late all the same

_RESPONSE_SUBJECTS = (
    "Høringssvar - sak 22/414",
    "Høringssvar fra {org} - sak 22/414",
    "Sak 22/414 - Høringssvar Nasjonal e-helsestrategi",
    "Høring - Nasjonal e-helsestrategi for helse- og omsorgssektoren - høringssvar fra {org}",
    "SV: Høring - Nasjonal e-helsestrategi - deres ref. 22/414",
    "22/414 Høringssvar",
    "Høringsinnspill e-helsestrategi (saksnr. 22/414)",
)
_NEEDS_REVIEW = (
    (
        "Innspill til e-helsestrategien",
        "Hei,\n\nHer er våre innspill til ny nasjonal e-helsestrategi. Vi har dessverre ikke brukt skjemaet.\n\n"
        "Vi mener strategien må legge mer vekt på kommunehelsetjenesten og informasjonssikkerhet.\n\n"
        "Hilsen\n{name}\n{org}\n",
    ),
    (
        "Høringssvar e-helsestrategi",
        "Hei!\n\nVedlagt er vårt brev om e-helsestrategi.\n\nMvh\n{name}\n{org}\n",
    ),
    (
        "Kommentarer til e-helsestrategi",
        "Til Direktoratet for e-helse\n\nJeg ønsker å kommentere forslaget til e-helsestrategi som privatperson: "
        "pasientene må få bedre innsyn i egen journal.\n\n{name}\n",
    ),
)
_UNRELATED = (
    (
        "Faktura 2022-0917 fra Kontorrekvisita AS",
        "Vedlagt faktura for levering av kontorrekvisita. Forfall 30 dager.\n\nKontorrekvisita AS\n",
        "Kontorrekvisita AS",
        "faktura@kontorrekvisita.example.no",
    ),
    (
        "Innsynskrav - møtekalender uke 38",
        "Hei,\n\nJeg ber om innsyn i direktørens møtekalender for uke 38.\n\nMvh\nJournalist\n",
        "Trine Haugen",
        "trine.haugen@avisa.example.no",
    ),
    (
        "Spørsmål om kontorlokaler",
        "Hei,\n\nHar dere ledige møterom i oktober? Vi planlegger et arbeidsmøte.\n\nHilsen Ola\n",
        "Ola Brenna",
        "ola.brenna@gmail.com",
    ),
)


def _spread_on_time(rng: random.Random) -> datetime:
    """A working-hours arrival in September, crowding towards the deadline as real responses do."""
    day = 1 + int(round(29 * rng.betavariate(3.0, 1.2)))  # 1..30
    hour = rng.choice((8, 9, 9, 10, 11, 12, 13, 14, 14, 15, 16, 22))
    return datetime(2022, 9, min(day, 30), hour, rng.randrange(60), rng.randrange(60), tzinfo=OSLO)


def _spread_late(rng: random.Random) -> datetime:
    return datetime(2022, 10, rng.choice((3, 3, 4, 5)), rng.randrange(8, 16), rng.randrange(60), tzinfo=OSLO)


def _any_time(rng: random.Random) -> datetime:
    start = datetime(2022, 9, 1, 7, 0, tzinfo=OSLO)
    return (start + timedelta(seconds=rng.randrange(int(timedelta(days=34).total_seconds())))).astimezone(OSLO)


def _sender_date(rng: random.Random, internaldate: datetime, utc: bool) -> datetime:
    """The Date header: a little before arrival, sometimes in UTC (webmail) rather than +02:00."""
    sent = internaldate - timedelta(seconds=rng.randrange(5, 240))
    if (sent.date() <= DEADLINE_DATE) != (internaldate.date() <= DEADLINE_DATE):
        sent = internaldate - timedelta(seconds=5)  # keep both on the same side of the deadline
    return sent.astimezone(timezone.utc) if utc else sent


def _message_id(rng: random.Random, domain: str, outlook: bool) -> str:
    token = "".join(rng.choice("0123456789ABCDEF") for _ in range(24))
    if outlook:
        # Municipalities on Microsoft 365: the Message-ID is on Microsoft's domain, not the sender's.
        return f"<AM9PR09MB{token[:8]}{token}@AM9PR09MB{token[:8]}.eurprd09.prod.outlook.com>"
    return f"<{token.lower()}.{rng.randrange(10**6)}@{domain}>"


def _respondent(rng: random.Random, index: int) -> tuple[Organisation, str, str, str]:
    """(organisation, contact name, sender address, title); every 9th respondent is a private person."""
    name = PERSON_NAMES[(index * 7 + rng.randrange(len(PERSON_NAMES))) % len(PERSON_NAMES)]
    if index % 9 == 4:
        domain = rng.choice(PRIVATE_MAIL_DOMAINS)
        org = Organisation(name, CATEGORY_PRIVATE_PERSON, domain)
        return org, name, address_for(name, domain), ""
    org = ORGANISATIONS[(index * 5 + rng.randrange(3)) % len(ORGANISATIONS)]
    if org.functional_address and rng.random() < 0.3:
        return org, name, org.functional_address, rng.choice(TITLES)
    return org, name, address_for(name, org.domain), rng.choice(TITLES)


def _response_item(rng: random.Random, index: int, kind: str, internaldate: datetime) -> MailboxItem:
    org, name, addr, title = _respondent(rng, index)
    outlook = org.category in (CATEGORY_MUNICIPALITY, CATEGORY_HEALTH_TRUST) and rng.random() < 0.6
    message_id = _message_id(rng, _domain_of(addr), outlook)
    subject = _RESPONSE_SUBJECTS[index % len(_RESPONSE_SUBJECTS)].format(org=org.name)
    filename = rng.choice(("Høringssvar {org}.pdf", "Høringssvarskjema - {org}.pdf", "hoeringssvar.pdf"))
    attachments: list[Attachment] = [
        (filename.format(org=org.name), "application/pdf", form_pdf(index, org.name, name, addr))
    ]
    if index % 11 == 3:
        letter = plain_pdf([f"{org.name}", "", f"Følgebrev til høringssvar i sak {CASE_NUMBER}.", "", name])
        attachments.insert(0, ("Følgebrev.pdf", "application/pdf", letter))
    variant = index % 6
    body = default_response_body(org.name, name, title)
    latin1 = variant == 2 and fits_latin1(subject, name, body)
    raw = response_mail(
        org=org.name,
        sender_name=name,
        sender_addr=addr,
        subject=subject,
        body=body,
        attachments=attachments,
        message_id=message_id,
        date=_sender_date(rng, internaldate, utc=variant == 5),
        subject_encoding="iso-8859-1" if latin1 else "utf-8",
        transfer=("quoted-printable", "base64", "quoted-printable", "8bit", "base64", "quoted-printable")[variant],
        html=variant in (0, 1, 4),
        attachment_name_style="rfc2047" if variant == 1 else "rfc2231",
    )
    return MailboxItem(
        kind=kind,
        raw=raw,
        internaldate=internaldate,
        message_id=message_id,
        sender_addr=addr,
        org=org.name,
        category=org.category,
        has_pdf=True,
        mentions_case_number=True,
    )


def realistic_mailbox_items(n: int = DEFAULT_MAILBOX_SIZE, seed: int = DEFAULT_SEED) -> list[MailboxItem]:
    """A deterministic mix of n mails (see expected_counts), sorted by INTERNALDATE (Europe/Oslo)."""
    counts = expected_counts(n)
    rng = random.Random(seed)
    items: list[MailboxItem] = []
    index = 0

    for position in range(counts[KIND_ON_TIME]):
        when = _ON_TIME_EDGE if position == 0 else _spread_on_time(rng)
        items.append(_response_item(rng, index, KIND_ON_TIME, when))
        index += 1
    for position in range(counts[KIND_LATE]):
        when = _LATE_EDGE if position == 0 else _spread_late(rng)
        items.append(_response_item(rng, index, KIND_LATE, when))
        index += 1

    for _ in range(counts[KIND_FORWARDED]):
        original = _response_item(rng, index, KIND_FORWARDED, _spread_on_time(rng))
        index += 1
        arrival = original.internaldate + timedelta(hours=rng.randrange(1, 20))
        if arrival.date() > DEADLINE_DATE:
            arrival = original.internaldate + timedelta(minutes=10)
        message_id = _message_id(rng, "ehelse.no", outlook=True)
        raw = forwarded_mail(original.raw, message_id=message_id, date=_sender_date(rng, arrival, utc=False))
        items.append(
            MailboxItem(
                kind=KIND_FORWARDED,
                raw=raw,
                internaldate=arrival,
                message_id=message_id,
                sender_addr="saksbehandler@ehelse.no",
                org=original.org,
                category=original.category,
                has_pdf=True,
                mentions_case_number=True,
            )
        )

    for position in range(counts[KIND_NEEDS_REVIEW]):
        org, name, addr, _title = _respondent(rng, index)
        index += 1
        subject, body = _NEEDS_REVIEW[position % len(_NEEDS_REVIEW)]
        when = _spread_on_time(rng)
        message_id = _message_id(rng, _domain_of(addr), outlook=False)
        attachments: list[Attachment] = []
        if position % len(_NEEDS_REVIEW) == 1:
            letter = plain_pdf(
                [org.name, "", "Innspill til nasjonal e-helsestrategi", "", "Se vedlagte merknader.", name]
            )
            attachments.append(("Brev om e-helsestrategi.pdf", "application/pdf", letter))
        raw = plain_mail(
            subject=subject,
            body=body.format(name=name, org=org.name),
            sender_name=name,
            sender_addr=addr,
            message_id=message_id,
            date=_sender_date(rng, when, utc=False),
            attachments=attachments,
        )
        items.append(
            MailboxItem(KIND_NEEDS_REVIEW, raw, when, message_id, addr, org.name, org.category, bool(attachments))
        )

    auto_kinds: tuple[AutoReplyKind, ...] = ("exchange_oof", "auto_submitted", "precedence_bulk")
    for position in range(counts[KIND_AUTO_REPLY]):
        name = PERSON_NAMES[(position * 5 + 1) % len(PERSON_NAMES)]
        org = ORGANISATIONS[(position * 3 + 1) % len(ORGANISATIONS)]
        addr = address_for(name, org.domain)
        when = _any_time(rng)
        message_id = _message_id(rng, org.domain, outlook=False)
        raw = auto_reply(
            kind=auto_kinds[position % len(auto_kinds)],
            sender_name=name,
            sender_addr=addr,
            in_reply_to=f"<kvittering-{position}@ehelse.no>",
            message_id=message_id,
            date=_sender_date(rng, when, utc=False),
        )
        items.append(MailboxItem(KIND_AUTO_REPLY, raw, when, message_id, addr, mentions_case_number=True))

    for position in range(counts[KIND_BOUNCE]):
        name = PERSON_NAMES[(position * 3 + 2) % len(PERSON_NAMES)]
        org = ORGANISATIONS[(position * 7 + 2) % len(ORGANISATIONS)]
        recipient = address_for(name, org.domain).replace(".", "", 1)  # a typo'd respondent address
        when = _any_time(rng)
        message_id = f"<bounce-{seed}-{position}@mx01.ehelse.no>"
        raw = bounce(
            original_message_id=f"<kvittering-{seed}-{position}@ehelse.no>",
            recipient=recipient,
            message_id=message_id,
            date=when,
        )
        items.append(
            MailboxItem(KIND_BOUNCE, raw, when, message_id, "MAILER-DAEMON@mx01.ehelse.no", mentions_case_number=True)
        )

    for position in range(counts[KIND_UNRELATED]):
        when = _any_time(rng)
        choice = position % (len(_UNRELATED) + 2)
        if choice == len(_UNRELATED):
            message_id = _message_id(rng, "ks.no", outlook=False)
            raw = list_mail(message_id=message_id, date=_sender_date(rng, when, utc=True))
            sender = "nyhetsbrev@ks.no"
        elif choice == len(_UNRELATED) + 1:
            message_id = _message_id(rng, "konferanse.example.no", outlook=False)
            raw = html_only_mail(message_id=message_id, date=_sender_date(rng, when, utc=True))
            sender = "arrangement@konferanse.example.no"
        else:
            subject, body, name, sender = _UNRELATED[choice]
            message_id = _message_id(rng, _domain_of(sender), outlook=False)
            raw = plain_mail(subject, body, name, sender, message_id=message_id, date=_sender_date(rng, when, False))
        items.append(MailboxItem(KIND_UNRELATED, raw, when, message_id, sender))

    # The same message delivered twice (e.g. sent to postmottak and a Cc'd alias that forwards): identical bytes.
    first = next(item for item in items if item.kind == KIND_ON_TIME and item.internaldate != _ON_TIME_EDGE)
    items.append(
        MailboxItem(
            kind=KIND_DUPLICATE,
            raw=first.raw,
            internaldate=first.internaldate + timedelta(minutes=rng.randrange(1, 30)),
            message_id=first.message_id,
            sender_addr=first.sender_addr,
            org=first.org,
            category=first.category,
            has_pdf=first.has_pdf,
            mentions_case_number=True,
            duplicate_of=first.message_id,
        )
    )

    items.sort(key=lambda item: (item.internaldate, item.message_id))
    return items


def realistic_mailbox(n: int = DEFAULT_MAILBOX_SIZE, seed: int = DEFAULT_SEED) -> list[tuple[bytes, datetime]]:
    """(raw mail, INTERNALDATE) pairs, sorted by arrival, ready for DovecotServer.append."""
    return [(item.raw, item.internaldate) for item in realistic_mailbox_items(n, seed)]
