"""Archival format: every document of a closed case gets a PDF/A-2b version in the extract, with the conversion
recorded (Noark 5 konvertering), checked as PDF/A, and checksums that match. One extract is shared by the tests of
this module (LibreOffice's start-up is the slow part)."""

from __future__ import annotations

import hashlib
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from postmottak.casefile import models as m
from postmottak.casefile.noark5.extract import export_case
from postmottak.casefile.noark5.pdfa import check_pdfa
from postmottak.casefile.noark5.validate import validate_extract
from postmottak.casefile.storage import DocumentStore
from tests.archive.builders import (
    CASE_DEADLINE,
    CASE_NUMBER,
    CASE_TITLE,
    Attachment,
    Response,
    make_pdf,
    open_test_database,
    oslo,
    register_response,
)
from tests.archive.conftest import run_cli
from tests.dbutil import backend_params

AS = "{http://www.arkivverket.no/standarder/noark5/arkivstruktur}"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def docx_bytes(text: str) -> bytes:
    from docx import Document

    document = Document()
    document.add_heading("Høringssvar til sak 22/414", 1)
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def pdf_version(version: str) -> bytes:
    """A plain PDF whose header says the given version (reportlab writes 1.3; pikepdf re-saves it)."""
    import pikepdf

    source = make_pdf([f"Høringssvar i PDF {version}", "Vi støtter strategien."], f"PDF {version}")
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(source)) as pdf:
        pdf.save(
            out,
            force_version=version,
            object_stream_mode=pikepdf.ObjectStreamMode.generate
            if version >= "1.5"
            else pikepdf.ObjectStreamMode.preserve,
            deterministic_id=True,
        )
    data = out.getvalue()
    assert data.startswith(f"%PDF-{version}".encode())
    return data


