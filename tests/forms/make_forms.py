"""Build the test corpus of filled-in høringssvarskjema forms for case 22/414.

Word forms are built with python-docx, faithfully like the real one (instruction header,
ten organisation-type checkboxes, contact fields, Q1 with three choices on one line, Q2 with
Mål 1..5, Q3, Q4, Word's placeholder for empty answers, "Side N av M" footers), and converted
to PDF with LibreOffice headless. Every form has an expectations file (the exact FormResult
fields) computed from the same parameters that built it.

    .venv/bin/python tests/forms/make_forms.py            # rebuild docx + pdf + expectations
    .venv/bin/python tests/forms/make_forms.py --no-pdf   # docx + expectations only

The committed outputs live in tests/fixtures/forms/ so the test run needs no LibreOffice.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import docx
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt, RGBColor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "forms"

TITLE = "Høringssvarskjema: Nasjonal e-helsestrategi for helse- og omsorgssektoren"
INTRO = "Det vedlagte høringsdokumentet oppsummerer fire tema som vi ønsker tilbakemelding på:"
BULLETS = [
    "Strategiens rolle",
    "Visjon, overordnende mål og målgrupper",
    "Fem prioriterte strategiske mål med målindikatorer",
    "Strategisk styring og oppfølging av strategien",
]
INSTRUCTION = "Der høringsinstansen har innspill, er det ønskelig med begrunnelse og eventuelt forslag til endringer."
MARK_IT = "Merk skjemaet med «Saksnummer 22/414», lagre som PDF og send på e-post til postmottak@ehelse.no"
DEADLINE = "Frist: 01.10.2022"
ORG_HEADING = "Kryss av for type organisasjon/virksomhet:"
ORG_TYPES = [
    "Statlig etat, ombud eller fagråd",
    "Fylkeskommune/Statsforvalteren",
    "Kommune/KS",
    "RHF/Helseforetak",
    "Fag- og interesseorganisasjoner",
    "Pasient- og brukerorganisasjon",
    "Forskning- og utdanningsorganisasjon",
    "Privatperson",
    "Privat virksomhet/næringsliv",
    "Annen enn nevnt ovenfor",
]
CONTACT_HEADING = "Kontaktinformasjon"
NAME_LABEL = "Navn på virksomheten (statlig etat, kommune, privatperson osv.):"
PERSON_LABEL = "Kontaktperson:"
EMAIL_LABEL = "E-postadresse:"
Q1 = (
    "1) Kan dere stille dere bak de fem strategiske målene, gitt strategiens rolle for å skape en felles "
    "langsiktig og forutsigbar retning for digitalisering på tvers av aktørene i helse- og omsorgssektoren?"
)
Q1_CHOICES = {"ja": "Ja, utdyp gjerne", "nei": "Nei, utdyp gjerne", "vet_ikke": "Vet ikke, utdyp gjerne"}
Q2 = "2) Har dere tilbakemelding på de fem strategiske målene med målindikatorer?"
GOALS = [
    "Mål 1: Aktiv medvirkning i egen og næres helse",
    "Mål 2: Enklere arbeidshverdag",
    "Mål 3: Helsedata til fornying og forbedring",
    "Mål 4: Tilgjengelig informasjon og styrket samhandling",
    "Mål 5: Samarbeid og virkemidler som styrker gjennomføringskraft",
]
Q3 = "3) Har dere tilbakemeldinger på prosessen for hvordan strategien skal følges opp?"
Q4 = "4) Andre innspill og tilbakemeldinger?"
PLACEHOLDER = "Klikk eller trykk her for å skrive inn tekst."

# Checkbox renderings: content controls (w14:checkbox), plain glyph runs, Word's Wingdings w:sym.
CheckboxStyle = str  # "content_control" | "glyph" | "wingdings"

SENTENCES = [
    "Strategien peker på en retning for e-helse som sektoren er enige om og jobber mot.",
    "Samtidig gjentar den behov og mål fra tidligere strategier som fortsatt ikke er nådd.",
    "Det må prioriteres sterkere både i primær- og spesialisthelsetjenesten.",
    "Styrket finansiering er en forutsetning for å nå målene, særlig i små kommuner.",
    "Vi støtter målet om at innbyggerne skal kunne medvirke aktivt i egen og næres helse.",
    "Helsepersonell trenger brukervennlige verktøy som kommer «i stedet for» og ikke «i tillegg til».",
    "Informasjonssikkerhet og personvern er en forutsetning for å lykkes med ambisjonene.",
    "Kjernejournal og pasientens legemiddelliste må tas i bruk i hele tjenesten før 2025.",
    "Målindikatorene bør kunne måles årlig og sammenlignes på tvers av regionene.",
    "Det er viktig at ansvaret for oppfølgingen plasseres tydelig hos én aktør.",
    "Vi ønsker å bidra i det videre arbeidet med handlingsplanen for e-helse.",
    "Ørsta og Åfjord har gode erfaringer med velferdsteknologi i hjemmetjenesten.",
    "Samhandlingen mellom sykehus og kommuner er avhengig av tillit og felles standarder.",
    "Digital kompetanse hos ledere og ansatte må styrkes gjennom etter- og videreutdanning.",
    "Risikoanalyser må ha fokus på kliniske konsekvenser ved langvarig bortfall av IKT-systemer.",
    "Tjenestene bør utvikles sammen med pasient- og brukerorganisasjonene fra første dag.",
    "Felles grunnmur for digitale tjenester gir lavere kostnader for alle aktørene over tid.",
    "Vi savner en tydeligere beskrivelse av hvordan private virksomheter kan bidra.",
]


def paragraphs(seed: int, count: int, sentences_per_paragraph: tuple[int, int] = (2, 4)) -> list[str]:
    rng = random.Random(seed)
    result = []
    for _ in range(count):
        n = rng.randint(*sentences_per_paragraph)
        result.append(" ".join(rng.choice(SENTENCES) for _ in range(n)))
    return result


@dataclass
class FormSpec:
    name: str
    org_types: list[str] = field(default_factory=list)
    organisation_name: str | None = "Eksempel kommune"
    contact_person: str | None = "Kari Nordmann"
    email: str | None = "kari.nordmann@eksempel.kommune.no"
    q1_choices: list[str] = field(default_factory=list)
    q1: list[str] | None = None
    goals: list[list[str] | None] = field(default_factory=lambda: [None] * 5)
    q3: list[str] | None = None
    q4: list[str] | None = None
    checkbox_style: CheckboxStyle = "content_control"
    checked_glyph: str = "\u2612"
    unchecked_glyph: str = "\u2610"
    # Sections the respondent deleted (label and answer): "goal_3", "q4_text", ...
    deleted: tuple[str, ...] = ()
    # Empty paragraphs between answer paragraphs (as in the real seed) instead of paragraph spacing only.
    blank_lines_between_paragraphs: bool = False
    header_text: str | None = None
    make_docx_fixture: bool = False

    def expected(self) -> dict:
        def text(value: list[str] | None) -> str | None:
            if not value:
                return None
            return "\n\n".join(" ".join(p.split()) for p in value) or None

        checked = [label for label in ORG_TYPES if label in self.org_types]
        result = {
            "organisation_type": checked[0] if len(checked) == 1 else None,
            "organisation_types_checked": checked,
            "organisation_name": " ".join(self.organisation_name.split()) if self.organisation_name else None,
            "contact_person": self.contact_person,
            "email": self.email,
            "q1_choice": self.q1_choices[0] if len(self.q1_choices) == 1 else None,
            "q1_text": text(self.q1),
            **{f"goal_{i + 1}": text(goal) for i, goal in enumerate(self.goals)},
            "q3_text": text(self.q3),
            "q4_text": text(self.q4),
        }
        codes = []
        for key in self.deleted:
            result[key] = None
            codes.append(f"label_missing:{key}")
        if not checked:
            codes.append("checkbox.none_ticked:organisation_type")
        elif len(checked) > 1:
            codes.append("checkbox.several_ticked:organisation_type")
        if not self.q1_choices:
            codes.append("checkbox.none_ticked:q1_choice")
        elif len(self.q1_choices) > 1:
            codes.append("checkbox.several_ticked:q1_choice")
        result["form_status"] = "partial" if self.deleted else "parsed"
        result["warning_codes"] = sorted(codes)
        result["profile"] = "hoeringssvar-22-414"
        return result


# --- docx building -----------------------------------------------------------------------------


def _set_cell_spacing(document: docx.document.Document) -> None:
    normal = document.styles["Normal"]
    normal.font.name = "Calibri"
    normal.font.size = Pt(11)
    normal.paragraph_format.space_after = Pt(8)
    normal.paragraph_format.line_spacing = 1.08


def _run(paragraph, text: str, *, bold: bool = False, font: str | None = None, gray: bool = False):
    run = paragraph.add_run(text)
    run.bold = bold
    if font:
        run.font.name = font
        rfonts = run._r.get_or_add_rPr().get_or_add_rFonts()
        for attribute in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
            rfonts.set(qn(attribute), font)
    if gray:
        run.font.color.rgb = RGBColor(0x80, 0x80, 0x80)
    return run


def _w14(tag: str) -> str:
    return "{http://schemas.microsoft.com/office/word/2010/wordml}" + tag


def checkbox_options(
    document, options: Sequence[str], ticked: Container[str | None], spec: FormSpec, *, one_line: bool = False
) -> None:
    """A choice group's options, each after its box (ticked when in `ticked`): a paragraph each, or all on one line."""
    line = document.add_paragraph() if one_line else None
    for index, option in enumerate(options):
        paragraph = line if line is not None else document.add_paragraph()
        if line is not None and index:
            paragraph.add_run("    ")
        _checkbox(paragraph, option in ticked, spec)
        paragraph.add_run(" " + option)


