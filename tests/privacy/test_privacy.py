"""Data subject requests on real data (SQLite and PostgreSQL): find, export (art. 15) and erase (art. 17), with what
has an archival duty kept and the reason given."""

from __future__ import annotations

import json

from sqlalchemy import select

from postmottak.casefile import models as m
from tests.archive.conftest import Setup, run_cli
from tests.privacy.helpers import every_status

OLA = "ola.hansen@example.net"


def _words(text: str) -> str:
    return " ".join(text.split())


def test_find_lists_every_record_and_field_by_address_and_by_name(setup: Setup) -> None:
    ids = every_status(setup.database.db, setup.store).ids
    result = run_cli(setup.config, "privacy", "find", OLA.upper(), "--user", "arkivar.anne")
    assert result.exit_code == 0, result.output
    text = _words(result.output)
    assert f"Post {ids['registered']} (registrert journalpost 2022/414-1" in text
    assert "skjema.email" in text and "kvittering" in text and "journalpost.korrespondansepart_epost" in text
    assert f"Post {ids['duplicate_content']} (duplikat" in text
    assert f"Post {ids['ignored_staff']}" not in text
    by_name = _words(run_cli(setup.config, "privacy", "find", "ola hansen").output)
    assert f"Post {ids['registered']} " in by_name and "avsendernavn" in by_name and "skjema.contact_person" in by_name
    with setup.database.db.session() as session:
        events = list(session.scalars(select(m.AuditEvent).where(m.AuditEvent.action == "privacy_find")))
    assert len(events) == 2 and all(OLA not in json.dumps(e.after) + (e.note or "") for e in events)


def test_export_writes_everything_held(setup: Setup) -> None:
    ids = every_status(setup.database.db, setup.store).ids
    output = setup.tmp / "innsyn"
    result = run_cli(setup.config, "privacy", "export", OLA, "--output", str(output))
    assert result.exit_code == 0, result.output
    document = json.loads((output / "innsyn.json").read_text(encoding="utf-8"))
    records = {r["intake_id"]: r for r in document["poster"]}
    assert set(records) == {ids["registered"], ids["duplicate_content"]}
    registered = records[ids["registered"]]
    assert registered["skjema"]["email"] == OLA and registered["kvittering"]["til"] == OLA
    for record in records.values():
        for name in record["filer"]:
            assert (output / name).is_file()
    assert (output / registered["filer"][0]).read_bytes().startswith(b"From: ola.hansen@example.net")


def test_erase_removes_what_has_no_archival_duty_and_says_why_it_keeps_the_rest(setup: Setup) -> None:
    ids = every_status(setup.database.db, setup.store).ids
    preview = _words(run_cli(setup.config, "privacy", "erase", OLA).output)
    assert "1 poster vil bli slettet" in preview and "Prøvekjøring" in preview
    with setup.database.db.session() as session:
        assert session.get(m.IntakeRecord, ids["duplicate_content"]).sender_address == OLA  # nothing changed
    result = run_cli(setup.config, "privacy", "erase", OLA, "--yes", "--user", "arkivar.anne")
    assert result.exit_code == 0, result.output
    text = _words(result.output)
    assert f"1 poster slettet: {ids['duplicate_content']}" in text
    assert f"Post {ids['registered']} beholdes" in text and "art. 17 nr. 3 bokstav b" in text and "arkivlova" in text
    with setup.database.db.session() as session:
        erased = session.get(m.IntakeRecord, ids["duplicate_content"])
        kept = session.get(m.IntakeRecord, ids["registered"])
        assert (erased.sender_address, erased.sender_name, erased.body_text) == (None, None, "")
        tombstone = session.scalar(select(m.ContentTombstone).where(m.ContentTombstone.intake_id == erased.id))
        assert tombstone.rule == "privacy.erase" and tombstone.completed_at is not None
        assert kept.sender_address == OLA and kept.form.data["email"] == OLA
        assert setup.store.path_for(kept.raw_path).is_file()  # shared with the erased duplicate: kept for the archive
        actions = [e.action for e in session.scalars(select(m.AuditEvent))]
    assert actions.count("privacy_erase") == 2  # the record, and the request
    again = _words(run_cli(setup.config, "privacy", "find", OLA).output)
    assert f"Post {ids['duplicate_content']}" not in again and f"Post {ids['registered']}" in again

    run_cli(setup.config, "privacy", "erase", "privat@example.com", "--yes")
    with setup.database.db.session() as session:
        ignored = session.get(m.IntakeRecord, ids["ignored_staff"])
        paths = [ignored.raw_path] + [d.storage_path for d in ignored.documents]
    assert ignored.sender_address is None and not any(setup.store.path_for(p).exists() for p in paths)


def test_a_cancelled_journalpost_is_found_and_loses_the_person_but_not_its_number_on_erasure(setup: Setup) -> None:
    from postmottak.casefile import review
    from tests.archive.builders import CASE_NUMBER

    db = setup.database.db
    mail = every_status(db, setup.store).ids["ignored_staff"]
    with db.session() as session:
        review.register_to_case(session, mail, CASE_NUMBER, "arkivar.anne", send_receipt=False)
    with db.session() as session:
        review.undo_last(session, mail, "arkivar.anne")
    found = _words(run_cli(setup.config, "privacy", "find", "privat@example.com").output)
    assert "utgått_journalpost.korrespondansepart_epost" in found
    assert run_cli(setup.config, "privacy", "erase", "privat@example.com", "--yes").exit_code == 0
    with db.session() as session:
        old = session.scalar(select(m.CancelledJournalEntry).where(m.CancelledJournalEntry.intake_id == mail))
        assert old is not None and old.journal_number == review.cancelled_journal_numbers(session, mail)[0]
        assert (old.correspondent_email, old.correspondent_name) == (None, None)
        assert "Privat" not in old.title and old.correspondent_is_private_person
