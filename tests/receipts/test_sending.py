"""Sending receipts to a real SMTP server (aiosmtpd on loopback): envelope, message, retries, failures, limits."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email import policy
from email.parser import Parser
from pathlib import Path

import pytest
from sqlalchemy import event, select, update

from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.casefile.queries import export_records, status_summary
from postmottak.casefile.records import ReceiptPlan
from postmottak.intake.receipt_message import TemplateError
from postmottak.intake.receipts import send_pending
from tests.servers.smtp import SmtpSink

from .helpers import LATE_AT, SENDER, body_text, make_settings, receipt_of, register, sync_cases

pytestmark = [pytest.mark.smtp]

MESSAGE_ID = re.compile(r"^<kvittering-\d+-[0-9a-f]{16}@ehelse\.no>$")


@pytest.fixture
def db(database: Database) -> Database:
    sync_cases(database)
    return database


def test_on_time_receipt_envelope_headers_and_body(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    intake_id = register(db, message_id="<CAF=abc123@mail.example.no>")
    counts = send_pending(make_settings(smtp_sink, tmp_path, db), db)
    assert counts["sent"] == 1 and counts["failed"] == 0
    [mail] = smtp_sink.messages
    assert mail.mail_from == SENDER
    assert mail.rcpt_tos == ("ase@baerum.kommune.no",)
    msg = mail.message
    assert msg["From"].addresses[0].display_name == "Postmottak e-helse"
    assert msg["From"].addresses[0].addr_spec == SENDER
    assert [a.addr_spec for a in msg["To"].addresses] == ["ase@baerum.kommune.no"]
    assert msg["To"].addresses[0].display_name == "Åse Ødegård"
    assert msg["Subject"] == "Kvittering for mottatt høringssvar - sak 22/414"
    assert msg["In-Reply-To"] == "<CAF=abc123@mail.example.no>"
    assert msg["References"] == "<CAF=abc123@mail.example.no>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert MESSAGE_ID.match(msg["Message-ID"])
    assert msg.get_all("Bcc") is None and msg.get_all("Cc") is None
    body = body_text(msg)
    assert "sak 22/414 «Høring - Nasjonal e-helsestrategi for helse- og omsorgssektoren»" in body
    assert "Mottatt: 20. september 2022 kl. 10:02" in body
    assert "Journalnummer: 2022/414-1" in body
    assert "innen fristen 1. oktober 2022" in body and "etter fristen" not in body
    assert "- høringssvar.pdf (123 kB)" in body and "- vedlegg 2.docx (2,0 kB)" in body
    assert "offentleglova" in body and "postmottak@ehelse.no" in body
    assert "Se vedlagt." not in body  # nothing of the original mail beyond its subject

    receipt = receipt_of(db, intake_id)
    assert receipt.status == "sent" and receipt.sent_at is not None and receipt.attempts == 1
    assert f"<{receipt.message_id}>" == msg["Message-ID"]
    assert receipt.smtp_response and receipt.smtp_response.startswith("250")
    assert receipt.subject == msg["Subject"] and receipt.body is not None and "2022/414-1" in receipt.body
    with db.session() as session:
        [row] = export_records(session)
        assert row["receipt"]["status"] == "sent" and row["receipt"]["to"] == "ase@baerum.kommune.no"
        assert row["receipt"]["sent_at"] and row["receipt"]["reason"] is None
        assert status_summary(session).receipts == {"sent": 1}


def test_late_response_gets_the_polite_late_sentence(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    register(db, received_at=LATE_AT, on_time=False)
    send_pending(make_settings(smtp_sink, tmp_path, db), db)
    body = body_text(smtp_sink.messages[0].message)
    assert "Mottatt: 2. oktober 2022 kl. 00:00" in body
    assert "Høringsfristen var 1. oktober 2022, og høringssvaret ditt kom dessverre inn etter fristen." in body
    assert "innen fristen" not in body


def test_each_receipt_is_sent_once(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    first, second = register(db), register(db, sender="kari@example.no", name="Kari")
    settings = make_settings(smtp_sink, tmp_path, db)
    assert send_pending(settings, db)["sent"] == 2
    assert send_pending(settings, db)["sent"] == 0
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == ["ase@baerum.kommune.no", "kari@example.no"]
    ids = {m.message["Message-ID"] for m in smtp_sink.messages}
    assert len(ids) == 2
    assert receipt_of(db, first).status == receipt_of(db, second).status == "sent"


def test_no_attachment_wording(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    from postmottak.casefile.records import DocumentIn

    body_doc = DocumentIn("e-post.txt", "text/plain", 20, "d" * 64, "sha256/dd/d", "E-post", kind="body")
    register(db, documents=[body_doc])
    send_pending(make_settings(smtp_sink, tmp_path, db), db)
    body = body_text(smtp_sink.messages[0].message)
    assert "ingen vedlegg (selve e-posten er registrert)" in body and "e-post.txt" not in body


def test_injection_in_subject_and_name_reaches_the_sender_alone(
    db: Database, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    intake_id = register(
        db,
        subject="Høringssvar\r\nBcc: victim@attacker.example\r\n\r\nspam",
        name="Ola\r\nBcc: victim2@attacker.example\nCc: x@attacker.example",
        message_id="<id@example.no>\r\nBcc: victim3@attacker.example",
    )
    send_pending(make_settings(smtp_sink, tmp_path, db), db)
    [mail] = smtp_sink.messages
    assert mail.rcpt_tos == ("ase@baerum.kommune.no",)
    msg = mail.message
    assert msg.get_all("Bcc") is None and msg.get_all("Cc") is None and msg.get_all("In-Reply-To") is None
    assert [a.addr_spec for a in msg["To"].addresses] == ["ase@baerum.kommune.no"]
    assert "\n" not in msg["To"] and "\r" not in msg["To"]
    header_block = mail.raw.split(b"\r\n\r\n", 1)[0]
    for line in header_block.split(b"\r\n"):
        assert not line.lower().startswith((b"bcc", b"cc:")), line
    body = body_text(msg)
    assert "Emne: Høringssvar Bcc: victim@attacker.example spam\n" in body
    assert receipt_of(db, intake_id).status == "sent"


def test_address_with_line_break_is_not_sent(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    intake_id = register(db, sender="ase@example.no\r\nRCPT TO:<victim@attacker.example>")
    counts = send_pending(make_settings(smtp_sink, tmp_path, db), db)
    assert counts["failed"] == 1 and smtp_sink.messages == []
    receipt = receipt_of(db, intake_id)
    assert receipt.status == "failed" and "control characters" in (receipt.reason or "")


def test_idn_recipient_domain_is_idna_encoded(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    intake_id = register(db, sender="postmottak@bærum.kommune.no", name="Bærum kommune")
    assert send_pending(make_settings(smtp_sink, tmp_path, db), db)["sent"] == 1
    [mail] = smtp_sink.messages
    assert mail.rcpt_tos == ("postmottak@xn--brum-voa.kommune.no",)
    assert not mail.smtputf8
    assert [a.addr_spec for a in mail.message["To"].addresses] == ["postmottak@xn--brum-voa.kommune.no"]
    assert mail.message["To"].addresses[0].display_name == "Bærum kommune"
    assert receipt_of(db, intake_id).status == "sent"


def test_non_ascii_local_part_uses_smtputf8(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    intake_id = register(db, sender="åse.ødegård@bærum.no")
    assert send_pending(make_settings(smtp_sink, tmp_path, db), db)["sent"] == 1
    [mail] = smtp_sink.messages
    assert mail.smtputf8 and "SMTPUTF8" in [o.upper() for o in mail.mail_options]
    assert mail.rcpt_tos == ("åse.ødegård@bærum.no",)
    parsed = Parser(policy=policy.default).parsestr(mail.raw.decode("utf-8"))  # RFC 6532: UTF-8 headers
    assert [a.addr_spec for a in parsed["To"].addresses] == ["åse.ødegård@bærum.no"]
    assert parsed["Subject"] == "Kvittering for mottatt høringssvar - sak 22/414"
    assert receipt_of(db, intake_id).status == "sent"


def test_non_ascii_local_part_without_smtputf8_fails_with_reason(db: Database, tmp_path: Path) -> None:
    with SmtpSink(enable_smtputf8=False) as sink:
        bad = register(db, sender="åse@example.no")
        good = register(db, sender="kari@example.no")
        counts = send_pending(make_settings(sink, tmp_path, db), db)
        assert counts["failed"] == 1 and counts["sent"] == 1
        assert [m.rcpt_tos for m in sink.messages] == [("kari@example.no",)]
    receipt = receipt_of(db, bad)
    assert receipt.status == "failed"
    assert "non-ASCII characters before the @" in (receipt.reason or "") and "SMTPUTF8" in (receipt.reason or "")
    assert receipt_of(db, good).status == "sent"


def test_rate_limit_per_recipient(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    ids = [register(db, sender="Ivrig@Example.no" if i % 2 else "ivrig@example.no") for i in range(12)]
    other = register(db, sender="kari@example.no")
    counts = send_pending(make_settings(smtp_sink, tmp_path, db), db)
    assert counts["sent"] == 11 and counts["suppressed"] == 2
    to_ivrig = [m for m in smtp_sink.messages if m.rcpt_tos[0].lower() == "ivrig@example.no"]
    assert len(to_ivrig) == 10
    statuses = [receipt_of(db, i).status for i in ids]
    assert statuses == ["sent"] * 10 + ["suppressed"] * 2
    reason = receipt_of(db, ids[-1]).reason or ""
    assert reason.startswith("rate limit: 10 receipts already sent to this address in the last 3 hours")
    assert receipt_of(db, other).status == "sent"


def test_rate_limit_is_configurable(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    ids = [register(db, sender="ivrig@example.no") for _ in range(3)]
    settings = make_settings(smtp_sink, tmp_path, db, rate_limit_count=2, rate_limit_hours=1)
    counts = send_pending(settings, db)
    assert counts == {"sent": 2, "retry": 0, "failed": 0, "suppressed": 1}
    assert len(smtp_sink.messages) == 2
    assert "in the last 1 hours (limit 2)" in (receipt_of(db, ids[2]).reason or "")


def test_retry_after_a_temporary_rcpt_refusal(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    intake_id = register(db)
    settings = make_settings(smtp_sink, tmp_path, db)
    smtp_sink.fail_next_rcpt(1, 451)
    assert send_pending(settings, db)["retry"] == 1
    receipt = receipt_of(db, intake_id)
    assert receipt.status == "pending" and receipt.attempts == 1
    assert "451" in (receipt.reason or "") and receipt.smtp_response and receipt.smtp_response.startswith("451")
    assert smtp_sink.messages == [] and len(smtp_sink.rejections) == 1
    assert send_pending(settings, db)["sent"] == 1
    assert len(smtp_sink.messages) == 1
    receipt = receipt_of(db, intake_id)
    assert receipt.status == "sent" and receipt.attempts == 2 and receipt.reason is None


def test_retry_after_a_temporary_data_refusal_keeps_the_message_id(
    db: Database, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    intake_id = register(db)
    settings = make_settings(smtp_sink, tmp_path, db)
    smtp_sink.fail_next_data(1, 452)
    assert send_pending(settings, db)["retry"] == 1
    first_id = receipt_of(db, intake_id).message_id
    assert send_pending(settings, db)["sent"] == 1
    assert smtp_sink.messages[0].message["Message-ID"] == f"<{first_id}>"


def test_backoff_defers_the_next_attempt(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    intake_id = register(db)
    settings = make_settings(smtp_sink, tmp_path, db, retry_base_seconds=3600)
    smtp_sink.fail_next_rcpt(1, 451)
    before = datetime.now(timezone.utc)
    send_pending(settings, db)
    receipt = receipt_of(db, intake_id)
    assert receipt.next_attempt_at is not None and receipt.next_attempt_at >= before + timedelta(seconds=3600)
    assert send_pending(settings, db) == {"sent": 0, "retry": 0, "failed": 0, "suppressed": 0}
    assert len(smtp_sink.rejections) == 1 and smtp_sink.messages == []


def test_gives_up_after_max_attempts(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    intake_id = register(db)
    settings = make_settings(smtp_sink, tmp_path, db, max_attempts=3)
    smtp_sink.fail_next_rcpt(10, 451)
    results = [send_pending(settings, db) for _ in range(4)]
    assert [r["retry"] for r in results] == [1, 1, 0, 0] and results[2]["failed"] == 1
    receipt = receipt_of(db, intake_id)
    assert receipt.status == "failed" and receipt.attempts == 3
    assert (receipt.reason or "").startswith("gave up after 3 attempts") and "451" in (receipt.reason or "")
    assert len(smtp_sink.rejections) == 3 and smtp_sink.messages == []


def test_permanent_refusal_marks_failed_with_reason(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    bad = register(db, sender="finnes.ikke@example.no")
    good = register(db, sender="kari@example.no")
    smtp_sink.fail_next_rcpt(1, 550)
    counts = send_pending(make_settings(smtp_sink, tmp_path, db), db)
    assert counts["failed"] == 1 and counts["sent"] == 1
    receipt = receipt_of(db, bad)
    assert receipt.status == "failed"
    assert receipt.reason == "refused by the SMTP server at RCPT TO: 550 5.1.1 Mailbox unavailable"
    assert [m.rcpt_tos for m in smtp_sink.messages] == [("kari@example.no",)]
    assert send_pending(make_settings(smtp_sink, tmp_path, db), db)["sent"] == 0  # failed is final
    with db.session() as session:
        assert status_summary(session).receipts == {"failed": 1, "sent": 1}
        rows = {row["id"]: row for row in export_records(session)}
        assert rows[bad]["receipt"]["status"] == "failed" and "550" in rows[bad]["receipt"]["reason"]
        assert rows[good]["receipt"]["status"] == "sent"


def test_retry_after_the_server_was_down(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    first, second = register(db), register(db, sender="kari@example.no")
    settings = make_settings(smtp_sink, tmp_path, db)
    smtp_sink.stop()
    counts = send_pending(settings, db)
    assert counts["retry"] == 2 and counts["sent"] == 0
    receipt = receipt_of(db, first)
    assert (
        receipt.status == "pending" and receipt.attempts == 1 and "cannot reach SMTP server" in (receipt.reason or "")
    )
    smtp_sink.start()
    assert send_pending(settings, db)["sent"] == 2
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == ["ase@baerum.kommune.no", "kari@example.no"]
    assert receipt_of(db, first).status == receipt_of(db, second).status == "sent"


def test_auth_login_and_no_password_in_reasons_or_logs(
    db: Database, smtp_sink_auth: SmtpSink, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = smtp_sink_auth
    intake_id = register(db)
    wrong = make_settings(sink, tmp_path, db, smtp={"username": sink.username, "password": "feil-passord-123"})
    with caplog.at_level(logging.DEBUG):
        assert send_pending(wrong, db)["retry"] == 1
    receipt = receipt_of(db, intake_id)
    assert "login" in (receipt.reason or "") and "feil-passord-123" not in (receipt.reason or "")
    assert "feil-passord-123" not in caplog.text and sink.messages == []
    right = make_settings(sink, tmp_path, db, smtp={"username": sink.username, "password": sink.password})
    assert send_pending(right, db)["sent"] == 1
    assert sink.messages[0].auth_login == sink.username
    assert sink.password not in caplog.text


def test_without_auth_the_auth_server_refuses_and_we_retry(
    db: Database, smtp_sink_auth: SmtpSink, tmp_path: Path
) -> None:
    intake_id = register(db)
    counts = send_pending(make_settings(smtp_sink_auth, tmp_path, db), db)
    # 530 at MAIL FROM is a permanent reply: the receipt is failed with the server's words, for staff to see.
    assert counts["failed"] == 1
    assert "530" in (receipt_of(db, intake_id).reason or "")


def test_envelope_sender_options(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    register(db)
    send_pending(make_settings(smtp_sink, tmp_path, db, smtp={"envelope_sender": "bounces@ehelse.no"}), db)
    register(db, sender="kari@example.no")
    send_pending(make_settings(smtp_sink, tmp_path, db, null_envelope_sender=True), db)
    first, second = smtp_sink.messages
    assert first.mail_from == "bounces@ehelse.no" and first.message["From"].addresses[0].addr_spec == SENDER
    assert second.mail_from in ("", "<>")


def test_suppressed_and_unregistered_receipts_are_never_sent(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    suppressed = register(db, plan=ReceiptPlan("suppressed", "robot@example.no", "machine mail: auto-reply"))
    ignored = register(db, status="ignored", plan=ReceiptPlan("suppressed", "x@example.no", "machine mail: bounce"))
    none = register(db, plan=None)
    assert send_pending(make_settings(smtp_sink, tmp_path, db), db)["sent"] == 0
    assert smtp_sink.messages == []
    assert receipt_of(db, suppressed).status == "suppressed"
    assert receipt_of(db, ignored).reason == "machine mail: bounce"
    with db.session() as session:
        assert session.scalar(select(m.Receipt).where(m.Receipt.intake_id == none)) is None


def test_two_senders_at_once_send_each_receipt_once(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    for i in range(12):
        register(db, sender=f"person{i}@example.no")
    settings = make_settings(smtp_sink, tmp_path, db)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            send_pending(settings, db)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    recipients = [m.rcpt_tos[0] for m in smtp_sink.messages]
    assert sorted(recipients) == sorted(f"person{i}@example.no" for i in range(12))


def test_custom_template_from_settings(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    (tmp_path / "mal.txt").write_text(
        "[kvittering]\nTakk! Sak {saksnummer}, journalnummer {journalnummer}. {fristsetning}\n{vedlegg}\n"
        "Kontakt: {kontaktadresse}\n[i tide]\nI tide.\n[for sent]\nFor sent.\n[vedlegg]\n* {filnavn}\n"
        "[ingen vedlegg]\n(ingen)\n",
        encoding="utf-8",
    )
    register(db)
    settings = make_settings(smtp_sink, tmp_path, db, template_path="mal.txt", contact_address="hjelp@ehelse.no")
    send_pending(settings, db)
    body = body_text(smtp_sink.messages[0].message)
    assert body.startswith("Takk! Sak 22/414, journalnummer 2022/414-1. I tide.\n* høringssvar.pdf\n* vedlegg 2.docx")
    assert "Kontakt: hjelp@ehelse.no" in body


def test_broken_template_stops_before_anything_is_claimed(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    (tmp_path / "mal.txt").write_text(
        "[kvittering]\nSak {saksnumer}\n[i tide]\n[for sent]\n[vedlegg]\n[ingen vedlegg]\n"
    )
    intake_id = register(db)
    with pytest.raises(TemplateError, match=r"unknown placeholder \{saksnumer\}"):
        send_pending(make_settings(smtp_sink, tmp_path, db, template_path="mal.txt"), db)
    receipt = receipt_of(db, intake_id)
    assert receipt.status == "pending" and receipt.attempts == 0 and smtp_sink.messages == []


def test_disabled_or_unconfigured_sends_nothing(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    register(db)
    assert send_pending(make_settings(smtp_sink, tmp_path, db, enabled=False), db)["sent"] == 0
    assert send_pending(make_settings(None, tmp_path, db), db)["sent"] == 0
    assert smtp_sink.messages == []


def count_write_commits(db: Database) -> Callable[[], int]:
    """Counts committed transactions that wrote something (a read-only one commits too, but writes nothing)."""
    counted = [0]

    @event.listens_for(db.engine, "before_cursor_execute")
    def _statement(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE")):
            conn.info["wrote"] = True

    @event.listens_for(db.engine, "commit")
    def _commit(conn):  # type: ignore[no-untyped-def]
        if conn.info.pop("wrote", False):
            counted[0] += 1

    @event.listens_for(db.engine, "rollback")
    def _rollback(conn):  # type: ignore[no-untyped-def]
        conn.info.pop("wrote", None)

    return lambda: counted[0]


def test_each_receipt_sent_costs_one_write_transaction(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    for i in range(6):
        register(db, sender=f"person{i}@example.no")
    writes = count_write_commits(db)
    assert send_pending(make_settings(smtp_sink, tmp_path, db), db)["sent"] == 6
    # Six claims, each also marking the receipt before it sent, and the last receipt's `sent` on its own.
    assert writes() == 7
    assert len(smtp_sink.messages) == 6


def test_a_receipt_changed_after_it_was_read_ahead_is_sent_as_it_is_now(
    db: Database, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    first, second, third = (register(db, sender=f"person{i}@example.no") for i in range(3))
    first_id, second_id, third_id = (receipt_of(db, i).id for i in (first, second, third))

    def checkpoint(stage: str, receipt_id: int) -> None:
        # The three were read together before the first was claimed; now an address is corrected, and another
        # attempt is as if it had stored its text (a retry must send that text and Message-ID).
        if stage == "claimed" and receipt_id == first_id:
            with db.session() as session:
                session.execute(
                    update(m.Receipt).where(m.Receipt.id == second_id).values(to_address="rettet@example.no")
                )
                session.execute(
                    update(m.Receipt)
                    .where(m.Receipt.id == third_id)
                    .values(message_id="kvittering-lagret-1@ehelse.no", subject="Lagret emne", body="Lagret tekst\n")
                )

    counts = send_pending(make_settings(smtp_sink, tmp_path, db), db, checkpoint=checkpoint)
    assert counts["sent"] == 3
    assert [mail.rcpt_tos[0] for mail in smtp_sink.messages] == [
        "person0@example.no",
        "rettet@example.no",
        "person2@example.no",
    ]
    stored = smtp_sink.messages[2].message
    assert stored["Message-ID"] == "<kvittering-lagret-1@ehelse.no>" and stored["Subject"] == "Lagret emne"
    assert body_text(stored) == "Lagret tekst\n"
    assert receipt_of(db, third).message_id == "kvittering-lagret-1@ehelse.no"


def test_a_connection_the_server_closes_midway_is_reopened_for_the_rest(
    db: Database, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    ids = [register(db, sender=f"person{i}@example.no") for i in range(3)]
    settings = make_settings(smtp_sink, tmp_path, db)
    smtp_sink.fail_next_data(1, 421)  # the client closes the connection; the next receipt needs a new one
    counts = send_pending(settings, db)
    assert counts["retry"] == 1 and counts["sent"] == 2
    assert send_pending(settings, db)["sent"] == 1
    assert sorted(mail.rcpt_tos[0] for mail in smtp_sink.messages) == [f"person{i}@example.no" for i in range(3)]
    assert [receipt_of(db, i).status for i in ids] == ["sent", "sent", "sent"]


def test_a_receipt_built_ahead_is_built_again_for_a_new_connection(
    db: Database, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    first = register(db, sender="kari@example.no")
    second = register(db, sender="åse@example.no")  # needs SMTPUTF8
    first_id = receipt_of(db, first).id

    def checkpoint(stage: str, receipt_id: int) -> None:
        # The second receipt is built ahead for this connection, which offers SMTPUTF8; the server then restarts
        # without it, so the first receipt's connection breaks and the second is sent over a new one.
        if stage == "claimed" and receipt_id == first_id:
            smtp_sink.enable_smtputf8 = False
            smtp_sink.restart()

    counts = send_pending(make_settings(smtp_sink, tmp_path, db), db, checkpoint=checkpoint)
    assert counts["retry"] == 1 and counts["failed"] == 1 and smtp_sink.messages == []
    reason = receipt_of(db, second).reason or ""
    assert receipt_of(db, second).status == "failed" and "does not offer SMTPUTF8" in reason, reason
