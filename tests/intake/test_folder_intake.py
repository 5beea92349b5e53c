"""The folder source (the embedded default and mailbox imports) and the real-world mail corpus."""

from __future__ import annotations

import mailbox
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from postmottak.bootstrap import build_worker
from postmottak.casefile import models as m
from postmottak.casefile.queries import export_records
from postmottak.config.settings import load_settings
from tests import mailfactory as mf

REPO = Path(__file__).resolve().parents[2]


def settings_for(tmp_path: Path, folder: Path, db_url: str | None = None):
    config = tmp_path / "postmottak.toml"
    url = db_url or f"sqlite:///{tmp_path / 'db.sqlite'}"
    documents = tmp_path / "documents"
    config.write_text(
        f"""
[database]
url = "{url}"
[storage]
path = "{documents}"
[folder]
path = "{folder}"
[[cases]]
number = "22/414"
title = "{mf.CASE_TITLE}"
deadline = "2022-10-01"
keywords = ["e-helsestrategi"]
[[cases]]
number = "22/415"
title = "Høring - Endringer i pasientjournalloven"
deadline = "2022-11-15"
""",
        encoding="utf-8",
    )
    return load_settings(config)


def with_received(raw: bytes, when: datetime) -> bytes:
    from email.utils import format_datetime

    return f"Received: from x by mx.ehelse.no; {format_datetime(when)}\r\n".encode() + raw


@pytest.mark.parametrize("kind", ["eml", "maildir", "mbox"])
def test_folder_formats_register_once(tmp_path: Path, kind: str) -> None:
    raws = [
        with_received(
            mf.response_mail(org="Bærum kommune", attachments=[]), datetime(2022, 10, 1, 23, 30, tzinfo=mf.OSLO)
        ),
        with_received(mf.response_mail(org="NITO", attachments=[]), datetime(2022, 10, 2, 0, 15, tzinfo=mf.OSLO)),
    ]
    folder = tmp_path / "export"
    if kind == "eml":
        folder.mkdir()
        for index, raw in enumerate(raws):
            (folder / f"{index}.eml").write_bytes(raw)
    elif kind == "maildir":
        box = mailbox.Maildir(folder, create=True)
        for raw in raws:
            box.add(raw)
    else:
        folder = tmp_path / "export.mbox"
        box = mailbox.mbox(folder, create=True)
        for raw in raws:
            box.add(raw)
        box.flush()
    intake = build_worker(settings_for(tmp_path, folder))
    report = intake.run_cycle()
    assert report.ok and report.counts["registered"] == 2
    with intake.db.session() as session:
        rows = export_records(session)
    assert [(r["received_at"], r["on_time"]) for r in rows] == [
        ("2022-10-01T23:30:00+02:00", True),
        ("2022-10-02T00:15:00+02:00", False),
    ]
    again = intake.run_cycle()
    assert again.fetched == 0
    with intake.db.session() as session:
        assert session.scalar(select(func.count()).select_from(m.IntakeRecord)) == 2


def test_mail_corpus_every_message_recorded_none_registered(tmp_path: Path, shared_dir: Path) -> None:
    """The 113 odd real-world messages: each gets one record with a reason, none is a response, none a receipt."""
    corpus = shared_dir / "mail-corpus"
    folder = tmp_path / "corpus"
    files = sorted(p for p in corpus.rglob("*.eml"))
    assert len(files) >= 100
    folder.mkdir()
    for index, path in enumerate(files):
        shutil.copyfile(path, folder / f"{index:03d}-{path.name}")
    intake = build_worker(settings_for(tmp_path, folder))
    report = intake.run_cycle()
    assert report.ok, report.errors
    assert report.fetched == len(files)
    with intake.db.session() as session:
        records = list(session.scalars(select(m.IntakeRecord)))
        receipts = session.scalar(select(func.count()).select_from(m.Receipt).where(m.Receipt.status == "pending"))
        for record in records:
            assert intake.store.verify(record.raw_path, record.raw_sha256)
    assert len(records) == len(files)
    assert not [r for r in records if r.status in ("registered", "failed")]
    assert all(r.reason for r in records)
    assert receipts == 0
    assert intake.run_cycle().fetched == 0


