"""Consultations set up in the dashboard: stored and loaded in the case database (SQLite and PostgreSQL), configured
`[[cases]]` win, and a running worker picks a new one up at its next cycle, routes, judges and parses by it."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from postmottak.bootstrap import build_worker, open_database
from postmottak.casefile import cases as case_store
from postmottak.casefile import consultations
from postmottak.casefile import models as m
from postmottak.casefile.queries import export_records
from postmottak.intake.triage import is_on_time
from postmottak.parsers.forms.learn import learn_profile, profile_to_toml
from tests.dbutil import backend_params, database_url
from tests.forms import make_matrix_form as mm
from tests.intake.test_folder_intake import settings_for

NUMBER = "23/1234"
TITLE = "Endringer i pasientjournalforskriften"


@pytest.fixture(scope="module")
def profile_toml() -> str:
    return profile_to_toml(learn_profile(mm.build_docx(None), name="hoering-23-1234", case_number=NUMBER))


def new_consultation(profile_toml: str, number: str = NUMBER, **changes) -> consultations.NewConsultation:
    values = {
        "number": number,
        "title": TITLE,
        "deadline": date(2023, 3, 15),
        "deadline_time": time(12, 0),
        "timezone": "Europe/Oslo",
        "keywords": ("pasientjournalforskriften",),
        "profile_toml": profile_toml,
        "blank_sha256": hashlib.sha256(b"blank").hexdigest(),
        "blank_filename": "skjema.docx",
    }
    values.update(changes)
    return consultations.NewConsultation(**values)


@pytest.fixture(params=backend_params())
def settings(request: pytest.FixtureRequest, tmp_path: Path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    with database_url(request.param, tmp_path) as url:
        yield settings_for(tmp_path, folder, url)


def test_stored_consultation_is_loaded_with_its_case_and_audit_event(settings, profile_toml) -> None:
    db = open_database(settings)
    try:
        with db.session() as session:
            consultations.create(session, new_consultation(profile_toml), "arkivar", {"22/414"}, form_profile="x.toml")
        with db.session() as session:
            (loaded,) = consultations.stored_consultations(session, {"22/414"})
            case = session.scalar(select(m.Case).where(m.Case.number == NUMBER))
            event = session.scalar(select(m.AuditEvent).where(m.AuditEvent.action == consultations.CREATED))
            assert (loaded.number, loaded.title, loaded.deadline, loaded.deadline_time) == (
                NUMBER,
                TITLE,
                date(2023, 3, 15),
                time(12, 0),
            )
            assert loaded.keywords == ("pasientjournalforskriften",) and loaded.profile_toml == profile_toml
            assert (case.year, case.sequence, case.deadline_time, case.form_profile) == (
                2023,
                1234,
                time(12, 0),
                "x.toml",
            )
            assert event is not None and event.actor == "arkivar" and event.case_id == case.id
            assert event.after["case"] == NUMBER and event.after["deadline"] == "15.03.2023 kl. 12:00"
            # Configured later in [[cases]]: the configuration wins, the stored one is left out.
            assert consultations.stored_consultations(session, {"22/414", NUMBER}) == []
    finally:
        db.dispose()


def test_configured_or_existing_case_numbers_are_refused_and_nothing_is_stored(settings, profile_toml) -> None:
    db = open_database(settings)
    try:
        with pytest.raises(consultations.ConsultationError, match="allerede satt opp i konfigurasjonsfilen"):
            with db.session() as session:
                consultations.create(session, new_consultation(profile_toml, "22/414"), "arkivar", {"22/414"})
        with db.session() as session:
            consultations.create(session, new_consultation(profile_toml), "arkivar", {"22/414"})
        with pytest.raises(consultations.ConsultationError, match="finnes allerede i saksdatabasen"):
            with db.session() as session:
                consultations.create(session, new_consultation(profile_toml, "2023/1234"), "arkivar", {"22/414"})
        with pytest.raises(consultations.ConsultationError, match="ÅÅ/NNN"):
            consultations.check(new_consultation(profile_toml, "sak 5"), set())
        with db.session() as session:
            assert [c.number for c in session.scalars(select(m.Consultation))] == [NUMBER]
            assert len(list(session.scalars(select(m.Case)))) == len(settings.cases) + 1  # configured + the one stored
    finally:
        db.dispose()


def test_profile_file_is_named_by_its_content_and_written_once(tmp_path: Path, profile_toml: str) -> None:
    first = consultations.profile_file(tmp_path / "forms", profile_toml)
    again = consultations.profile_file(tmp_path / "forms", profile_toml)
    assert first == again and first.read_text(encoding="utf-8") == profile_toml
    assert first.name == hashlib.sha256(profile_toml.encode()).hexdigest() + ".toml"
    assert consultations.profile_file(tmp_path / "forms", profile_toml + "\n") != first


def test_deadline_time_is_inclusive_to_the_end_of_its_minute() -> None:
    deadline, at = date(2023, 3, 15), time(12, 0)
    assert is_on_time(datetime(2023, 3, 15, 11, 0, 59, tzinfo=timezone.utc), deadline, "Europe/Oslo", at)
    assert not is_on_time(datetime(2023, 3, 15, 11, 1, 0, tzinfo=timezone.utc), deadline, "Europe/Oslo", at)
    assert is_on_time(datetime(2023, 3, 15, 22, 59, 59, tzinfo=timezone.utc), deadline, "Europe/Oslo")


def response_mail(subject: str, sent: datetime, attachment: bytes) -> bytes:
    message = EmailMessage()
    message["From"] = "Helse Bergen <post@helse-bergen.no>"
    message["To"] = "postmottak@ehelse.no"
    message["Subject"] = subject
    message["Date"] = format_datetime(sent)
    message["Message-ID"] = f"<{hashlib.sha256(subject.encode()).hexdigest()[:16]}@helse-bergen.no>"
    message.set_content("Vedlagt er vårt høringssvar.")
    message.add_attachment(
        attachment,
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
        filename="hoeringssvar.docx",
    )
    return message.as_bytes()


def test_running_worker_picks_up_a_stored_consultation_at_its_next_cycle(settings, profile_toml, tmp_path) -> None:
    worker = build_worker(settings)
    try:
        assert worker.run_cycle().ok  # the worker runs before the consultation exists
        with worker.db.session() as session:
            path = consultations.profile_file(settings.consultation_forms_path, profile_toml)
            consultations.create(session, new_consultation(profile_toml), "arkivar", {"22/414"}, form_profile=str(path))
        filled = mm.build_docx(mm.FILLED["bergen"])
        inbox = settings.folder_path
        on_time = datetime(2023, 3, 15, 10, 30, tzinfo=timezone.utc)  # 11:30 in Oslo, before 12:00
        late = datetime(2023, 3, 15, 11, 5, tzinfo=timezone.utc)  # 12:05 in Oslo
        (inbox / "1.eml").write_bytes(response_mail("Høringssvar sak 23/1234", on_time, filled))
        (inbox / "2.eml").write_bytes(response_mail("Høringssvar 23/1234 (sent)", late, filled))
        report = worker.run_cycle()
        assert report.ok, report.summary()
        with worker.db.session() as session:
            case_store.close_case(session, NUMBER, "arkivar")
        (inbox / "3.eml").write_bytes(response_mail("Svar 23/1234 etter avslutning", on_time, filled))
        assert worker.run_cycle().ok
        with worker.db.session() as session:
            records = {r["subject"]: r for r in export_records(session)}
    finally:
        worker.close()
    first, second = records["Høringssvar sak 23/1234"], records["Høringssvar 23/1234 (sent)"]
    assert (first["status"], first["case_number"], first["on_time"]) == ("registered", NUMBER, True)
    assert (second["status"], second["case_number"], second["on_time"]) == ("registered", NUMBER, False)
    closed = records["Svar 23/1234 etter avslutning"]
    assert (closed["status"], closed["reason"]) == ("needs_review", "case 23/1234 is closed")
    fields = [(f["label"], f["kind"], f["value"]) for f in first["form"]["fields"]]
    assert fields == [(label, kind, value) for label, kind, value in mm.expected(mm.FILLED["bergen"])]
