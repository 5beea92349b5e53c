"""The public journal screens private persons; the journal files of the extract say what is screened."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest

from postmottak.casefile import review
from postmottak.casefile.noark5.closing import close
from postmottak.casefile.noark5.extract import export_case
from postmottak.casefile.noark5.formats import identify
from postmottak.casefile.noark5.journal import render_public_journal
from postmottak.casefile.noark5.source import SCREENED_NAME, load_case
from postmottak.casefile.noark5.validate import validate_extract
from tests.archive.builders import CASE_NUMBER, BuiltCase, build_realistic_case, make_pdf
from tests.archive.conftest import Setup, run_cli


@pytest.mark.parametrize("fmt", ["csv", "json", "xml"])
def test_public_journal_screens_private_persons(setup: Setup, closed_case: BuiltCase, fmt: str) -> None:
    output = setup.tmp / f"journal.{fmt}"
    result = run_cli(setup.config, "journal", "--case", CASE_NUMBER, "--format", fmt, "--output", str(output))
    assert result.exit_code == 0, result.output
    text = output.read_text(encoding="utf-8-sig")
    for secret in closed_case.private_names:
        assert secret not in text, secret
    for organisation in closed_case.organisation_names:
        assert organisation in text
    assert text.count(SCREENED_NAME) == 2  # the private person and the unknown sender without organisation


def test_public_journal_rows(setup: Setup, closed_case: BuiltCase) -> None:
    result = run_cli(setup.config, "journal", "--case", CASE_NUMBER, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["journalnummer"] for row in rows] == ["2022/414-1", "2022/414-2", "2022/414-3", "2022/414-4"]
    senders = [row["avsender"] for row in rows]
    assert senders == ["Oslo kommune", SCREENED_NAME, SCREENED_NAME, "Den norske legeforening"]
    assert rows[1]["tittel"] == "Høringssvar fra [skjermet]"  # the private person's name was in the subject
    assert rows[1]["skjermet"] is True and rows[0]["skjermet"] is False
    assert rows[0]["mottatt"] == "2022-09-12"
    assert all("@" not in json.dumps(row) for row in rows)  # no e-mail addresses at all

    result = run_cli(setup.config, "journal", "--case", CASE_NUMBER, "--format", "csv")
    table = list(csv.DictReader(io.StringIO(result.stdout.lstrip("\ufeff"))))
    assert [r["avsender"] for r in table] == senders


def test_unknown_sender_without_organisation_is_screened_but_a_named_organisation_is_not(
    setup: Setup, closed_case: BuiltCase
) -> None:
    with setup.database.db.session() as session:
        source = load_case(session, CASE_NUMBER)
    by_title = {item.entry.title: item for item in source.entries}
    body_only = by_title["Innspill til e-helsestrategien (22/414)"]
    assert body_only.entry.correspondent_is_private_person is None and body_only.is_private_person
    assert not by_title["Høringssvar sak 22/414"].is_private_person


def test_journal_files_in_the_extract(setup: Setup, closed_case: BuiltCase) -> None:
    output = setup.tmp / "extract"
    with setup.database.db.session() as session:
        export_case(session, setup.store, CASE_NUMBER, output)
    public = (output / "offentligJournal.xml").read_text(encoding="utf-8")
    running = (output / "loependeJournal.xml").read_text(encoding="utf-8")
    for secret in closed_case.private_names:
        assert secret not in public
    assert "Ola Hansen" in running  # the running journal keeps the name ...
    assert running.count("<skjermingMetadata>korrespondansepartNavn</skjermingMetadata>") == 4  # ... marked screened
    with setup.database.db.session() as session:
        assert (
            render_public_journal(load_case(session, CASE_NUMBER), "xml")
            == (output / "offentligJournal.xml").read_bytes()
        )


def _posts(xml: bytes, tag: str) -> dict[int, ET.Element]:
    """journalpostnummer -> journalpost element (any namespace)."""
    root = ET.fromstring(xml)
    return {int(post.findtext("{*}journalpostnummer") or 0): post for post in root.findall(f".//{{*}}{tag}")}


def test_an_undone_registration_stays_in_every_journal_as_utgaar_without_documents(setup: Setup) -> None:
    """Registered from the review queue as 2022/414-5, undone, registered again as 2022/414-6: both numbers are in
    the public journal (csv, json, xml), the running journal and the extract, -5 with journalstatus "Utgår" and no
    document, and the extract still validates against the schemas."""
    db = setup.database.db
    built = build_realistic_case(db, setup.store, closed=False)
    mail = built.intake_ids["ignored"]
    with db.session() as session:
        review.register_to_case(session, mail, CASE_NUMBER, "arkivar.anne", send_receipt=False)
    with db.session() as session:
        review.undo_last(session, mail, "arkivar.anne")
    with db.session() as session:
        assert review.load_record(session, mail).journal_entry is None
        assert review.cancelled_journal_numbers(session, mail) == ["2022/414-5"]
        review.register_to_case(session, mail, CASE_NUMBER, "arkivar.anne", send_receipt=False)
    with db.session() as session:
        assert review.load_record(session, mail).journal_entry.journal_number == "2022/414-6"  # type: ignore[union-attr]
        source = load_case(session, CASE_NUMBER)
        rows = json.loads(render_public_journal(source, "json"))
        table = list(csv.DictReader(io.StringIO(render_public_journal(source, "csv").decode("utf-8-sig"))))
        public_xml = render_public_journal(source, "xml")
    numbers = [f"2022/414-{n}" for n in range(1, 7)]
    assert [row["journalnummer"] for row in rows] == numbers  # no gap
    assert [row["journalstatus"] for row in rows] == ["Journalført"] * 4 + ["Utgår", "Journalført"]
    assert [row["journalstatus"] for row in table] == [row["journalstatus"] for row in rows]
    public = _posts(public_xml, "journalpost")
    assert sorted(public) == [1, 2, 3, 4, 5, 6]
    assert (public[5].findtext("{*}offentligTittel") or "").startswith("Utgår: ")
    assert not (public[6].findtext("{*}offentligTittel") or "").startswith("Utgår")

    with db.session() as session:
        close(session, CASE_NUMBER, "arkivar.anne")
    output = setup.tmp / "extract"
    with db.session() as session:
        result = export_case(session, setup.store, CASE_NUMBER, output)
    report = validate_extract(output)
    assert report.ok, [str(problem) for problem in report.errors]
    assert result.registrations == 6 and result.document_files == built.document_count + 1
    running = _posts((output / "loependeJournal.xml").read_bytes(), "journalpost")
    assert sorted(running) == [1, 2, 3, 4, 5, 6]
    assert (running[5].findtext("{*}tittel") or "").startswith("Utgår: ")
    assert running[5].findtext("{*}antallVedlegg") == "0"
    assert b"<antallJournalposter>6</antallJournalposter>" in (output / "offentligJournal.xml").read_bytes()
    structure = _posts((output / "arkivstruktur.xml").read_bytes(), "registrering")
    assert structure[5].findtext("{*}journalstatus") == "Utgår"
    assert structure[5].find("{*}dokumentbeskrivelse") is None
    assert "angret" in (structure[5].findtext("{*}merknad/{*}merknadstekst") or "")
    assert structure[6].findtext("{*}journalstatus") == "Arkivert"
    assert structure[6].find("{*}dokumentbeskrivelse") is not None


def test_unknown_format_and_case(setup: Setup, closed_case: BuiltCase) -> None:
    assert run_cli(setup.config, "journal", "--case", CASE_NUMBER, "--format", "pdf").exit_code == 2
    result = run_cli(setup.config, "journal", "--case", "22/999")
    assert result.exit_code == 1 and "no case 22/999" in result.output


def test_pdf_a_is_recognised_from_its_xmp_identification() -> None:
    plain = make_pdf(["hei"], "x")
    assert not identify(plain, "application/pdf").is_archive_format
    xmp = b'<rdf:Description xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/" pdfaid:part="2" pdfaid:conformance="B"/>'
    pdf_a = plain.replace(b"%%EOF", xmp + b"\n%%EOF")
    fmt = identify(pdf_a, "application/pdf")
    assert (fmt.format, fmt.is_archive_format) == ("fmt/477", True)
    element_form = plain + b"<pdfaid:part>1</pdfaid:part><pdfaid:conformance>A</pdfaid:conformance>"
    assert identify(element_form, "application/pdf").format == "fmt/95"
    assert identify("tekst".encode(), "text/plain; charset=utf-8").is_archive_format


def test_schemas_ship_as_package_data() -> None:
    from importlib import resources

    folder = resources.files("postmottak.casefile.noark5.schemas")
    for name in [
        "arkivstruktur.xsd",
        "metadatakatalog.xsd",
        "addml.xsd",
        "SOURCE.md",
        "NOTES.md",
        "README.arkivverket-schemas.md",
        "LICENCE.noark5-standard",
    ]:
        assert folder.joinpath(name).is_file(), name
