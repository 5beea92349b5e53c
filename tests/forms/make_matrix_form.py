"""A second consultation's form, unlike 22/414: contact fields in a Word table, a multiple-choice group (one option
a line), a Ja/Nei question with its explanation, a table of checkboxes (proposals x Enig/Delvis enig/Uenig/Vet
ikke) and a free-text question; checkboxes are Word content controls (w14:checkbox).

`build_docx(answers)` builds the blank (answers=None) or a filled copy; `expected(answers)` is what a parser must
read from it, written from the same answers. The PDFs (LibreOffice; with the blank 22/414 form) are committed in
tests/fixtures/forms/matrix/:

    .venv/bin/python tests/forms/make_matrix_form.py     # rebuild the committed PDFs
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import docx
from docx.shared import Cm

from tests.forms import make_forms as mf

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "forms" / "matrix"
TITLE = "Høringssvarskjema: Forslag til endringer i pasientjournalforskriften"
CASE_LINE = "Saksnummer 23/1234. Frist for å svare er 15.03.2023."
CONTACT = ["Navn på høringsinstans:", "Kontaktperson:", "E-post:"]
ROLES_QUESTION = "Hvilke roller har dere? Kryss av for alle som passer:"
ROLES = ["Tjenesteyter", "Pasient- eller brukerorganisasjon", "Leverandør", "Tilsynsmyndighet"]
JA_NEI_QUESTION = "Støtter dere forslaget om felles journal for helse- og omsorgstjenesten?"
JA_NEI = ["Ja", "Nei"]
MATRIX_QUESTION = "Hva mener dere om forslagene?"
COLUMNS = ["Enig", "Delvis enig", "Uenig", "Vet ikke"]
PROPOSALS = ["§ 3 Journalplikt", "§ 5 Tilgangsstyring", "§ 8 Logging av oppslag"]
LAST_QUESTION = "Andre merknader til forslaget?"
PLACEHOLDER = mf.PLACEHOLDER


@dataclass
class Answers:
    contact: list[str | None] = field(default_factory=lambda: [None, None, None])
    roles: list[str] = field(default_factory=list)
    ja_nei: str | None = None
    explanation: str | None = None
    matrix: dict[str, list[str]] = field(default_factory=dict)
    remarks: str | None = None


FILLED = {
    "bergen": Answers(
        contact=["Helse Bergen HF", "Åse Ødegård", "ase.odegard@helse-bergen.no"],
        roles=["Tjenesteyter", "Leverandør"],
        ja_nei="Ja",
        explanation="Felles journal gir bedre pasientsikkerhet, men krever tydelig tilgangsstyring.",
        matrix={
            "§ 3 Journalplikt": ["Enig"],
            "§ 5 Tilgangsstyring": ["Delvis enig"],
            "§ 8 Logging av oppslag": ["Uenig"],
        },
        remarks="Vi ber om en overgangsperiode på to år.",
    ),
    "forening": Answers(
        contact=["Pasientforeningen Ærlig Talt", None, "post@aerligtalt.no"],
        roles=["Pasient- eller brukerorganisasjon"],
        ja_nei="Nei",
        explanation=None,
        matrix={"§ 5 Tilgangsstyring": ["Uenig"], "§ 8 Logging av oppslag": ["Vet ikke"]},
    ),
}


SPEC = mf.FormSpec(name="matrix")


def _checkbox(paragraph, checked: bool) -> None:
    mf._checkbox(paragraph, checked, SPEC)


def build_docx(answers: Answers | None, proposals: list[str] = PROPOSALS) -> bytes:
    filled = answers or Answers()
    document = docx.Document()
    mf._set_cell_spacing(document)
    mf._run(document.add_paragraph(), TITLE, bold=True)
    document.add_paragraph(CASE_LINE)
    table = document.add_table(rows=len(CONTACT), cols=2)
    table.style = "Table Grid"
    for row, (label, value) in enumerate(zip(CONTACT, filled.contact, strict=True)):
        table.cell(row, 0).text = label
        table.cell(row, 1).text = value or ""
    document.add_paragraph()
    mf._run(document.add_paragraph(), ROLES_QUESTION, bold=True)
    mf.checkbox_options(document, ROLES, filled.roles, SPEC)
    mf._run(document.add_paragraph(), JA_NEI_QUESTION, bold=True)
    mf.checkbox_options(document, JA_NEI, (filled.ja_nei,), SPEC, one_line=True)
    document.add_paragraph(filled.explanation or PLACEHOLDER)
    mf._run(document.add_paragraph(), MATRIX_QUESTION, bold=True)
    grid = document.add_table(rows=1 + len(proposals), cols=1 + len(COLUMNS))
    grid.style = "Table Grid"
    grid.autofit = False
    widths = [Cm(5.5)] + [Cm(2.6)] * len(COLUMNS)
    for column, width in enumerate(widths):
        grid.columns[column].width = width
        for cell in grid.columns[column].cells:
            cell.width = width
    grid.cell(0, 0).text = "Forslag"
    for column, name in enumerate(COLUMNS, start=1):
        grid.cell(0, column).text = name
    for row, proposal in enumerate(proposals, start=1):
        grid.cell(row, 0).text = proposal
        for column, name in enumerate(COLUMNS, start=1):
            _checkbox(grid.cell(row, column).paragraphs[0], name in filled.matrix.get(proposal, []))
    document.add_paragraph()
    mf._run(document.add_paragraph(), LAST_QUESTION, bold=True)
    document.add_paragraph(filled.remarks or PLACEHOLDER)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def expected(answers: Answers, proposals: list[str] = PROPOSALS) -> list[tuple[str, str, object]]:
    """(label as printed, kind, value) per field in form order, as `form.fields` must hold them."""
    return [
        *[(label, "text", value) for label, value in zip(CONTACT, answers.contact, strict=True)],
        (ROLES_QUESTION, "choice", [role for role in ROLES if role in answers.roles]),
        (JA_NEI_QUESTION, "choice", [answers.ja_nei] if answers.ja_nei else []),
        (JA_NEI_QUESTION, "text", answers.explanation),
        (MATRIX_QUESTION, "matrix", {p: [c for c in COLUMNS if c in answers.matrix.get(p, [])] for p in proposals}),
        (LAST_QUESTION, "text", answers.remarks),
    ]


def build_vector_pdf(answers: Answers, proposals: list[str] = PROPOSALS) -> bytes:
    """The filled form drawn with reportlab, not converted from Word: ruled tables (contact fields, the matrix) and
    checkboxes drawn as squares, a ticked one crossed by two lines, with no glyph."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=True)
    left, box = 72.0, 9.0
    y = A4[1] - 72.0

    def text(value: str, x: float, top: float, *, bold: bool = False) -> None:
        canvas.setFont("Helvetica-Bold" if bold else "Helvetica", 10)
        canvas.drawString(x, top, value)

    def square(x: float, baseline: float, ticked: bool) -> None:
        canvas.rect(x, baseline - 1, box, box)
        if ticked:
            canvas.line(x + 1.5, baseline + 0.5, x + box - 1.5, baseline + box - 2.5)
            canvas.line(x + 1.5, baseline + box - 2.5, x + box - 1.5, baseline + 0.5)

    def table(rows: list[list[str | bool]], widths: list[float], top: float) -> float:
        """Rows of cells (text, or a box ticked or not) in a grid of ruling lines; the y below the table."""
        height = 20.0
        for r, row in enumerate(rows):
            row_top = top - r * height
            x = left
            for value, width in zip(row, widths, strict=True):
                canvas.rect(x, row_top - height, width, height)
                if isinstance(value, bool):
                    square(x + (width - box) / 2, row_top - 14, value)
                elif value:
                    text(value, x + 4, row_top - 14)
                x += width
        return top - len(rows) * height - 24

    text(TITLE, left, y, bold=True)
    text(CASE_LINE, left, y - 16)
    y = table([[label, value or ""] for label, value in zip(CONTACT, answers.contact, strict=True)], [150, 300], y - 30)
    text(ROLES_QUESTION, left, y, bold=True)
    for role in ROLES:
        y -= 16
        square(left, y, role in answers.roles)
        text(role, left + 14, y)
    y -= 24
    text(JA_NEI_QUESTION, left, y, bold=True)
    y -= 16
    for index, option in enumerate(JA_NEI):
        square(left + 60 * index, y, answers.ja_nei == option)
        text(option, left + 60 * index + 14, y)
    if answers.explanation:
        y -= 16
        text(answers.explanation, left, y)
    y -= 24
    text(MATRIX_QUESTION, left, y, bold=True)
    rows: list[list[str | bool]] = [["Forslag", *COLUMNS]]
    rows += [[p, *(c in answers.matrix.get(p, []) for c in COLUMNS)] for p in proposals]
    y = table(rows, [150, 70, 70, 70, 70], y - 8)
    text(LAST_QUESTION, left, y, bold=True)
    if answers.remarks:
        text(answers.remarks, left, y - 16)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


