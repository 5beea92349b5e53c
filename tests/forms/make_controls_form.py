"""A third consultation's form, built the way form designers build fillable forms: Word content controls (plain
text, a drop-down list, a date picker, w14:checkbox checkboxes, rich-text answer blocks), contact fields in a Word
table (one of them typed straight into its cell, no control), and the same form as a fillable PDF (AcroForm text
fields, checkboxes, a radio group and a drop-down, drawn with reportlab).

`build_docx(answers)` and `build_pdf(answers)` build the blank (answers=None) or a filled copy; `expected(answers)`
is what a parser must read from either, written from the same answers. `build_pdf(answers, typed=True)` is a PDF
whose form fields are left empty and whose answers are printed on the page instead (the fields carry no values).
Everything is built in memory by the tests; nothing is committed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import docx
from docx.oxml import OxmlElement
from docx.oxml.ns import qn

from tests.forms import make_forms as mf

TITLE = "Høringssvarskjema: Forslag til forskrift om digitale innbyggertjenester"
CASE_LINE = "Saksnummer 24/815. Frist for å svare er 01.06.2024."
# (label, content-control tag, or None: typed straight into the table cell)
CONTACT = [("Navn på høringsinstans:", "navn"), ("Kontaktperson:", None), ("E-post:", "epost")]
DATE_LABEL = "Dato for svaret:"
TYPE_QUESTION = "Type høringsinstans:"
TYPES = ["Kommune", "Statlig virksomhet", "Organisasjon", "Privatperson"]
SERVICES_QUESTION = "Hvilke tjenester svarer dere om? Kryss av for alle som passer:"
SERVICES = ["Digital postkasse", "Timebestilling", "Innsyn i journal", "Betaling"]
IMPORTANCE_QUESTION = "Hvor viktig er forslaget for dere?"
IMPORTANCE = ["Svært viktig", "Viktig", "Lite viktig"]
CHANNELS_QUESTION = "Hvilke kanaler bruker dere overfor innbyggerne? Velg alle som passer:"
CHANNELS = ["Nettside", "E-post", "Brev", "Telefon"]
SUPPORT_QUESTION = "Støtter dere forslaget?"
SUPPORT = ["Ja", "Nei"]
REMARKS_QUESTION = "Andre merknader til forslaget?"
PLACEHOLDER = mf.PLACEHOLDER
LIST_PLACEHOLDER = "Velg et element."
DATE_PLACEHOLDER = "Klikk eller trykk for å skrive inn en dato."
# A placeholder of the form designer's own: a content control showing it is empty, whatever its text.
OWN_PLACEHOLDER = "Skriv navnet her"


@dataclass
class Answers:
    contact: list[str | None] = field(default_factory=lambda: [None, None, None])
    date: tuple[int, int, int] | None = None  # (year, month, day)
    type: str | None = None
    services: list[str] = field(default_factory=list)
    importance: str | None = None
    channels: list[str] = field(default_factory=list)
    support: str | None = None
    explanation: list[str] = field(default_factory=list)  # paragraphs
    remarks: list[str] = field(default_factory=list)


FILLED = {
    "kommune": Answers(
        contact=["Øvre Åsen kommune", "Kåre Ødegård", "postmottak@ovre-asen.kommune.no"],
        date=(2024, 5, 15),
        type="Kommune",
        services=["Digital postkasse", "Innsyn i journal", "Betaling"],
        importance="Viktig",
        channels=["Nettside", "Brev", "Telefon"],
        support="Ja",
        explanation=[
            "Forslaget gjør tjenestene enklere for innbyggerne.",
            "Vi ber om at små kommuner får støtte til innføringen.",
        ],
        remarks=["Frist for innføring bør være 2026."],
    ),
    "privat": Answers(
        contact=["Bjørg Æsøy", None, "bjorg@example.no"],
        type="Privatperson",
        services=["Timebestilling"],
        importance="Lite viktig",
        channels=["E-post"],
        support="Nei",
    ),
}


def _date_text(date: tuple[int, int, int]) -> str:
    year, month, day = date
    return f"{day:02d}.{month:02d}.{year:04d}"


def expected(answers: Answers) -> list[tuple[str, str, object]]:
    """(label as printed, kind, value) per field in form order, as `form.fields` must hold them."""
    return [
        *[(label, "text", value) for (label, _tag), value in zip(CONTACT, answers.contact, strict=True)],
        (DATE_LABEL, "text", _date_text(answers.date) if answers.date else None),
        (TYPE_QUESTION, "choice", [answers.type] if answers.type else []),
        (SERVICES_QUESTION, "choice", [s for s in SERVICES if s in answers.services]),
        (IMPORTANCE_QUESTION, "choice", [answers.importance] if answers.importance else []),
        (CHANNELS_QUESTION, "choice", [c for c in CHANNELS if c in answers.channels]),
        (SUPPORT_QUESTION, "choice", [answers.support] if answers.support else []),
        (SUPPORT_QUESTION, "text", "\n\n".join(answers.explanation) or None),
        (REMARKS_QUESTION, "text", "\n\n".join(answers.remarks) or None),
    ]


# How each field is read from the .docx and from the fillable PDF (the Word table cell typed into without a
# control is read as a table).
DOCX_READ_BY = ["content_control", "table", "content_control", *["content_control"] * 8]
PDF_READ_BY = ["acroform"] * 11


# --- .docx with content controls ---------------------------------------------------------------------------


def _sdt(properties: list, runs_or_paragraphs: list, *, tag: str | None, alias: str | None, empty: bool):
    sdt = OxmlElement("w:sdt")
    sdt_pr = OxmlElement("w:sdtPr")
    if alias:
        element = OxmlElement("w:alias")
        element.set(qn("w:val"), alias)
        sdt_pr.append(element)
    if tag:
        element = OxmlElement("w:tag")
        element.set(qn("w:val"), tag)
        sdt_pr.append(element)
    if empty:
        sdt_pr.append(OxmlElement("w:showingPlcHdr"))
    for item in properties:
        sdt_pr.append(item)
    sdt.append(sdt_pr)
    content = OxmlElement("w:sdtContent")
    for item in runs_or_paragraphs:
        content.append(item)
    sdt.append(content)
    return sdt


def _text_run(text: str, *, gray: bool = False):
    return mf._run(docx.Document().add_paragraph(), text, gray=gray)._r


def _plain_text_control(paragraph, value: str | None, *, tag: str | None, alias: str | None, own: bool = False):
    shown = value if value is not None else (OWN_PLACEHOLDER if own else PLACEHOLDER)
    sdt = _sdt(
        [OxmlElement("w:text")], [_text_run(shown, gray=value is None)], tag=tag, alias=alias, empty=value is None
    )
    paragraph._p.append(sdt)


def _date_control(paragraph, date: tuple[int, int, int] | None) -> None:
    picker = OxmlElement("w:date")
    if date:
        year, month, day = date
        picker.set(qn("w:fullDate"), f"{year:04d}-{month:02d}-{day:02d}T00:00:00Z")
    for name, value in (("w:dateFormat", "dd.MM.yyyy"), ("w:lid", "nb-NO"), ("w:calendar", "gregorian")):
        element = OxmlElement(name)
        element.set(qn("w:val"), value)
        picker.append(element)
    shown = _date_text(date) if date else DATE_PLACEHOLDER
    sdt = _sdt([picker], [_text_run(shown, gray=date is None)], tag="dato", alias=DATE_LABEL, empty=date is None)
    paragraph._p.append(sdt)


def _drop_down(document, value: str | None) -> None:
    listing = OxmlElement("w:dropDownList")
    for option in TYPES:
        item = OxmlElement("w:listItem")
        item.set(qn("w:displayText"), option)
        item.set(qn("w:value"), option.lower().replace(" ", "_"))
        listing.append(item)
    paragraph = document.add_paragraph()
    sdt = _sdt(
        [listing], [_text_run(value or LIST_PLACEHOLDER, gray=value is None)], tag="type", alias=None, empty=not value
    )
    paragraph._p.append(sdt)


SPEC = mf.FormSpec(name="controls")


def _checkbox(paragraph, checked: bool) -> None:
    mf._checkbox(paragraph, checked, SPEC)


def _rich_text_block(document, answer: list[str]) -> None:
    paragraphs = []
    for text in answer or [PLACEHOLDER]:
        paragraph = document.add_paragraph()
        mf._run(paragraph, text, gray=not answer)
        paragraphs.append(paragraph._p)
    body = document.element.body
    sdt = _sdt([OxmlElement("w:richText")], paragraphs, tag=None, alias=None, empty=not answer)
    body.append(sdt)
    sect_pr = body.find(qn("w:sectPr"))
    if sect_pr is not None:  # keep sectPr last in the body
        body.remove(sect_pr)
        body.append(sect_pr)


def build_docx(answers: Answers | None) -> bytes:
    filled = answers or Answers()
    document = docx.Document()
    mf._set_cell_spacing(document)
    mf._run(document.add_paragraph(), TITLE, bold=True)
    document.add_paragraph(CASE_LINE)
    table = document.add_table(rows=len(CONTACT), cols=2)
    table.style = "Table Grid"
    for row, ((label, tag), value) in enumerate(zip(CONTACT, filled.contact, strict=True)):
        table.cell(row, 0).text = label
        cell = table.cell(row, 1).paragraphs[0]
        if tag is None:
            cell.add_run(value or "")
        else:
            _plain_text_control(cell, value, tag=tag, alias=label, own=row == 0)
    paragraph = document.add_paragraph()
    paragraph.add_run(DATE_LABEL + " ")
    _date_control(paragraph, filled.date)
    mf._run(document.add_paragraph(), TYPE_QUESTION, bold=True)
    _drop_down(document, filled.type)
    mf._run(document.add_paragraph(), SERVICES_QUESTION, bold=True)
    mf.checkbox_options(document, SERVICES, filled.services, SPEC)
    for question, options, chosen in (
        (IMPORTANCE_QUESTION, IMPORTANCE, [filled.importance]),
        (CHANNELS_QUESTION, CHANNELS, filled.channels),
    ):
        mf._run(document.add_paragraph(), question, bold=True)
        mf.checkbox_options(document, options, chosen, SPEC)
    mf._run(document.add_paragraph(), SUPPORT_QUESTION, bold=True)
    mf.checkbox_options(document, SUPPORT, (filled.support,), SPEC, one_line=True)
    _rich_text_block(document, filled.explanation)
    mf._run(document.add_paragraph(), REMARKS_QUESTION, bold=True)
    _rich_text_block(document, filled.remarks)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# --- fillable PDF (AcroForm) --------------------------------------------------------------------------------


def build_pdf(
    answers: Answers | None, *, typed: bool = False, labels_before: bool = False, numbered_exports: bool = False
) -> bytes:
    """The form as a fillable PDF: AcroForm fields named by their tag (text, date, choice), tooltips with the
    printed label; the importance question a radio group whose export values are its option labels, the channels
    a multi-select list box. With `typed`, the fields stay empty and the answers are printed on the page instead.
    With `labels_before`, the importance options are printed before their buttons, not after; with
    `numbered_exports`, the buttons' export values are "1", "2", ... instead of the option labels."""
    from reportlab.lib.colors import black, white
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    filled = answers or Answers()
    values = filled if not typed else Answers()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=True)
    form = canvas.acroForm
    width, height = A4
    left, y = 60.0, height - 70.0
    style = {"borderColor": black, "fillColor": white, "textColor": black, "forceBorder": True}

    def label(text: str, *, bold: bool = False, size: float = 11, x: float = left) -> None:
        canvas.setFont("Helvetica-Bold" if bold else "Helvetica", size)
        canvas.drawString(x, y, text)

    def typed_text(paragraphs: list[str], x: float, top: float) -> None:
        canvas.setFont("Helvetica", 11)
        for index, paragraph in enumerate(paragraphs):
            canvas.drawString(x, top - 30 * index, paragraph)

    label(TITLE, bold=True, size=12)
    y -= 20
    label(CASE_LINE)
    y -= 30
    for (text, tag), value, printed in zip(CONTACT, values.contact, filled.contact, strict=True):
        label(text)
        name = tag or "kontaktperson"
        form.textfield(name=name, tooltip=text, x=250, y=y - 4, width=280, height=16, value=value or "", **style)
        if typed and printed:
            typed_text([printed], 254, y)
        y -= 24
    y -= 6
    label(DATE_LABEL)
    shown = _date_text(values.date) if values.date else ""
    form.textfield(name="dato", tooltip=DATE_LABEL, x=250, y=y - 4, width=120, height=16, value=shown, **style)
    if typed and filled.date:
        typed_text([_date_text(filled.date)], 254, y)
    y -= 30
    label(TYPE_QUESTION, bold=True)
    y -= 24
    form.choice(
        name="type",
        tooltip=TYPE_QUESTION,
        options=[(" ", " ")] + [(t, t) for t in TYPES],  # " ": nothing chosen (reportlab needs a value)
        value=values.type or " ",
        x=left,
        y=y - 4,
        width=200,
        height=16,
        **style,
    )
    if typed and filled.type:
        typed_text([filled.type], left + 4, y)
    y -= 30
    label(SERVICES_QUESTION, bold=True)
    y -= 22
    for index, service in enumerate(SERVICES):
        checked = service in values.services
        form.checkbox(name=f"tjeneste_{index + 1}", tooltip=service, x=left, y=y - 3, size=12, checked=checked, **style)
        label(service, x=left + 20)
        if typed and service in filled.services:
            typed_text(["X"], left + 2.5, y)
        y -= 20
    y -= 8
    label(IMPORTANCE_QUESTION, bold=True)
    y -= 22
    for index, option in enumerate(IMPORTANCE):
        form.radio(
            name="viktighet",
            tooltip=IMPORTANCE_QUESTION,
            value=str(index + 1) if numbered_exports else option,
            selected=values.importance == option,
            x=left + (90 if labels_before else 0),
            y=y - 3,
            size=12,
            buttonStyle="check",
            shape="square",
            **style,
        )
        label(option, x=left if labels_before else left + 20)
        if typed and filled.importance == option:
            typed_text(["X"], left + (90 if labels_before else 0) + 2.5, y)
        y -= 20
    y -= 8
    label(CHANNELS_QUESTION, bold=True)
    y -= 14
    form.listbox(
        name="kanaler",
        tooltip=CHANNELS_QUESTION,
        options=[(" ", " ")] + [(c, c) for c in CHANNELS],  # " ": nothing chosen (reportlab needs a value)
        value=[c for c in CHANNELS if c in values.channels] or [" "],
        fieldFlags="multiSelect",
        x=left,
        y=y - 56,
        width=200,
        height=60,
        **style,
    )
    if typed and filled.channels:
        typed_text([", ".join(c for c in CHANNELS if c in filled.channels)], left + 220, y - 10)
    y -= 76
    label(SUPPORT_QUESTION, bold=True)
    y -= 22
    x = left
    for option in SUPPORT:
        form.radio(
            name="stotter",
            tooltip=SUPPORT_QUESTION,
            value=option,
            selected=values.support == option,
            x=x,
            y=y - 3,
            size=12,
            buttonStyle="check",
            shape="square",
            **style,
        )
        label(option, x=x + 20)
        if typed and filled.support == option:
            typed_text(["X"], x + 2.5, y)
        x += 80
    y -= 26
    form.textfield(
        name="begrunnelse",
        tooltip="Begrunnelse",
        x=left,
        y=y - 60,
        width=470,
        height=70,
        value="\n".join(values.explanation),
        fieldFlags="multiline",
        **style,
    )
    if typed and filled.explanation:
        typed_text(filled.explanation, left + 4, y - 12)
    y -= 90
    label(REMARKS_QUESTION, bold=True)
    y -= 14
    form.textfield(
        name="merknader",
        tooltip=REMARKS_QUESTION,
        x=left,
        y=y - 60,
        width=470,
        height=70,
        value="\n".join(values.remarks),
        fieldFlags="multiline",
        **style,
    )
    if typed and filled.remarks:
        typed_text(filled.remarks, left + 4, y - 12)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
