"""Scanned and photographed forms are read by OCR: fields compared with the generator's input.

The scans are made at test time from the committed form PDFs (tests/forms/make_scans.py), one page each to keep
Tesseract's time down; a page 1 holds the organisation types, the contact fields and question 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pdfplumber
import pytest
from PIL import Image, ImageDraw

from postmottak.parsers.forms import DocumentInput, FormResult, analyse_documents, parse_form
from postmottak.parsers.forms.documents import form_from_document, read_document
from postmottak.parsers.forms.label_locator import find_label
from postmottak.parsers.forms.ocr import clean_page, estimate_skew, tesseract_available
from postmottak.parsers.forms.profile import resolve_profile
from postmottak.parsers.forms.scan_boxes import read_box_before
from tests.forms.corpus import BAD, FIXTURES
from tests.forms.make_scans import (
    SCAN_KINDS,
    degrade,
    render_pages,
    scan_of,
    scanned_pdf,
)

REPO = Path(__file__).resolve().parents[2]
PAGE_ONE_FIELDS = (
    "organisation_type",
    "organisation_types_checked",
    "organisation_name",
    "contact_person",
    "email",
    "q1_choice",
    "q1_text",
)

needs_tesseract = pytest.mark.skipif(
    not tesseract_available() and os.environ.get("CI") != "true",
    reason="Tesseract with Norwegian data is not installed",
)


def expected(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.expected.json").read_text(encoding="utf-8"))


def first_page_scan(name: str, kind: str, seed: int = 0) -> bytes:
    data, _suffix = scan_of((FIXTURES / f"{name}.pdf").read_bytes(), SCAN_KINDS[kind], seed=seed, max_pages=1)
    return data


@pytest.fixture(scope="session")
def grey_scan_run(tmp_path_factory):
    """`postmottak parse SCAN.pdf --json --text-layer OUT.pdf` on a grey 150 dpi scan (the command a user runs,
    isolated reader): the JSON printed, and where the searchable PDF was to go."""
    folder = tmp_path_factory.mktemp("scan")
    scan, out = folder / "skanning.pdf", folder / "skanning-sokbar.pdf"
    scan.write_bytes(first_page_scan("form_org01_ja", "grey_150"))
    run = subprocess.run(
        [sys.executable, "-m", "postmottak", "parse", str(scan), "--json", "--text-layer", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout), out


@pytest.fixture(scope="session")
def grey_scan_result(grey_scan_run):
    return FormResult.model_validate(grey_scan_run[0])


@pytest.fixture(scope="session")
def photo_result():
    return parse_form(first_page_scan("form_norwegian_letters", "photo_jpeg", seed=3), "IMG_2041.jpg")


@pytest.fixture(scope="session")
def crooked_bw_result():
    pdf = (FIXTURES / "form_several_ticked.pdf").read_bytes()
    kind = SCAN_KINDS["bw_200"]
    page = degrade(render_pages(pdf, kind.dpi)[0], SCAN_KINDS["crooked_noisy_150"], seed=5).convert("L")
    return parse_form(scanned_pdf([degrade(page, kind)], kind.dpi), "skannet.pdf")


# --- whole scans (Tesseract) ---------------------------------------------------------------------


@needs_tesseract
def test_grey_scan_reads_page_one_fields_exactly(grey_scan_result) -> None:
    """Read through `postmottak parse --json`: the same fields as the born-digital form."""
    want = expected("form_org01_ja")
    got = grey_scan_result.model_dump()
    assert {key: got[key] for key in PAGE_ONE_FIELDS} == {key: want[key] for key in PAGE_ONE_FIELDS}
    assert grey_scan_result.source_format == "pdf"


@needs_tesseract
def test_parse_json_says_the_text_layer_was_made_and_writes_it(grey_scan_run) -> None:
    import pdfplumber

    printed, out = grey_scan_run
    layer = printed["text_layer"]
    assert layer["made"] and layer["ocr_pages"] == [1] and layer["written_to"] == str(out) and layer["error"] is None
    assert layer["size"] == out.stat().st_size
    with pdfplumber.open(out) as pdf:
        assert len(pdf.pages) == 1 and expected("form_org01_ja")["contact_person"] in pdf.pages[0].extract_text()
    # A born-digital form needs no OCR: no text layer said.
    digital = subprocess.run(
        [sys.executable, "-m", "postmottak", "parse", str(FIXTURES / "form_org02_nei.pdf"), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert digital.returncode == 0 and "text_layer" not in json.loads(digital.stdout)


@needs_tesseract
def test_every_ocr_field_is_marked_with_its_confidence(grey_scan_result) -> None:
    codes = grey_scan_result.warning_codes
    assert "ocr.document" in codes
    marked = {
        code.split(":")[1]: float(code.split(":")[2]) for code in codes if code.startswith(("ocr.field:", "ocr.low"))
    }
    assert set(marked) >= {"organisation_type", "organisation_name", "contact_person", "email", "q1_choice", "q1_text"}
    assert all(0 <= value <= 100 for value in marked.values())
    assert len(grey_scan_result.warnings) == len(codes)
    low = [code for code in codes if code.startswith("ocr.low_confidence:")]
    # One page scanned: the labels of page 2 are missing, so partial whatever the confidence.
    assert "label_missing:q4_text" in codes and grey_scan_result.form_status == "partial"
    assert all(not code.startswith("ocr.") for code in codes[: codes.index("ocr.document")])  # parser's own first
    assert len(low) == sum("lav sikkerhet" in warning for warning in grey_scan_result.warnings)


@needs_tesseract
def test_phone_photo_jpeg_at_an_angle(photo_result) -> None:
    want = expected("form_norwegian_letters")
    assert photo_result.organisation_types_checked == want["organisation_types_checked"] == ["Privatperson"]
    assert photo_result.organisation_name == want["organisation_name"] == "Bjørg Æsøy Håland"
    assert photo_result.contact_person == want["contact_person"]
    assert photo_result.email == want["email"]
    assert photo_result.form_status in ("parsed", "partial")


@needs_tesseract
def test_crooked_black_and_white_scan_with_two_boxes_ticked(crooked_bw_result) -> None:
    want = expected("form_several_ticked")
    assert crooked_bw_result.organisation_types_checked == want["organisation_types_checked"]
    assert crooked_bw_result.organisation_type is None
    assert "checkbox.several_ticked:organisation_type" in crooked_bw_result.warning_codes
    assert crooked_bw_result.q1_choice is None
    assert "checkbox.several_ticked:q1_choice" in crooked_bw_result.warning_codes
    assert crooked_bw_result.organisation_name == want["organisation_name"]


@needs_tesseract
def test_scanned_letter_is_not_a_form() -> None:
    page = render_pages((BAD / "letter_not_a_form.pdf").read_bytes(), 150)[0]
    analysis = analyse_documents([DocumentInput("brev.pdf", "application/pdf", scanned_pdf([page], 150))])
    assert analysis.form is None and analysis.document_statuses == ["other"]
    assert "22/414" in analysis.texts[0]


@needs_tesseract
def test_only_the_image_pages_of_a_mixed_pdf_are_ocr_read() -> None:
    """A born-digital form whose second page was scanned: page 1 from its text, page 2 by OCR."""
    import pypdfium2 as pdfium

    source = (FIXTURES / "form_org01_ja.pdf").read_bytes()
    scanned_page_two = scanned_pdf([render_pages(source, 150)[1]], 150)
    mixed = pdfium.PdfDocument.new()
    mixed.import_pages(pdfium.PdfDocument(source), [0])
    mixed.import_pages(pdfium.PdfDocument(scanned_page_two), [0])
    import io

    buffer = io.BytesIO()
    mixed.save(buffer)
    document = read_document(buffer.getvalue(), "blandet.pdf", profile=resolve_profile(None))
    result = form_from_document(document, buffer.getvalue(), resolve_profile(None))
    # The searchable version: page 1 copied as it was (its own text), page 2 the OCR'd scan with its text layer.
    layer = document.text_layer
    assert layer is not None and layer.error is None and layer.ocr_pages == [1] and layer.pdf is not None
    with pdfplumber.open(io.BytesIO(layer.pdf)) as searchable, pdfplumber.open(io.BytesIO(source)) as born_digital:
        assert len(searchable.pages) == 2
        assert searchable.pages[0].extract_text() == born_digital.pages[0].extract_text()
        assert expected("form_org01_ja")["goal_5"].split()[0] in searchable.pages[1].extract_text()
    want = expected("form_org01_ja")
    assert result.organisation_type == want["organisation_type"] and result.q1_text == want["q1_text"]
    assert "OCR, side 2)" in result.warnings[result.warning_codes.index("ocr.document")]
    marked = {code.split(":")[1] for code in result.warning_codes if code.startswith(("ocr.field:", "ocr.low"))}
    assert "organisation_name" not in marked and "goal_5" in marked  # page 1 from text, page 2 by OCR
    assert result.goal_5 == want["goal_5"]
    low = [code for code in result.warning_codes if code.startswith("ocr.low_confidence:")]
    assert result.form_status == ("partial" if low else "parsed")


# --- Tesseract absent ---------------------------------------------------------------------------


def _path_without_tesseract(tmp_path: Path) -> str:
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    return str(empty)


def test_without_tesseract_a_scan_is_unreadable_with_one_clear_warning(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", _path_without_tesseract(tmp_path))
    assert not tesseract_available()
    scan = scanned_pdf(render_pages((FIXTURES / "form_org01_ja.pdf").read_bytes(), 100)[:1], 100)
    result = parse_form(scan, "skanning.pdf")
    assert result.form_status == "unreadable"
    manual = [w for w in result.warnings if "føres inn manuelt" in w]
    assert len(manual) == 1 and "scans will need manual entry" in manual[0]
    analysis = analyse_documents([DocumentInput("skanning.pdf", "application/pdf", scan)])
    assert analysis.document_statuses == ["form"] and analysis.form.form_status == "unreadable"
    # Born-digital forms do not need OCR: unaffected.
    digital = parse_form((FIXTURES / "form_org02_nei.pdf").read_bytes(), "skjema.pdf")
    assert digital.form_status == "parsed" and not any(c.startswith("ocr.") for c in digital.warning_codes)


def test_without_tesseract_the_worker_registers_the_scanned_response(tmp_path: Path) -> None:
    """`postmottak run --once` in a process whose PATH has no Tesseract: the mail is registered, its form
    is `unreadable` with the manual-entry warning, and the born-digital response beside it is parsed."""
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from postmottak.casefile import models as m
    from tests import mailfactory as mf
    from tests.intake.test_folder_intake import settings_for

    folder = tmp_path / "innboks"
    folder.mkdir()
    scan = scanned_pdf(render_pages((FIXTURES / "form_org01_ja.pdf").read_bytes(), 100)[:1], 100)
    scanned_mail = mf.response_mail(org="Bærum kommune", attachments=[("skanning.pdf", "application/pdf", scan)])
    (folder / "1.eml").write_bytes(scanned_mail)
    photo = Image.new("L", (900, 1200), 255)
    blank_photo = mf.response_mail(org="NITO", attachments=[("bilde.jpg", "image/jpeg", _jpeg(photo))])
    (folder / "2.eml").write_bytes(blank_photo)
    settings_for(tmp_path, folder)
    environment = {**os.environ, "PATH": _path_without_tesseract(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "postmottak", "--config", str(tmp_path / "postmottak.toml"), "run", "--once"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env=environment,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("scans will need manual entry") == 1  # said once, not per mail
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with Session(engine) as session:
        records = list(session.scalars(select(m.IntakeRecord).order_by(m.IntakeRecord.id)))
        assert len(records) == 2 and all(r.status == "registered" for r in records)
        forms = {row.intake_id: row for row in session.scalars(select(m.FormResultRow))}
        scanned = forms[records[0].id]
        assert scanned.form_status == "unreadable"
        assert sum("føres inn manuelt" in w for w in scanned.warnings) == 1
        assert list(session.scalars(select(m.SearchableVersion))) == []  # no OCR, no text layer
    engine.dispose()


def _jpeg(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


# --- the parts, on synthetic input (no Tesseract) ------------------------------------------------


def _box_image(ticked: bool, noise: float = 0.0) -> np.ndarray:
    image = Image.new("L", (400, 80), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 20, 80, 60), outline=0, width=3)
    if ticked:
        draw.line((44, 24, 76, 56), fill=0, width=3)
        draw.line((44, 56, 76, 24), fill=0, width=3)
    draw.text((95, 25), "Privatperson", fill=0)
    pixels = np.asarray(image).copy()
    rng = np.random.default_rng(1)
    pixels[rng.random(pixels.shape) < noise] = 0
    return pixels


@pytest.mark.parametrize("ticked", [True, False])
def test_box_state_from_pixels(ticked: bool) -> None:
    reading = read_box_before(_box_image(ticked), (95, 22, 180, 58), 36)
    assert reading is not None and reading.ticked is ticked and reading.confidence >= 0.8
    assert abs(reading.x0 - 40) <= 2 and abs(reading.x1 - 81) <= 3


def test_speckle_in_an_empty_box_lowers_the_confidence() -> None:
    clean = read_box_before(_box_image(False), (95, 22, 180, 58), 36)
    speckled = read_box_before(_box_image(False, noise=0.03), (95, 22, 180, 58), 36)
    assert clean is not None and speckled is not None and speckled.confidence < clean.confidence


def test_no_box_before_plain_text() -> None:
    image = Image.new("L", (400, 80), 255)
    ImageDraw.Draw(image).text((95, 25), "Privatperson", fill=0)
    assert read_box_before(np.asarray(image), (95, 22, 180, 58), 36) is None


def test_labels_are_found_despite_ocr_letter_errors() -> None:
    text = (
        "Kryss av for type organisasjon/virksomhet:\nXIStatlig etat, ombud eller fagrad\n"
        "Fylkeskommune/Statsforvalteren\n"
        "Kommune/KS\nKontaktpersan: Ola Nordmann\nMal 1: Aktiv medvirkning i egen og neres helse"
    )
    org = find_label(text, "Kryss av for type organisasjon/virksomhet:")
    assert org is not None and org.start == 0
    statlig = find_label(text, "Statlig etat, ombud eller fagråd", org.end, at_line_start=False)
    assert statlig is not None and text[statlig.start : statlig.end] == "Statlig etat, ombud eller fagrad"
    kommune = find_label(text, "Kommune/KS", statlig.end, at_line_start=False)
    assert kommune is not None and text[kommune.start : kommune.end] == "Kommune/KS"  # not inside "Fylkeskommune"
    person = find_label(text, "Kontaktperson:")
    assert person is not None and text[person.start : person.end] == "Kontaktpersan:"
    goal = find_label(text, "Mål 1: Aktiv medvirkning i egen og næres helse")
    assert goal is not None and text[goal.end - 5 : goal.end] == "helse"
    assert find_label(text, "4) Andre innspill og tilbakemeldinger?") is None


def test_deskew_finds_the_rotation() -> None:
    page = render_pages((FIXTURES / "form_org03_vet_ikke.pdf").read_bytes(), 100)[0]
    rotated = page.rotate(2.0, resample=Image.BICUBIC, expand=True, fillcolor=255)
    assert abs(estimate_skew(rotated) + 2.0) <= 0.3
    pixels, dpi, skew = clean_page(rotated, 100)
    assert dpi == pytest.approx(300, rel=0.05) and abs(skew + 2.0) <= 0.3
    assert pixels.shape[1] > 2 * rotated.width


def test_page_numbers_misread_by_ocr_are_still_page_numbers() -> None:
    from postmottak.parsers.forms.scan_reader import _page_number_digits

    assert [_page_number_digits(t) for t in ("Side lav 2", "Side 2av 2.", "Side l av 2", "Sidene 2 av 3")] == [
        "Side 1 av 2",
        "Side 2 av 2",
        "Side 1 av 2",
        "Sidene 2 av 3",
    ]


def test_one_doubtful_word_makes_a_short_value_doubtful() -> None:
    from postmottak.parsers.forms.scan_confidence import LOW_CONFIDENCE, _text_confidence

    tokens = [("Kontaktperson:", 95.0), ("Den", 96.0), ("a", 20.0), ("legeforening", 95.0), ("Vi", 94.0)]
    assert _text_confidence("Den a legeforening", tokens, short=True) < LOW_CONFIDENCE
    assert _text_confidence("Den legeforening", tokens, short=True) > LOW_CONFIDENCE
    assert _text_confidence("Noe helt annet her", tokens) is None  # not made of OCR words
