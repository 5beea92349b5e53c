"""Hostile and broken mail (tests/reliability/hostile.py, 50+ generated items) through a real Dovecot and the
real worker: each is stored with its raw bytes intact, classified with a reason, and none crashes or stalls the
worker - a normal response placed after the corpus is registered in the same cycle. Receipts for the ones that
get registered go to a real SMTP server and carry no injected headers.

Per-mail time is bounded by the form reader's limits (a child process with a time and memory limit; here 5 s);
the test asserts that the cycle completes and that every record exists, not how long it took.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.config.settings import load_settings
from tests import mailfactory as mf
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpSink

from .helpers import check_invariants, run_cli, stored_documents, worker_env, write_config
from .hostile import hostile_corpus

ARRIVED = datetime(2022, 9, 20, 10, 0, tzinfo=mf.OSLO)
STORAGE_INPUTS = ("attachment", "30 MB attachment", "NUL bytes", "no headers")


def test_hostile_corpus_is_stored_classified_and_never_stops_the_worker(
    dovecot_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path, db_url: str, figures
) -> None:  # type: ignore[no-untyped-def]
    _hostile_run(dovecot_server, smtp_sink, tmp_path, db_url, figures, backend="filesystem")


def test_hostile_corpus_with_documents_in_the_database(
    dovecot_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path, figures
) -> None:  # type: ignore[no-untyped-def]
    """The same with `[storage] backend = "database"` on PostgreSQL, reduced to the inputs that test the store (odd
    and hostile file names, the 30 MB attachment, NUL bytes, no headers): no file on the disk."""
    from tests.dbutil import database_url

    from .test_faults import _postgres_url

    _postgres_url()
    with database_url("postgresql", tmp_path) as url:
        _hostile_run(dovecot_server, smtp_sink, tmp_path, url, figures, backend="database", only=STORAGE_INPUTS)
    assert not (tmp_path / "documents").exists(), "every file went to the database"


def _hostile_run(
    dovecot_server: DovecotServer,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    db_url: str,
    figures,
    *,  # type: ignore[no-untyped-def]
    backend: str,
    only: tuple[str, ...] = (),
) -> None:
    corpus = hostile_corpus()
    assert len(corpus) >= 40
    if only:
        corpus = [(name, raw) for name, raw in corpus if name.startswith(only)]
        assert len(corpus) >= len(only)
    names: dict[int, str] = {}
    refused: dict[str, bytes] = {}  # what Dovecot itself will not take is fed in as a mailbox export instead
    for index, (name, raw) in enumerate(corpus):
        try:
            names[dovecot_server.append(raw, ARRIVED + timedelta(minutes=index))] = name
        except Exception:
            refused[name] = raw
    normal = mf.response_mail(org="Tromsø kommune", attachments=None)
    normal_uid = dovecot_server.append(normal, ARRIVED + timedelta(hours=5))

    config = write_config(
        tmp_path,
        db_url=db_url,
        imap=dovecot_server,
        smtp=smtp_sink,
        batch_size=10,
        parse_timeout_seconds=5,
        storage_backend=backend,
    )
    env = worker_env(tmp_path, dovecot_server.password)
    first = run_cli(config, "run", "--once", env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-4000:]
    assert "Traceback" not in first.stderr, first.stderr[-4000:]
    assert status_of_uid(config, normal_uid) == "registered", "the normal mail behind them, in the same cycle"
    # Mail that failed is retried with backoff and at last kept as `failed`: a few more cycles settle it.
    for _ in range(6):
        again = run_cli(config, "run", "--once", env=env, timeout=600)
        assert again.returncode == 0, again.stderr[-4000:]
        if "retry" not in again.stderr:
            break
    if refused:
        export = tmp_path / "refused"
        export.mkdir()
        for index, raw in enumerate(refused.values()):
            (export / f"{index:03d}.eml").write_bytes(raw)
        imported = run_cli(config, "import", str(export), env=env, timeout=600)
        assert imported.returncode == 0, imported.stderr[-4000:]

    settings = load_settings(config)
    db = Database(settings.database_url)
    store = stored_documents(db, tmp_path, backend)
    try:
        census = check_invariants(db, store)  # raw bytes and every document stored and matching SHA-256
        served = dovecot_server.fetch_all("INBOX")
        with db.session() as session:
            rows = session.execute(
                select(
                    m.MailLocation.uid,
                    m.IntakeRecord.status,
                    m.IntakeRecord.reason,
                    m.IntakeRecord.raw_sha256,
                    m.IntakeRecord.raw_path,
                )
                .join(m.IntakeRecord, m.IntakeRecord.id == m.MailLocation.intake_id)
                .where(m.MailLocation.source_key.like("imap://%"))
            ).all()
            receipts = session.scalars(select(m.Receipt)).all()
        by_uid = {int(uid): (status, reason, sha, path) for uid, status, reason, sha, path in rows}
        assert set(by_uid) == set(names) | {normal_uid}, "every mail the server holds has exactly one record"
        for uid, (status, reason, sha, path) in by_uid.items():
            assert sha == hashlib.sha256(served[uid]).hexdigest(), f"{names.get(uid)}: raw bytes not kept as served"
            assert store.read(path) == served[uid]
            assert status in {"registered", "needs_review", "ignored", "duplicate", "failed"}
            assert status == "registered" or reason, f"{names.get(uid)}: {status} without a reason"
        assert by_uid[normal_uid][0] == "registered", "the worker got past the hostile mail to the normal one"
        assert census.records == len(names) + 1 + len(refused)

        # Receipts: sent or failed with a reason; none pending forever, none with injected headers.
        assert all(r.status in {"sent", "failed", "suppressed"} for r in receipts), [
            (r.status, r.reason) for r in receipts
        ]
        assert all(r.reason for r in receipts if r.status in {"failed", "suppressed"})
        for message in smtp_sink.messages:
            assert message.message.get_all("Bcc") is None
            assert len(message.message.get_all("To") or []) == 1 and len(message.rcpt_tos) == 1
    finally:
        db.dispose()

    # Nothing a sender named landed anywhere but in the content-addressed store.
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    outside = [
        p
        for p in written
        if (tmp_path / "documents") not in p.parents
        and p.suffix not in {".toml", ".sqlite", ".db", ".lock", ".eml", ".log"}
        and not p.name.startswith(("db.sqlite", "postmottak-test.db"))
    ]
    assert not outside, outside
    for p in written:
        if (tmp_path / "documents") in p.parents and not p.name.startswith(".tmp-"):
            assert len(p.name) == 64 and all(c in "0123456789abcdef" for c in p.name), p
    assert not any(p.name in {"passwd", "evil.pdf"} for p in written)
    assert not Path("/etc/cron.d/evil.pdf").exists()

    statuses = sorted({status for status, *_ in by_uid.values()})
    figures(
        backend=db_url.split(":")[0],
        storage=backend,
        hostile_inputs=len(corpus),
        refused_by_dovecot=len(refused),
        by_status={s: sum(1 for v in by_uid.values() if v[0] == s) for s in statuses},
        receipts_sent=len(smtp_sink.messages),
        receipts_failed=sum(r.status == "failed" for r in receipts),
    )
    print("hostile mail outcomes:")
    for uid in sorted(names):
        status, reason, *_ = by_uid[uid]
        print(f"  {names[uid]:<50} {status:<13} {(reason or '')[:90]}")


def status_of_uid(config: Path, uid: int) -> str | None:
    """The status of the record for one IMAP UID, read straight from the case database."""
    db = Database(load_settings(config).database_url)
    try:
        with db.session() as session:
            return session.scalar(
                select(m.IntakeRecord.status)
                .join(m.MailLocation, m.MailLocation.intake_id == m.IntakeRecord.id)
                .where(m.MailLocation.uid == str(uid), m.MailLocation.source_key.like("imap://%"))
            )
    finally:
        db.dispose()
