"""A realistic small consultation for the dashboard tests: real PDFs (reportlab), real .eml files, registered
through casefile.registry.register exactly as the intake does."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from zoneinfo import ZoneInfo

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas
from sqlalchemy import select

from postmottak.casefile import mailboxes
from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.casefile.records import DocumentIn, IncomingMail, ReceiptPlan, TextLayerIn
from postmottak.casefile.registry import register
from postmottak.casefile.storage import DocumentStore

OSLO = ZoneInfo("Europe/Oslo")
CASE = "22/414"
CASE_TITLE = "Høring - Nasjonal e-helsestrategi for helse- og omsorgssektoren"
SOURCE = "imap://postmottak@imap.example.no:993/INBOX"


def form_pdf(fields: dict[str, Any]) -> bytes:
    """A one-page PDF laid out like the consultation form, with the given answers."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.setTitle("Høringssvarskjema")
    y = 800

    def line(text: str, size: int = 10) -> None:
        nonlocal y
        pdf.setFont("Helvetica", size)
        for chunk in [text[i : i + 95] for i in range(0, len(text), 95)] or [""]:
            pdf.drawString(50, y, chunk)
            y -= size + 4

    line("Høringssvarskjema: Nasjonal e-helsestrategi for helse- og omsorgssektoren", 12)
    line("Kryss av for type organisasjon/virksomhet:")
    line(f"[X] {fields.get('organisation_type') or ''}")
    line(f"Navn på virksomheten (statlig etat, kommune, privatperson osv.): {fields.get('organisation_name') or ''}")
    line(f"Kontaktperson: {fields.get('contact_person') or ''}")
    line(f"E-postadresse: {fields.get('email') or ''}")
    line("1) Kan dere stille dere bak de fem strategiske målene?")
    line(f"Svar: {fields.get('q1_choice') or ''}. {fields.get('q1_text') or ''}")
    for number in range(1, 6):
        line(f"Mål {number}: {fields.get(f'goal_{number}') or ''}")
    line(f"3) {fields.get('q3_text') or ''}")
    line(f"4) {fields.get('q4_text') or ''}")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def form_data(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "organisation_type": None,
        "organisation_types_checked": [],
        "organisation_name": None,
        "contact_person": None,
        "email": None,
        "q1_choice": None,
        "q1_text": None,
        "goal_1": None,
        "goal_2": None,
        "goal_3": None,
        "goal_4": None,
        "goal_5": None,
        "q3_text": None,
        "q4_text": None,
        "warnings": [],
        "form_status": "parsed",
        "profile": "hoeringssvar-22-414",
        "warning_codes": [],
        "extra_fields": {},
        "source_format": "pdf",
        "page_count": 1,
    }
    base.update(values)
    if base["organisation_type"] and not base["organisation_types_checked"]:
        base["organisation_types_checked"] = [base["organisation_type"]]
    return base


def eml(
    sender: str, sender_name: str, subject: str, body: str, when: datetime, attachment: tuple[str, bytes] | None = None
) -> tuple[bytes, str]:
    message = EmailMessage()
    message["From"] = f"{sender_name} <{sender}>"
    message["To"] = "postmottak@ehelse.no"
    message["Subject"] = subject
    message["Date"] = format_datetime(when)
    message_id = make_msgid(domain=sender.split("@")[-1])
    message["Message-ID"] = message_id
    message.set_content(body)
    if attachment is not None:
        message.add_attachment(attachment[1], maintype="application", subtype="pdf", filename=attachment[0])
    return message.as_bytes(), message_id


@dataclass
class Seeded:
    ids: dict[str, int] = field(default_factory=dict)


_uid = iter(range(1, 100000))


