"""Exemption from publication and the publication package: exempt responses stay out, private persons appear by
name only, and no written file holds a private person's e-mail address, phone number or postal address."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from postmottak.casefile import models as m
from postmottak.casefile.exemptions import access_code_for, suggest
from postmottak.casefile.publication import scrub_contact_data
from postmottak.casefile.storage import DocumentStore
from tests.archive.builders import (
    CASE_DEADLINE,
    CASE_NUMBER,
    CASE_TITLE,
    Attachment,
    Response,
    build_realistic_case,
    form_data,
    make_pdf,
    open_test_database,
    oslo,
    register_response,
)
from tests.archive.conftest import run_cli
from tests.dbutil import backend_params

PRIVATE_SECRETS = [
    "912 34 567",
    "+47 22 33 44 55",
    "Bjørkeveien 12",
    "1410 Kolbotn",
    "kari.privat@example.net",
    "ola.hansen@example.net",
    "per.olsen@example.org",
]
EXEMPT_SECRETS = ["Legeforening", "Legeforenigen", "post@legeforeningen.no", "Anne Lege"]


@dataclass
class Published:
    output: Path
    config: Path
    db: object
    tmp: Path
    ids: dict[str, int]
    dry_run_output: str


@pytest.fixture(scope="module", params=backend_params())
def published(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    tmp = tmp_path_factory.mktemp(f"publication-{request.param}")
    database = open_test_database(request.param, tmp)
    store = DocumentStore(tmp / "documents")
    config = tmp / "postmottak.toml"
    config.write_text(
        f'[database]\nurl = "{database.url}"\n\n[storage]\npath = "{store.root}"\n\n'
        f'[[cases]]\nnumber = "{CASE_NUMBER}"\ntitle = "{CASE_TITLE}"\ndeadline = "{CASE_DEADLINE.isoformat()}"\n',
        encoding="utf-8",
    )
    built = build_realistic_case(database.db, store, closed=False)
    contact = "Ring meg på 912 34 567 eller +47 22 33 44 55, eller skriv til Bjørkeveien 12, 1410 Kolbotn."
    form = form_data(None, "Privatperson", "Kari Privat", "kari.privat@example.net")
    form["q1_text"] = f"Jeg støtter målene. {contact} E-post: kari.privat@example.net"
    private = Response(
        "Kari Privat",
        "kari.privat@example.net",
        "Høringssvar 22/414",
        f"Se vedlegg. {contact}",
        oslo(2022, 9, 25, 9, 0),
        attachments=[
            Attachment(
                "svar.pdf",
                "application/pdf",
                make_pdf(["Høringssvarskjema 22/414", "Kontaktperson: Kari Privat", contact], "Svar"),
                is_form=True,
            )
        ],
        form=form,
        private_person=True,
    )
    with database.db.session() as session:
        ids = dict(built.intake_ids, kari=register_response(session, store, private, "9").id)
    result = run_cli(
        config,
        "exempt",
        "set",
        str(ids["late"]),
        "--basis",
        "Offl. § 13 jf. fvl. § 13",
        "--screen-names",
        "--user",
        "arkivar.anne",
    )
    assert result.exit_code == 0, result.output
    result = run_cli(
        config,
        "exempt",
        "set",
        str(ids["organisation"]),
        "--document",
        "1",
        "--basis",
        "Offl. § 26 femte ledd",
        "--user",
        "arkivar.anne",
    )
    assert result.exit_code == 0, result.output
    dry = run_cli(config, "publish", "--case", CASE_NUMBER, "--dry-run")
    assert dry.exit_code == 0, dry.output
    output = tmp / "publisering"
    assert not output.exists()
    result = run_cli(config, "publish", "--case", CASE_NUMBER, "--output", str(output), "--user", "arkivar.anne")
    assert result.exit_code == 0, result.output
    try:
        yield Published(output, config, database.db, tmp, ids, dry.output)
    finally:
        database.dispose()


def _text_of(path: Path) -> str:
    if path.suffix == ".pdf":
        import pdfplumber

        with pdfplumber.open(path) as pdf:
            return "\n".join(page.extract_text() or "" for page in pdf.pages)
    return path.read_text(encoding="utf-8-sig")


def _written(output: Path) -> list[Path]:
    return sorted(p for p in output.rglob("*") if p.is_file())


def test_no_written_file_holds_a_private_persons_contact_data(published: Published) -> None:
    files = _written(published.output)
    assert {p.relative_to(published.output).as_posix() for p in files} >= {"index.html", "hoeringssvar.csv"}
    for path in files:
        text, raw = _text_of(path), path.read_bytes()
        for secret in PRIVATE_SECRETS:
            assert secret not in text and secret.encode() not in raw, (path.name, secret)
    listing = (published.output / "index.html").read_text(encoding="utf-8")
    assert "Ola Hansen" in listing and "Kari Privat" in listing  # private persons: by name
    kari = published.output / "svar" / "kari-privat.pdf"
    assert "Jeg støtter målene" in _text_of(kari)  # the answer itself is published


def test_exempt_responses_and_documents_are_left_out(published: Published) -> None:
    for path in _written(published.output):
        text = _text_of(path)
        for secret in EXEMPT_SECRETS:
            assert secret not in text, (path.name, secret)
        assert "Oversendelse av høringssvar" not in text  # Oslo kommune's exempt cover letter
    rows = (published.output / "hoeringssvar.csv").read_text(encoding="utf-8-sig").splitlines()
    exempt = [row for row in rows if "Unntatt offentlighet" in row]
    assert len(exempt) == 1 and "Avsender skjermet" in exempt[0] and "Offl. § 13 jf. fvl. § 13" in exempt[0]
    oslo_pdf = _text_of(published.output / "svar" / "oslo-kommune.pdf")
    assert "Høringssvarskjema" in oslo_pdf
    assert (
        "unntatt (Offl. § 26 femte ledd)" in published.dry_run_output.replace("\n", " ").replace("│", " ")
        or "Offl. § 26" in published.dry_run_output
    )


def test_public_journal_and_extract_honour_the_exemption(published: Published) -> None:
    result = run_cli(published.config, "journal", "--case", CASE_NUMBER, "--format", "json")
    rows = {row["journalnummer"]: row for row in json.loads(result.stdout)}
    exempt = [row for row in rows.values() if row["unntatt_offentlighet"]]
    assert len(exempt) == 1 and exempt[0]["avsender"] == "Avsender skjermet" and exempt[0]["skjermet"] is True
    xml = run_cli(published.config, "journal", "--case", CASE_NUMBER, "--format", "xml").stdout
    assert "<tilgangsrestriksjon>13</tilgangsrestriksjon>" in xml and "Legeforening" not in xml
    assert run_cli(published.config, "case", "close", CASE_NUMBER, "--no-archival-versions").exit_code == 0
    extract = published.tmp / "extract"
    result = run_cli(
        published.config, "archive", "export", "--case", CASE_NUMBER, "--output", str(extract), "--no-archival-versions"
    )
    assert result.exit_code == 0, result.output
    structure = (extract / "arkivstruktur.xml").read_text(encoding="utf-8")
    assert structure.count("<skjerming>") == 2  # the response, and Oslo kommune's cover letter
    assert "<skjermingshjemmel>Offl. § 26 femte ledd</skjermingshjemmel>" in structure
    with published.db.session() as session:  # type: ignore[attr-defined]
        actions = [e.action for e in session.query(m.AuditEvent).order_by(m.AuditEvent.id)]
    assert actions.count("exempt_from_publication") == 2 and "publication_written" in actions


def test_a_form_request_for_exemption_only_suggests(tmp_path: Path) -> None:
    from postmottak.parsers.forms import profile as profiles

    source = (Path(profiles.__file__).parent / "profiles" / "hoeringssvar-22-414.toml").read_text(encoding="utf-8")
    profile = tmp_path / "med-unntak.toml"
    profile.write_text(
        source.replace("min_labels_for_form = 4", 'min_labels_for_form = 4\nexemption_field = "exemption_request"'),
        encoding="utf-8",
    )
    suggestion = suggest({"exemption_request": "Ja, inneholder helseopplysninger"}, str(profile))
    assert suggestion is not None and suggestion.legal_basis == "Offl. § 13 jf. fvl. § 13"
    assert suggestion.reason == "Ja, inneholder helseopplysninger"
    assert suggest({"exemption_request": "Nei"}, str(profile)) is None
    assert suggest({"exemption_request": "Ja"}, None) is None  # the 22/414 form has no such question
    assert (
        access_code_for("Offl. § 13 jf. fvl. § 13"),
        access_code_for("Offl. § 26 femte ledd"),
        access_code_for("annet"),
    ) == ("13", "26", "UO")


def test_scrub_contact_data_removes_addresses_and_numbers() -> None:
    text = "Kari, tlf 912 34 567 / +47 22334455, Storgata 5B, 0155 Oslo, kari@x.no. I 2022 var det 40 000 svar."
    scrubbed = scrub_contact_data(text, [])
    for secret in ("912 34 567", "22334455", "Storgata 5B", "0155 Oslo", "kari@x.no"):
        assert secret not in scrubbed
    assert "I 2022 var det 40 000 svar." in scrubbed


def test_a_document_received_as_pdfa_is_published_as_it_is(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from postmottak.casefile.noark5.archival import ARCHIVAL_AS_RECEIVED, prepare_case
    from postmottak.casefile.noark5.convert import SourceFile, convert_all
    from postmottak.casefile.publication import plan, write

    made = convert_all([SourceFile("svar", make_pdf(["Helse Nord RHF støtter målene."], "Svar"), "application/pdf")])
    pdfa = made["svar"].data
    assert pdfa is not None, made["svar"].error
    response = Response(
        "Helse Nord RHF",
        "post@helse-nord.no",
        "Høringssvar 22/414",
        "Vedlagt.",
        oslo(2022, 9, 20, 10, 0),
        attachments=[Attachment("svar.pdf", "application/pdf", pdfa)],
        private_person=False,
    )
    db = setup.database.db
    with db.session() as session:
        register_response(session, setup.store, response, "pdfa-1")
    with db.session() as session:
        overview = plan(session, CASE_NUMBER, before_conversion=True)
    assert overview.responses[0].converting == ["svar.pdf"]  # not looked at yet: to be made when writing
    summary = prepare_case(db, setup.store, CASE_NUMBER, "arkivar.anne")
    assert (summary.as_received, summary.converted) == (1, 0)
    with db.session() as session:
        assert session.query(m.ArchivalVersion).one().status == ARCHIVAL_AS_RECEIVED
        publication = plan(session, CASE_NUMBER)
        assert publication.responses[0].documents == ["svar.pdf"] and not publication.responses[0].left_out
        written = write(session, setup.store, publication, tmp_path / "publisering")
    assert "svar/helse-nord-rhf.pdf" in written
    assert "Helse Nord RHF støtter målene" in _text_of(tmp_path / "publisering" / "svar" / "helse-nord-rhf.pdf")
