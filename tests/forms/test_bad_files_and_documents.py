"""Bad files give a clear status and warning; the form is picked among a mail's documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from postmottak.parsers.forms import DocumentInput, analyse_documents, extract_text, parse_form
from tests.forms.corpus import BAD, FIXTURES, SEED


@pytest.mark.parametrize(
    ("filename", "status", "warning_part"),
    [
        ("encrypted.pdf", "unreadable", "kryptert"),
        ("truncated.pdf", "unreadable", "skadet"),
        ("zero_bytes.pdf", "unreadable", "tomt"),
        ("not_a_pdf.pdf", "unreadable", "ikke en PDF"),
        ("letter_not_a_form.pdf", "not_a_form", "ikke ut til å være skjemaet"),
        ("bomb_page_tree.pdf", "unreadable", "skadet"),
    ],
)
def test_bad_file_status(filename: str, status: str, warning_part: str) -> None:
    result = parse_form((BAD / filename).read_bytes(), filename)
    assert result.form_status == status
    assert any(warning_part in warning for warning in result.warnings), result.warnings
    assert result.organisation_type is None and result.q1_text is None


def test_docx_bytes_named_pdf_parse_by_content() -> None:
    data = (FIXTURES / "docx" / "form_glyph_boxes.docx").read_bytes()
    result = parse_form(data, "skjema.pdf")
    assert result.source_format == "docx" and result.organisation_type == "Kommune/KS"


def test_corrupt_docx() -> None:
    data = (FIXTURES / "docx" / "form_glyph_boxes.docx").read_bytes()
    result = parse_form(data[:2000], "skjema.docx")
    assert result.form_status == "unreadable"


def test_extract_text() -> None:
    letter = extract_text((BAD / "letter_not_a_form.pdf").read_bytes(), "brev.pdf")
    assert "Saksnummer 22/414" in letter and "Ørland kommune" in letter
    form = extract_text((FIXTURES / "form_org01_ja.pdf").read_bytes())
    assert "«Saksnummer 22/414»" in form and "Frist: 01.10.2022" in form
    assert "Side 1 av" not in form
    assert extract_text((BAD / "encrypted.pdf").read_bytes()) == ""
    assert extract_text(b"") == ""
    assert extract_text("Gjelder sak 22/414\n".encode(), "notat.txt") == "Gjelder sak 22/414"
    assert len(extract_text((FIXTURES / "form_long_multipage.pdf").read_bytes(), max_chars=500)) == 500
    docx_text = extract_text((FIXTURES / "docx" / "form_none_ticked.docx").read_bytes(), "a.docx")
    assert "Saksnummer 22/414" in docx_text


def _doc(path, content_type: str = "application/pdf") -> DocumentInput:
    return DocumentInput(path.name, content_type, path.read_bytes())


def test_form_is_picked_among_attachments(tmp_path, monkeypatch) -> None:
    # The scan is left unread here (no Tesseract on PATH); test_ocr_scans.py reads scans.
    monkeypatch.setenv("PATH", str(tmp_path))
    docs = [
        DocumentInput("brødtekst.txt", "text/plain", "Hei, vedlagt er vårt høringssvar i sak 22/414.".encode()),
        _doc(BAD / "letter_not_a_form.pdf"),
        _doc(BAD / "scan_image_only.pdf"),
        _doc(
            FIXTURES / "docx" / "form_org05_nei.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        DocumentInput("logo.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40),
    ]
    analysis = analyse_documents(docs)
    assert analysis.form_index == 3
    assert analysis.document_statuses == ["other", "other", "unreadable", "form", "unsupported"]
    assert analysis.form is not None and analysis.form.organisation_type == "Fag- og interesseorganisasjoner"
    assert analysis.form.q1_choice == "nei"
    assert "22/414" in analysis.texts[0] and "Saksnummer 22/414" in analysis.texts[1]
    assert analysis.texts[2] == "" and analysis.texts[4] == ""
    assert any("tekstlag" in w for w in analysis.document_warnings[2])
    assert len(analysis.texts) == len(analysis.document_statuses) == len(analysis.document_warnings) == 5


def test_no_form_among_attachments() -> None:
    analysis = analyse_documents(
        [_doc(BAD / "letter_not_a_form.pdf"), _doc(BAD / "encrypted.pdf"), _doc(BAD / "zero_bytes.pdf")]
    )
    assert analysis.form_index is None and analysis.form is None
    assert analysis.document_statuses == ["other", "encrypted", "empty"]
    assert analysis.warnings


def test_two_copies_of_the_form_warn() -> None:
    analysis = analyse_documents([_doc(FIXTURES / "form_org02_nei.pdf"), _doc(FIXTURES / "form_org03_vet_ikke.pdf")])
    assert analysis.form_index == 0 and analysis.document_statuses == ["form", "other"]
    assert analysis.warnings and "Flere dokumenter" in analysis.warnings[0]


def test_seed_text_from_a_real_response(shared_dir: Path) -> None:
    seed = shared_dir / SEED.relative_to(SEED.parents[1])  # a missing ../shared fails under CI=true
    result = parse_form(seed.read_bytes(), "seed.txt")
    assert result.form_status == "parsed"
    assert result.organisation_type == "Fag- og interesseorganisasjoner"
    assert result.organisation_types_checked == ["Fag- og interesseorganisasjoner"]
    assert result.organisation_name == "NITO – Norges ingeniør- og teknologorganisasjon"
    assert result.contact_person == "Sine Emborg Tolfsen"
    assert result.email == "sine.emborg.tolfsen@nito.no"
    assert result.q1_choice is None and "checkbox.none_ticked:q1_choice" in result.warning_codes
    assert result.q1_text.startswith(
        "Strategien peker på en retning for e-helse som helsesektoren er enige om og jobber mot. Samtidig"
    )
    assert result.q1_text.endswith(
        "De nasjonale sikkerhetskravene skal ikke baseres på frivillighet fra helseforetakenes side."
    )
    assert result.goal_1 is None and result.goal_5 is None and result.q4_text is None
    assert result.goal_2.split("\n\n")[1].startswith("Det bør gjøres gode vurderinger")
    assert "Nasjonal ehelse-monitor." in result.goal_2
    assert result.goal_4.endswith("må det samarbeides tett også med ortopediingeniørene.")
    assert result.q3_text.startswith("Realisering av strategien") and "\n\nNITO merker seg" in result.q3_text