def add_mail(
    db: Database,
    store: DocumentStore,
    *,
    key: str,
    seeded: Seeded,
    sender: str,
    sender_name: str,
    subject: str,
    body: str,
    when: datetime,
    status: str,
    reason: str | None = None,
    form: dict[str, Any] | None = None,
    on_time: bool | None = None,
    receipt: str | None = "pending",
    pdf_name: str = "Høringssvar.pdf",
    pdf: bytes | None = None,
    text_layer: TextLayerIn | None = None,
) -> int:
    if pdf is None and form is not None:
        pdf = form_pdf(form)
    raw, message_id = eml(sender, sender_name, subject, body, when, (pdf_name, pdf) if pdf else None)
    raw_sha, raw_path = store.put(raw)
    documents = []
    if pdf is not None:
        sha, path = store.put(pdf)
        documents.append(
            DocumentIn(pdf_name, "application/pdf", len(pdf), sha, path, pdf_name, is_form=True, text_layer=text_layer)
        )
    else:
        text = body.encode("utf-8")
        sha, path = store.put(text)
        documents.append(
            DocumentIn("e-post.txt", "text/plain; charset=utf-8", len(text), sha, path, subject, kind="body")
        )
    mail = IncomingMail(
        source_key=SOURCE,
        uidvalidity=1,
        uid=str(next(_uid)),
        raw_sha256=raw_sha,
        raw_size=len(raw),
        raw_path=raw_path,
        message_id=message_id,
        received_at=when,
        received_at_source="internaldate",
        date_header=when,
        sender_name=sender_name,
        sender_address=sender,
        subject=subject,
        body_text=body,
        in_reply_to=[],
        references=[],
        machine_reason=None,
        parse_defects=[],
        status=status,
        reason=reason,
        case_number=CASE if status == m.REGISTERED else None,
        on_time=on_time,
        documents=documents,
        form=form,
        form_document_index=0 if form is not None else None,
        receipt=ReceiptPlan(receipt, sender) if receipt else None,
        sender_is_private_person=(form or {}).get("organisation_type") == "Privatperson" if form else None,
    )
    with db.session() as session:
        outcome = register(session, mail)
    seeded.ids[key] = outcome.intake_id
    return outcome.intake_id


def oslo(day: int, month: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2022, month, day, hour, minute, tzinfo=OSLO)