def image_bytes(fmt: str, colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.new("RGBA" if fmt == "PNG" else "RGB", (320, 200), colour)
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@dataclass
class Archived:
    extract: Path
    config: Path
    db: object
    store: DocumentStore
    tmp: Path
    documents: int  # documents in the case (one dokumentbeskrivelse each)


@pytest.fixture(scope="module", params=backend_params())
def archived(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archived]:
    tmp = tmp_path_factory.mktemp(f"archival-{request.param}")
    database = open_test_database(request.param, tmp)
    store = DocumentStore(tmp / "documents")
    config = tmp / "postmottak.toml"
    config.write_text(
        f'[database]\nurl = "{database.url}"\n\n[storage]\npath = "{store.root}"\n\n'
        f'[[cases]]\nnumber = "{CASE_NUMBER}"\ntitle = "{CASE_TITLE}"\ndeadline = "{CASE_DEADLINE.isoformat()}"\n',
        encoding="utf-8",
    )
    attachments = [
        Attachment("Høringssvar.docx", DOCX, docx_bytes("Vi støtter visjonen, æøå."), is_form=True),
        *[Attachment(f"vedlegg-{v}.pdf", "application/pdf", pdf_version(v)) for v in ("1.4", "1.5", "1.6", "1.7")],
        Attachment("bilde.png", "image/png", image_bytes("PNG", (200, 40, 40, 128))),
        Attachment("foto.jpg", "image/jpeg", image_bytes("JPEG", (40, 40, 200))),
        Attachment("skadet.pdf", "application/pdf", b"%PDF-1.4\n% truncated, nothing more\n"),
    ]
    responses = [
        Response(
            "Kari Nordmann",
            "kari@oslo.kommune.no",
            "Høringssvar 22/414 - Oslo kommune",
            "Se vedlegg.",
            oslo(2022, 9, 12, 10, 15),
            attachments=attachments,
            private_person=False,
        ),
        Response(
            "Per Olsen",
            "per.olsen@example.org",
            "Innspill til 22/414",
            "Bare tekst i e-posten.",
            oslo(2022, 9, 20, 9, 0),
        ),
    ]
    with database.db.session() as session:
        for uid, response in enumerate(responses, start=1):
            register_response(session, store, response, str(uid))
    result = run_cli(config, "case", "close", CASE_NUMBER, "--user", "arkivar.anne")
    assert result.exit_code == 0, result.output
    assert "Arkivversjoner: 8 konvertert, 0 mottatt som PDF/A, 0 laget tidligere, 1 feilet." in result.output
    extract = tmp / "extract"
    result = run_cli(config, "archive", "export", "--case", CASE_NUMBER, "--output", str(extract))
    assert result.exit_code == 0, result.output  # the failed conversion is reported, it does not block the export
    assert "0 konvertert, 0 mottatt som PDF/A, 8 laget tidligere, 1 feilet" in result.output  # failed one retried
    assert "skadet" in result.output.replace("\n", " ")
    try:
        yield Archived(extract, config, database.db, store, tmp, documents=len(attachments) + 1)
    finally:
        database.dispose()


def _descriptions(extract: Path) -> list[ET.Element]:
    return list(ET.parse(extract / "arkivstruktur.xml").getroot().iter(f"{AS}dokumentbeskrivelse"))


def test_every_convertible_document_has_a_checked_pdfa_version_with_the_conversion_recorded(archived: Archived) -> None:
    descriptions = _descriptions(archived.extract)
    assert len(descriptions) == archived.documents
    converted_from = []
    for description in descriptions:
        title = description.findtext(f"{AS}tittel")
        objects = {o.findtext(f"{AS}variantformat"): o for o in description.findall(f"{AS}dokumentobjekt")}
        if title == "skadet.pdf":
            assert set(objects) == {"Produksjonsformat"}
            continue
        assert set(objects) == {"Produksjonsformat", "Arkivformat"}, title
        original, archival = objects["Produksjonsformat"], objects["Arkivformat"]
        assert archival.findtext(f"{AS}format") == "fmt/477"
        data = (archived.extract / archival.findtext(f"{AS}referanseDokumentfil")).read_bytes()
        assert archival.findtext(f"{AS}sjekksum") == hashlib.sha256(data).hexdigest()
        assert int(archival.findtext(f"{AS}filstoerrelse")) == len(data)
        check = check_pdfa(data)
        assert check.ok and (check.part, check.conformance) == ("2", "B"), (title, check.problems)
        conversion = archival.find(f"{AS}konvertering")
        assert conversion is not None
        assert conversion.findtext(f"{AS}konvertertFraFormat") == original.findtext(f"{AS}format")
        assert conversion.findtext(f"{AS}konvertertTilFormat") == "fmt/477"
        assert conversion.findtext(f"{AS}konvertertDato") and conversion.findtext(f"{AS}konvertertAv") == "arkivar.anne"
        converted_from.append((original.findtext(f"{AS}format"), conversion.findtext(f"{AS}konverteringsverktoey")))
    formats = {fmt for fmt, _ in converted_from}
    assert {"fmt/412", "fmt/18", "fmt/19", "fmt/20", "fmt/276", "fmt/11", "fmt/43", "x-fmt/111"} <= formats
    tools = {tool.split()[0] for _, tool in converted_from}
    assert tools == {"LibreOffice", "Ghostscript", "Pillow"}


def test_the_extract_validates_and_the_failure_is_listed_for_staff(archived: Archived) -> None:
    report = validate_extract(archived.extract)
    assert report.ok, [str(p) for p in report.errors]
    assert report.pdfa_files_checked == archived.documents - 1
    warnings = [str(p) for p in report.problems]
    assert len(warnings) == 1 and "has no Arkivformat version" in warnings[0]
    text = (archived.extract / "uttrekksrapport.txt").read_text(encoding="utf-8")
    assert "Konvertering til arkivformat feilet" in text and "skadet eller passordbeskyttet" in text
    result = run_cli(archived.config, "archive", "validate", str(archived.extract))
    assert result.exit_code == 0 and "(8 som PDF/A)" in result.output.replace("\n", "")


def test_a_second_export_reuses_the_stored_versions_byte_for_byte(archived: Archived) -> None:
    second = archived.tmp / "second"
    with archived.db.session() as session:  # type: ignore[attr-defined]
        export_case(session, archived.store, CASE_NUMBER, second)
        versions = session.query(m.ArchivalVersion).count()
    assert versions == archived.documents
    for name in ("arkivstruktur.xml", "uttrekksrapport.txt"):
        assert (second / name).read_bytes() == (archived.extract / name).read_bytes()
    for path in (archived.extract / "DOKUMENT").iterdir():
        assert (second / "DOKUMENT" / path.name).read_bytes() == path.read_bytes()


def test_validate_rejects_an_archival_file_that_is_not_pdfa(archived: Archived, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(archived.extract, broken)
    target = next((broken / "DOKUMENT").glob("*-arkivformat.pdf"))
    target.write_bytes(make_pdf(["ikke PDF/A"], "plain"))
    messages = [str(p) for p in validate_extract(broken).errors]
    assert any("SHA-256" in msg and target.name in msg for msg in messages)
    assert any("not valid PDF/A" in msg and "skrift ikke innebygd" in msg for msg in messages)
    assert any("not valid PDF/A" in msg and "OutputIntent" in msg for msg in messages)
