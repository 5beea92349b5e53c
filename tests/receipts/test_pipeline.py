"""Receipts end to end: realistic mail through the real pipeline (folder source) and a full worker cycle that sends
over SMTP to a real sink. Each respondent gets exactly one receipt; machines, loops and duplicates get none, and the
record says why. Bounces of receipts are linked to the receipt.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.casefile.storage import DocumentStore
from postmottak.intake.pipeline import Intake
from postmottak.intake.sources.folder import FolderSource
from postmottak.intake.worker import full_cycle
from tests import mailfactory as mf
from tests.servers.smtp import SmtpSink

from .helpers import body_text, make_settings, sync_cases

pytestmark = [pytest.mark.smtp]

ON_TIME = datetime(2022, 9, 20, 10, 2, tzinfo=mf.OSLO)
LATE = datetime(2022, 10, 2, 0, 20, tzinfo=mf.OSLO)


class Mailroom:
    """A folder mailbox, the pipeline over it, and the SMTP sink the receipts go to."""

    def __init__(self, database: Database, sink: SmtpSink, tmp_path: Path) -> None:
        self.db, self.sink = database, sink
        self.folder = tmp_path / "mailbox"
        self.folder.mkdir()
        self.settings = make_settings(sink, tmp_path, database)
        self.intake = Intake(
            settings=self.settings,
            db=database,
            store=DocumentStore(self.settings.storage_path),
            source=FolderSource(self.folder, "eml"),
        )
        self._n = 0

    def drop(self, raw: bytes, name: str | None = None) -> str:
        self._n += 1
        filename = name or f"{self._n:04d}.eml"
        (self.folder / filename).write_bytes(raw)
        return filename

    def cycle(self) -> None:
        report = full_cycle(self.intake)
        assert report.ok, report.errors

    def record(self, message_id: str) -> m.IntakeRecord:
        with self.db.session() as session:
            record = session.scalars(
                select(m.IntakeRecord)
                .where(m.IntakeRecord.message_id.in_([message_id, message_id.strip("<>")]))
                .order_by(m.IntakeRecord.id)
            ).first()
            assert record is not None, message_id
            _ = record.receipt
            session.expunge_all()
            return record

    def receipt(self, message_id: str) -> m.Receipt | None:
        with self.db.session() as session:
            record = session.scalars(
                select(m.IntakeRecord)
                .where(m.IntakeRecord.message_id.in_([message_id, message_id.strip("<>")]))
                .order_by(m.IntakeRecord.id)
            ).first()
            assert record is not None, message_id
            receipt = record.receipt
            if receipt is not None:
                session.expunge(receipt)
            return receipt

    def sent_to(self, address: str) -> list:  # type: ignore[type-arg]
        return [mail for mail in self.sink.messages if address.lower() in (r.lower() for r in mail.rcpt_tos)]


@pytest.fixture
def room(database: Database, smtp_sink: SmtpSink, tmp_path: Path) -> Mailroom:
    sync_cases(database)
    return Mailroom(database, smtp_sink, tmp_path)


def test_respondent_gets_exactly_one_correct_receipt(room: Mailroom) -> None:
    raw = mf.response_mail(
        sender_addr="ase.odegard@baerum.kommune.no", message_id="<svar-1@baerum.kommune.no>", date=ON_TIME
    )
    room.drop(raw)
    room.cycle()
    room.cycle()
    [mail] = room.sink.messages
    assert mail.mail_from == "postmottak@ehelse.no" and mail.rcpt_tos == ("ase.odegard@baerum.kommune.no",)
    msg = mail.message
    assert msg["In-Reply-To"] == "<svar-1@baerum.kommune.no>" and msg["References"] == "<svar-1@baerum.kommune.no>"
    assert msg["Subject"] == "Kvittering for mottatt høringssvar - sak 22/414"
    assert msg["Auto-Submitted"] == "auto-replied" and msg["X-Auto-Response-Suppress"] == "All"
    body = body_text(msg)
    assert "innen fristen" in body and "Høringssvar Bærum kommune.pdf" in body
    receipt = room.receipt("<svar-1@baerum.kommune.no>")
    assert receipt is not None and receipt.status == "sent"


def test_late_respondent_is_told_politely(room: Mailroom) -> None:
    room.drop(mf.response_mail(sender_addr="sen@example.no", message_id="<sen-1@example.no>", date=LATE))
    room.cycle()
    [mail] = room.sent_to("sen@example.no")
    assert "kom dessverre inn etter fristen" in body_text(mail.message)


@pytest.mark.parametrize("kind", ["exchange_oof", "auto_submitted", "precedence_bulk"])
def test_auto_replies_get_none(room: Mailroom, kind: str) -> None:
    raw = mf.auto_reply(
        kind=kind,
        sender_addr="lars@tromso.kommune.no",
        message_id=f"<auto-{kind}@tromso.kommune.no>",
        in_reply_to="<kvittering-7-0011223344556677@ehelse.no>",
    )
    room.drop(raw)
    room.cycle()
    assert room.sink.messages == []
    record = room.record(f"<auto-{kind}@tromso.kommune.no>")
    assert record.status != "registered"
    receipt = room.receipt(f"<auto-{kind}@tromso.kommune.no>")
    assert receipt is not None and receipt.status == "suppressed" and receipt.reason


def test_list_mail_gets_none(room: Mailroom) -> None:
    room.drop(mf.list_mail(subject="Nyhetsbrev: høring 22/414 om e-helsestrategien", message_id="<nb-1@ks.no>"))
    room.cycle()
    assert room.sink.messages == []
    receipt = room.receipt("<nb-1@ks.no>")
    assert receipt is None or receipt.status == "suppressed"


def test_null_sender_gets_none(room: Mailroom) -> None:
    raw = b"Return-Path: <>\r\n" + mf.response_mail(
        sender_addr="ola@example.no", message_id="<null-1@example.no>", date=ON_TIME
    )
    room.drop(raw)
    room.cycle()
    assert room.sink.messages == []
    receipt = room.receipt("<null-1@example.no>")
    assert receipt is not None and receipt.status == "suppressed" and "null sender" in (receipt.reason or "")


@pytest.mark.parametrize(
    "address",
    [
        "MAILER-DAEMON@mx.example.no",
        "postmaster@example.no",
        "noreply@example.no",
        "no-reply@example.no",
        "hoering-request@lists.example.no",
        "owner-hoering@lists.example.no",
    ],
)
def test_automatic_addresses_get_none(room: Mailroom, address: str) -> None:
    message_id = f"<auto-addr-{address.split('@')[0].lower()}@example.no>"
    room.drop(mf.response_mail(sender_name="System", sender_addr=address, message_id=message_id, date=ON_TIME))
    room.cycle()
    assert room.sink.messages == []
    receipt = room.receipt(message_id)
    assert receipt is not None and receipt.status == "suppressed" and receipt.reason


def test_duplicate_gets_none(room: Mailroom) -> None:
    raw = mf.response_mail(sender_addr="kari@example.no", message_id="<dup-1@example.no>", date=ON_TIME)
    room.drop(raw, "a.eml")
    room.drop(raw, "b.eml")
    room.drop(raw.replace(b"Message-ID:", b"X-Resent: 1\r\nMessage-ID:"), "c.eml")  # same Message-ID, other bytes
    room.cycle()
    assert len(room.sent_to("kari@example.no")) == 1
    with room.db.session() as session:
        statuses = sorted(session.scalars(select(m.IntakeRecord.status)))
        assert statuses == ["duplicate", "duplicate", "registered"]
        receipts = sorted((r.status, r.reason or "") for r in session.scalars(select(m.Receipt)))
        assert [status for status, _ in receipts] == ["sent", "suppressed", "suppressed"]
        assert all(reason.startswith("duplicate of intake #") for status, reason in receipts if status == "suppressed")


def test_reply_to_a_receipt_gets_none(room: Mailroom) -> None:
    by_reference = mf.response_mail(
        sender_addr="kari@example.no",
        message_id="<reply-ref@example.no>",
        subject="Spørsmål om høringen 22/414",
        date=ON_TIME,
        extra_headers={
            "In-Reply-To": "<kvittering-3-aabbccddeeff0011@ehelse.no>",
            "References": "<kvittering-3-aabbccddeeff0011@ehelse.no>",
        },
    )
    by_subject = mf.response_mail(
        sender_addr="ola@example.no",
        message_id="<reply-subj@example.no>",
        subject="SV: Kvittering for mottatt høringssvar – sak 22/414",
        date=ON_TIME,
    )
    room.drop(by_reference)
    room.drop(by_subject)
    room.cycle()
    assert room.sink.messages == []
    for message_id in ("<reply-ref@example.no>", "<reply-subj@example.no>"):
        receipt = room.receipt(message_id)
        assert receipt is not None and receipt.status == "suppressed"
        assert receipt.reason == "reply to one of our receipts"


def test_our_own_receipt_coming_back_gets_none(room: Mailroom) -> None:
    room.drop(mf.response_mail(sender_addr="kari@example.no", message_id="<first@example.no>", date=ON_TIME))
    room.cycle()
    [receipt_mail] = room.sink.messages
    room.drop(receipt_mail.raw)  # e.g. the respondent's address forwards everything back to postmottak
    room.cycle()
    assert len(room.sink.messages) == 1
    returned = room.receipt(receipt_mail.message["Message-ID"])
    assert returned is not None and returned.status == "suppressed"
    assert returned.reason == "one of our own receipts came back"


def test_forwarded_by_staff_goes_to_the_original_sender(room: Mailroom) -> None:
    original = mf.response_mail(sender_addr="per@example.no", message_id="<orig-fwd@example.no>", date=ON_TIME)
    room.drop(mf.forwarded_mail(original, message_id="<fwd-1@ehelse.no>", date=ON_TIME))
    room.cycle()
    assert [mail.rcpt_tos for mail in room.sink.messages] == [("per@example.no",)]


def test_encoded_crlf_bcc_in_subject_reaches_the_sender_alone(room: Mailroom) -> None:
    raw = mf.response_mail(
        sender_addr="kari@example.no", message_id="<inj-1@example.no>", date=ON_TIME, subject="Hoeringssvar 22/414"
    )
    hostile = b"Subject: =?utf-8?q?H=C3=B8ringssvar_22/414=0D=0ABcc:_victim@attacker.example?="
    raw = re.sub(rb"(?m)^Subject: [^\r\n]*", hostile, raw, count=1)
    room.drop(raw)
    room.cycle()
    [mail] = room.sink.messages
    assert mail.rcpt_tos == ("kari@example.no",)
    assert mail.message.get_all("Bcc") is None
    assert "victim@attacker.example" not in str(mail.message["To"])


def test_idn_sender(room: Mailroom) -> None:
    room.drop(
        mf.response_mail(
            sender_name="Øyvind Åsheim",
            sender_addr="oyvind@åsheim.no",
            utf8_headers=True,
            message_id="<idn-1@xn--sheim-pra.no>",
            date=ON_TIME,
        )
    )
    room.cycle()
    [mail] = room.sink.messages
    assert mail.rcpt_tos == ("oyvind@" + "åsheim.no".encode("idna").decode(),)  # xn--sheim-lra.no


def test_bounce_of_a_receipt_is_linked_and_not_registered(room: Mailroom) -> None:
    room.drop(mf.response_mail(sender_addr="borte@example.no", message_id="<bounce-orig@example.no>", date=ON_TIME))
    room.cycle()
    [receipt_mail] = room.sink.messages
    ours = receipt_mail.message["Message-ID"]
    room.drop(mf.bounce(original_message_id=ours, recipient="borte@example.no", message_id="<dsn-1@mx01.ehelse.no>"))
    room.drop(
        mf.bounce(
            original_message_id=ours,
            recipient="borte@example.no",
            status="4.4.1",
            message_id="<dsn-delayed@mx01.ehelse.no>",
        )
    )
    room.cycle()
    assert len(room.sink.messages) == 1  # nothing to MAILER-DAEMON
    bounce_record = room.record("<dsn-1@mx01.ehelse.no>")
    assert bounce_record.status != "registered"
    receipt = room.receipt("<bounce-orig@example.no>")
    assert receipt is not None and receipt.status == "bounced"
    assert receipt.bounce_intake_id == bounce_record.id and receipt.bounced_at is not None
    assert "5.1.1" in (receipt.reason or "")


def test_delayed_report_does_not_mark_bounced(room: Mailroom) -> None:
    room.drop(mf.response_mail(sender_addr="treg@example.no", message_id="<delay-orig@example.no>", date=ON_TIME))
    room.cycle()
    ours = room.sink.messages[0].message["Message-ID"]
    room.drop(
        mf.bounce(
            original_message_id=ours, recipient="treg@example.no", status="4.4.1", message_id="<dsn-2@mx01.ehelse.no>"
        )
    )
    room.cycle()
    receipt = room.receipt("<delay-orig@example.no>")
    assert receipt is not None and receipt.status == "sent"


def test_realistic_mailbox_one_receipt_per_registered_response(room: Mailroom) -> None:
    items = mf.realistic_mailbox_items(60)
    for index, item in enumerate(items):
        room.drop(item.raw, f"{index:04d}.eml")
    room.cycle()
    with room.db.session() as session:
        registered = list(session.scalars(select(m.IntakeRecord).where(m.IntakeRecord.status == "registered")))
        pending_or_sent = {r.intake_id: r for r in session.scalars(select(m.Receipt).where(m.Receipt.status == "sent"))}
        for record in registered:
            receipt = record.receipt
            assert receipt is not None, record.id
            assert receipt.status in ("sent", "suppressed"), (record.id, receipt.status, receipt.reason)
            if receipt.status == "suppressed":
                assert receipt.reason
        non_registered_sent = [
            r for r in pending_or_sent.values() if session.get(m.IntakeRecord, r.intake_id).status != "registered"
        ]
        assert non_registered_sent == []
        sent_count = len(pending_or_sent)
    assert len(room.sink.messages) == sent_count
    by_kind = {item.kind for item in items}
    machine_addrs = {item.sender_addr.lower() for item in items if item.kind in (mf.KIND_AUTO_REPLY, mf.KIND_BOUNCE)}
    assert not any(r.lower() in machine_addrs for mail in room.sink.messages for r in mail.rcpt_tos)
    assert mf.KIND_ON_TIME in by_kind