def _checkbox(paragraph, checked: bool, spec: FormSpec) -> None:
    glyph = spec.checked_glyph if checked else spec.unchecked_glyph
    if spec.checkbox_style == "glyph":
        _run(paragraph, glyph, font="Segoe UI Symbol")
        return
    if spec.checkbox_style == "wingdings":
        run = paragraph.add_run()
        sym = OxmlElement("w:sym")
        sym.set(qn("w:font"), "Wingdings")
        sym.set(qn("w:char"), "F0FE" if checked else "F0A8")
        run._r.append(sym)
        return
    # Word's content-control checkbox: the state is w14:checked; the glyph is its rendering.
    sdt = OxmlElement("w:sdt")
    sdt_pr = OxmlElement("w:sdtPr")
    box = docx.oxml.parse_xml(
        '<w14:checkbox xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml">'
        f'<w14:checked w14:val="{1 if checked else 0}"/>'
        '<w14:checkedState w14:val="2612" w14:font="MS Gothic"/>'
        '<w14:uncheckedState w14:val="2610" w14:font="MS Gothic"/></w14:checkbox>'
    )
    sdt_pr.append(box)
    sdt.append(sdt_pr)
    content = OxmlElement("w:sdtContent")
    holder = docx.Document().add_paragraph()
    run = _run(holder, glyph, font="MS Gothic")
    content.append(run._r)
    sdt.append(content)
    paragraph._p.append(sdt)


