"""Retention: only the configured kinds lose their raw content, nothing registered is touched, a second run changes
nothing, and a run killed in the middle leaves no record pointing at a missing file without a tombstone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select

from postmottak.casefile import models as m
from postmottak.casefile import retention
from postmottak.casefile.storage import DocumentStore
from tests.archive.builders import CASE_DEADLINE, CASE_NUMBER, CASE_TITLE
from tests.archive.conftest import Setup, run_cli
from tests.privacy.helpers import every_status, raw_mail, register_raw

DAYS = {"ignored": 30, "duplicate": 60, "unrelated": None}


def _state(setup: Setup) -> dict[int, tuple[bool, bool, str]]:
    """Per record: (every file present, has a tombstone, body text)."""
    with setup.database.db.session() as session:
        tombstoned = set(session.scalars(select(m.ContentTombstone.intake_id)))
        return {
            record.id: (
                all(
                    setup.store.path_for(p).is_file()
                    for p in [record.raw_path] + [d.storage_path for d in record.documents]
                ),
                record.id in tombstoned,
                record.body_text,
            )
            for record in session.scalars(select(m.IntakeRecord))
        }


def test_only_the_configured_kinds_lose_their_content_and_a_second_run_changes_nothing(setup: Setup) -> None:
    box = every_status(setup.database.db, setup.store)
    ids = box.ids
    now = datetime.now(timezone.utc)
    with setup.database.db.session() as session:
        kinds = {label: retention.kind_of(session.get(m.IntakeRecord, i)) for label, i in ids.items()}
    assert kinds["duplicate_content"] == kinds["duplicate_resent"] == "duplicate"
    assert kinds["unrelated"] == "unrelated"

    db, store = setup.database.db, setup.store
    dry = retention.run(db, store, DAYS, "arkivar.anne", dry_run=True, now=now + timedelta(days=90))
    assert dry.candidates == {"ignored": 2, "duplicate": 2} and _state(setup) == _state(setup)
    assert all(present and not tomb for present, tomb, _ in _state(setup).values())  # the dry run changed nothing

    first = retention.run(db, store, DAYS, "arkivar.anne", dry_run=False, now=now + timedelta(days=45))
    assert first.deleted_records == 2  # the two ignored mails; duplicates are kept 60 days
    second = retention.run(db, store, DAYS, "arkivar.anne", dry_run=False, now=now + timedelta(days=90))
    assert second.deleted_records == 2 and second.kept_files >= 1  # the content duplicate's raw file is the original's
    state = _state(setup)
    for label in ("registered", "needs_review", "failed", "unrelated"):
        present, tomb, body = state[ids[label]]
        assert present and not tomb and body, label
    for label in ("ignored_machine", "ignored_staff", "duplicate_resent"):
        present, tomb, body = state[ids[label]]
        assert not present and tomb and body == "", label
    with setup.database.db.session() as session:
        registered = session.get(m.IntakeRecord, ids["registered"])
        duplicate = session.get(m.IntakeRecord, ids["duplicate_content"])
        assert duplicate.raw_path == registered.raw_path and setup.store.path_for(registered.raw_path).is_file()
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
    files_before = sorted(p for p in setup.store.root.rglob("*") if p.is_file())
    third = retention.run(db, store, DAYS, "arkivar.anne", dry_run=False, now=now + timedelta(days=900))
    assert (third.deleted_records, third.deleted_files, third.repaired) == (0, 0, 0)
    assert sorted(p for p in setup.store.root.rglob("*") if p.is_file()) == files_before
    assert _state(setup) == state


def _config(setup: Setup, days: int) -> Path:
    config = setup.tmp / "retention.toml"
    config.write_text(
        f'[database]\nurl = "{setup.database.url}"\n\n[storage]\npath = "{setup.store.root}"\n\n'
        f"[retention]\nignored_days = {days}\nduplicate_days = {days}\n\n"
        f'[[cases]]\nnumber = "{CASE_NUMBER}"\ntitle = "{CASE_TITLE}"\ndeadline = "{CASE_DEADLINE.isoformat()}"\n',
        encoding="utf-8",
    )
    return config


def test_cli_dry_run_first_then_run(setup: Setup) -> None:
    every_status(setup.database.db, setup.store)
    config = _config(setup, 0)
    before = _state(setup)
    result = run_cli(config, "retention", "run", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "ville blitt slettet for 4 poster" in " ".join(result.output.split()) and _state(setup) == before
    result = run_cli(config, "retention", "run", "--user", "arkivar.anne")
    assert result.exit_code == 0, result.output
    assert "innholdet slettet for 4 poster" in " ".join(result.output.split())
    result = run_cli(config, "retention", "run", "--user", "arkivar.anne")
    assert "innholdet slettet for 0 poster" in " ".join(result.output.split())


def test_sigkill_in_the_middle_leaves_every_missing_file_explained_by_a_tombstone(setup: Setup) -> None:
    count = 30
    with setup.database.db.session() as session:
        for index in range(count):
            raw = raw_mail(
                f"n{index}@example.com",
                "Nyhetsbrev",
                f"Nummer {index}",
                f"vedlegg {index}".encode(),
                f"<n{index}@test.invalid>",
            )
            register_raw(
                session,
                setup.store,
                raw,
                f"n{index}",
                status=m.IGNORED,
                reason="machine mail: bulk",
                sender=f"n{index}@example.com",
                name=None,
                body=f"Nummer {index}",
                attachment=f"vedlegg {index}".encode(),
            )
    config = _config(setup, 0)
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
    state = _state(setup)
    assert 0 < sum(1 for _, tomb, _ in state.values() if tomb) < count  # killed in the middle
    for record_id, (present, tomb, _) in state.items():
        assert present or tomb, f"record {record_id} points at a missing file without a tombstone"
    report = retention.run(
        setup.database.db, DocumentStore(setup.store.root), {"ignored": 0}, "arkivar.anne", dry_run=False
    )
    assert report.deleted_records + sum(1 for _, tomb, _ in state.values() if tomb) == count
    with setup.database.db.session() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(m.ContentTombstone).where(m.ContentTombstone.completed_at.is_(None))
            )
            == 0
        )
    assert all(not present and tomb for present, tomb, _ in _state(setup).values())
