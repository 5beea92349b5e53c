"""Faults of the servers around the worker: it logs a clear error, backs off, keeps running, and catches up when
the fault clears - losing nothing and doubling nothing.

IMAP: the server stopped and restarted in the middle of a poll, the connection dropped while mail is fetched, a
wrong password, the folder rebuilt with a new UIDVALIDITY. SMTP: down, 4xx, 5xx. Database: a PostgreSQL that goes
away in the middle of `postmottak run` (through a TCP proxy the test cuts), one that is not there at all, and a
SQLite database locked by another connection.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url

from postmottak.bootstrap import build_worker
from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.casefile.storage import DocumentStore
from postmottak.config.settings import load_settings
from postmottak.intake.pipeline import Intake
from postmottak.intake.sources.imap import CONNECTION_ERRORS, ImapSession
from postmottak.intake.worker import full_cycle
from tests import mailfactory as mf
from tests.dbutil import PG_ENV
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpSink

from .helpers import (
    check_invariants,
    in_ci,
    location_uids,
    receipt_message_ids,
    registered_with_receipt,
    run_cli,
    sink_receipts,
    start_cli,
    stop,
    wait_for_log,
    worker_env,
    write_config,
)

ARRIVED = datetime(2022, 9, 20, 10, 0, tzinfo=mf.OSLO)
ORGS = [
    "Bærum kommune",
    "Ålesund kommune",
    "NITO",
    "Helse Bergen HF",
    "Kreftforeningen",
    "Tromsø kommune",
    "Legeforeningen",
    "Norsk Sykepleierforbund",
    "KS",
    "Helse Sør-Øst RHF",
    "Datatilsynet",
    "Funksjonshemmedes",
]


def responses(count: int, offset: int = 0, pdf: bool = False) -> list[bytes]:
    return [
        mf.response_mail(
            org=ORGS[(offset + i) % len(ORGS)],
            sender_name=f"Kari Nordmann {offset + i}",
            attachments=None if pdf else [],
        )
        for i in range(count)
    ]


def fill(server: DovecotServer, raws: list[bytes]) -> list[int]:
    return [server.append(raw, ARRIVED + timedelta(minutes=i)) for i, raw in enumerate(raws)]


def intake_for(config: Path, password: str) -> Intake:
    return build_worker(load_settings(config, imap={"password": password}))


def assert_each_once(intake: Intake, expected_mails: int, sink: SmtpSink | None = None) -> None:
    """Every mail one record, one location; every registered one receipt at the sink (exactly once)."""
    census = check_invariants(intake.db, intake.store)
    assert census.records == expected_mails
    locations = location_uids(intake.db)
    assert all(count == 1 for count in locations.values()) and len(locations) == expected_mails
    if sink is not None:
        arrived = sink_receipts(sink)
        sent = receipt_message_ids(intake.db)
        assert set(sent.values()) == registered_with_receipt(intake.db)
        assert arrived == {mid: 1 for mid in sent}, "each receipt exactly once at the SMTP server"


@pytest.fixture
def closing() -> Iterator[list[Intake]]:
    opened: list[Intake] = []
    yield opened
    for intake in opened:
        intake.close()


# ------------------------------------------------------------------------------------------ IMAP


def test_imap_server_stopped_and_restarted_mid_poll(
    dovecot_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path, db_url: str, closing, caplog, figures
) -> None:  # type: ignore[no-untyped-def]
    fill(dovecot_server, responses(12))
    config = write_config(tmp_path, db_url=db_url, imap=dovecot_server, smtp=smtp_sink, batch_size=3)
    intake = intake_for(config, dovecot_server.password)
    closing.append(intake)
    restarts: list[threading.Timer] = []

    def crash_the_server(stage: str, uid: str) -> None:
        # Mail 4 is stored while later mails are still to be fetched (mails are registered in batches, so a
        # commit checkpoint would come after the last fetch).
        if stage == "stored" and uid == "4" and not restarts:
            dovecot_server.stop(graceful=False)  # gone, like a crashed server; back 1.5 s later
            restarts.append(threading.Timer(1.5, dovecot_server.start))
            restarts[0].start()

    intake.checkpoint = crash_the_server
    caplog.set_level(logging.INFO)
    report = full_cycle(intake)
    restarts[0].join()
    assert report.ok, report.errors  # it reconnected within the cycle, with a pause between attempts
    assert "reconnecting in" in caplog.text
    assert report.counts["registered"] == 12
    assert full_cycle(intake).fetched == 0
    assert_each_once(intake, 12, smtp_sink)
    figures(backend=db_url.split(":")[0], fault="IMAP server killed and restarted mid-poll", survived=True)


def test_connection_dropped_while_fetching(
    dovecot_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path, db_url: str, closing, caplog
) -> None:  # type: ignore[no-untyped-def]
    fill(dovecot_server, responses(10))
    config = write_config(tmp_path, db_url=db_url, imap=dovecot_server, smtp=smtp_sink, batch_size=3)
    intake = intake_for(config, dovecot_server.password)
    closing.append(intake)
    kicked: list[str] = []

    def kick(stage: str, uid: str) -> None:
        if stage == "stored" and uid in ("2", "7") and uid not in kicked:
            kicked.append(uid)
            dovecot_server.kill_connections()  # doveadm kick: the server drops our session

    intake.checkpoint = kick
    caplog.set_level(logging.INFO)
    report = full_cycle(intake)
    assert kicked == ["2", "7"]
    assert report.ok, report.errors
    assert "reconnecting in" in caplog.text
    assert_each_once(intake, 10, smtp_sink)


def test_connection_dropped_in_the_middle_of_a_large_fetch(
    dovecot_server: DovecotServer, tmp_path: Path, db_url: str, closing, caplog, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Big mails (3 MB each, so one FETCH carries five): the server drops the session while the worker is inside a
    fetch (after the first mail of the batch); the worker reconnects in the same cycle and nothing is lost."""
    big = [
        mf.response_mail(org=org, attachments=[("vedlegg.bin", "application/octet-stream", os.urandom(3 << 20))])
        for org in ORGS[:6]
    ]
    fill(dovecot_server, big)
    config = write_config(tmp_path, db_url=db_url, imap=dovecot_server, batch_size=6)
    intake = intake_for(config, dovecot_server.password)
    closing.append(intake)
    real_fetch = ImapSession.fetch
    dropped_in_fetch: list[BaseException] = []

    def fetch_with_a_drop(session: ImapSession, uids):  # type: ignore[no-untyped-def]
        """The real fetch; the server kicks the session once, after the first mail of the first fetch."""
        try:
            for index, mail in enumerate(real_fetch(session, uids)):
                yield mail
                if index == 0 and not dropped_in_fetch:
                    dovecot_server.kill_connections()
        except Exception as exc:
            dropped_in_fetch.append(exc)
            raise

    monkeypatch.setattr(ImapSession, "fetch", fetch_with_a_drop)
    caplog.set_level(logging.INFO)
    report = intake.run_cycle()
    assert len(dropped_in_fetch) == 1, "the drop reached the worker inside a fetch"
    assert isinstance(dropped_in_fetch[0], CONNECTION_ERRORS), repr(dropped_in_fetch[0])
    reconnects = [r for r in caplog.records if "reconnecting in" in r.getMessage()]
    assert len(reconnects) == 1, "one reconnect followed the drop"
    assert report.ok, report.errors  # caught up in the same cycle
    assert report.counts["registered"] == 6
    assert intake.run_cycle().fetched == 0
    assert_each_once(intake, 6)