def _inline_value(paragraph, value: str | None) -> None:
    """A plain-text content control after a contact label (placeholder when empty)."""
    sdt = OxmlElement("w:sdt")
    sdt_pr = OxmlElement("w:sdtPr")
    if value is None:
        sdt_pr.append(OxmlElement("w:showingPlcHdr"))
    sdt_pr.append(OxmlElement("w:text"))
    sdt.append(sdt_pr)
    content = OxmlElement("w:sdtContent")
    holder = docx.Document().add_paragraph()
    run = _run(holder, value if value is not None else PLACEHOLDER, gray=value is None)
    content.append(run._r)
    sdt.append(content)
    paragraph._p.append(sdt)


def _answer_block(document, answer: list[str] | None, spec: FormSpec) -> None:
    """A rich-text content control holding the answer paragraphs (or Word's placeholder)."""
    sdt = OxmlElement("w:sdt")
    sdt_pr = OxmlElement("w:sdtPr")
    if not answer:
        sdt_pr.append(OxmlElement("w:showingPlcHdr"))
    sdt.append(sdt_pr)
    content = OxmlElement("w:sdtContent")
    sdt.append(content)
    texts = answer or [PLACEHOLDER]
    for index, text in enumerate(texts):
        if index and spec.blank_lines_between_paragraphs:
            content.append(document.add_paragraph()._p)
        paragraph = document.add_paragraph()
        _run(paragraph, text, gray=not answer)
        content.append(paragraph._p)
    document.element.body.append(sdt)
    # Keep sectPr last in the body.
    sect_pr = document.element.body.find(qn("w:sectPr"))
    if sect_pr is not None:
        document.element.body.remove(sect_pr)
        document.element.body.append(sect_pr)