def test_sample_mailbox_demo_config(tmp_path: Path) -> None:
    """The bundled demo mailbox registers what its file names promise."""
    folder = REPO / "examples" / "sample-mailbox"
    intake = build_worker(settings_for(tmp_path, folder))
    assert intake.run_cycle().ok
    with intake.db.session() as session:
        rows = export_records(session)
    expected = {
        "response_on_time": ("registered", True),
        "response_late": ("registered", False),
        "forwarded_response": ("registered", True),
        "needs_review": ("needs_review", None),
        "auto_reply": ("ignored", None),
        "bounce": ("ignored", None),
        "unrelated": ("ignored", None),
    }
    files = sorted(p.name for p in folder.glob("*.eml"))
    assert len(rows) == len(files)
    review_kinds = {p.removesuffix(".eml").split("-", 1)[1] for p in files if "-needs_review" in p}
    assert len(review_kinds) >= 4 and sum(r["status"] == "needs_review" for r in rows) >= 4  # the demo's queue
    registered_forms = [r for r in rows if r["status"] == "registered" and r["form"]]
    assert registered_forms and all(r["form"]["form_status"] in ("parsed", "partial") for r in registered_forms)
    with intake.db.session() as session:
        locations = {loc.intake_id: loc.uid for loc in session.scalars(select(m.MailLocation))}
    for row in rows:
        kind = locations[row["id"]].split("-", 1)[1].removesuffix(".eml")
        kind = "needs_review" if kind.startswith("needs_review") else kind  # needs_review_two_cases, ...
        if kind == "duplicate":
            assert row["status"] == "duplicate"
            continue
        if row["status"] == "duplicate":  # the first delivery may be the one read second
            continue
        assert (row["status"], row["on_time"]) == expected[kind], (kind, row["subject"], row["reason"])


def test_a_failing_mail_is_retried_then_kept_for_staff_without_blocking_others(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    for index, org in enumerate(("Bærum kommune", "Ålesund kommune", "NITO")):
        raw = with_received(mf.response_mail(org=org, attachments=[]), datetime(2022, 9, 20, 12, index, tzinfo=mf.OSLO))
        (folder / f"{index}.eml").write_bytes(raw)
    settings = settings_for(tmp_path, folder)
    settings.intake.max_attempts = 3
    settings.intake.retry_base_seconds = 0
    intake = build_worker(settings)

    def flaky(stage: str, uid: str) -> None:
        if stage == "stored" and uid == "1.eml":
            raise RuntimeError("simulated parser crash")

    intake.checkpoint = flaky
    first = intake.run_cycle()
    assert first.counts["registered"] == 2 and first.counts["retry"] == 1
    assert intake.run_cycle().counts["retry"] == 1
    third = intake.run_cycle()
    assert third.counts["failed"] == 1
    with intake.db.session() as session:
        records = {r.status: r for r in session.scalars(select(m.IntakeRecord))}
        failure = session.scalars(select(m.ProcessingFailure)).one()
    assert records["failed"].reason.startswith("processing failed: RuntimeError: simulated parser crash")
    assert intake.store.verify(records["failed"].raw_path, records["failed"].raw_sha256), "raw mail kept"
    assert failure.attempts == 3 and failure.resolved_at is not None
    assert intake.run_cycle().fetched == 0, "given up: not fetched again"


def test_failed_mail_waits_for_its_backoff(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "a.eml").write_bytes(mf.response_mail(org="NITO", attachments=[]))
    settings = settings_for(tmp_path, folder)
    settings.intake.retry_base_seconds = 3600
    intake = build_worker(settings)
    intake.checkpoint = lambda stage, uid: (_ for _ in ()).throw(RuntimeError("boom")) if stage == "stored" else None
    assert intake.run_cycle().counts["retry"] == 1
    assert intake.run_cycle().fetched == 0, "not retried before its backoff has passed"


def test_a_mail_failing_inside_a_batch_costs_the_others_nothing(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Six mails register in one batch transaction; the fourth raises there, so the batch is rolled back and each
    is registered alone: five registered, the fourth recorded for a retry, which then registers it."""
    from postmottak.casefile import registry

    folder = tmp_path / "export"
    folder.mkdir()
    for index in range(6):
        raw = mf.response_mail(org=f"Kommune {index}", attachments=[])
        (folder / f"{index}.eml").write_bytes(with_received(raw, datetime(2022, 9, 20, 12, index, tzinfo=mf.OSLO)))
    settings = settings_for(tmp_path, folder)
    settings.intake.retry_base_seconds = 0
    intake = build_worker(settings)
    real_fit_columns = registry.fit_columns  # the first step of registering each mail, in a batch or alone
    calls: list[str] = []

    def failing_once(mail):  # type: ignore[no-untyped-def]
        calls.append(mail.uid)
        if mail.uid == "3.eml" and calls.count("3.eml") <= 2:  # in the batch, and again on its own
            raise RuntimeError("simulated registering bug")
        return real_fit_columns(mail)

    monkeypatch.setattr(registry, "fit_columns", failing_once)
    first = intake.run_cycle()
    assert first.counts["registered"] == 5 and first.counts["retry"] == 1, first.counts
    assert calls[:4] == ["0.eml", "1.eml", "2.eml", "3.eml"], "tried as one batch first"
    assert calls.count("0.eml") == 2, "the batch was rolled back and its first mail registered again on its own"
    second = intake.run_cycle()
    assert second.counts["registered"] == 1
    with intake.db.session() as session:
        assert session.scalar(select(func.count()).select_from(m.MailLocation)) == 6
        assert session.scalar(select(func.count()).select_from(m.JournalEntry)) == 6
    intake.close()
