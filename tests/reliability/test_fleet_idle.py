"""IMAP IDLE with leases: one worker idles on both mailboxes it holds, and its successor idles on them after a SIGKILL.

Real `postmottak run` processes on a real Dovecot (two folders, one mailbox each) and the case database (SQLite,
and PostgreSQL when configured). The poll interval is an hour, so a mail registered within the test's wait was
picked up through IDLE: by the first worker on both mailboxes, then, after the first worker was killed, by the
second worker on the mailbox it had held all along and on the one it took over.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from postmottak.casefile import leases
from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from tests import mailfactory as mf
from tests.servers.dovecot import DovecotServer

from .helpers import imap_mailboxes, reap_group, start_cli, stop, wait_until, worker_env, write_config

FOLDERS = {"postmottak": "INBOX", "horing": "Horing"}
ARRIVED = datetime(2022, 9, 20, 10, 0, tzinfo=mf.OSLO)
WAIT_S = 30  # far below the poll interval of an hour

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, db_url: str, server: DovecotServer) -> Path:
    password_file = tmp_path / "imap-password"
    password_file.write_text(server.password, encoding="utf-8")
    lines = imap_mailboxes(server, FOLDERS, password_file, "timeout_seconds = 20", "idle = true")
    extra = "\n".join([*lines, "[leases]", "seconds = 3", "renew_seconds = 1"]) + "\n"
    return write_config(tmp_path, db_url=db_url, interval_seconds=3600, extra=extra)


def _wait(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    wait_until(condition, what, timeout)


def _holders(db: Database) -> dict[str, str | None]:
    with db.session() as session:
        now = leases.db_now(session)
        return {
            row.mailbox: row.holder if row.expires_at is not None and row.expires_at > now else None
            for row in leases.leases(session)
        }


def _registered(db: Database) -> Counter[tuple[str, str]]:
    with db.session() as session:
        rows = session.execute(select(m.MailLocation.source_key, m.MailLocation.uid))
        return Counter((source, uid) for source, uid in rows)


def _worker_of(db: Database, pid: int) -> str:
    with db.session() as session:
        worker = session.scalar(select(m.Worker.id).where(m.Worker.pid == pid, m.Worker.stopped_at.is_(None)))
    assert worker is not None
    return worker


def _idling(log: Path, mailbox: str) -> bool:
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return f"(mailbox {mailbox}): new mail is processed at once" in text


def _append(server: DovecotServer, mailbox: str, n: int) -> None:
    raw = mf.response_mail(
        sender_addr=f"svar{n}@example.no", message_id=f"<fleet-idle-{n}-{time.time_ns()}@example.no>"
    )
    server.append(raw, ARRIVED, folder=FOLDERS[mailbox])


def test_idle_registers_new_mail_in_every_held_mailbox_and_the_successor_idles_after_a_kill(
    dovecot_server: DovecotServer, db_url: str, tmp_path: Path
) -> None:
    dovecot_server.create_folder(FOLDERS["horing"])
    Database(db_url).upgrade()
    db = Database(db_url)
    config = _config(tmp_path, db_url, dovecot_server)
    env = worker_env(tmp_path)
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    first = start_cli(config, "run", env=env, log=logs[0])
    workers = [first]
    try:
        # One worker holds both mailboxes and idles on each.
        _wait(lambda: all(_idling(logs[0], name) for name in FOLDERS), "the first worker idling on both mailboxes")
        a = _worker_of(db, first.pid)
        assert _holders(db) == {"postmottak": a, "horing": a}
        for n, name in enumerate(FOLDERS, start=1):
            _append(dovecot_server, name, n)
        _wait(lambda: len(_registered(db)) == 2, "both mails registered through IDLE")

        # A second worker joins (one mailbox each), the first is SIGKILLed: the second takes its mailbox over.
        second = start_cli(config, "run", env=env, log=logs[1])
        workers.append(second)
        _wait(lambda: sorted(Counter(_holders(db).values()).values()) == [1, 1], "one mailbox for each worker", 60)
        b = _worker_of(db, second.pid)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        _wait(lambda: _holders(db) == {"postmottak": b, "horing": b}, "the second worker holding both mailboxes")
        _wait(lambda: all(_idling(logs[1], name) for name in FOLDERS), "the second worker idling on both mailboxes")
        for n, name in enumerate(FOLDERS, start=3):
            _append(dovecot_server, name, n)
        _wait(lambda: len(_registered(db)) == 4, "the mails after the takeover registered through IDLE")
    finally:
        for process in workers:
            if process.poll() is None:
                stop(process)
            reap_group(process)

    try:
        registered = _registered(db)
        assert set(registered.values()) == {1}, "every mail registered exactly once"
        assert len({source for source, _uid in registered}) == len(FOLDERS)
        with db.session() as session:
            taken = {g.mailbox for g in session.scalars(select(m.LeaseGrant).where(m.LeaseGrant.previous_holder == a))}
        assert taken, "the second worker took a mailbox over from the killed one"
        log_b = logs[1].read_text(encoding="utf-8", errors="replace")
        assert "IMAP IDLE interrupted" not in log_b
    finally:
        db.dispose()


def test_a_worker_that_loses_a_lease_closes_that_mailboxs_idle_connection_and_keeps_the_other(
    dovecot_server: DovecotServer, db_url: str, tmp_path: Path
) -> None:
    """In one process: another worker takes `horing` over (the lease forced to expire first); the worker stops
    reading it, its IDLE thread ends, and it goes on idling on `postmottak`."""
    import threading

    from postmottak import bootstrap
    from postmottak.config.settings import load_settings

    dovecot_server.create_folder(FOLDERS["horing"])
    settings = load_settings(_config(tmp_path, db_url, dovecot_server))
    fleet = bootstrap.build_fleet(settings)
    runner = threading.Thread(target=fleet.run, daemon=True)
    runner.start()
    db = Database(db_url)

    def idle_threads() -> set[str]:
        return {thread.name for thread in threading.enumerate() if thread.name.startswith("imap-idle-")}

    try:
        _wait(lambda: idle_threads() == {"imap-idle-postmottak", "imap-idle-horing"}, "IDLE on both mailboxes")
        with db.session() as session:
            session.execute(
                m.MailboxLease.__table__.update()
                .where(m.MailboxLease.mailbox == "horing")
                .values(expires_at=leases.db_now(session))
            )
        with db.session() as session:
            leases.heartbeat(session, "other-worker", "other-host", 1)
        with db.session() as session:
            assert leases.try_acquire(session, "horing", "other-worker", 3600) is not None
        _wait(lambda: idle_threads() == {"imap-idle-postmottak"}, "the IDLE thread of the lost mailbox to end")
        _wait(lambda: set(fleet.held) == {"postmottak"}, "the worker to leave the lost mailbox")
        _append(dovecot_server, "postmottak", 1)
        _wait(lambda: len(_registered(db)) == 1, "new mail in the kept mailbox registered through IDLE")
    finally:
        fleet.stopping.set()
        runner.join(timeout=60)
        db.dispose()
    assert not runner.is_alive()
