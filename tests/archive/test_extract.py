"""The extract of a realistic closed case: valid against Arkivverket's schemas, complete, stable."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from postmottak.casefile.noark5.extract import CaseNotClosedError, ExtractError, export_case
from postmottak.casefile.noark5.validate import validate_extract
from tests.archive.builders import CASE_NUMBER, BuiltCase, build_realistic_case
from tests.archive.conftest import Setup, run_cli

AS = "{http://www.arkivverket.no/standarder/noark5/arkivstruktur}"
EL = "{http://www.arkivverket.no/standarder/noark5/endringslogg}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
XML_SCHEMAS = {
    "arkivuttrekk.xml": "addml.xsd",
    "arkivstruktur.xml": "arkivstruktur.xsd",
    "endringslogg.xml": "endringslogg.xsd",
    "loependeJournal.xml": "loependeJournal.xsd",
    "offentligJournal.xml": "offentligJournal.xsd",
}


def export(setup: Setup, name: str = "extract") -> Path:
    output = setup.tmp / name
    with setup.database.db.session() as session:
        export_case(session, setup.store, CASE_NUMBER, output)
    return output


def test_every_xml_file_validates_against_the_official_schemas(
    setup: Setup, closed_case: BuiltCase, official_schemas: Path
) -> None:
    import xmlschema
    from lxml import etree

    output = export(setup)
    for xml_name, xsd_name in XML_SCHEMAS.items():
        schema = xmlschema.XMLSchema10(str(official_schemas / xsd_name))
        errors = [f"{e.path}: {e.reason}" for e in schema.iter_errors(str(output / xml_name))]
        assert errors == [], f"{xml_name}: {errors}"
        lxml_schema = etree.XMLSchema(etree.parse(str(official_schemas / xsd_name)))
        assert lxml_schema.validate(etree.parse(str(output / xml_name))), f"{xml_name}: {lxml_schema.error_log}"
    for xsd_name in set(XML_SCHEMAS.values()) | {"metadatakatalog.xsd"}:
        assert (output / xsd_name).read_bytes() == (official_schemas / xsd_name).read_bytes(), xsd_name


def test_archive_validate_passes_on_a_fresh_extract(setup: Setup, closed_case: BuiltCase) -> None:
    output = setup.tmp / "cli-extract"
    result = run_cli(setup.config, "archive", "export", "--case", CASE_NUMBER, "--output", str(output))
    assert result.exit_code == 0, result.output
    result = run_cli(setup.config, "archive", "validate", str(output))
    assert result.exit_code == 0, result.output
    assert "Uttrekket er gyldig" in result.output
    report = validate_extract(output)
    assert report.ok and report.problems == []
    assert report.xml_files_validated == 5
    # every document twice: the original (Produksjonsformat) and its PDF/A-2b version (Arkivformat)
    assert report.document_files_checked == 2 * closed_case.document_count
    assert report.pdfa_files_checked == closed_case.document_count


def _journalposts(output: Path) -> list[ET.Element]:
    root = ET.parse(output / "arkivstruktur.xml").getroot()
    return [r for r in root.iter(f"{AS}registrering") if r.get(XSI_TYPE) == "journalpost"]


def _text(element: ET.Element, path: str) -> str:
    found = element.find("/".join(f"{AS}{part}" for part in path.split("/")))
    assert found is not None, path
    return found.text or ""


def test_arkivstruktur_maps_the_case(setup: Setup, closed_case: BuiltCase) -> None:
    output = export(setup)
    root = ET.parse(output / "arkivstruktur.xml").getroot()
    folder = next(root.iter(f"{AS}mappe"))
    assert folder.get(XSI_TYPE) == "saksmappe"
    assert _text(folder, "saksaar") == "2022" and _text(folder, "sakssekvensnummer") == "414"
    assert _text(folder, "saksstatus") == "Avsluttet"
    assert _text(folder, "avsluttetAv") == "arkivar.anne"

    posts = _journalposts(output)
    assert len(posts) == closed_case.registered == 4  # the ignored newsletter is not journalled
    by_subject = {_text(p, "tittel"): p for p in posts}
    assert [int(_text(p, "journalsekvensnummer")) for p in posts] == sorted(
        int(_text(p, "journalsekvensnummer")) for p in posts
    )
    for post in posts:
        assert _text(post, "journalposttype") == "Inngående dokument"
        assert _text(post, "journalaar") == _text(post, "journaldato")[:4]  # the year it was journalled (Noark 5)
        assert _text(post, "korrespondansepart/korrespondanseparttype") == "Avsender"

    organisation = by_subject["Høringssvar 22/414 - Oslo kommune"]
    assert _text(organisation, "mottattDato") == "2022-09-12T10:15:00+02:00"
    assert _text(organisation, "korrespondansepart/korrespondansepartNavn") == "Oslo kommune"
    assert _text(organisation, "korrespondansepart/epostadresse") == "kari.nordmann@oslo.kommune.no"
    descriptions = organisation.findall(f"{AS}dokumentbeskrivelse")
    roles = {_text(d, "tittel"): _text(d, "tilknyttetRegistreringSom") for d in descriptions}
    assert roles == {"Høringssvarskjema Oslo kommune.pdf": "Hoveddokument", "Følgebrev.pdf": "Vedlegg"}
    assert _text(descriptions[0], "tilknyttetRegistreringSom") == "Hoveddokument"  # main document first

    body_only = by_subject["Innspill til e-helsestrategien (22/414)"]
    (description,) = body_only.findall(f"{AS}dokumentbeskrivelse")
    assert _text(description, "tilknyttetRegistreringSom") == "Hoveddokument"
    body_file = output / _text(description, "dokumentobjekt/referanseDokumentfil")
    assert "pasientens egen journal" in body_file.read_text(encoding="utf-8")
    assert _text(description, "dokumentobjekt/format") == "x-fmt/111"

    late = by_subject["Høringssvar sak 22/414"]
    assert "etter høringsfristen" in _text(late, "merknad/merknadstekst")
    assert _text(late, "korrespondansepart/korrespondansepartNavn") == "Den norske legeforening"  # staff correction
    assert organisation.find(f"{AS}merknad") is None

    for obj in root.iter(f"{AS}dokumentobjekt"):
        reference = _text(obj, "referanseDokumentfil")
        assert reference.startswith("DOKUMENT/") and not reference.startswith("/")
        data = (output / reference).read_bytes()
        assert _text(obj, "sjekksum") == hashlib.sha256(data).hexdigest()
        assert int(_text(obj, "filstoerrelse")) == len(data)
        assert _text(obj, "sjekksumAlgoritme") == "SHA256"
        assert _text(obj, "variantformat") == "Produksjonsformat"
        assert _text(obj, "versjonsnummer") == "1"
    assert len(list((output / "DOKUMENT").iterdir())) == closed_case.document_count


def test_plain_pdfs_are_named_in_the_report(setup: Setup, closed_case: BuiltCase) -> None:
    output = export(setup)
    report = (output / "uttrekksrapport.txt").read_text(encoding="utf-8")
    assert "ikke PDF/A" in report
    assert report.count("IKKE godkjent arkivformat") == 4  # four plain PDFs; the mail body text is fine


def test_system_ids_and_files_are_stable_across_exports(setup: Setup, closed_case: BuiltCase) -> None:
    first, second = export(setup, "first"), export(setup, "second")
    for name in [*XML_SCHEMAS, "uttrekksrapport.txt"]:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    ids = [e.text for e in ET.parse(first / "arkivstruktur.xml").getroot().iter(f"{AS}systemID")]
    assert len(ids) == len(set(ids))  # unique


def test_endringslogg_holds_corrections_and_closing(setup: Setup, closed_case: BuiltCase) -> None:
    output = export(setup)
    changes = ET.parse(output / "endringslogg.xml").getroot().findall(f"{EL}endring")
    rows = [
        tuple(
            (c.find(f"{EL}{tag}").text or "") for tag in ("referanseMetadata", "endretAv", "tidligereVerdi", "nyVerdi")
        )
        for c in changes
    ]
    assert (
        "virksomhetsspesifikkeMetadata/organisation_name",
        "saksbehandler.sara",
        "Legeforenigen",
        "Den norske legeforening",
    ) in rows
    assert (
        "virksomhetsspesifikkeMetadata/q1_text",
        "saksbehandler.sara",
        "Vi støtter visjonen.",
        "Vi støtter visjonen fullt ut.",
    ) in rows
    assert ("saksstatus", "arkivar.anne", "Under behandling", "Avsluttet") in rows
    assert len(rows) == 3  # the audit event of the same correction is not logged twice
    posts = {p.find(f"{AS}systemID").text for p in _journalposts(output)}
    folder_id = next(ET.parse(output / "arkivstruktur.xml").getroot().iter(f"{AS}mappe")).find(f"{AS}systemID").text
    for change in changes:
        assert change.find(f"{EL}referanseArkivenhet").text in posts | {folder_id}


def test_arkivuttrekk_lists_counts_and_checksums(setup: Setup, closed_case: BuiltCase) -> None:
    output = export(setup)
    text = (output / "arkivuttrekk.xml").read_text(encoding="utf-8")
    for name in [
        "arkivstruktur.xml",
        "endringslogg.xml",
        "loependeJournal.xml",
        "offentligJournal.xml",
        "arkivstruktur.xsd",
        "metadatakatalog.xsd",
    ]:
        assert hashlib.sha256((output / name).read_bytes()).hexdigest() in text, name
    assert "<value>Direktoratet for e-helse</value>" in text
    assert '<property name="antallDokumentfiler" dataType="integer">' in text


def test_an_open_case_cannot_be_exported(setup: Setup) -> None:
    build_realistic_case(setup.database.db, setup.store, closed=False)
    with setup.database.db.session() as session, pytest.raises(CaseNotClosedError, match="not closed"):
        export_case(session, setup.store, CASE_NUMBER, setup.tmp / "open")
    assert not (setup.tmp / "open").exists()
    result = run_cli(setup.config, "archive", "export", "--case", CASE_NUMBER, "--output", str(setup.tmp / "open"))
    assert result.exit_code == 1
    assert "postmottak case close 22/414" in result.output


def test_close_and_reopen_commands(setup: Setup) -> None:
    from postmottak.casefile.cases import get_case

    build_realistic_case(setup.database.db, setup.store, closed=False)
    result = run_cli(setup.config, "case", "close", CASE_NUMBER, "--user", "arkivar.ole", "--no-archival-versions")
    assert result.exit_code == 0, result.output
    with setup.database.db.session() as session:
        case = get_case(session, CASE_NUMBER)
        assert (case.status, case.closed_by) == ("closed", "arkivar.ole") and case.closed_at is not None
    assert run_cli(setup.config, "case", "close", CASE_NUMBER).exit_code == 1  # already closed
    result = run_cli(setup.config, "case", "reopen", CASE_NUMBER, "--user", "arkivar.ole")
    assert result.exit_code == 0, result.output
    with setup.database.db.session() as session:
        case = get_case(session, CASE_NUMBER)
        assert (case.status, case.closed_at, case.closed_by) == ("open", None, None)
    # default user: the OS user (PDF/A versions are tested in test_archival_format)
    assert run_cli(setup.config, "case", "close", CASE_NUMBER, "--no-archival-versions").exit_code == 0
    output = setup.tmp / "after-reopen"
    with setup.database.db.session() as session:
        export_case(session, setup.store, CASE_NUMBER, output)
    assert validate_extract(output).ok
    metadata = [c.find(f"{EL}nyVerdi").text for c in ET.parse(output / "endringslogg.xml").getroot()]
    assert metadata.count("Avsluttet") == 2 and metadata.count("Under behandling") == 1


def test_export_refuses_a_non_empty_output_folder(setup: Setup, closed_case: BuiltCase) -> None:
    target = setup.tmp / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    with setup.database.db.session() as session, pytest.raises(ExtractError, match="not an empty folder"):
        export_case(session, setup.store, CASE_NUMBER, target)
