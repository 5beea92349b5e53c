"""Shared pieces of the reliability tests: a worker config pointing at the real test servers, the CLI as a
subprocess, invariant checks over the case database and the document store, and receipts counted at the sink.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.casefile.storage import DocumentStore
from tests import mailfactory as mf
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpSink

REPO = Path(__file__).resolve().parents[2]
SMTP_SENDER = "postmottak@ehelse.no"

# Status of each kind of realistic_mailbox_items mail after intake (the first of two identical copies is registered).
EXPECTED_STATUS = {
    mf.KIND_ON_TIME: "registered",
    mf.KIND_LATE: "registered",
    mf.KIND_FORWARDED: "registered",
    mf.KIND_NEEDS_REVIEW: "needs_review",
    mf.KIND_AUTO_REPLY: "ignored",
    mf.KIND_BOUNCE: "ignored",
    mf.KIND_UNRELATED: "ignored",
    mf.KIND_DUPLICATE: "duplicate",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def write_config(
    tmp_path: Path,
    *,
    db_url: str,
    imap: DovecotServer | None = None,
    imap_port: int | None = None,
    smtp: SmtpSink | None = None,
    smtp_auth: bool = False,
    batch_size: int = 20,
    interval_seconds: int = 1,
    claim_seconds: float = 2,
    parse_workers: int = 1,
    parse_timeout_seconds: float = 20,
    retry_base_seconds: float = 0,
    name: str = "postmottak.toml",
    extra: str = "",
    storage_backend: str = "filesystem",
) -> Path:
    """A worker config; passwords are not in the file (they come from the environment, see `worker_env`)."""
    lines = [
        "[database]",
        f'url = "{db_url}"',
        "[storage]",
        f'path = "{tmp_path / "documents"}"',
        f'backend = "{storage_backend}"',
        "[schedule]",
        f"interval_seconds = {interval_seconds}",
        "[intake]",
        f"parse_workers = {parse_workers}",
        f"parse_timeout_seconds = {parse_timeout_seconds}",
        f"retry_base_seconds = {retry_base_seconds}",
    ]
    if imap is not None:
        lines += [
            "[imap]",
            f'host = "{imap.host}"',
            f"port = {imap_port or imap.port}",
            'security = "none"',
            f'username = "{imap.username}"',
            'folder = "INBOX"',
            f"batch_size = {batch_size}",
            "timeout_seconds = 20",
        ]
    lines += ["[smtp]", f'sender = "{SMTP_SENDER}"']
    if smtp is not None:
        lines += [f'host = "{smtp.host}"', f"port = {smtp.port}", 'security = "none"', "timeout_seconds = 10"]
        if smtp_auth:
            lines.append(f'username = "{smtp.username}"')
    lines += [
        "[receipts]",
        f"claim_seconds = {claim_seconds}",
        "retry_base_seconds = 0",
        "rate_limit_count = 10000",
        "max_attempts = 20",
        "[[cases]]",
        'number = "22/414"',
        f'title = "{mf.CASE_TITLE}"',
        'deadline = "2022-10-01"',
        'timezone = "Europe/Oslo"',
        'keywords = ["e-helsestrategi", "e-helsestrategien"]',
    ]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def worker_env(home: Path, imap_password: str | None = None, smtp_password: str | None = None) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "PYTHONUNBUFFERED": "1"}
    if imap_password is not None:
        env["POSTMOTTAK_IMAP__PASSWORD"] = imap_password
    if smtp_password is not None:
        env["POSTMOTTAK_SMTP__PASSWORD"] = smtp_password
    return env


def cli_args(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "postmottak", "--config", str(config), *args]


def run_cli(config: Path, *args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_args(config, *args), capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout)


def start_cli(config: Path, *args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The CLI in its own process group (so its form-reader children can be found and reaped), output to `log`."""
    handle = log.open("ab")
    try:
        return subprocess.Popen(
            cli_args(config, *args),
            cwd=REPO,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        handle.close()


def reap_group(process: subprocess.Popen[bytes]) -> int:
    """Kill whatever is left of a worker's process group (orphaned form readers); returns how many were left."""
    left = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        left = len(group_members(process.pid))
        if not left:
            return 0
        time.sleep(0.1)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return left


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def wait_for_log(path: Path, needle: str, timeout: float, count: int = 1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text(encoding="utf-8", errors="replace").count(needle) >= count:
            return True
        time.sleep(0.1)
    return False


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM (the worker finishes its cycle and stops), then wait."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError("the worker did not stop within 30 s of SIGTERM") from None


# ------------------------------------------------------------------------------------------ invariants


@dataclass
class Census:
    """What the case database and the store hold, after `check_invariants` passed."""

    records: int
    by_status: Counter[str]
    files_verified: int
    receipts: Counter[str]
    journal_entries: int


def stored_documents(db: Database, tmp_path: Path, backend: str = "filesystem") -> DocumentStore:
    """The store a worker with `write_config(..., storage_backend=backend)` wrote to."""
    from postmottak.casefile.blobstore import open_store

    return open_store(backend, tmp_path / "documents", db)  # type: ignore[return-value]


def check_invariants(db: Database, store: DocumentStore) -> Census:
    """No half-written rows and no corrupt files: fails with a list of every problem found."""
    problems: list[str] = []
    files = 0
    with db.session() as session:
        records = list(session.scalars(select(m.IntakeRecord)))
        locations = Counter(session.scalars(select(m.MailLocation.intake_id)))
        entries = {e.intake_id: e for e in session.scalars(select(m.JournalEntry))}
        receipts = {r.intake_id: r for r in session.scalars(select(m.Receipt))}
        documents: dict[int, list[m.Document]] = {}
        for document in session.scalars(select(m.Document)):
            documents.setdefault(document.intake_id, []).append(document)
        forms = list(session.scalars(select(m.FormResultRow)))
        unresolved = session.scalar(
            select(func.count()).select_from(m.ProcessingFailure).where(m.ProcessingFailure.resolved_at.is_(None))
        )
        for record in records:
            where = f"intake #{record.id} ({record.status})"
            if not locations.get(record.id):
                problems.append(f"{where}: no mail location")
            if not store.verify(record.raw_path, record.raw_sha256):
                problems.append(f"{where}: raw mail missing or not matching its SHA-256")
            files += 1
            docs = documents.get(record.id, [])
            if not docs and record.status != m.FAILED:
                problems.append(f"{where}: no documents")
            if sorted(d.number for d in docs) != list(range(1, len(docs) + 1)):
                problems.append(f"{where}: document numbers not 1..n")
            for doc in docs:
                files += 1
                if not store.verify(doc.storage_path, doc.sha256):
                    problems.append(f"{where}: document {doc.number} missing or not matching its SHA-256")
            if record.status == m.REGISTERED:
                if record.id not in entries or record.case_id is None:
                    problems.append(f"{where}: registered without a journal entry")
            elif record.id in entries:
                problems.append(f"{where}: journal entry on a record that is not registered")
            if record.status == m.DUPLICATE and record.duplicate_of_id is None:
                problems.append(f"{where}: duplicate without its original")
            if not record.reason and record.status != m.REGISTERED:
                problems.append(f"{where}: no reason")
        for form in forms:
            if form.document_id is not None and form.document_id not in {
                d.id for d in documents.get(form.intake_id, [])
            }:
                problems.append(f"form result of intake #{form.intake_id} points at another record's document")
        if unresolved:
            problems.append(f"{unresolved} processing failure(s) never resolved")
        census = Census(
            records=len(records),
            by_status=Counter(r.status for r in records),
            files_verified=files,
            receipts=Counter(r.status for r in receipts.values()),
            journal_entries=len(entries),
        )
    assert not problems, "\n".join(problems)
    return census


def receipt_message_ids(db: Database) -> dict[str, int]:
    """Our receipt Message-ID (normalised) -> intake id, for receipts the database says were sent."""
    with db.session() as session:
        rows = session.execute(select(m.Receipt.message_id, m.Receipt.intake_id, m.Receipt.status))
        return {mid: intake for mid, intake, status in rows if mid and status == "sent"}


def sink_receipts(sink: SmtpSink) -> Counter[str]:
    """How many times each receipt Message-ID arrived at the SMTP sink."""
    return Counter(str(message.message["Message-ID"]).strip().strip("<>").lower() for message in sink.messages)


def registered_with_receipt(db: Database) -> set[int]:
    with db.session() as session:
        return set(
            session.scalars(
                select(m.IntakeRecord.id)
                .join(m.Receipt, m.Receipt.intake_id == m.IntakeRecord.id)
                .where(m.IntakeRecord.status == m.REGISTERED, m.Receipt.status != "suppressed")
            )
        )


def location_uids(db: Database) -> Counter[str]:
    with db.session() as session:
        return Counter(f"{loc.uidvalidity}/{loc.uid}" for loc in session.scalars(select(m.MailLocation)))


def export_json(db: Database) -> str:
    from postmottak.casefile.queries import export_records

    with db.session() as session:
        return json.dumps(export_records(session), ensure_ascii=False, default=str)


def dump_tables(db: Database) -> str:
    """Every row of every table as text (a database export for secret scanning)."""
    from sqlalchemy import MetaData

    metadata = MetaData()
    metadata.reflect(db.engine)
    parts: list[str] = []
    with db.engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(table.select()):
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


def figures_line(name: str, **values: Any) -> str:
    return f"{name}: " + ", ".join(f"{key}={value}" for key, value in values.items())


def imap_mailboxes(server: DovecotServer, folders: dict[str, str], password_file: Path, *options: str) -> list[str]:
    """TOML lines of one `[[mailboxes]]` entry per (name, folder) on `server`; `options` are further lines of each
    entry's `[mailboxes.imap]` table (e.g. 'idle = true')."""
    lines: list[str] = []
    for name, folder in folders.items():
        lines += [
            "[[mailboxes]]",
            f'name = "{name}"',
            "[mailboxes.imap]",
            f'host = "{server.host}"',
            f"port = {server.port}",
            'security = "none"',
            f'username = "{server.username}"',
            f'password_file = "{password_file}"',
            f'folder = "{folder}"',
            *options,
        ]
    return lines


def wait_until(condition: Callable[[], bool], what: str, timeout: float, step: float = 0.1) -> None:
    """Poll `condition` until it holds; an AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
