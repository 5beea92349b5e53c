"""The page "Ny høring": archivists only, CSRF-checked; the learned fields are shown before anything is saved; a bad
upload or a number configured in [[cases]] is refused with a Norwegian message and nothing stored; the overview lists
every open consultation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from postmottak.casefile import models as m
from postmottak.dashboard.app import create_app
from postmottak.dashboard.consultation_setup import MAX_BLANK_BYTES
from tests.dashboard.conftest import csrf_from
from tests.forms import make_matrix_form as mm

BAD = Path(__file__).resolve().parents[1] / "fixtures" / "forms" / "bad"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
FIELDS = {"number": "23/1234", "title": "", "deadline": "2023-03-15", "deadline_time": "12:00", "keywords": "journal"}


@pytest.fixture
def app(settings, db, web):  # type: ignore[no-untyped-def]
    """The app over the configured case only (no seeded mail: nothing here needs it)."""
    return create_app(settings, db, web)


@pytest.fixture(scope="module")
def blank() -> bytes:
    return mm.build_docx(None)


def post(client, step: str, upload: tuple[str, bytes, str] | None = None, **values: str):  # type: ignore[no-untyped-def]
    data = {**FIELDS, **values, "step": step, "csrf_token": client.csrf}
    files = {"blank": upload} if upload else {"blank": ("", b"", "application/octet-stream")}
    return client.post("/cases/new", data=data, files=files)


def stored(db) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(m.Consultation)) or 0


def test_learn_shows_the_fields_then_save_stores_the_consultation_and_its_case(archivist, db, blank) -> None:
    page = archivist.get("/cases/new")
    assert page.status_code == 200 and "Ny høring" in page.text
    learned = post(archivist, "learn", ("skjema.docx", blank, DOCX))
    assert learned.status_code == 200, learned.text
    table = learned.text[learned.text.index('id="learned-fields"') :]
    for label in [*mm.CONTACT, mm.ROLES_QUESTION, mm.MATRIX_QUESTION, mm.LAST_QUESTION]:
        assert label in table
    assert "tabell" in table and "avkrysning (flere valg)" in table and "Enig, Delvis enig, Uenig, Vet ikke" in table
    assert stored(db) == 0  # nothing before the save
    draft = re.search(r'name="draft" value="([^"]+)"', learned.text)
    assert draft
    saved = post(archivist, "save", draft=draft.group(1))
    assert saved.status_code == 303 and saved.headers["location"] == "/cases/23-1234"
    summary = archivist.get("/cases/23-1234")
    assert summary.status_code == 200 and "Høringen 23/1234 er opprettet" in summary.text
    with db.session() as session:
        case = session.scalar(select(m.Case).where(m.Case.number == "23/1234"))
        assert case is not None and case.title == mm.TITLE and str(case.deadline_time) == "12:00:00"
        assert case.form_profile and Path(case.form_profile).is_file()
        event = session.scalar(select(m.AuditEvent).where(m.AuditEvent.action == "consultation_created"))
        assert event is not None and event.actor == "arkivar" and event.after["form"] == "skjema.docx"
    overview = archivist.get("/").text
    row = overview[overview.index('id="open-consultations"') :]
    assert "23/1234" in row and mm.TITLE in row and 'href="/cases/23-1234"' in row and "15.03.2023 kl. 12:00" in row


def test_a_case_number_configured_in_the_config_file_is_refused(archivist, db, blank) -> None:
    learned = post(archivist, "learn", ("skjema.docx", blank, DOCX), number="22/414")
    draft = re.search(r'name="draft" value="([^"]+)"', learned.text)
    assert draft
    refused = post(archivist, "save", draft=draft.group(1), number="22/414")
    assert refused.status_code == 422
    assert "Sak 22/414 er allerede satt opp i konfigurasjonsfilen ([[cases]])" in refused.text
    assert stored(db) == 0


BAD_UPLOADS = [
    ("brev.pdf", (BAD / "letter_not_a_form.pdf").read_bytes(), "Skjemaet kunne ikke læres"),
    ("ikke.pdf", (BAD / "not_a_pdf.pdf").read_bytes(), "verken en Word-fil (.docx) eller en PDF"),
    ("avkortet.pdf", (BAD / "truncated.pdf").read_bytes(), "Skjemaet kunne ikke læres"),
    ("tom.docx", b"", "tom.docx er tom"),
    ("stor.pdf", b"%PDF-1.7\n" + b"0" * MAX_BLANK_BYTES, "er for stor (over 10 MB)"),
]


def test_bad_uploads_are_refused_with_a_message_and_nothing_is_saved(archivist, db) -> None:
    for name, data, message in BAD_UPLOADS:
        for step in ("learn", "save"):
            response = post(archivist, step, (name, data, "application/pdf"))
            assert response.status_code == 422 and message in response.text, (name, step)
            assert 'id="setup-save"' not in response.text and 'id="setup-error"' in response.text
    assert stored(db) == 0


def test_saving_without_a_read_form_or_with_a_forged_draft_is_refused(archivist, db) -> None:
    assert "Velg det tomme høringsskjemaet" in post(archivist, "save").text
    assert "utløpt eller ugyldig" in post(archivist, "save", draft="forged.token").text
    assert stored(db) == 0


def test_readers_cannot_set_up_a_consultation_and_posts_need_the_csrf_token(reader, archivist, db, blank) -> None:
    assert reader.get("/cases/new").status_code == 403
    assert post(reader, "learn", ("skjema.docx", blank, DOCX)).status_code == 403
    archivist.csrf = "wrong"
    assert post(archivist, "learn", ("skjema.docx", blank, DOCX)).status_code in (400, 403)
    assert stored(db) == 0
    assert csrf_from(reader.get("/cases").text)  # the list page still renders for readers
