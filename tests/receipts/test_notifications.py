"""Staff digest and alerts through the real SMTP sink: Norwegian content, once per incident, all-clear, rate limit,
per-person opt-out, and only ever to the configured staff addresses."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from postmottak.casefile import leases
from postmottak.casefile import models as m
from postmottak.casefile import notifications as notes
from postmottak.casefile.db import Database
from postmottak.intake.digest import notify
from tests import mailfactory as mf
from tests.servers.smtp import SmtpSink

from .helpers import body_text, make_settings, register, sync_cases

pytestmark = [pytest.mark.smtp]

REPO = Path(__file__).resolve().parents[2]
STAFF = {"kari": "kari@ehelse.no", "ola": "ola@ehelse.no"}
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)  # 10:00 in Oslo


@pytest.fixture
def setup(database: Database, smtp_sink: SmtpSink, tmp_path: Path):  # type: ignore[no-untyped-def]
    sync_cases(database)
    settings = make_settings(smtp_sink, tmp_path, database)
    settings.notifications.recipients = dict(STAFF)
    settings.notifications.digest = False
    settings.notifications.stall_minutes = 30
    settings.notifications.alert_interval_minutes = 60
    return settings


def _poll(database: Database, success: datetime) -> None:
    with database.session() as session:
        row = session.scalar(select(m.MailboxState))
        if row is None:
            row = m.MailboxState(source_key="imap://test/INBOX", last_uid=0)
            session.add(row)
        row.last_poll_at = row.last_success_at = success


def _subjects(sink: SmtpSink) -> list[str]:
    return [str(mail.message["Subject"]) for mail in sink.messages]


def test_stall_is_alerted_once_then_all_clear(setup, database: Database, smtp_sink: SmtpSink) -> None:  # type: ignore[no-untyped-def]
    _poll(database, NOW - timedelta(minutes=10))
    assert notify(setup, database, NOW).sent == []
    _poll(database, NOW - timedelta(hours=2))
    report = notify(setup, database, NOW)
    assert len(report.sent) == 1 and report.error is None
    assert sorted(r for mail in smtp_sink.messages for r in mail.rcpt_tos) == sorted(STAFF.values())
    mail = smtp_sink.messages[0].message
    assert "VARSEL" in mail["Subject"] and "står stille" in body_text(mail) and "10.03.2026 08:00" in body_text(mail)
    assert mail["Auto-Submitted"] == "auto-generated"
    assert notify(setup, database, NOW + timedelta(minutes=5)).sent == []
    assert notify(setup, database, NOW + timedelta(hours=3)).sent == []  # the same incident, not grown
    _poll(database, NOW + timedelta(hours=3, minutes=1))
    cleared = notify(setup, database, NOW + timedelta(hours=3, minutes=2))
    assert len(cleared.sent) == 1 and "i orden igjen" in cleared.sent[0]
    assert notify(setup, database, NOW + timedelta(hours=3, minutes=10)).sent == []
    assert len(smtp_sink.messages) == 4  # one alert and one all-clear, to two people


def test_failed_mails_alert_rate_limited_and_opt_out(setup, database: Database, smtp_sink: SmtpSink) -> None:  # type: ignore[no-untyped-def]
    with database.session() as session:
        notes.set_opt_out(session, "ola", True, NOW)
    first = register(database, sender="a@example.no", status="failed", plan=None)
    assert len(notify(setup, database, NOW).sent) == 1
    assert [mail.rcpt_tos for mail in smtp_sink.messages] == [("kari@ehelse.no",)]
    assert f"post {first}" in body_text(smtp_sink.messages[0].message)
    second = register(database, sender="b@example.no", status="failed", plan=None)
    assert notify(setup, database, NOW + timedelta(minutes=10)).sent == []  # grown, but within the hour
    again = notify(setup, database, NOW + timedelta(minutes=61))
    assert len(again.sent) == 1 and f"{second}" in body_text(smtp_sink.messages[-1].message)
    with database.session() as session:
        for record in session.scalars(select(m.IntakeRecord).where(m.IntakeRecord.status == "failed")):
            record.status = "ignored"
    cleared = notify(setup, database, NOW + timedelta(minutes=62))
    assert len(cleared.sent) == 1 and "ingen e-post står som feilet" in body_text(smtp_sink.messages[-1].message)
    assert all(mail.rcpt_tos == ("kari@ehelse.no",) for mail in smtp_sink.messages)


def test_rounds_run_at_once_send_the_alert_and_the_all_clear_once(
    setup, database: Database, smtp_sink: SmtpSink
) -> None:  # type: ignore[no-untyped-def]
    """Four rounds started together (as several workers do) on separate connections: one alert, one all-clear."""
    import threading

    def together(now: datetime) -> list[int]:
        barrier = threading.Barrier(4)
        sent: list[int] = []

        def round_() -> None:
            barrier.wait()
            sent.append(len(notify(setup, database, now).sent))

        threads = [threading.Thread(target=round_) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return sent

    failed = register(database, sender="a@example.no", status="failed", plan=None)
    assert sorted(together(NOW)) == [0, 0, 0, 1]
    with database.session() as session:
        session.get(m.IntakeRecord, failed).status = "ignored"  # type: ignore[union-attr]
    assert sorted(together(NOW + timedelta(minutes=1))) == [0, 0, 0, 1]
    assert len(smtp_sink.messages) == 4  # (alert + all-clear) x kari and ola


def test_smtp_refusing_receipts_is_alerted(setup, database: Database, smtp_sink: SmtpSink) -> None:  # type: ignore[no-untyped-def]
    intake_id = register(database, sender="c@example.no")
    with database.session() as session:
        receipt = session.scalar(select(m.Receipt).where(m.Receipt.intake_id == intake_id))
        receipt.status, receipt.reason = "failed", "refused by the SMTP server at RCPT TO: 554 5.7.1 Relay denied"
    report = notify(setup, database, NOW)
    assert len(report.sent) == 1
    text = body_text(smtp_sink.messages[0].message)
    assert "avvist av e-posttjeneren" in text and "554 5.7.1" in text
    assert not any("c@example.no" in r for mail in smtp_sink.messages for r in mail.rcpt_tos)


def test_daily_digest_in_norwegian_once_a_day(setup, database: Database, smtp_sink: SmtpSink) -> None:  # type: ignore[no-untyped-def]
    setup.notifications.digest = True
    setup.notifications.digest_hour = 7
    setup.notifications.stall_minutes = 10_000  # only the digest here
    _poll(database, NOW)
    register(database, sender="d@example.no")
    register(database, sender="e@example.no", on_time=False)
    early = NOW.replace(hour=5)  # 06:00 in Oslo: not yet
    assert notify(setup, database, early).sent == []
    report = notify(setup, database, NOW)
    assert len(report.sent) == 1 and "daglig sammendrag 10.03.2026" in report.sent[0]
    text = body_text(smtp_sink.messages[0].message)
    assert "Sak 22/414" in text and "Til vurdering:" in text and "Kvitteringer som kom i retur: 0" in text
    assert "Nye høringssvar: 2 (1 i tide, 1 for sent)" in text
    assert notify(setup, database, NOW + timedelta(hours=2)).sent == []
    assert len(notify(setup, database, NOW + timedelta(days=1)).sent) == 1


def _wait_for(condition, what: str, log: Path, seconds: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen:\n{log.read_text()}")
        time.sleep(0.2)


def _start_run(
    tmp_path: Path, database_url: str, host: str, port: int, digest: str, *, name: str = "run"
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """`postmottak run` over a folder, every second, with staff alerts to kari (and the digest and any further
    settings as given in `digest`)."""
    folder = tmp_path / "mail"
    folder.mkdir(exist_ok=True)
    config = tmp_path / "postmottak.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n[storage]\npath = "{tmp_path / "docs"}"\n'
        f'[folder]\npath = "{folder}"\n[schedule]\ninterval_seconds = 1\n'
        f'[smtp]\nhost = "{host}"\nport = {port}\nsecurity = "none"\nsender = "postmottak@ehelse.no"\n'
        f'timeout_seconds = 5\n[notifications]\nrecipients = {{ kari = "kari@ehelse.no" }}\n{digest}\n'
        f'[[cases]]\nnumber = "22/414"\ntitle = "{mf.CASE_TITLE}"\ndeadline = "2022-10-01"\n',
        encoding="utf-8",
    )
    log = tmp_path / f"{name}.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "postmottak", "--config", str(config), "run"],
            cwd=REPO,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    return process, folder, log


@pytest.mark.slow
def test_the_run_loop_alerts_a_failed_mail_once_and_sends_the_all_clear(
    database: Database, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    sync_cases(database)
    process, _folder, log = _start_run(tmp_path, database.url, smtp_sink.host, smtp_sink.port, "digest = false")
    alerts = lambda: [s for s in _subjects(smtp_sink) if "VARSEL" in s]  # noqa: E731
    cleared = lambda: [s for s in _subjects(smtp_sink) if "i orden igjen" in s]  # noqa: E731
    try:
        _wait_for(lambda: log.read_text().count("fetched") >= 2, "two intake cycles", log)
        failed = register(database, sender="a@example.no", status="failed", plan=None)
        _wait_for(lambda: bool(alerts()), "the alert", log)
        with database.session() as session:
            session.get(m.IntakeRecord, failed).status = "ignored"  # type: ignore[union-attr]
        _wait_for(lambda: bool(cleared()), "the all-clear", log)
        cycles = log.read_text().count("fetched")
        _wait_for(lambda: log.read_text().count("fetched") >= cycles + 2, "two more cycles", log)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert len(alerts()) == 1 and "1 e-post(er) feilet" in alerts()[0], _subjects(smtp_sink)
    assert len(cleared()) == 1 and len(smtp_sink.messages) == 2
    assert all(mail.rcpt_tos == ("kari@ehelse.no",) for mail in smtp_sink.messages)
    assert "Traceback" not in log.read_text()


@pytest.mark.slow
def test_the_run_loop_registers_mail_while_the_smtp_server_is_down(database: Database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sync_cases(database)
    with socket.socket() as probe:  # a port nobody listens on: every connection is refused
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    # digest_hour = 0: the digest is due at once, so the notify job tries the dead server from the first run.
    process, folder, log = _start_run(
        tmp_path, database.url, "127.0.0.1", closed_port, "digest = true\ndigest_hour = 0"
    )
    try:
        _wait_for(lambda: "notifications: could not send" in log.read_text(), "the failed digest", log)
        (folder / "1.eml").write_bytes(mf.response_mail(org="NITO", attachments=[]))
        _wait_for(lambda: "(registered 1)" in log.read_text(), "the registration", log)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in log.read_text()


@pytest.mark.slow
def test_two_lease_workers_send_one_alert_and_one_all_clear_for_a_failed_mail(
    database: Database, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """Two `postmottak run` processes sharing the database through leases both run the alert round every second;
    the failed mail is still alerted once and cleared once."""
    sync_cases(database)
    leased = "digest = false\n[leases]\nenabled = true\nseconds = 3\nrenew_seconds = 1"
    started = [
        _start_run(tmp_path, database.url, smtp_sink.host, smtp_sink.port, leased, name=name) for name in ("a", "b")
    ]
    logs = [log for _process, _folder, log in started]
    alerts = lambda: [s for s in _subjects(smtp_sink) if "VARSEL" in s]  # noqa: E731
    cleared = lambda: [s for s in _subjects(smtp_sink) if "i orden igjen" in s]  # noqa: E731

    def workers() -> int:
        with database.session() as session:
            return len(leases.live_workers(session, leases.db_now(session), 3))

    try:
        _wait_for(lambda: workers() == 2, "both workers running", logs[0])
        failed = register(database, sender="a@example.no", status="failed", plan=None)
        _wait_for(lambda: bool(alerts()), "the alert", logs[0])
        time.sleep(2)  # both workers run the round at least once more with the incident open
        with database.session() as session:
            session.get(m.IntakeRecord, failed).status = "ignored"  # type: ignore[union-attr]
        _wait_for(lambda: bool(cleared()), "the all-clear", logs[0])
        time.sleep(2)
        for process, _folder, _log in started:
            process.send_signal(signal.SIGTERM)
        assert [process.wait(timeout=30) for process, _folder, _log in started] == [0, 0]
    finally:
        for process, _folder, _log in started:
            if process.poll() is None:
                process.kill()
    assert len(alerts()) == 1 and "1 e-post(er) feilet" in alerts()[0], _subjects(smtp_sink)
    assert len(cleared()) == 1 and len(smtp_sink.messages) == 2, _subjects(smtp_sink)
    texts = [log.read_text() for log in logs]
    assert all("Traceback" not in text for text in texts), texts
    assert sum(text.count("notifications: sent") for text in texts) == 2, texts