def seed_consultation(db: Database, store: DocumentStore, *, healthy_worker: bool = True) -> Seeded:
    seeded = Seeded()
    responses = [
        (
            "bergen",
            "postmottak@bergen.kommune.no",
            "Bergen kommune",
            oslo(12, 9, 10, 15),
            True,
            form_data(
                organisation_type="Kommune/KS",
                organisation_name="Bergen kommune",
                contact_person="Kari Nordmann",
                email="kari.nordmann@bergen.kommune.no",
                q1_choice="ja",
                q1_text="Bergen kommune stiller seg bak målene, men savner tydeligere prioritering.",
                goal_1="Innbyggerne må få bedre tilgang til egne helseopplysninger i kommunale tjenester.",
                goal_2="Færre dobbeltregistreringer i pleie- og omsorgstjenesten er avgjørende.",
                goal_3="Kommunene trenger styringsdata av god kvalitet.",
                goal_4="Kjernejournal må tas i bruk i hele omsorgstjenesten.",
                goal_5="Finansieringsmodellen må ta hensyn til kommunenes kostnader.",
                q3_text="Kommunesektoren bør involveres tidlig i oppfølgingen.",
                q4_text="Ingen ytterligere innspill.",
            ),
        ),
        (
            "helsevest",
            "postmottak@helse-vest.no",
            "Helse Vest RHF",
            oslo(20, 9, 14, 2),
            True,
            form_data(
                organisation_type="RHF/Helseforetak",
                organisation_name="Helse Vest RHF",
                contact_person="Ola Hansen",
                email="ola.hansen@helse-vest.no",
                q1_choice="ja",
                q1_text="Målene er godt forankret.",
                goal_1="Digital dialog med pasienter må bygges ut.",
                goal_2="Felles løsninger for legemiddelinformasjon.",
                goal_3="Sekundærbruk av helsedata til forskning må forenkles.",
                goal_4="Samhandling mellom sykehus og kommuner.",
                goal_5="Nasjonal styring og felles standarder.",
                q3_text="Tydelige milepæler ønskes.",
                q4_text=None,
            ),
        ),
        (
            "legeforeningen",
            "post@legeforeningen.no",
            "Den norske legeforening",
            oslo(28, 9, 9, 30),
            True,
            form_data(
                organisation_type="Fag- og interesseorganisasjoner",
                organisation_name="Den norske legeforening",
                contact_person="Per Olsen",
                email="per.olsen@legeforeningen.no",
                q1_choice="nei",
                q1_text="Strategien er for lite konkret om legenes arbeidshverdag.",
                goal_2="Enklere arbeidshverdag krever bedre journalsystemer, ikke flere portaler.",
                goal_4="Informasjon må følge pasienten.",
                q3_text="Legeforeningen vil delta i oppfølgingen.",
                q4_text="Vi viser til vårt tidligere høringssvar.",
            ),
        ),
        (
            "privat",
            "ingrid.berg@example.no",
            "Ingrid Berg",
            oslo(30, 9, 22, 45),
            True,
            form_data(
                organisation_type="Privatperson",
                organisation_name="Ingrid Berg",
                contact_person="Ingrid Berg",
                email="ingrid.berg@example.no",
                q1_choice="vet_ikke",
                q1_text="Vanskelig å vurdere som privatperson.",
                goal_1="Jeg vil se hva som står om meg i journalen, på nynorsk og bokmål.",
            ),
        ),
        (
            "sent",
            "post@pasientforeningen.no",
            "Pasientforeningen",
            oslo(3, 10, 8, 5),
            False,
            form_data(
                organisation_type="Pasient- og brukerorganisasjon",
                organisation_name="Pasientforeningen",
                contact_person="Nils Dahl",
                email="nils.dahl@pasientforeningen.no",
                q1_choice="ja",
                goal_1="Brukermedvirkning må sikres i alle digitaliseringsprosjekter.",
            ),
        ),
        (
            "warned",
            "post@uio.no",
            "Universitetet i Oslo",
            oslo(25, 9, 11, 0),
            True,
            form_data(
                organisation_type="Forskning- og utdanningsorganisasjon",
                organisation_name="Universitetet i Olso",
                contact_person="Eva Lie",
                email="eva.lie@uio.no",
                q1_choice=None,
                q1_text="Vi støtter i hovedsak målene.",
                goal_3="Tilgang til helsedata for forskning må bli raskere.",
                form_status="partial",
                warnings=["Ingen avkrysning for spørsmål 1", "Flere typer organisasjon/virksomhet er krysset av"],
                organisation_types_checked=["Forskning- og utdanningsorganisasjon", "Statlig etat, ombud eller fagråd"],
            ),
        ),
    ]
    for key, sender, name, when, on_time, form in responses:
        add_mail(
            db,
            store,
            key=key,
            seeded=seeded,
            sender=sender,
            sender_name=name,
            subject=f"Høringssvar {CASE} – {form['organisation_name']}",
            body=f"Vedlagt følger høringssvar fra {name} i sak {CASE}.\n\nMed vennlig hilsen\n{name}",
            when=when,
            status=m.REGISTERED,
            on_time=on_time,
            form=form,
        )
    add_mail(
        db,
        store,
        key="review",
        seeded=seeded,
        sender="post@tromso.kommune.no",
        sender_name="Tromsø kommune",
        subject="Innspill til e-helsestrategien",
        when=oslo(29, 9, 13, 20),
        status=m.NEEDS_REVIEW,
        reason="a consultation form without a case number",
        body="Hei,\nvedlagt er Tromsø kommunes innspill til den nasjonale e-helsestrategien.\nHilsen Tromsø kommune",
        form=form_data(
            organisation_type="Kommune/KS",
            organisation_name="Tromsø kommune",
            contact_person="Siri Moe",
            email="siri.moe@tromso.kommune.no",
            q1_choice="ja",
            goal_2="Mindre tid på dokumentasjon.",
        ),
        receipt=None,
    )
    add_mail(
        db,
        store,
        key="newsletter",
        seeded=seeded,
        sender="nyhetsbrev@leverandor.no",
        sender_name="Leverandør AS",
        subject="Nyhetsbrev september",
        body="Se våre nye produkter for helsesektoren.",
        when=oslo(15, 9, 7, 0),
        status=m.NEEDS_REVIEW,
        reason="mentions 'e-helsestrategi' but no case number",
        receipt=None,
    )
    add_mail(
        db,
        store,
        key="ignored",
        seeded=seeded,
        sender="noreply@example.com",
        sender_name="Autosvar",
        subject="Automatisk svar: ute av kontoret",
        body="Jeg er på ferie til 1. oktober.",
        when=oslo(14, 9, 8, 0),
        status=m.IGNORED,
        reason="machine mail: auto-submitted",
        receipt=None,
    )
    with db.session() as session:
        sent = session.scalar(select(m.Receipt).where(m.Receipt.intake_id == seeded.ids["bergen"]))
        sent.status, sent.sent_at, sent.attempts = "sent", oslo(12, 9, 10, 16), 1
        sent.subject = f"Kvittering for mottatt høringssvar – sak {CASE}"
        sent.body = (
            "Vi bekrefter at høringssvaret ditt i sak 22/414 er mottatt 12.09.2022 kl. 10:15 "
            "og journalført som 2022/414-1.\n\nMed vennlig hilsen\nPostmottak"
        )
        now = datetime.now(timezone.utc)
        run_id = mailboxes.start_poll(session, SOURCE)
        mailboxes.finish_poll(session, run_id, ok=True, fetched=9, counts={"registered": 6}, error=None)
        if not healthy_worker:
            state = mailboxes.get_state(session, SOURCE)
            state.last_success_at = now - timedelta(hours=5)
            state.last_poll_at = now - timedelta(minutes=1)
            state.last_error = "IMAP-tjeneren svarer ikke: connection refused"
            failed_run = m.PollRun(
                source_key=SOURCE,
                started_at=now - timedelta(minutes=1),
                finished_at=now,
                ok=False,
                error="IMAP-tjeneren svarer ikke: connection refused",
            )
            session.add(failed_run)
    return seeded


