"""Checkboxes drawn as vector squares (no glyph) are read from pdfium's page objects: where they are drawn, whether
they are ticked, the same as pdfplumber sees them; and reading such a form (or a glyph form) needs no pdfplumber."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pdfplumber
import pypdfium2 as pdfium
from reportlab.pdfgen import canvas

from postmottak.parsers.forms import parse_form
from postmottak.parsers.forms.glyphs import CANONICAL_CHECKED, CANONICAL_UNCHECKED
from postmottak.parsers.forms.pdf_reader import MIN_TABLE_PATHS, read_pdf
from postmottak.parsers.forms.vector_boxes import checkboxes, page_shapes, plumber_shapes, ruling_paths
from tests.forms import make_matrix_form as mm
from tests.forms.corpus import FIXTURES

VECTOR_FORM = FIXTURES / "form_vector_boxes.pdf"
GLYPH_FORM = FIXTURES / "form_org01_ja.pdf"


def _odd_boxes_pdf() -> tuple[bytes, list[bool]]:
    """One page of checkboxes drawn in the ways PDF writers draw them, top to bottom, and which are ticked."""
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=(600, 800))
    c.setFont("Helvetica", 11)
    ticked: list[bool] = []
    y = 740.0

    def label(text: str, tick: bool) -> None:
        nonlocal y
        c.drawString(130, y, text)
        ticked.append(tick)
        y -= 24

    # A stroked square ticked by a dark square filled inside it.
    c.rect(100, y - 1, 10, 10)
    c.rect(102.5, y + 1.5, 5, 5, stroke=0, fill=1)
    label("Fylt", True)
    # A path of four lines closed with "h", nothing in it.
    path = c.beginPath()
    path.moveTo(100, y - 1)
    path.lineTo(110, y - 1)
    path.lineTo(110, y + 9)
    path.lineTo(100, y + 9)
    path.close()
    c.drawPath(path)
    label("Lukket sti", False)
    # Drawn at half size by the transformation matrix, ticked by a polyline.
    c.saveState()
    c.translate(100, y - 1)
    c.scale(0.5, 0.5)
    c.rect(0, 0, 20, 20)
    tick = c.beginPath()
    tick.moveTo(3, 10)
    tick.lineTo(8, 3)
    tick.lineTo(17, 18)
    c.drawPath(tick)
    c.restoreState()
    label("Skalert", True)
    # Rounded corners (Bézier curves) and a light grey fill: a box, not a tick.
    c.setFillGray(0.9)
    c.roundRect(100, y - 1, 10, 10, 2, stroke=1, fill=1)
    c.setFillGray(0)
    label("Avrundet", False)
    # A box and its X in a form XObject, drawn rotated a quarter turn.
    c.beginForm("box")
    c.rect(0, 0, 10, 10)
    c.line(1.5, 1.5, 8.5, 8.5)
    c.line(1.5, 8.5, 8.5, 1.5)
    c.endForm()
    c.saveState()
    c.translate(110, y - 1)
    c.rotate(90)
    c.doForm("box")
    c.restoreState()
    label("Skjemaobjekt", True)
    # Two boxes in one path (two "re" subpaths), the second crossed.
    both = c.beginPath()
    both.rect(100, y - 1, 10, 10)
    both.rect(300, y - 1, 10, 10)
    c.drawPath(both)
    c.line(301.5, y + 0.5, 308.5, y + 7.5)
    c.line(301.5, y + 7.5, 308.5, y + 0.5)
    label("To i én sti", False)
    ticked.append(True)
    c.showPage()
    c.save()
    return buffer.getvalue(), ticked


def _boxes(
    data: bytes,
) -> tuple[list[list[tuple[tuple[float, ...], bool]]], list[list[tuple[tuple[float, ...], bool]]]]:
    """Per page, the vector checkboxes found from pdfium's page objects and from pdfplumber's, rounded, in order."""

    def rounded(found: list) -> list[tuple[tuple[float, ...], bool]]:
        return sorted((tuple(round(v, 2) for v in box), ticked) for box, ticked in found)

    pdf = pdfium.PdfDocument(data)
    try:
        from_pdfium = [rounded(checkboxes(page_shapes(page.raw, page.get_size()[1]), [])) for page in pdf]
    finally:
        pdf.close()
    with pdfplumber.open(io.BytesIO(data)) as plumber:
        from_plumber = [rounded(checkboxes(plumber_shapes(page), [])) for page in plumber.pages]
    return from_pdfium, from_plumber


def test_the_vector_box_forms_checkboxes_are_read_as_vector_boxes() -> None:
    expected = json.loads((FIXTURES / "form_vector_boxes.expected.json").read_text(encoding="utf-8"))
    result = parse_form(VECTOR_FORM.read_bytes(), "skjema.pdf")
    assert result.form_status == "parsed"
    assert result.organisation_types_checked == expected["organisation_types_checked"]
    assert result.q1_choice == expected["q1_choice"] == "ja"
    choices = [field for field in result.fields if field.kind == "choice"]
    assert len(choices) == 2
    assert all(field.read_by == "vector_box" for field in choices)


def test_vector_boxes_are_drawn_into_the_text_only_when_asked_for() -> None:
    data = VECTOR_FORM.read_bytes()
    plain = "".join(line.text for line in read_pdf(data).lines)
    with_boxes = "".join(line.text for line in read_pdf(data, vector_boxes=True).lines)
    assert CANONICAL_CHECKED not in plain and CANONICAL_UNCHECKED not in plain
    assert with_boxes.count(CANONICAL_CHECKED) == 2  # one organisation type, one answer to question 1
    assert with_boxes.count(CANONICAL_UNCHECKED) == 11


def test_pdfium_finds_the_vector_boxes_pdfplumber_finds_in_the_vector_box_form() -> None:
    from_pdfium, from_plumber = _boxes(VECTOR_FORM.read_bytes())
    assert from_pdfium == from_plumber
    assert [tick for page in from_pdfium for _box, tick in page].count(False) == 11
    assert [tick for page in from_pdfium for _box, tick in page].count(True) == 2


def test_boxes_drawn_scaled_rotated_in_a_form_xobject_or_as_curves_are_found_where_they_are_drawn() -> None:
    data, ticked = _odd_boxes_pdf()
    (from_pdfium,), (from_plumber,) = _boxes(data)
    assert from_pdfium == from_plumber
    # Every box is 10 points wide, drawn at x=100 (the second of the two in one path at x=300), top to bottom.
    by_position = sorted(from_pdfium, key=lambda found: (found[0][2], found[0][0]))
    assert [box[1] - box[0] for box, _ticked in by_position] == [10.0] * len(ticked)
    assert [box[0] for box, _ticked in by_position] == [100.0] * (len(ticked) - 1) + [300.0]
    assert [tick for _box, tick in by_position] == ticked


def test_checkbox_squares_and_their_ticks_are_not_counted_as_ruling_lines() -> None:
    vector_form = pdfium.PdfDocument(VECTOR_FORM.read_bytes())
    table_form = pdfium.PdfDocument(mm.build_vector_pdf(mm.FILLED[sorted(mm.FILLED)[0]]))
    try:
        first = vector_form[0]
        assert pdfium_path_count(first) == 16  # 13 boxes, an X of two lines, a tick
        assert ruling_paths(first.raw, MIN_TABLE_PATHS) == 0
        # A page with a ruled table (and boxes in its cells) is still one to look for tables on.
        assert ruling_paths(table_form[0].raw, MIN_TABLE_PATHS) == MIN_TABLE_PATHS
    finally:
        vector_form.close()
        table_form.close()


def pdfium_path_count(page: pdfium.PdfPage) -> int:
    import pypdfium2.raw as pdfium_c

    return sum(1 for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_PATH], max_depth=2))


def test_reading_the_vector_box_form_and_a_glyph_form_never_imports_pdfplumber() -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from postmottak.parsers.forms import parse_form\n"
        "for path in sys.argv[1:]:\n"
        "    result = parse_form(Path(path).read_bytes(), Path(path).name)\n"
        "    assert result.form_status == 'parsed', (path, result.warnings)\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('pdfplumber', 'pdfminer')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(VECTOR_FORM), str(GLYPH_FORM)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
