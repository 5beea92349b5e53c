"""Test data for the Noark 5 extract: a realistic case 22/414 registered through `casefile.registry.register`.

Reusable: `open_test_database` gives a migrated SQLite (or PostgreSQL, isolated in its own schema) database,
`register_response` registers one mail with real stored file bytes, and `build_realistic_case` registers the
standard mix (organisation with form + cover letter, private person, body-only mail, a late response, an
ignored mail, staff corrections) and optionally closes the case.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, text

from postmottak.casefile import cases as case_store
from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.casefile.noark5.closing import close
from postmottak.casefile.records import DocumentIn, IncomingMail, ReceiptPlan
from postmottak.casefile.registry import register
from postmottak.casefile.storage import DocumentStore

OSLO = ZoneInfo("Europe/Oslo")
CASE_NUMBER = "22/414"
CASE_TITLE = "Høring - Nasjonal e-helsestrategi for helse- og omsorgssektoren"
CASE_DEADLINE = date(2022, 10, 1)
PG_ENV = "POSTMOTTAK_TEST_DATABASE_URL"


# Database ----------------------------------------------------------------------------------------------


@dataclass
class TestDatabase:
    db: Database
    url: str
    cleanup_schema: str | None = None
    admin_url: str | None = None

    def dispose(self) -> None:
        self.db.dispose()
        if self.cleanup_schema and self.admin_url:
            engine = create_engine(self.admin_url)
            with engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{self.cleanup_schema}" CASCADE'))
            engine.dispose()


def open_test_database(backend: str, tmp_path: Path) -> TestDatabase:
    """A migrated database with case 22/414. backend: "sqlite" or "postgresql" (needs $POSTMOTTAK_TEST_DATABASE_URL)."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'postmottak.db'}"
        result = TestDatabase(Database(url), url)
    else:
        admin_url = os.environ[PG_ENV]
        schema = f"test_archive_{uuid.uuid4().hex[:12]}"
        engine = create_engine(admin_url)
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        separator = "&" if "?" in admin_url else "?"
        url = f"{admin_url}{separator}options=-csearch_path%3D{schema}"
        result = TestDatabase(Database(url), url, cleanup_schema=schema, admin_url=admin_url)
    result.db.upgrade()
    with result.db.session() as session:
        case_store.sync_cases(session, [(CASE_NUMBER, CASE_TITLE, CASE_DEADLINE, "Europe/Oslo", "hoeringssvar-22-414")])
    return result


# Files -------------------------------------------------------------------------------------------------


