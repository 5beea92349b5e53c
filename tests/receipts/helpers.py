"""Building registered records (through casefile.registry.register) and settings pointing at the SMTP sink."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from postmottak.casefile import cases, registry
from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.casefile.records import DocumentIn, IncomingMail, ReceiptPlan
from postmottak.config.settings import CaseSettings, ReceiptSettings, Settings, SmtpSettings
from tests.servers.smtp import SmtpSink

OSLO = ZoneInfo("Europe/Oslo")
CASE_NUMBER = "22/414"
CASE_TITLE = "Høring - Nasjonal e-helsestrategi for helse- og omsorgssektoren"
DEADLINE = date(2022, 10, 1)
SENDER = "postmottak@ehelse.no"
ON_TIME_AT = datetime(2022, 9, 20, 10, 2, tzinfo=OSLO)
LATE_AT = datetime(2022, 10, 2, 0, 0, 30, tzinfo=OSLO)


def make_settings(sink: SmtpSink | None, tmp_path: Path, database: Database, **receipts: Any) -> Settings:
    smtp: dict[str, Any] = {"host": "", "security": "none", "sender": SENDER, "sender_name": "Postmottak e-helse"}
    if sink is not None:
        smtp.update(host=sink.host, port=sink.port)
    options: dict[str, Any] = {"retry_base_seconds": 0, "claim_seconds": 600}
    options.update(receipts)
    smtp.update(options.pop("smtp", {}))
    return Settings(
        database={"url": database.url},
        storage={"path": str(tmp_path / "documents")},
        smtp=SmtpSettings(**smtp),
        receipts=ReceiptSettings(**options),
        cases=[CaseSettings(number=CASE_NUMBER, title=CASE_TITLE, deadline=DEADLINE, timezone="Europe/Oslo")],
        base_dir=tmp_path,
    )


def sync_cases(database: Database) -> None:
    with database.session() as session:
        cases.sync_cases(session, [(CASE_NUMBER, CASE_TITLE, DEADLINE, "Europe/Oslo", None)])


_counter = iter(range(1, 10**9))


def register(
    database: Database,
    *,
    sender: str | None = "ase@baerum.kommune.no",
    name: str | None = "Åse Ødegård",
    subject: str = "Høringssvar - sak 22/414",
    received_at: datetime = ON_TIME_AT,
    on_time: bool = True,
    message_id: str | None = None,
    plan: ReceiptPlan | None | str = "pending",
    documents: list[DocumentIn] | None = None,
    status: str = "registered",
) -> int:
    """Register one mail (a fresh location and content each time) and return its intake id."""
    n = next(_counter)
    sha = hashlib.sha256(f"mail-{n}-{datetime.now().isoformat()}".encode()).hexdigest()
    if plan == "pending":
        plan = ReceiptPlan("pending", sender)
    if documents is None:
        documents = [
            DocumentIn(
                "høringssvar.pdf", "application/pdf", 123_456, "b" * 64, "sha256/bb/b", "høringssvar.pdf", is_form=True
            ),
            DocumentIn("vedlegg 2.docx", "application/octet-stream", 2_048, "c" * 64, "sha256/cc/c", "vedlegg 2.docx"),
        ]
    incoming = IncomingMail(
        source_key="folder:test",
        uidvalidity=1,
        uid=f"u{n}",
        raw_sha256=sha,
        raw_size=1000,
        raw_path=f"sha256/{sha[:2]}/{sha}",
        message_id=message_id if message_id is not None else f"<orig-{n}@example.no>",
        received_at=received_at,
        received_at_source="internaldate",
        date_header=None,
        sender_name=name,
        sender_address=sender,
        subject=subject,
        body_text="Se vedlagt.",
        in_reply_to=[],
        references=[],
        machine_reason=None,
        parse_defects=[],
        status=status,
        reason=None,
        case_number=CASE_NUMBER if status == "registered" else None,
        on_time=on_time if status == "registered" else None,
        documents=documents,
        form_document_index=0,
        receipt=plan if not isinstance(plan, str) else None,
    )
    with database.session() as session:
        return registry.register(session, incoming).intake_id


def receipt_of(database: Database, intake_id: int) -> m.Receipt:
    with database.session() as session:
        receipt = session.scalar(select(m.Receipt).where(m.Receipt.intake_id == intake_id))
        assert receipt is not None
        session.expunge(receipt)
        return receipt


def body_text(message: Any) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")