# How each field of `expected` is read from the .docx and from its PDF (LibreOffice).
DOCX_READ_BY = ["table"] * 3 + ["content_control", "content_control", "text", "content_control", "text"]
PDF_READ_BY = ["table"] * 3 + ["glyph", "glyph", "text", "table", "text"]
VECTOR_PDF_READ_BY = ["table"] * 3 + ["vector_box", "vector_box", "text", "table", "text"]


def blank_22_414() -> bytes:
    """The 22/414 form as the consultation sent it out: nothing ticked, every answer Word's placeholder."""
    return mf.build_docx(mf.FormSpec(name="blank_22_414", organisation_name=None, contact_person=None, email=None))


def to_pdf(docx_bytes: bytes, name: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / f"{name}.docx"
        source.write_bytes(docx_bytes)
        subprocess.run(
            ["soffice", "--headless", "--convert-to", "pdf", "--outdir", folder, str(source)],
            check=True,
            capture_output=True,
            timeout=180,
        )
        return (Path(folder) / f"{name}.pdf").read_bytes()


def main() -> int:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / "blank.pdf").write_bytes(to_pdf(build_docx(None), "blank"))
    (FIXTURES / "blank_22_414.pdf").write_bytes(to_pdf(blank_22_414(), "blank_22_414"))
    for name, answers in FILLED.items():
        (FIXTURES / f"{name}.pdf").write_bytes(to_pdf(build_docx(answers), name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
