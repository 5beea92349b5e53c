"""Every generated form parses field-exact: PDF (pdfium text, pdfplumber text), and DOCX."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from postmottak.parsers.forms import load_profile, parse_form
from postmottak.parsers.forms.form_parser import parse_text
from postmottak.parsers.forms.pdf_reader import read_pdf
from postmottak.parsers.forms.text_lines import lines_to_text
from tests.forms.corpus import FIXTURES, expectations

CASES = expectations()
FIELDS_OF_NOTE = ("organisation_type", "organisation_types_checked", "q1_choice", "form_status")


def _comparable(result: dict, expected: dict) -> dict:
    got = {key: result[key] for key in expected}
    got["warning_codes"] = sorted(got["warning_codes"])
    return got


def test_the_corpus_is_there() -> None:
    assert len(CASES) >= 23
    assert len(list((FIXTURES / "docx").glob("*.docx"))) >= 8


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[name for name, _ in CASES])
def test_pdf_parses_field_exact(name: str, expected: dict) -> None:
    result = parse_form((FIXTURES / f"{name}.pdf").read_bytes(), f"{name}.pdf")
    assert _comparable(result.model_dump(), expected) == expected
    assert result.source_format == "pdf"
    assert len(result.warnings) == len(result.warning_codes)


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[name for name, _ in CASES])
def test_pdfplumber_backend_agrees(name: str, expected: dict) -> None:
    lines = read_pdf((FIXTURES / f"{name}.pdf").read_bytes(), backend="pdfplumber").lines
    result = parse_text(lines_to_text(lines), load_profile()).result
    assert _comparable(result.model_dump(), expected) == expected


DOCX_CASES = [(name, expected) for name, expected in CASES if (FIXTURES / "docx" / f"{name}.docx").exists()]


@pytest.mark.parametrize(("name", "expected"), DOCX_CASES, ids=[name for name, _ in DOCX_CASES])
def test_docx_parses_field_exact(name: str, expected: dict) -> None:
    result = parse_form((FIXTURES / "docx" / f"{name}.docx").read_bytes(), f"{name}.docx")
    assert _comparable(result.model_dump(), expected) == expected
    assert result.source_format == "docx"


def test_docx_content_control_state_wins_over_its_glyph() -> None:
    """The w14:checked attribute is the state, whatever glyph the control shows."""
    import io

    import docx

    data = (FIXTURES / "docx" / "form_org01_ja.docx").read_bytes()
    document = docx.Document(io.BytesIO(data))
    w14 = "{http://schemas.microsoft.com/office/word/2010/wordml}"
    boxes = list(document.element.body.iter(f"{w14}checked"))
    boxes[0].set(f"{w14}val", "0")  # Statlig etat: shown ☒, now unticked
    boxes[2].set(f"{w14}val", "1")  # Kommune/KS: shown ☐, now ticked
    buffer = io.BytesIO()
    document.save(buffer)
    result = parse_form(buffer.getvalue(), "edited.docx")
    assert result.organisation_types_checked == ["Kommune/KS"]


def test_expectations_match_the_generator() -> None:
    """The committed expectation files are what make_forms.py / make_odd_forms.py produce now."""
    sys.path.insert(0, str(Path(__file__).parent))
    import make_forms
    import make_odd_forms

    specs = make_forms.corpus() + [make_odd_forms.vector_spec()]
    assert sorted(spec.name for spec in specs) == sorted(name for name, _ in CASES)
    for spec in specs:
        committed = json.loads((FIXTURES / f"{spec.name}.expected.json").read_text(encoding="utf-8"))
        assert committed == spec.expected(), spec.name


def test_every_variant_is_covered() -> None:
    by_name = dict(CASES)
    single_types = {e["organisation_type"] for e in by_name.values() if e["organisation_type"]}
    assert single_types == set(load_profile().sections[0].options[i].value for i in range(10))
    assert {e["q1_choice"] for e in by_name.values()} == {"ja", "nei", "vet_ikke", None}
    assert any(len(e["organisation_types_checked"]) > 1 for e in by_name.values())
    assert any(not e["organisation_types_checked"] for e in by_name.values())
    assert any(e["form_status"] == "partial" for e in by_name.values())
    long_form = parse_form((FIXTURES / "form_long_multipage.pdf").read_bytes())
    assert long_form.page_count and long_form.page_count >= 3
    assert all("Side" not in (value or "") for value in (long_form.q1_text, long_form.goal_3, long_form.q4_text))