def test_wrong_password_is_reported_and_run_keeps_going_until_it_is_fixed(
    dovecot_server: DovecotServer, tmp_path: Path, figures
) -> None:  # type: ignore[no-untyped-def]
    fill(dovecot_server, responses(2))
    config = write_config(tmp_path, db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", imap=dovecot_server)
    wrong = "feil-passord-1234"
    once = run_cli(config, "run", "--once", env=worker_env(tmp_path, wrong))
    assert once.returncode == 1
    assert "IMAP login refused for 'postmottak'" in once.stderr and "AUTHENTICATIONFAILED" in once.stderr
    assert "Traceback" not in once.stderr and "b'" not in once.stderr
    assert wrong not in once.stderr + once.stdout

    log = tmp_path / "run.log"
    worker = start_cli(config, "run", env=worker_env(tmp_path, wrong), log=log)
    try:
        assert wait_for_log(log, "IMAP login refused", timeout=30, count=2), log.read_text()
        assert worker.poll() is None, "the worker keeps running"
        # The mailbox owner changes the password to the one the worker has: it catches up on its next cycle.
        users = dovecot_server.root_dir / "users"
        users.write_text(users.read_text().replace(dovecot_server.password, wrong), encoding="utf-8")
        assert wait_for_log(log, "registered 2", timeout=30), log.read_text()
    finally:
        stop(worker)
    text = log.read_text()
    assert wrong not in text and "Traceback" not in text
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        census = check_invariants(db, DocumentStore(tmp_path / "documents"))
        assert census.by_status["registered"] == 2
    finally:
        db.dispose()
    figures(fault="wrong IMAP password (run keeps polling, catches up)", survived=True)


def test_uidvalidity_reset_with_old_and_new_mail_sends_no_second_receipt(
    dovecot_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path, db_url: str, closing
) -> None:  # type: ignore[no-untyped-def]
    old = responses(3)
    fill(dovecot_server, old)
    config = write_config(tmp_path, db_url=db_url, imap=dovecot_server, smtp=smtp_sink)
    intake = intake_for(config, dovecot_server.password)
    closing.append(intake)
    assert full_cycle(intake).counts["registered"] == 3
    assert len(smtp_sink.messages) == 3

    dovecot_server.recreate_folder_with_new_uidvalidity("INBOX")
    fill(dovecot_server, [old[1], old[0], *responses(2, offset=5), old[2]])  # restored from backup, new mail too
    report = full_cycle(intake)
    assert report.uidvalidity_changed
    assert report.counts["relocated"] == 3 and report.counts["registered"] == 2
    with intake.db.session() as session:
        assert session.scalar(select(func.count()).select_from(m.IntakeRecord)) == 5
        assert session.scalar(select(func.count()).select_from(m.MailLocation)) == 8
    arrived = sink_receipts(smtp_sink)
    assert len(arrived) == 5 and set(arrived.values()) == {1}


# ------------------------------------------------------------------------------------------ SMTP


def test_smtp_down_then_4xx_then_5xx(
    dovecot_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path, db_url: str, closing, caplog, figures
) -> None:  # type: ignore[no-untyped-def]
    fill(dovecot_server, responses(3))
    config = write_config(tmp_path, db_url=db_url, imap=dovecot_server, smtp=smtp_sink)
    intake = intake_for(config, dovecot_server.password)
    closing.append(intake)
    caplog.set_level(logging.INFO)

    smtp_sink.stop()
    down = full_cycle(intake)
    # The receipts thread runs beside the intake; with no backoff in this config (retry_base 0) a receipt that met
    # the closed port may be tried again before the cycle ends: each of the 3 at least once, none sent.
    assert down.counts["registered"] == 3 and down.counts["receipt_retry"] >= 3 and not down.counts["receipt_sent"]
    assert "cannot reach SMTP server" in caplog.text
    smtp_sink.start()
    assert full_cycle(intake).counts["receipt_sent"] == 3

    fill(dovecot_server, responses(3, offset=3))
    smtp_sink.fail_next_rcpt(2, 451)
    busy = full_cycle(intake)
    # The two 451s are deferred; with no backoff they may already go out in this cycle's receipts thread, or else in
    # the next cycle: all 3 are sent, none twice (the sink counts below).
    assert busy.counts["receipt_retry"] >= 2 and busy.counts["receipt_sent"] >= 1
    assert busy.counts["receipt_sent"] + full_cycle(intake).counts.get("receipt_sent", 0) == 3

    fill(dovecot_server, responses(2, offset=6))
    smtp_sink.fail_next_rcpt(1, 550)
    refused = full_cycle(intake)
    assert refused.counts["receipt_failed"] == 1 and refused.counts["receipt_sent"] == 1
    assert "refused permanently" in caplog.text
    assert not full_cycle(intake).counts.get("receipt_sent")  # a refused receipt is not tried again
    with intake.db.session() as session:
        failed = session.scalars(select(m.Receipt).where(m.Receipt.status == "failed")).all()
    assert len(failed) == 1 and "550" in (failed[0].reason or "")

    census = check_invariants(intake.db, intake.store)
    assert census.receipts == {"sent": 7, "failed": 1}
    arrived = sink_receipts(smtp_sink)
    assert len(arrived) == 7 and set(arrived.values()) == {1}
    figures(backend=db_url.split(":")[0], fault="SMTP down, 451, 550", survived=True)


# ------------------------------------------------------------------------------------------ database


class TcpProxy:
    """A loopback TCP proxy the test can cut (listener closed, every connection reset) and restore."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _postgres_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        if in_ci():
            pytest.fail(f"{PG_ENV} must name a PostgreSQL in CI")
        pytest.skip(f"{PG_ENV} not set: no PostgreSQL for this test")
    return url


def test_postgres_going_away_mid_run_is_survived_and_caught_up(
    dovecot_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path, figures
) -> None:  # type: ignore[no-untyped-def]
    from tests.dbutil import database_url

    base = make_url(_postgres_url())
    proxy = TcpProxy(base.host or "127.0.0.1", base.port or 5432)
    proxy.up()
    with database_url("postgresql", tmp_path) as direct:
        proxied = direct.replace(f"{base.host}:{base.port or 5432}", f"127.0.0.1:{proxy.port}", 1)
        assert proxied != direct
        fill(dovecot_server, responses(3))
        config = write_config(tmp_path, db_url=proxied, imap=dovecot_server, smtp=smtp_sink)
        log = tmp_path / "run.log"
        worker = start_cli(config, "run", env=worker_env(tmp_path, dovecot_server.password), log=log)
        db = Database(direct)
        try:
            assert wait_for_log(log, "registered 3", timeout=60), log.read_text()
            proxy.down()
            fill(dovecot_server, responses(4, offset=3))
            assert wait_for_log(log, "database unavailable", timeout=60, count=2), log.read_text()
            assert worker.poll() is None, "the worker keeps running without its database"
            proxy.up()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(receipt_message_ids(db)) < 7:
                time.sleep(0.2)
        finally:
            stop(worker)
            proxy.down()
        try:
            census = check_invariants(db, DocumentStore(tmp_path / "documents"))
            assert census.records == 7 and census.by_status["registered"] == 7
            arrived = sink_receipts(smtp_sink)
            assert len(arrived) == 7 and set(arrived.values()) == {1}
        finally:
            db.dispose()
    figures(fault="PostgreSQL connection cut during `run` (proxy), restored", survived=True)


def test_database_unreachable_at_start_exits_1_without_leaking_its_password(
    dovecot_server: DovecotServer, tmp_path: Path
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    config = write_config(
        tmp_path,
        db_url=f"postgresql+psycopg://postmottak:db-hemmelig-77@127.0.0.1:{port}/postmottak",
        imap=dovecot_server,
    )
    result = run_cli(config, "run", "--once", env=worker_env(tmp_path, dovecot_server.password))
    assert result.returncode == 1
    assert "Connection refused" in result.stderr or "connection failed" in result.stderr
    assert "db-hemmelig-77" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr and "cannot open the case database" in result.stderr


def test_sqlite_locked_by_another_connection(
    dovecot_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path, closing, caplog, figures
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "db.sqlite"
    fill(dovecot_server, responses(4))
    config = write_config(tmp_path, db_url=f"sqlite:///{path}", imap=dovecot_server, smtp=smtp_sink)
    intake = intake_for(config, dovecot_server.password)
    closing.append(intake)

    @event.listens_for(intake.db.engine, "connect")
    def _impatient(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.execute("PRAGMA busy_timeout=300")  # instead of 30 s: the test need not wait that long

    intake.db.engine.dispose()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    caplog.set_level(logging.INFO)
    try:
        locked = full_cycle(intake)
        assert not locked.ok and any("database unavailable: database is locked" in e for e in locked.errors)
        assert "database is locked" in caplog.text and "ERROR" in caplog.text
        again = full_cycle(intake)  # still locked: still no crash
        assert not again.ok
    finally:
        other.execute("ROLLBACK")
        other.close()
    caught_up = full_cycle(intake)
    assert caught_up.ok and caught_up.counts["registered"] == 4 and caught_up.counts["receipt_sent"] == 4
    assert_each_once(intake, 4, smtp_sink)

    # A lock held for a moment by another process's connection is waited out by the CLI worker (busy timeout).
    fill(dovecot_server, responses(2, offset=4))
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(3, lambda: (other.execute("ROLLBACK"), other.close()))
    release.start()
    result = run_cli(config, "run", "--once", env=worker_env(tmp_path, dovecot_server.password))
    release.join()
    assert result.returncode == 0, result.stderr[-2000:]
    assert_each_once(intake, 6, smtp_sink)
    figures(fault="SQLite locked by another connection", survived=True)
