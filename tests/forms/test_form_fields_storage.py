"""Forms stored per field: migration 0003 carries existing forms over, the JSON export keeps the flat keys and adds
`form.fields`, corrections keep the parsed value. On SQLite, and PostgreSQL when configured."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select

from postmottak.casefile import cases as case_store
from postmottak.casefile import models as m
from postmottak.casefile import review
from postmottak.casefile.db import Database, alembic_config
from postmottak.casefile.queries import export_records
from postmottak.casefile.storage import DocumentStore
from tests.dashboard.seed import CASE, CASE_TITLE, seed_consultation
from tests.dbutil import backends, database_url

Q1 = (
    "1) Kan dere stille dere bak de fem strategiske målene, gitt strategiens rolle for å skape en felles langsiktig "
    "og forutsigbar retning for digitalisering på tvers av aktørene i helse- og omsorgssektoren?"
)
# Bergen kommune's answers as tests/dashboard/seed.py writes them.
BERGEN_FIELDS_START = [
    {
        "key": "organisation_type",
        "label": "Kryss av for type organisasjon/virksomhet:",
        "kind": "choice",
        "value": ["Kommune/KS"],
    },
    {
        "key": "organisation_name",
        "label": "Navn på virksomheten (statlig etat, kommune, privatperson osv.):",
        "kind": "text",
        "value": "Bergen kommune",
    },
    {"key": "contact_person", "label": "Kontaktperson:", "kind": "text", "value": "Kari Nordmann"},
    {"key": "email", "label": "E-postadresse:", "kind": "text", "value": "kari.nordmann@bergen.kommune.no"},
    {"key": "q1_choice", "label": Q1, "kind": "choice", "value": ["Ja, utdyp gjerne"]},
    {
        "key": "q1_text",
        "label": Q1,
        "kind": "text",
        "value": "Bergen kommune stiller seg bak målene, men savner tydeligere prioritering.",
    },
    {
        "key": "goal_1",
        "label": "Mål 1: Aktiv medvirkning i egen og næres helse",
        "kind": "text",
        "value": "Innbyggerne må få bedre tilgang til egne helseopplysninger i kommunale tjenester.",
    },
]


def _seeded_database(url: str, tmp_path: Path) -> tuple[Database, dict[str, int]]:
    db = Database(url)
    db.upgrade()
    with db.session() as session:
        case_store.sync_cases(session, [(CASE, CASE_TITLE, date(2022, 10, 1), "Europe/Oslo", None)])
    seeded = seed_consultation(db, DocumentStore(tmp_path / "documents"))
    return db, seeded.ids


def _migrate(db: Database, revision: str, direction: str) -> None:
    with db.engine.begin() as connection:
        config = alembic_config(db.url)
        config.attributes["connection"] = connection
        (command.downgrade if direction == "down" else command.upgrade)(config, revision)


@pytest.mark.parametrize("kind", backends())
def test_migration_0003_carries_every_form_over_and_the_export_adds_fields(kind: str, tmp_path: Path) -> None:
    with database_url(kind, tmp_path) as url:
        db, ids = _seeded_database(url, tmp_path)
        try:
            with db.session() as session:
                exported = {row["id"]: row for row in export_records(session)}
                review.correct_field(session, ids["bergen"], "q1_choice", "nei", "arkivar")
                before = export_records(session)
            _migrate(db, "0002", "down")
            assert "form_answers" not in inspect(db.engine).get_table_names()
            _migrate(db, "head", "up")
            with db.session() as session:
                after = export_records(session)
                rows = list(
                    session.scalars(
                        select(m.FormAnswer)
                        .where(m.FormAnswer.intake_id == ids["bergen"])
                        .order_by(m.FormAnswer.position)
                    )
                )
                forms = session.scalar(select(m.FormResultRow.id).where(m.FormResultRow.intake_id == ids["bergen"]))
                correction = session.scalar(
                    select(m.FieldCorrection).where(m.FieldCorrection.intake_id == ids["bergen"])
                )
                session.expunge(correction)
            assert after == before
            assert forms is not None and len(rows) == 13 and {r.read_by for r in rows} == {"unknown"}
            # The stored answer is the parsed one; the correction shows in the export only.
            assert [r.value for r in rows[4:5]] == [["Ja, utdyp gjerne"]]
            bergen = next(r for r in after if r["id"] == ids["bergen"])["form"]
            assert bergen["fields"][:4] == BERGEN_FIELDS_START[:4]
            assert bergen["fields"][4] == {**BERGEN_FIELDS_START[4], "value": ["Nei, utdyp gjerne"]}
            assert bergen["fields"][5:7] == BERGEN_FIELDS_START[5:7]
            assert bergen["q1_choice"] == "nei" and bergen["organisation_type"] == "Kommune/KS"
        finally:
            db.dispose()
    assert correction is not None and (correction.parsed_value, correction.corrected_value) == ("ja", "nei")
    # Before the correction: every flat key of the profile as before, and the fields in form order.
    parsed = exported[ids["bergen"]]["form"]
    for key in (
        "organisation_type",
        "organisation_types_checked",
        "organisation_name",
        "contact_person",
        "email",
        "q1_choice",
        "q1_text",
        "goal_1",
        "goal_2",
        "goal_3",
        "goal_4",
        "goal_5",
        "q3_text",
        "q4_text",
    ):
        assert key in parsed
    assert parsed["q1_choice"] == "ja" and parsed["organisation_types_checked"] == ["Kommune/KS"]
    assert [f["key"] for f in parsed["fields"]] == [
        "organisation_type",
        "organisation_name",
        "contact_person",
        "email",
        "q1_choice",
        "q1_text",
        "goal_1",
        "goal_2",
        "goal_3",
        "goal_4",
        "goal_5",
        "q3_text",
        "q4_text",
    ]
    assert parsed["fields"][:7] == BERGEN_FIELDS_START
    assert all(set(f) == {"key", "label", "kind", "value"} for f in parsed["fields"])
