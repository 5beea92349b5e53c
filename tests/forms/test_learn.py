"""Profiles learned from blank forms (.docx and .pdf): the same profile from both, and filled copies parsed field by
field as the generator filled them; the 22/414 fixtures parse the same with a learned and the hand-written profile."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from postmottak.parsers.forms import load_profile, parse_form
from postmottak.parsers.forms.learn import LearnError, learn_profile
from postmottak.parsers.forms.profile import FormProfile
from tests.forms import make_matrix_form as mm

REPO = Path(__file__).resolve().parents[2]
FORMS = REPO / "tests" / "fixtures" / "forms"


def _fields(result) -> list[tuple[str, str, object]]:
    return [(f.label, f.kind, f.value) for f in result.fields]


@pytest.fixture(scope="module")
def matrix_profiles() -> tuple[FormProfile, FormProfile]:
    from_docx = learn_profile(mm.build_docx(None), name="hoeringssvar-23-1234", case_number="23/1234")
    blank_pdf = (mm.FIXTURES / "blank.pdf").read_bytes()
    from_pdf = learn_profile(blank_pdf, name="hoeringssvar-23-1234", case_number="23/1234")
    return from_docx, from_pdf


def test_matrix_form_learned_from_docx_and_pdf_is_one_profile(matrix_profiles) -> None:
    from_docx, from_pdf = matrix_profiles
    assert from_docx == from_pdf
    kinds = [(s.kind, s.label) for s in from_docx.sections if s.kind != "heading"]
    assert kinds == [
        *[("inline", label) for label in mm.CONTACT],
        ("checkboxes", mm.ROLES_QUESTION),
        ("text", mm.JA_NEI_QUESTION),
        ("matrix", mm.MATRIX_QUESTION),
        ("text", mm.LAST_QUESTION),
    ]
    matrix = next(s for s in from_docx.sections if s.kind == "matrix")
    assert matrix.rows == mm.PROPOSALS and [o.label for o in matrix.options] == mm.COLUMNS
    roles = next(s for s in from_docx.sections if s.kind == "checkboxes")
    assert roles.multiple and [o.label for o in roles.options] == mm.ROLES


@pytest.mark.parametrize("name", sorted(mm.FILLED))
@pytest.mark.parametrize("learned_from", ["docx", "pdf"])
@pytest.mark.parametrize("filled_as", ["docx", "pdf"])
def test_filled_matrix_forms_parse_field_by_field(
    matrix_profiles, name: str, learned_from: str, filled_as: str
) -> None:
    profile = matrix_profiles[0 if learned_from == "docx" else 1]
    answers = mm.FILLED[name]
    data = mm.build_docx(answers) if filled_as == "docx" else (mm.FIXTURES / f"{name}.pdf").read_bytes()
    result = parse_form(data, f"{name}.{filled_as}", profile)
    assert result.form_status == "parsed", result.warnings
    assert _fields(result) == mm.expected(answers)
    # The contact fields are typed into the cells of a table, in Word and in its PDF; Word's checkboxes are
    # content controls (read from w14:checked), the PDF prints them as glyphs, its matrix read from the table.
    assert [f.read_by for f in result.fields] == (mm.DOCX_READ_BY if filled_as == "docx" else mm.PDF_READ_BY)


def test_a_pdf_whose_table_cells_wrap_reads_as_its_word_document() -> None:
    # Proposals and an answer long enough to wrap in their cells: line by line across the page, a row's boxes
    # stand between the lines of its label; read cell by cell, the PDF gives what the .docx gives.
    proposals = [
        "§ 3 Journalplikt for alle som yter helse- og omsorgstjenester",
        "§ 5 Tilgangsstyring",
        "§ 8 Logging av alle oppslag i pasientens journal",
    ]
    answers = mm.Answers(
        contact=["Nasjonalt senter for samhandling og telemedisin ved Universitetssykehuset Nord-Norge HF", None, None],
        roles=["Tjenesteyter"],
        ja_nei="Ja",
        matrix={proposals[0]: ["Delvis enig"], proposals[2]: ["Uenig"]},
    )
    profile = learn_profile(mm.build_docx(None, proposals), name="hoeringssvar-23-1234", case_number="23/1234")
    filled = mm.build_docx(answers, proposals)
    from_docx = parse_form(filled, "svar.docx", profile)
    from_pdf = parse_form(mm.to_pdf(filled, "svar"), "svar.pdf", profile)
    assert _fields(from_docx) == _fields(from_pdf) == mm.expected(answers, proposals)
    assert from_pdf.form_status == "parsed" and not from_pdf.warnings
    assert [f.read_by for f in from_pdf.fields] == mm.PDF_READ_BY


@pytest.mark.parametrize("name", sorted(mm.FILLED))
def test_a_pdf_drawn_with_ruled_tables_and_vector_boxes_reads_field_by_field(matrix_profiles, name: str) -> None:
    answers = mm.FILLED[name]
    result = parse_form(mm.build_vector_pdf(answers), f"{name}.pdf", matrix_profiles[1])
    assert result.form_status == "parsed" and not result.warnings
    assert _fields(result) == mm.expected(answers)
    assert [f.read_by for f in result.fields] == mm.VECTOR_PDF_READ_BY


def test_22_414_fixtures_parse_the_same_with_a_learned_profile() -> None:
    from_docx = learn_profile(mm.blank_22_414(), name="laert-22-414", case_number="22/414")
    from_pdf = learn_profile((mm.FIXTURES / "blank_22_414.pdf").read_bytes(), name="laert-22-414")
    assert from_pdf.sections == from_docx.sections
    hand = load_profile()
    paths = sorted(FORMS.glob("*.pdf")) + sorted((FORMS / "docx").glob("*.docx"))
    assert len(paths) >= 20
    for path in paths:
        data = path.read_bytes()
        expected = json.loads((FORMS / f"{path.stem}.expected.json").read_text(encoding="utf-8"))
        by_hand, learned = parse_form(data, path.name, hand), parse_form(data, path.name, from_docx)
        assert learned.form_status == by_hand.form_status == expected["form_status"], path.name
        assert [(f.kind, f.value) for f in learned.fields] == [(f.kind, f.value) for f in by_hand.fields], path.name


@pytest.mark.parametrize("name", ["letter_not_a_form.pdf", "zero_bytes.pdf", "encrypted.pdf", "not_a_pdf.pdf"])
def test_learning_refuses_what_is_not_a_form(name: str) -> None:
    with pytest.raises(LearnError) as refused:
        learn_profile((FORMS / "bad" / name).read_bytes(), name="x", filename=name)
    assert name in str(refused.value)


def test_forms_learn_command_prints_the_fields_and_writes_a_loadable_profile(tmp_path: Path) -> None:
    output = tmp_path / "hoeringssvar-23-1234.toml"
    command = [
        sys.executable,
        "-m",
        "postmottak",
        "forms",
        "learn",
        str(mm.FIXTURES / "blank.pdf"),
        "--case",
        "23/1234",
        "--output",
        str(output),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    )
    assert result.returncode == 0, result.stderr
    for word in ("tabell", "avkrysning", "fritekst", "Tilgangsstyring", "Tjenesteyter"):
        assert word in result.stdout, word
    profile = load_profile(str(output))
    assert profile.case_number == "23/1234" and tomllib.loads(output.read_text(encoding="utf-8"))["name"] == output.stem
    parsed = parse_form((mm.FIXTURES / "bergen.pdf").read_bytes(), "bergen.pdf", profile)
    assert [(f.label, f.kind, f.value) for f in parsed.fields] == mm.expected(mm.FILLED["bergen"])
    refused = subprocess.run(
        [*command[:5], str(FORMS / "bad" / "letter_not_a_form.pdf"), *command[6:]],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert refused.returncode == 1 and "Fant ikke noe skjema" in refused.stderr


def test_a_case_form_given_as_a_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    from datetime import date

    from postmottak.config.settings import CaseSettings, Settings, form_reference

    settings = Settings(
        cases=[CaseSettings(number="23/1234", title="Høring", deadline=date(2023, 3, 15), form="skjema/svar.toml")],
        base_dir=tmp_path,
    )
    assert form_reference(settings, "skjema/svar.toml") == str(tmp_path / "skjema" / "svar.toml")
    assert form_reference(settings, "/srv/svar.toml") == "/srv/svar.toml"
    assert form_reference(settings, "hoeringssvar-22-414") == "hoeringssvar-22-414"
    assert form_reference(settings, None) is None


def test_the_form_read_is_the_one_of_the_case_the_mail_refers_to(tmp_path: Path) -> None:
    from datetime import date

    from postmottak.config.settings import CaseSettings, Settings
    from postmottak.intake.pipeline import form_for_mail

    settings = Settings(
        cases=[
            CaseSettings(number="22/414", title="E-helse", deadline=date(2022, 10, 1), form="hoeringssvar-22-414"),
            CaseSettings(number="23/1234", title="Journal", deadline=date(2023, 3, 15), form="svar-23-1234.toml"),
        ],
        base_dir=tmp_path,
    )
    assert form_for_mail(settings, "Høringssvar sak 23/1234 fra Helse Bergen") == str(tmp_path / "svar-23-1234.toml")
    assert form_for_mail(settings, "Svar på høring 22/414") == "hoeringssvar-22-414"
    assert form_for_mail(settings, "Svar i sakene 22/414 og 23/1234") is None
    assert form_for_mail(settings, "Høringssvar") is None
