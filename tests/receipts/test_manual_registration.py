"""Registering by hand applies the worker's receipt policy: a bounce registered from its page in the dashboard (or with
`review register`) gets no receipt, the page says why beforehand, and MAILER-DAEMON never gets mail from us.
Real pipeline (folder source), real SMTP sink, the dashboard app in a TestClient."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from postmottak.casefile import models as m
from postmottak.casefile import review
from postmottak.casefile.db import Database
from postmottak.casefile.storage import DocumentStore
from postmottak.casefile.users import add_user
from postmottak.dashboard.app import create_app
from postmottak.dashboard.web_settings import WebSettings
from postmottak.intake.manual_receipts import receipt_check
from postmottak.intake.pipeline import Intake
from postmottak.intake.receipts import send_pending
from postmottak.intake.sources.folder import FolderSource
from postmottak.intake.worker import full_cycle
from tests import mailfactory as mf
from tests.servers.smtp import SmtpSink

from .helpers import make_settings, register, sync_cases

pytestmark = [pytest.mark.smtp]

ON_TIME = datetime(2022, 9, 20, 10, 2, tzinfo=mf.OSLO)
PASSWORD = "arkiv-passord-1"


def _record_id(database: Database, message_id: str) -> int:
    with database.session() as session:
        found = session.scalar(
            select(m.IntakeRecord.id).where(m.IntakeRecord.message_id.in_([message_id, message_id.strip("<>")]))
        )
        assert found is not None, message_id
        return found


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


@pytest.fixture
def mailroom(database: Database, smtp_sink: SmtpSink, tmp_path: Path):  # type: ignore[no-untyped-def]
    sync_cases(database)
    settings = make_settings(smtp_sink, tmp_path, database)
    folder = tmp_path / "mailbox"
    folder.mkdir()
    store = DocumentStore(settings.storage_path)
    intake = Intake(settings=settings, db=database, store=store, source=FolderSource(folder, "eml"))
    (folder / "0001.eml").write_bytes(
        mf.bounce(
            original_message_id="<svar-99@ehelse.no>",
            recipient="borte@example.no",
            original_subject="Høringssvar 22/414",
            message_id="<dsn-7@mx01.ehelse.no>",
        )
    )
    report = full_cycle(intake)
    assert report.ok, report.errors
    return settings, store, intake


def test_bounce_registered_from_its_page_gets_no_receipt_and_the_page_says_why(
    mailroom,
    database: Database,
    smtp_sink: SmtpSink,  # type: ignore[no-untyped-def]
) -> None:
    settings, store, intake = mailroom
    bounce_id = _record_id(database, "<dsn-7@mx01.ehelse.no>")
    with database.session() as session:
        add_user(session, "arkivar", PASSWORD, "archivist")
        assert review.load_record(session, bounce_id).status in review.REGISTRABLE
    web = WebSettings(secure_cookies=False, secret_key="test-secret-key-for-sessions")
    app = create_app(settings, database, web, receipt_check=receipt_check(settings, store))
    with TestClient(app, follow_redirects=False) as client:
        token = _csrf(client.get("/login").text)
        client.post("/login", data={"username": "arkivar", "password": PASSWORD, "csrf_token": token, "next": "/"})
        page = client.get(f"/intake/{bounce_id}")
        assert "Kvittering sendes ikke:" in page.text
        assert 'name="send_receipt"' not in page.text
        # A form sent anyway with the box ticked (an old page, a hand-made request) changes nothing.
        response = client.post(
            f"/intake/{bounce_id}/register",
            data={"case_number": "22/414", "send_receipt": "1", "csrf_token": _csrf(page.text), "next": ""},
        )
        assert response.status_code == 303
    full_cycle(intake)
    assert smtp_sink.messages == []
    with database.session() as session:
        record = review.load_record(session, bounce_id)
        assert record.status == m.REGISTERED and record.journal_entry is not None
        assert record.receipt is not None and record.receipt.status == "suppressed"
        assert record.receipt.reason and record.receipt.reason.startswith("machine mail:")


def test_without_the_policy_the_recorded_machine_verdict_still_holds(mailroom, database: Database) -> None:  # type: ignore[no-untyped-def]
    settings, _store, _intake = mailroom
    bounce_id = _record_id(database, "<dsn-7@mx01.ehelse.no>")
    with database.session() as session:
        record = review.register_to_case(session, bounce_id, "22/414", "arkivar")
        assert record.receipt is not None and record.receipt.status == "suppressed"
    assert send_pending(settings, database)["sent"] == 0


def test_a_receipt_queued_to_an_automatic_address_is_never_sent(
    database: Database, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    sync_cases(database)
    settings = make_settings(smtp_sink, tmp_path, database)
    machine = register(database, sender="MAILER-DAEMON@mx.example.no", name="Mail Delivery System")
    person = register(database, sender="kari@example.no")
    counts = send_pending(settings, database)
    assert counts["sent"] == 1 and counts["suppressed"] == 1
    assert [mail.rcpt_tos for mail in smtp_sink.messages] == [("kari@example.no",)]
    with database.session() as session:
        statuses = {r.intake_id: (r.status, r.reason) for r in session.scalars(select(m.Receipt))}
    assert statuses[person][0] == "sent"
    assert statuses[machine][0] == "suppressed" and "mailer-daemon" in (statuses[machine][1] or "").lower()


def test_rate_limit_is_shown_before_registering(database: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    sync_cases(database)
    settings = make_settings(smtp_sink, tmp_path, database, rate_limit_count=1)
    register(database, sender="kari@example.no")
    assert send_pending(settings, database)["sent"] == 1
    store = DocumentStore(settings.storage_path)
    raw = mf.response_mail(sender_addr="kari@example.no", message_id="<kari-2@example.no>", date=ON_TIME)
    sha, path = store.put(raw)
    waiting = register(database, sender="kari@example.no", status="needs_review", plan=None)
    with database.session() as session:
        record = review.load_record(session, waiting)
        record.raw_path = path
        session.flush()
        plan = review.receipt_preview(session, record, receipt_check(settings, store))
    assert plan.status == "suppressed" and plan.reason and plan.reason.startswith("rate limit:")