def make_pdf(lines: list[str], title: str) -> bytes:
    """A real (plain, not PDF/A) PDF with the given text, made with reportlab."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1)  # invariant: same bytes every run
    pdf.setTitle(title)
    y = 800
    for line in lines:
        pdf.drawString(60, y, line)
        y -= 18
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def form_pdf(organisation: str, organisation_type: str, contact: str, email: str) -> bytes:
    return make_pdf(
        [
            "Høringssvarskjema - Nasjonal e-helsestrategi (sak 22/414)",
            f"Type virksomhet: {organisation_type}",
            f"Navn på virksomheten: {organisation}",
            f"Kontaktperson: {contact}",
            f"E-post: {email}",
            "1. Støtter dere visjonen? Ja",
        ],
        "Høringssvarskjema",
    )


def form_data(organisation: str | None, organisation_type: str, contact: str, email: str) -> dict[str, Any]:
    return {
        "organisation_type": organisation_type,
        "organisation_types_checked": [organisation_type],
        "organisation_name": organisation,
        "contact_person": contact,
        "email": email,
        "q1_choice": "ja",
        "q1_text": "Vi støtter visjonen.",
        "goal_1": "Enig",
        "goal_2": None,
        "goal_3": None,
        "goal_4": None,
        "goal_5": None,
        "q3_text": None,
        "q4_text": None,
        "warnings": [],
        "warning_codes": [],
        "extra_fields": {},
        "form_status": "parsed",
        "profile": "hoeringssvar-22-414",
        "source_format": "pdf",
        "page_count": 1,
    }


# Responses ---------------------------------------------------------------------------------------------


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes
    is_form: bool = False


@dataclass
class Response:
    sender_name: str | None
    sender_address: str
    subject: str
    body: str
    received_at: datetime
    attachments: list[Attachment] = field(default_factory=list)
    form: dict[str, Any] | None = None
    private_person: bool | None = None
    status: str = m.REGISTERED
    case_number: str | None = CASE_NUMBER


def raw_mail(response: Response) -> bytes:
    message = EmailMessage()
    message["From"] = (
        f"{response.sender_name} <{response.sender_address}>" if response.sender_name else response.sender_address
    )
    message["To"] = "postmottak@ehelse.no"
    message["Subject"] = response.subject
    message["Date"] = format_datetime(response.received_at)
    message["Message-ID"] = make_msgid(domain="test.invalid")
    message.set_content(response.body)
    for attachment in response.attachments:
        maintype, subtype = attachment.content_type.split("/", 1)
        message.add_attachment(attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename)
    return message.as_bytes()


def register_response(session: Any, store: DocumentStore, response: Response, uid: str) -> m.IntakeRecord:
    """Register one mail the way the pipeline does: raw mail and every document stored under their SHA-256."""
    raw = raw_mail(response)
    raw_sha, raw_path = store.put(raw)
    documents: list[DocumentIn] = []
    form_index = None
    for index, attachment in enumerate(response.attachments):
        sha, path = store.put(attachment.data)
        documents.append(
            DocumentIn(
                filename=attachment.filename,
                content_type=attachment.content_type,
                size=len(attachment.data),
                sha256=sha,
                storage_path=path,
                title=attachment.filename,
                is_form=attachment.is_form,
            )
        )
        if attachment.is_form:
            form_index = index
    if not documents:
        body = response.body.encode("utf-8")
        sha, path = store.put(body)
        documents.append(
            DocumentIn(
                filename="e-post.txt",
                content_type="text/plain; charset=utf-8",
                size=len(body),
                sha256=sha,
                storage_path=path,
                title=response.subject or "E-post",
                kind="body",
            )
        )
    registered = response.status == m.REGISTERED
    on_time = None
    if registered:
        on_time = response.received_at.astimezone(OSLO).date() <= CASE_DEADLINE
    incoming = IncomingMail(
        source_key="test:INBOX",
        uidvalidity=1,
        uid=uid,
        raw_sha256=raw_sha,
        raw_size=len(raw),
        raw_path=raw_path,
        message_id=None,
        received_at=response.received_at,
        received_at_source="internaldate",
        date_header=response.received_at,
        sender_name=response.sender_name,
        sender_address=response.sender_address,
        subject=response.subject,
        body_text=response.body,
        in_reply_to=[],
        references=[],
        machine_reason=None,
        parse_defects=[],
        status=response.status,
        reason=None if registered else "not a consultation response",
        case_number=response.case_number if registered else None,
        on_time=on_time,
        documents=documents,
        form=response.form,
        form_document_index=form_index,
        receipt=ReceiptPlan("pending", response.sender_address) if registered else None,
        sender_is_private_person=response.private_person,
    )
    outcome = register(session, incoming)
    record = session.get(m.IntakeRecord, outcome.intake_id)
    assert record is not None
    return record


@dataclass
class BuiltCase:
    number: str
    intake_ids: dict[str, int]  # label -> intake id
    private_names: list[str]  # names and addresses that must never reach a public journal
    organisation_names: list[str]
    document_count: int  # document files expected in the extract
    registered: int


def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO)  # type: ignore[misc]


def standard_responses() -> dict[str, Response]:
    cover = make_pdf(
        ["Oslo kommune", "Oversendelse av høringssvar til sak 22/414.", "Med hilsen Kari Nordmann"], "Følgebrev"
    )
    return {
        "organisation": Response(
            "Kari Nordmann",
            "kari.nordmann@oslo.kommune.no",
            "Høringssvar 22/414 - Oslo kommune",
            "Vedlagt følger høringssvar fra Oslo kommune.",
            oslo(2022, 9, 12, 10, 15),
            attachments=[
                Attachment("Følgebrev.pdf", "application/pdf", cover),
                Attachment(
                    "Høringssvarskjema Oslo kommune.pdf",
                    "application/pdf",
                    form_pdf("Oslo kommune", "Kommune", "Kari Nordmann", "kari.nordmann@oslo.kommune.no"),
                    is_form=True,
                ),
            ],
            form=form_data("Oslo kommune", "Kommune", "Kari Nordmann", "kari.nordmann@oslo.kommune.no"),
            private_person=False,
        ),
        "private": Response(
            "Ola Hansen",
            "ola.hansen@example.net",
            "Høringssvar fra Ola Hansen",
            "Hei, her er mitt høringssvar.",
            oslo(2022, 9, 20, 21, 3),
            attachments=[
                Attachment(
                    "hoeringssvar.pdf",
                    "application/pdf",
                    form_pdf("", "Privatperson", "Ola Hansen", "ola.hansen@example.net"),
                    is_form=True,
                ),
            ],
            form=form_data(None, "Privatperson", "Ola Hansen", "ola.hansen@example.net"),
            private_person=True,
        ),
        "body_only": Response(
            "Per Olsen",
            "per.olsen@example.org",
            "Innspill til e-helsestrategien (22/414)",
            "Jeg mener strategien bør legge mer vekt på pasientens egen journal.\nHilsen Per Olsen",
            oslo(2022, 9, 30, 23, 59, 30),
        ),
        "late": Response(
            "Legeforeningen",
            "post@legeforeningen.no",
            "Høringssvar sak 22/414",
            "Se vedlagte høringssvar.",
            oslo(2022, 10, 3, 8, 0),
            attachments=[
                Attachment(
                    "Høringssvar Legeforeningen.pdf",
                    "application/pdf",
                    form_pdf("Legeforenigen", "Interesseorganisasjon", "Anne Lege", "post@legeforeningen.no"),
                    is_form=True,
                ),
            ],
            form=form_data("Legeforenigen", "Interesseorganisasjon", "Anne Lege", "post@legeforeningen.no"),
            private_person=False,
        ),
        "ignored": Response(
            None,
            "nyhetsbrev@example.com",
            "Ukens nyhetsbrev",
            "Reklame.",
            oslo(2022, 9, 14, 7, 0),
            status=m.IGNORED,
        ),
    }


def build_realistic_case(
    db: Database, store: DocumentStore, *, closed: bool = True, closed_by: str = "arkivar.anne"
) -> BuiltCase:
    responses = standard_responses()
    ids: dict[str, int] = {}
    with db.session() as session:
        case_store.get_case(session, CASE_NUMBER).created_at = oslo(2022, 6, 30, 12, 0)  # opened before the mail came
    with db.session() as session:
        for uid, (label, response) in enumerate(responses.items(), start=1):
            ids[label] = register_response(session, store, response, str(uid)).id
    with db.session() as session:
        # A staff correction of a mis-parsed organisation name, logged in the audit trail as well.
        corrected_at = oslo(2022, 10, 4, 9, 30)
        session.add(
            m.FieldCorrection(
                intake_id=ids["late"],
                field="organisation_name",
                parsed_value="Legeforenigen",
                corrected_value="Den norske legeforening",
                corrected_by="saksbehandler.sara",
                corrected_at=corrected_at,
            )
        )
        session.add(
            m.AuditEvent(
                at=corrected_at,
                actor="saksbehandler.sara",
                action="field_corrected",
                intake_id=ids["late"],
                before={"organisation_name": "Legeforenigen"},
                after={"organisation_name": "Den norske legeforening"},
            )
        )
        session.add(
            m.FieldCorrection(
                intake_id=ids["organisation"],
                field="q1_text",
                parsed_value="Vi støtter visjonen.",
                corrected_value="Vi støtter visjonen fullt ut.",
                corrected_by="saksbehandler.sara",
                corrected_at=oslo(2022, 10, 4, 9, 45),
            )
        )
    if closed:
        with db.session() as session:
            close(session, CASE_NUMBER, closed_by)
    documents = sum(max(1, len(r.attachments)) for r in responses.values() if r.status == m.REGISTERED)
    return BuiltCase(
        number=CASE_NUMBER,
        intake_ids=ids,
        private_names=["Ola Hansen", "ola.hansen@example.net", "Per Olsen", "per.olsen@example.org"],
        organisation_names=["Oslo kommune", "Den norske legeforening"],
        document_count=documents,
        registered=sum(1 for r in responses.values() if r.status == m.REGISTERED),
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