def _field(paragraph, instruction: str) -> None:
    simple = OxmlElement("w:fldSimple")
    simple.set(qn("w:instr"), instruction)
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "1"
    run.append(text)
    simple.append(run)
    paragraph._p.append(simple)


def build_docx(spec: FormSpec) -> bytes:
    document = docx.Document()
    _set_cell_spacing(document)
    section = document.sections[0]
    footer = section.footer.paragraphs[0]
    footer.add_run("Side ")
    _field(footer, "PAGE")
    footer.add_run(" av ")
    _field(footer, "NUMPAGES")
    if spec.header_text:
        section.header.paragraphs[0].add_run(spec.header_text)

    title = document.add_paragraph()
    _run(title, TITLE, bold=True).font.size = Pt(14)
    document.add_paragraph(INTRO)
    for bullet in BULLETS:
        document.add_paragraph(bullet, style="List Bullet")
    document.add_paragraph(INSTRUCTION)
    document.add_paragraph(MARK_IT)
    _run(document.add_paragraph(), DEADLINE, bold=True)
    _run(document.add_paragraph(), ORG_HEADING, bold=True)
    for label in ORG_TYPES:
        paragraph = document.add_paragraph()
        paragraph.paragraph_format.space_after = Pt(0)
        _checkbox(paragraph, label in spec.org_types, spec)
        paragraph.add_run(label)
    _run(document.add_paragraph(), CONTACT_HEADING, bold=True)
    for key, label, value in (
        ("organisation_name", NAME_LABEL, spec.organisation_name),
        ("contact_person", PERSON_LABEL, spec.contact_person),
        ("email", EMAIL_LABEL, spec.email),
    ):
        if key in spec.deleted:
            continue
        paragraph = document.add_paragraph()
        paragraph.add_run(label + " ")
        _inline_value(paragraph, value)

    if "q1_text" not in spec.deleted:
        _run(document.add_paragraph(), Q1, bold=True)
        choices = document.add_paragraph()
        for index, (value, label) in enumerate(Q1_CHOICES.items()):
            if index:
                choices.add_run("  ")
            _checkbox(choices, value in spec.q1_choices, spec)
            choices.add_run(" " + label)
        _answer_block(document, spec.q1, spec)
    if "q2" not in spec.deleted:
        _run(document.add_paragraph(), Q2, bold=True)
    for index, title_text in enumerate(GOALS):
        if f"goal_{index + 1}" in spec.deleted:
            continue
        _run(document.add_paragraph(), title_text, bold=True)
        _answer_block(document, spec.goals[index], spec)
    for key, label, answer in (("q3_text", Q3, spec.q3), ("q4_text", Q4, spec.q4)):
        if key in spec.deleted:
            continue
        _run(document.add_paragraph(), label, bold=True)
        _answer_block(document, answer, spec)
    buffer = __import__("io").BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# --- the corpus --------------------------------------------------------------------------------

