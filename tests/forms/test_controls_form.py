"""A form built from Word content controls and the same form as a fillable PDF: learned from either blank, filled
copies read field by field from the controls' and the form fields' stored values, each field saying how it was
read; a PDF whose fields hold nothing is read from its printed text."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import docx
import pytest
from docx.oxml.ns import qn

from postmottak.parsers.forms import parse_form
from postmottak.parsers.forms.learn import learn_profile, profile_to_toml
from postmottak.parsers.forms.profile import FormProfile
from tests.forms import make_controls_form as mc

REPO = Path(__file__).resolve().parents[2]


def _fields(result) -> list[tuple[str, str, object]]:
    return [(f.label, f.kind, f.value) for f in result.fields]


@pytest.fixture(scope="module")
def profiles() -> dict[str, FormProfile]:
    return {
        "docx": learn_profile(mc.build_docx(None), name="hoeringssvar-24-815", case_number="24/815"),
        "pdf": learn_profile(mc.build_pdf(None), name="hoeringssvar-24-815", case_number="24/815"),
    }


def test_controls_form_learned_from_docx_and_from_fillable_pdf_is_one_profile(profiles) -> None:
    assert profiles["docx"] == profiles["pdf"]
    sections = [s for s in profiles["docx"].sections if s.kind != "heading"]
    assert [(s.kind, s.label) for s in sections] == [
        *[("inline", label) for label, _tag in mc.CONTACT],
        ("inline", mc.DATE_LABEL),
        ("checkboxes", mc.TYPE_QUESTION),
        ("checkboxes", mc.SERVICES_QUESTION),
        ("checkboxes", mc.IMPORTANCE_QUESTION),
        ("checkboxes", mc.CHANNELS_QUESTION),
        ("text", mc.SUPPORT_QUESTION),
        ("text", mc.REMARKS_QUESTION),
    ]
    # The drop-down's list items are the options of a single choice; the checkboxes a multiple choice.
    assert [o.label for o in sections[4].options] == mc.TYPES and not sections[4].multiple
    assert [o.label for o in sections[5].options] == mc.SERVICES and sections[5].multiple
    # A radio group is a single choice; a multi-select list box's items the options of a multiple choice.
    assert [o.label for o in sections[6].options] == mc.IMPORTANCE and not sections[6].multiple
    assert [o.label for o in sections[7].options] == mc.CHANNELS and sections[7].multiple
    assert [o.label for o in sections[8].choices] == mc.SUPPORT


@pytest.mark.parametrize("name", sorted(mc.FILLED))
@pytest.mark.parametrize("learned_from", ["docx", "pdf"])
@pytest.mark.parametrize("filled_as", ["docx", "pdf"])
def test_filled_controls_forms_parse_field_by_field_with_how_each_was_read(
    profiles, name: str, learned_from: str, filled_as: str
) -> None:
    answers = mc.FILLED[name]
    data = mc.build_docx(answers) if filled_as == "docx" else mc.build_pdf(answers)
    result = parse_form(data, f"{name}.{filled_as}", profiles[learned_from])
    assert result.form_status == "parsed", result.warnings
    assert _fields(result) == mc.expected(answers)
    assert [f.read_by for f in result.fields] == (mc.DOCX_READ_BY if filled_as == "docx" else mc.PDF_READ_BY)


def test_pdf_form_fields_without_values_fall_back_to_the_printed_text(profiles) -> None:
    answers = mc.FILLED["kommune"]
    result = parse_form(mc.build_pdf(answers, typed=True), "utskrevet.pdf", profiles["pdf"])
    expected = mc.expected(answers)
    assert "acroform" not in {f.read_by for f in result.fields}
    labels = [label for label, _kind, _value in expected]
    listed = {labels.index(mc.TYPE_QUESTION), labels.index(mc.CHANNELS_QUESTION)}
    # Every answer printed on the page is read from the text; the drop-down's and the list box's answers printed
    # as plain words have no box to tick, which the parser says.
    assert [f for i, f in enumerate(_fields(result)) if i not in listed] == [
        f for i, f in enumerate(expected) if i not in listed
    ]
    assert all(result.fields[i].value == [] and result.fields[i].warnings for i in listed)


@pytest.mark.parametrize("learned_from", ["docx", "pdf"])
def test_a_radio_button_is_the_option_its_export_value_names_wherever_its_label_is_printed(
    profiles, learned_from: str
) -> None:
    # The importance options printed before their buttons: read glyph by label, each option would take the box of
    # the option before it; read by the buttons' export values (the option labels), each is its own.
    answers = mc.FILLED["kommune"]
    result = parse_form(mc.build_pdf(answers, labels_before=True), "svar.pdf", profiles[learned_from])
    assert _fields(result) == mc.expected(answers)
    importance = next(f for f in result.fields if f.label == mc.IMPORTANCE_QUESTION)
    assert importance.value == ["Viktig"] and importance.read_by == "acroform" and not importance.warnings


def test_a_radio_button_whose_export_value_is_no_option_is_read_by_the_label_beside_it(profiles) -> None:
    for name, answers in mc.FILLED.items():
        result = parse_form(mc.build_pdf(answers, numbered_exports=True), f"{name}.pdf", profiles["pdf"])
        assert _fields(result) == mc.expected(answers), name
        assert [f.read_by for f in result.fields] == mc.PDF_READ_BY


def test_a_multi_select_list_box_with_nothing_selected_is_no_answer(profiles) -> None:
    answers = mc.Answers(contact=["Kari Nordmann", None, None], importance="Svært viktig")
    result = parse_form(mc.build_pdf(answers), "svar.pdf", profiles["pdf"])
    assert _fields(result) == mc.expected(answers)


def test_a_content_control_showing_its_placeholder_is_no_answer_whatever_the_placeholder_says(profiles) -> None:
    answers = mc.Answers(contact=[None, "Kari Nordmann", None], support="Ja")
    data = mc.build_docx(answers)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert mc.OWN_PLACEHOLDER in archive.read("word/document.xml").decode("utf-8")  # shown in the control
    result = parse_form(data, "svar.docx", profiles["docx"])
    assert _fields(result) == mc.expected(answers)
    assert mc.OWN_PLACEHOLDER not in json.dumps(result.model_dump(mode="json"), ensure_ascii=False)


def test_a_content_control_answers_the_field_its_tag_names_when_the_label_was_deleted(profiles) -> None:
    answers = mc.FILLED["kommune"]
    document = docx.Document(io.BytesIO(mc.build_docx(answers)))
    paragraph = next(p for p in document.paragraphs if p.text.startswith(mc.DATE_LABEL))
    paragraph.runs[0]._r.getparent().remove(paragraph.runs[0]._r)  # the label, not the date control
    buffer = io.BytesIO()
    document.save(buffer)
    result = parse_form(buffer.getvalue(), "svar.docx", profiles["docx"])
    assert result.form_status == "partial"  # the label is missing
    by_label = {f.label: f for f in result.fields}
    assert by_label[mc.DATE_LABEL].value == "15.05.2024" and by_label[mc.DATE_LABEL].read_by == "content_control"
    assert by_label["E-post:"].value == answers.contact[2]


@pytest.mark.slow
def test_parse_command_prints_how_each_field_was_read(tmp_path: Path, profiles) -> None:
    profile = tmp_path / "hoeringssvar-24-815.toml"
    profile.write_text(profile_to_toml(profiles["pdf"]), encoding="utf-8")
    form = tmp_path / "svar.pdf"
    form.write_bytes(mc.build_pdf(mc.FILLED["kommune"]))
    run = subprocess.run(
        [sys.executable, "-m", "postmottak", "parse", str(form), "--profile", str(profile), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    printed = json.loads(run.stdout)
    assert [(f["label"], f["kind"], f["value"]) for f in printed["fields"]] == mc.expected(mc.FILLED["kommune"])
    assert [f["read_by"] for f in printed["fields"]] == mc.PDF_READ_BY
    # The profile's own keys stay flat at the top level.
    assert printed[profiles["pdf"].sections[2].field] == mc.FILLED["kommune"].contact[0]


def test_a_word_control_wrapped_around_a_label_and_its_answer_is_not_the_previous_fields_answer(profiles) -> None:
    answers = mc.FILLED["kommune"]
    document = docx.Document(io.BytesIO(mc.build_docx(answers)))
    # A line of the respondent's, the remarks question and its answer (plain paragraphs) wrapped together in one
    # rich-text control: it starts within the answer space of the question before.
    question = next(p for p in document.paragraphs if p.text == mc.REMARKS_QUESTION)._p
    answer_block = question.getnext()
    answer_paragraphs = list(answer_block.iter(qn("w:p")))
    wrapper = mc._sdt([], [], tag=None, alias=None, empty=False)
    question.addprevious(wrapper)
    content = wrapper.find(qn("w:sdtContent"))
    content.append(document.add_paragraph("Til slutt:")._p)
    content.append(question)
    for paragraph in answer_paragraphs:
        content.append(paragraph)
    answer_block.getparent().remove(answer_block)
    buffer = io.BytesIO()
    document.save(buffer)
    result = parse_form(buffer.getvalue(), "svar.docx", profiles["docx"])
    assert _fields(result) == mc.expected(answers)
