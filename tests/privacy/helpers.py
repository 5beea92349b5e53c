"""A case database with mail of every status, each with real stored files, for the retention and privacy tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from postmottak.casefile import models as m
from postmottak.casefile.records import DocumentIn, IncomingMail, ReceiptPlan
from postmottak.casefile.registry import register
from postmottak.casefile.storage import DocumentStore
from tests.archive.builders import CASE_NUMBER, form_data, oslo

UNRELATED = "no reference to a configured case"


def raw_mail(sender: str, subject: str, body: str, attachment: bytes | None, message_id: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "postmottak@ehelse.no", subject
    message["Date"], message["Message-ID"] = format_datetime(oslo(2022, 9, 20, 12, 0)), message_id
    message.set_content(body)
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="vedlegg.bin")
    return message.as_bytes()


def register_raw(
    session,
    store: DocumentStore,
    raw: bytes,
    uid: str,
    *,
    status: str,
    reason: str | None,  # type: ignore[no-untyped-def]
    sender: str,
    name: str | None,
    body: str,
    attachment: bytes | None,
    form: dict | None = None,
    private: bool | None = None,
    message_id: str | None = None,
) -> int:
    raw_sha, raw_path = store.put(raw)
    documents = []
    if attachment is not None:
        sha, path = store.put(attachment)
        documents.append(
            DocumentIn(
                filename="vedlegg.bin",
                content_type="application/octet-stream",
                size=len(attachment),
                sha256=sha,
                storage_path=path,
                title="vedlegg.bin",
            )
        )
    registered = status == m.REGISTERED
    incoming = IncomingMail(
        source_key="test:INBOX",
        uidvalidity=1,
        uid=uid,
        raw_sha256=raw_sha,
        raw_size=len(raw),
        raw_path=raw_path,
        message_id=message_id,
        received_at=oslo(2022, 9, 20, 12, 0),
        received_at_source="internaldate",
        date_header=oslo(2022, 9, 20, 12, 0),
        sender_name=name,
        sender_address=sender,
        subject="Emne",
        body_text=body,
        in_reply_to=[],
        references=[],
        machine_reason=None,
        parse_defects=[],
        status=status,
        reason=reason,
        case_number=CASE_NUMBER if registered else None,
        on_time=True if registered else None,
        documents=documents,
        form=form,
        form_document_index=0 if form and documents else None,
        receipt=ReceiptPlan("pending", sender) if registered else None,
        sender_is_private_person=private,
    )
    return register(session, incoming).intake_id


@dataclass
class Mailbox:
    ids: dict[str, int]  # label -> intake id


def every_status(db, store: DocumentStore) -> Mailbox:  # type: ignore[no-untyped-def]
    """One record of each kind; the content duplicate shares its raw file with the registered response."""
    specs = {
        "registered": (m.REGISTERED, None, "ola.hansen@example.net", "Ola Hansen"),
        "needs_review": (m.NEEDS_REVIEW, "refers to several cases: 22/414, 23/1", "kari@example.org", "Kari"),
        "failed": (m.FAILED, "could not parse", "feil@example.org", None),
        "ignored_machine": (m.IGNORED, "machine mail: auto-submitted", "nyhetsbrev@example.com", None),
        "ignored_staff": (m.IGNORED, "ignorert av arkivar: privat e-post", "privat@example.com", "Privat Person"),
        "unrelated": (m.IGNORED, UNRELATED, "ukjent@example.com", None),
    }
    ids: dict[str, int] = {}
    # A transaction per mail, as the intake does: with the documents in the database, a store writes in its own.
    for uid, (label, (status, reason, sender, name)) in enumerate(specs.items(), start=1):
        with db.session() as session:
            raw = raw_mail(
                sender,
                f"Emne {label}",
                f"Tekst {label}, ring 912 34 567",
                f"vedlegg {label}".encode(),
                f"<{label}@test.invalid>",
            )
            form = form_data(None, "Privatperson", "Ola Hansen", sender) if label == "registered" else None
            ids[label] = register_raw(
                session,
                store,
                raw,
                str(uid),
                status=status,
                reason=reason,
                sender=sender,
                name=name,
                body=f"Tekst {label}",
                attachment=f"vedlegg {label}".encode(),
                form=form,
                private=True if label == "registered" else None,
                message_id=f"<{label}@test.invalid>",
            )
    with db.session() as session:
        registered_raw = store.read(session.get(m.IntakeRecord, ids["registered"]).raw_path)
    with db.session() as session:
        # The same registered mail fetched again from another folder: a duplicate by content (same raw file).
        ids["duplicate_content"] = register_raw(
            session,
            store,
            registered_raw,
            "dup-1",
            status=m.REGISTERED,
            reason=None,
            sender="ola.hansen@example.net",
            name="Ola Hansen",
            body="Tekst registered",
            attachment=b"vedlegg registered",
        )
    with db.session() as session:
        # A re-sent mail with the same Message-ID but other bytes: a duplicate with files of its own.
        resent = raw_mail("per@example.org", "Emne", "Sendt på nytt", b"eget vedlegg", "<registered@test.invalid>")
        ids["duplicate_resent"] = register_raw(
            session,
            store,
            resent,
            "dup-2",
            status=m.REGISTERED,
            reason=None,
            sender="per@example.org",
            name="Per",
            body="Sendt på nytt",
            attachment=b"eget vedlegg",
            message_id="<registered@test.invalid>",
        )
    return Mailbox(ids)


def age_files(root: Path, seconds: float = 7 * 24 * 3600) -> None:
    """Stored files as old as the records (retention leaves files touched during a run alone)."""
    past = datetime.now().timestamp() - seconds
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))


def files_of(session, record: m.IntakeRecord) -> list[str]:  # type: ignore[no-untyped-def]
    return [record.raw_path] + [d.storage_path for d in record.documents]