ORG_NAMES = [
    "Helsedirektoratets fagråd for digitalisering",
    "Vestland fylkeskommune",
    "Ørland kommune",
    "Helse Nord RHF",
    "Den norske legeforening",
    "Kreftforeningen",
    "Universitetet i Tromsø – Norges arktiske universitet",
    "Åse Ødegård",
    "Bærum Helseteknologi AS",
    "Stiftelsen Åpne Standarder",
]
PEOPLE = [
    "Ola Nordmann",
    "Kari Hansen",
    "Øystein Ødegård",
    "Ingrid Æsøy",
    "Per Åsmund Berg",
    "Sine Emborg Tolfsen",
    "Hanne Løvås",
    "Åse Ødegård",
    "Bjørn Kåre Sæther",
    "Mette Brå",
]
CHOICE_CYCLE = ["ja", "nei", "vet_ikke"]


def corpus() -> list[FormSpec]:
    specs: list[FormSpec] = []
    for index, org_type in enumerate(ORG_TYPES):
        choice = CHOICE_CYCLE[index % 3]
        person = PEOPLE[index]
        login = person.lower().replace(" ", ".").replace("ø", "o").replace("æ", "ae").replace("å", "a")
        specs.append(
            FormSpec(
                name=f"form_org{index + 1:02d}_{choice}",
                org_types=[org_type],
                organisation_name=ORG_NAMES[index],
                contact_person=person,
                email=f"{login}@example.no",
                q1_choices=[choice],
                q1=paragraphs(index, 1 + index % 3),
                goals=[paragraphs(100 + index * 5 + g, 1) if (index + g) % 3 else None for g in range(5)],
                q3=paragraphs(200 + index, 1) if index % 2 else None,
                q4=paragraphs(300 + index, 2) if index % 4 == 0 else None,
                make_docx_fixture=index in (0, 4),
            )
        )
    specs.append(
        FormSpec(
            name="form_none_ticked",
            organisation_name="NITO – Norges ingeniør- og teknologorganisasjon",
            contact_person="Sine Emborg Tolfsen",
            email="sine.emborg.tolfsen@nito.no",
            q1=paragraphs(400, 3),
            goals=[None, paragraphs(401, 2), paragraphs(402, 2), paragraphs(403, 2), None],
            q3=paragraphs(404, 2),
            blank_lines_between_paragraphs=True,
            make_docx_fixture=True,
        )
    )
    specs.append(
        FormSpec(
            name="form_several_ticked",
            org_types=["Kommune/KS", "Privat virksomhet/næringsliv"],
            organisation_name="Ålesund kommune og Sunnmøre Regionråd IKS",
            contact_person="Trond Ødegaard",
            email="postmottak@alesund.kommune.no",
            q1_choices=["ja", "nei"],
            q1=paragraphs(410, 1),
            goals=[paragraphs(411, 1), None, None, None, paragraphs(412, 1)],
        )
    )
    specs.append(
        FormSpec(
            name="form_long_multipage",
            org_types=["RHF/Helseforetak"],
            organisation_name="Helse Sør-Øst RHF",
            contact_person="Åsmund Ærø",
            email="asmund.aero@helse-sorost.no",
            q1_choices=["vet_ikke"],
            q1=paragraphs(420, 9, (3, 6)),
            goals=[paragraphs(421 + g, 4, (3, 6)) for g in range(5)],
            q3=paragraphs(430, 6, (3, 6)),
            q4=paragraphs(431, 5, (3, 6)),
            header_text="Helse Sør-Øst RHF – høringssvar",
            make_docx_fixture=True,
        )
    )
    specs.append(
        FormSpec(
            name="form_contact_wrap",
            org_types=["Pasient- og brukerorganisasjon"],
            organisation_name=(
                "Landsforeningen for pårørende og brukere av kommunale helse- og omsorgstjenester, "
                "avdeling for digital samhandling og kvalitetsforbedring i Trøndelag og Møre og Romsdal"
            ),
            contact_person="Marit Kristiansen Åsheim-Løvdahl",
            email="marit.kristiansen.asheim-lovdahl@landsforeningen-for-parorende.no",
            q1_choices=["ja"],
            q1=paragraphs(440, 2),
        )
    )
    specs.append(
        FormSpec(
            name="form_norwegian_letters",
            org_types=["Privatperson"],
            organisation_name="Bjørg Æsøy Håland",
            contact_person="Bjørg Æsøy Håland",
            email="bjorg.haland@epost.no",
            q1_choices=["nei"],
            q1=[
                "Jeg er ærlig talt bekymret for personvernet på Østlandet og i Ålesund.",
                "Blåbærsyltetøy, rødgrøt og «e-helse» – æ ø å Æ Ø Å é ü.",
            ],
            goals=[["Økt åpenhet rundt bruk av helsedata må være på plass før innføring."], None, None, None, None],
            q4=["Ha det bra fra Tromsø!"],
        )
    )
    specs.append(
        FormSpec(
            name="form_deleted_sections",
            org_types=["Forskning- og utdanningsorganisasjon"],
            organisation_name="OsloMet – storbyuniversitetet",
            contact_person="Jon Ås",
            email="jon.as@oslomet.no",
            q1_choices=["ja"],
            q1=paragraphs(450, 1),
            goals=[paragraphs(451, 1), paragraphs(452, 1), paragraphs(453, 1), paragraphs(454, 1), paragraphs(455, 1)],
            q4=paragraphs(456, 1),
            deleted=("goal_3", "q3_text"),
        )
    )
    specs.append(
        FormSpec(
            name="form_all_empty",
            org_types=["Annen enn nevnt ovenfor"],
            organisation_name=None,
            contact_person=None,
            email=None,
            q1_choices=["vet_ikke"],
        )
    )
    for name, style, checked, unchecked, org in (
        ("form_glyph_boxes", "glyph", "\u2612", "\u2610", "Kommune/KS"),
        ("form_glyph_ballot_check", "glyph", "\u2611", "\u2610", "Fylkeskommune/Statsforvalteren"),
        ("form_glyph_check_mark", "glyph", "\u2713", "\u2610", "Statlig etat, ombud eller fagråd"),
        ("form_glyph_ballot_x", "glyph", "\u2717", "\u2610", "Fag- og interesseorganisasjoner"),
        ("form_wingdings", "wingdings", "", "", "Privat virksomhet/næringsliv"),
    ):
        specs.append(
            FormSpec(
                name=name,
                org_types=[org],
                organisation_name="Sykehuspartner HF" if style == "glyph" else "Norsk Helsenett SF",
                contact_person="Liv Ødegård",
                email="liv.odegard@example.no",
                q1_choices=["nei"],
                q1=paragraphs(zlib.crc32(name.encode()) % 1000, 2),
                goals=[None, paragraphs(460, 1), None, None, None],
                checkbox_style=style,
                checked_glyph=checked or "\u2612",
                unchecked_glyph=unchecked or "\u2610",
                make_docx_fixture=True,
            )
        )
    return specs


def convert_to_pdf(docx_paths: list[Path], out_dir: Path) -> None:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        raise SystemExit("LibreOffice (soffice) not found: apt-get install -y libreoffice-writer-nogui")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                soffice,
                f"-env:UserInstallation=file://{profile}",
                "--headless",
                "--convert-to",
                "pdf",
                "--outdir",
                str(out_dir),
                *map(str, docx_paths),
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-pdf", action="store_true", help="skip the LibreOffice conversion")
    parser.add_argument("--out", type=Path, default=FIXTURES)
    args = parser.parse_args(argv)
    out: Path = args.out
    (out / "docx").mkdir(parents=True, exist_ok=True)
    specs = corpus()
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        docx_paths = []
        for spec in specs:
            data = build_docx(spec)
            path = work_dir / f"{spec.name}.docx"
            path.write_bytes(data)
            docx_paths.append(path)
            if spec.make_docx_fixture:
                (out / "docx" / path.name).write_bytes(data)
            (out / f"{spec.name}.expected.json").write_text(
                json.dumps(spec.expected(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
        if not args.no_pdf:
            convert_to_pdf(docx_paths, out)
    print(f"wrote {len(specs)} forms to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
