"""Retention: only the configured kinds lose their raw content, nothing registered is touched, a second run changes
nothing, and a run killed in the middle leaves no record pointing at a missing file without a tombstone - with the
documents in files and in the case database (`[storage] backend`), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from postmottak.casefile import models as m
from postmottak.casefile import retention
from postmottak.casefile.blobstore import DatabaseStore, FileStore, open_store
from tests.archive.builders import CASE_DEADLINE, CASE_NUMBER, CASE_TITLE
from tests.archive.conftest import Setup, run_cli
from tests.privacy.helpers import every_status, raw_mail, register_raw

DAYS = {"ignored": 30, "duplicate": 60, "unrelated": None}


STORAGE = ("filesystem", "database")


def _store(setup: Setup, backend: str) -> FileStore | DatabaseStore:
    return open_store(backend, setup.store.root, setup.database.db)


def _state(setup: Setup, store: FileStore | DatabaseStore) -> dict[int, tuple[bool, bool, str]]:
    """Per record: (every file present in the store, has a tombstone, body text)."""
    with setup.database.db.session() as session:
        tombstoned = set(session.scalars(select(m.ContentTombstone.intake_id)))
        return {
            record.id: (
                all(store.has(p) for p in [record.raw_path] + [d.storage_path for d in record.documents]),
                record.id in tombstoned,
                record.body_text,
            )
            for record in session.scalars(select(m.IntakeRecord))
        }


def _stored(setup: Setup) -> tuple[list[str], int, int]:
    """Everything kept: the files on disk, and the stored files and chunks in the database."""
    files = sorted(str(p) for p in setup.store.root.rglob("*") if p.is_file())
    with setup.database.db.session() as session:
        rows = session.scalar(select(func.count()).select_from(m.StoredFile)) or 0
        chunks = session.scalar(select(func.count()).select_from(m.StoredFileChunk)) or 0
    return files, rows, chunks


@pytest.mark.parametrize("backend", STORAGE)
def test_only_the_configured_kinds_lose_their_content_and_a_second_run_changes_nothing(
    setup: Setup, backend: str
) -> None:
    store = _store(setup, backend)
    box = every_status(setup.database.db, store)
    ids = box.ids
    now = datetime.now(timezone.utc)
    with setup.database.db.session() as session:
        kinds = {label: retention.kind_of(session.get(m.IntakeRecord, i)) for label, i in ids.items()}
    assert kinds["duplicate_content"] == kinds["duplicate_resent"] == "duplicate"
    assert kinds["unrelated"] == "unrelated"

    db = setup.database.db
    stored_before = _stored(setup)
    dry = retention.run(db, store, DAYS, "arkivar.anne", dry_run=True, now=now + timedelta(days=90))
    assert dry.candidates == {"ignored": 2, "duplicate": 2} and _stored(setup) == stored_before
    assert all(
        present and not tomb for present, tomb, _ in _state(setup, store).values()
    )  # the dry run changed nothing

    first = retention.run(db, store, DAYS, "arkivar.anne", dry_run=False, now=now + timedelta(days=45))
    assert first.deleted_records == 2  # the two ignored mails; duplicates are kept 60 days
    second = retention.run(db, store, DAYS, "arkivar.anne", dry_run=False, now=now + timedelta(days=90))
    assert second.deleted_records == 2 and second.kept_files >= 1  # the content duplicate's raw file is the original's
    state = _state(setup, store)
    for label in ("registered", "needs_review", "failed", "unrelated"):
        present, tomb, body = state[ids[label]]
        assert present and not tomb and body, label
    for label in ("ignored_machine", "ignored_staff", "duplicate_resent"):
        present, tomb, body = state[ids[label]]
        assert not present and tomb and body == "", label
    with setup.database.db.session() as session:
        registered = session.get(m.IntakeRecord, ids["registered"])
        duplicate = session.get(m.IntakeRecord, ids["duplicate_content"])
        assert duplicate.raw_path == registered.raw_path and store.verify(registered.raw_path, registered.raw_sha256)
        tombstones = {t.intake_id: t for t in session.scalars(select(m.ContentTombstone))}
        assert tombstones[ids["ignored_machine"]].rule == "retention.ignored_days=30"
        assert tombstones[ids["duplicate_resent"]].rule == "retention.duplicate_days=60"
        assert all(t.completed_at is not None and t.deleted_by == "arkivar.anne" for t in tombstones.values())
        resent = session.get(m.IntakeRecord, ids["duplicate_resent"])
        assert resent.raw_sha256 and resent.documents[0].sha256  # metadata and checksums stay
        deletions = session.scalar(
            select(func.count()).select_from(m.AuditEvent).where(m.AuditEvent.action == retention.DELETE_ACTION)
        )
        assert deletions == 4
    stored_after = _stored(setup)
    gone = first.deleted_files + second.deleted_files
    assert gone == 6  # raw + attachment of three records; the content duplicate's files are the original's
    if backend == "database":  # the files are the database's: nothing on disk, the deleted ones' rows gone
        assert stored_after[0] == [] and stored_after[1] == stored_before[1] - gone
    else:
        assert len(stored_after[0]) == len(stored_before[0]) - gone and stored_after[1:] == (0, 0)
    third = retention.run(db, store, DAYS, "arkivar.anne", dry_run=False, now=now + timedelta(days=900))
    assert (third.deleted_records, third.deleted_files, third.repaired) == (0, 0, 0)
    assert _stored(setup) == stored_after
    assert _state(setup, store) == state


def _config(setup: Setup, days: int, backend: str = "filesystem") -> Path:
    config = setup.tmp / "retention.toml"
    config.write_text(
        f'[database]\nurl = "{setup.database.url}"\n\n'
        f'[storage]\npath = "{setup.store.root}"\nbackend = "{backend}"\n\n'
        f"[retention]\nignored_days = {days}\nduplicate_days = {days}\n\n"
        f'[[cases]]\nnumber = "{CASE_NUMBER}"\ntitle = "{CASE_TITLE}"\ndeadline = "{CASE_DEADLINE.isoformat()}"\n',
        encoding="utf-8",
    )
    return config


def test_cli_dry_run_first_then_run(setup: Setup) -> None:
    every_status(setup.database.db, setup.store)
    config = _config(setup, 0)
    before = _state(setup, _store(setup, "filesystem"))
    result = run_cli(config, "retention", "run", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "ville blitt slettet for 4 poster" in " ".join(result.output.split())
    assert _state(setup, _store(setup, "filesystem")) == before
    result = run_cli(config, "retention", "run", "--user", "arkivar.anne")
    assert result.exit_code == 0, result.output
    assert "innholdet slettet for 4 poster" in " ".join(result.output.split())
    result = run_cli(config, "retention", "run", "--user", "arkivar.anne")
    assert "innholdet slettet for 0 poster" in " ".join(result.output.split())


@pytest.mark.slow
@pytest.mark.parametrize("backend", STORAGE)
def test_sigkill_in_the_middle_leaves_every_missing_file_explained_by_a_tombstone(setup: Setup, backend: str) -> None:
    store = _store(setup, backend)
    count = 30
    for index in range(count):
        with setup.database.db.session() as session:
            raw = raw_mail(
                f"n{index}@example.com",
                "Nyhetsbrev",
                f"Nummer {index}",
                f"vedlegg {index}".encode(),
                f"<n{index}@test.invalid>",
            )
            register_raw(
                session,
                store,
                raw,
                f"n{index}",
                status=m.IGNORED,
                reason="machine mail: bulk",
                sender=f"n{index}@example.com",
                name=None,
                body=f"Nummer {index}",
                attachment=f"vedlegg {index}".encode(),
            )
    config = _config(setup, 0, backend)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from postmottak.intake.cli import main; main()",
            "--config",
            str(config),
            "retention",
            "run",
            "--user",
            "arkivar.anne",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    killed_at = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            with setup.database.db.session() as session:
                done = session.scalar(select(func.count()).select_from(m.ContentTombstone)) or 0
            if done >= 2:
                os.kill(process.pid, signal.SIGKILL)
                killed_at = done
                break
            time.sleep(0.005)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert killed_at is not None, "the run finished before it could be killed"
    state = _state(setup, store)
    assert 0 < sum(1 for _, tomb, _ in state.values() if tomb) < count  # killed in the middle
    for record_id, (present, tomb, _) in state.items():
        assert present or tomb, f"record {record_id} points at a missing file without a tombstone"
    report = retention.run(setup.database.db, store, {"ignored": 0}, "arkivar.anne", dry_run=False)
    assert report.deleted_records + sum(1 for _, tomb, _ in state.values() if tomb) == count
    with setup.database.db.session() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(m.ContentTombstone).where(m.ContentTombstone.completed_at.is_(None))
            )
            == 0
        )
    assert all(not present and tomb for present, tomb, _ in _state(setup, store).values())
    assert _stored(setup) == ([], 0, 0)  # every file gone, from whichever backend held it


@pytest.mark.parametrize("backend", STORAGE)
def test_a_file_stored_again_during_the_run_is_kept_and_a_migrated_copy_is_deleted_too(
    setup: Setup, backend: str
) -> None:
    setup.store.root.mkdir(parents=True, exist_ok=True)  # a file store there: the database store reads through
    store = _store(setup, backend)
    other = _store(setup, "database" if backend == "filesystem" else "filesystem")
    reused_sha, reused = store.put(b"brukt igjen under kjoringen")
    copied_sha, copied = store.put(b"kopiert til den andre lagringen")
    for relative, sha in ((reused, reused_sha), (copied, copied_sha)):
        other.put_chunks(relative, store.chunks(relative), sha)  # as `storage migrate` leaves it: in both
    started = time.time()
    time.sleep(0.01)
    store.put(b"brukt igjen under kjoringen")  # a mail being registered now reuses it
    assert store.delete_if_untouched(reused, started) is False and store.has(reused)
    assert store.delete_if_untouched(copied, started) is True
    assert not store.has(copied) and not other.has(copied)  # no copy left in either backend
    assert store.delete_if_untouched(copied, started) is None  # a second delete changes nothing