def seed_fleet(db: Database, mailbox: str = "postmottak") -> str:
    """A live worker holding `mailbox`'s lease (the other configured mailboxes have no reader); its id."""
    from postmottak.casefile import leases

    worker = "arbeider-a-4242"
    with db.session() as session:
        leases.heartbeat(session, worker, "arbeider-a", 4242)
        leases.ensure_mailboxes(session, [mailbox])
    with db.session() as session:
        assert leases.try_acquire(session, mailbox, worker, 3600) is not None
    return worker


# The text of the scanned page in add_scanned_response: what its searchable version's text layer holds.
SCANNED_TEXT = "Høringssvarskjema Navn på virksomheten Nordlys legesenter Kontaktperson Kari Fjellheim"


def scanned_page_pdf(quality: int = 60) -> bytes:
    """An image-only PDF page (what a scanner sends): printed-looking lines, no text layer."""
    from PIL import Image, ImageDraw

    page = Image.new("L", (827, 1169), 255)
    draw = ImageDraw.Draw(page)
    for number, line in enumerate(
        ["Høringssvarskjema", "Navn på virksomheten: Nordlys legesenter", "Kontaktperson: Kari"]
    ):
        draw.text((80, 100 + 40 * number), line, fill=0)
    draw.rectangle((80, 260, 96, 276), outline=0, width=2)
    buffer = io.BytesIO()
    page.save(buffer, format="PDF", resolution=100, quality=quality)
    return buffer.getvalue()


def add_scanned_response(db: Database, store: DocumentStore, seeded: Seeded, key: str = "scanned") -> int:
    """A registered response whose form was a scan read by OCR: one field below the confidence threshold, and the
    searchable version stored beside the original (made here without Tesseract: an image-only PDF stands in)."""
    searchable = scanned_page_pdf(quality=40)
    sha, path = store.put(searchable)
    layer = TextLayerIn("made", [1], SCANNED_TEXT, sha, len(searchable), path, "Tesseract (nor+eng)")
    codes = ["ocr.document", "ocr.field:organisation_name:94", "ocr.low_confidence:contact_person:61"]
    warnings = [
        "Skjemaet er et skannet bilde og er lest med tekstgjenkjenning (OCR, side 1); kontroller feltene mot bildet.",
        "«Navn på virksomheten» er lest med OCR (sikkerhet 94 %).",
        "«Kontaktperson» er lest med OCR med lav sikkerhet (61 %) og må kontrolleres mot bildet.",
    ]
    return add_mail(
        db,
        store,
        key=key,
        seeded=seeded,
        sender="post@nordlys-legesenter.no",
        sender_name="Nordlys legesenter",
        subject=f"Høringssvar {CASE} (skannet)",
        body="Vedlagt er vårt utfylte skjema, skannet.",
        when=oslo(20, 9, 9, 30),
        status=m.REGISTERED,
        on_time=True,
        form=form_data(
            organisation_type="Privat virksomhet/næringsliv",
            organisation_name="Nordlys legesenter",
            contact_person="Kari Fjelheim",
            form_status="partial",
            warnings=warnings,
            warning_codes=codes,
        ),
        pdf=scanned_page_pdf(),
        pdf_name="skanning.pdf",
        text_layer=layer,
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
