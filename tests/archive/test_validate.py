"""`archive validate` finds each kind of damage to an extract and reports it clearly, exiting non-zero."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from postmottak.casefile.noark5.extract import export_case
from postmottak.casefile.noark5.validate import validate_extract
from tests.archive.builders import CASE_NUMBER, BuiltCase
from tests.archive.conftest import Setup, run_cli

AS = "{http://www.arkivverket.no/standarder/noark5/arkivstruktur}"


def _first_document(folder: Path) -> str:
    root = ET.parse(folder / "arkivstruktur.xml").getroot()
    reference = next(root.iter(f"{AS}referanseDokumentfil")).text
    assert reference
    return reference


def delete_document(folder: Path) -> str:
    reference = _first_document(folder)
    (folder / reference).unlink()
    return rf"{re.escape(reference)}: referenced by dokumentobjekt .* but missing"


def change_a_byte(folder: Path) -> str:
    reference = _first_document(folder)
    path = folder / reference
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return rf"{re.escape(reference)}: SHA-256 is [0-9a-f]{{64}}, arkivstruktur.xml says"


def truncate_document(folder: Path) -> str:
    reference = _first_document(folder)
    path = folder / reference
    path.write_bytes(path.read_bytes()[:-10])
    return rf"{re.escape(reference)}: size is \d+ bytes, arkivstruktur.xml says \d+"


def drop_an_element(folder: Path) -> str:
    # Remove the first journalpost's journaldato, a mandatory element, as text (keeps everything else as is).
    path = folder / "arkivstruktur.xml"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"\s*<journaldato>[^<]*</journaldato>", "", text, count=1)
    path.write_text(text, encoding="utf-8")
    return r"arkivstruktur.xml: does not validate against arkivstruktur.xsd: .*journaldato"


def add_unreferenced_file(folder: Path) -> str:
    (folder / "DOKUMENT" / "ekstra.pdf").write_bytes(b"%PDF-1.4\n%stray\n")
    return r"DOKUMENT/ekstra.pdf: not referenced by any dokumentobjekt"


def edit_a_schema(folder: Path) -> str:
    path = folder / "endringslogg.xsd"
    path.write_bytes(path.read_bytes().replace(b'maxOccurs="unbounded"', b'maxOccurs="1000"'))
    return r"endringslogg.xsd: differs from Arkivverket's official schema"


def tamper_with_the_journal(folder: Path) -> str:
    # Still schema-valid, but no longer the file arkivuttrekk.xml describes.
    path = folder / "offentligJournal.xml"
    path.write_text(path.read_text(encoding="utf-8").replace("Oslo kommune", "Bergen kommune"), encoding="utf-8")
    return r"offentligJournal.xml: SHA-256 does not match arkivuttrekk.xml"


def delete_the_change_log(folder: Path) -> str:
    (folder / "endringslogg.xml").unlink()
    return r"endringslogg.xml: missing"


def break_a_reference(folder: Path) -> str:
    path = folder / "arkivstruktur.xml"
    reference = _first_document(folder)
    path.write_text(path.read_text(encoding="utf-8").replace(reference, "../../etc/passwd", 1), encoding="utf-8")
    return r"referanseDokumentfil '\.\./\.\./etc/passwd' is not a relative path inside the extract"


BREAKAGES: list[Callable[[Path], str]] = [
    delete_document,
    change_a_byte,
    truncate_document,
    drop_an_element,
    add_unreferenced_file,
    edit_a_schema,
    tamper_with_the_journal,
    delete_the_change_log,
    break_a_reference,
]


@pytest.fixture
def extract(setup: Setup, closed_case: BuiltCase) -> Path:
    output = setup.tmp / "extract"
    with setup.database.db.session() as session:
        export_case(session, setup.store, CASE_NUMBER, output)
    assert validate_extract(output).ok
    return output


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda f: f.__name__)
def test_each_breakage_is_reported(setup: Setup, extract: Path, breakage: Callable[[Path], str]) -> None:
    expected = breakage(extract)
    report = validate_extract(extract)
    assert not report.ok
    messages = [str(problem) for problem in report.errors]
    assert any(re.search(expected, message) for message in messages), messages
    result = run_cli(setup.config, "archive", "validate", str(extract))
    assert result.exit_code == 1
    assert "Uttrekket er ikke gyldig" in result.output
    assert re.search(expected, result.output.replace("\n", "")), result.output


def test_several_problems_are_all_reported(setup: Setup, extract: Path) -> None:
    expected = [delete_document(extract), add_unreferenced_file(extract), drop_an_element(extract)]
    messages = [str(problem) for problem in validate_extract(extract).errors]
    for pattern in expected:
        assert any(re.search(pattern, message) for message in messages), (pattern, messages)


def test_a_missing_folder_is_an_error(setup: Setup) -> None:
    result = run_cli(setup.config, "archive", "validate", str(setup.tmp / "nowhere"))
    assert result.exit_code == 1
    assert "is not a folder" in result.output


def test_a_stray_top_level_file_is_a_warning_only(extract: Path) -> None:
    (extract / "notes.txt").write_text("hello")
    report = validate_extract(extract)
    assert report.ok
    problems = [str(p) for p in report.problems if "has no Arkivformat version" not in p.message]  # made without
    assert problems == ["WARNING: notes.txt: not part of a Noark 5 extract"]
