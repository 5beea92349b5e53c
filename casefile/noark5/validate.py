"""Checks an extract folder: schemas, files, checksums, sizes, counts. Every problem is reported, not just the first.

XML files are validated against the schemas shipped with postmottak (not the copies inside the extract, which are
themselves checked to be byte-identical to the official ones), with xmlschema, or lxml when xmlschema is missing.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from postmottak.casefile.noark5.extract import DOCUMENT_DIR, REPORT_FILE, SHA256
from postmottak.casefile.noark5.formats import PDFA_PUIDS
from postmottak.casefile.noark5.pdfa import check_pdfa
from postmottak.casefile.noark5.schemas import SCHEMA_FILES, SCHEMA_FOR_XML, schema_bytes, schema_dir
from postmottak.casefile.noark5.xmlutil import ADDML, N5

ERROR = "error"
WARNING = "warning"
_AS = "{" + N5 + "arkivstruktur}"
_ADDML = "{" + ADDML + "}"
_NAMESPACE = re.compile(r"\{[^}]*\}")  # "{http://...}tittel" -> "tittel" in messages
_JOURNALS = {"loependeJournal.xml", "offentligJournal.xml"}
_COUNTED = {"mappe", "registrering", "endring", "journalregistrering"}


@dataclass(frozen=True)
class Problem:
    severity: str  # error | warning
    file: str  # path relative to the extract, or "." for the folder
    message: str

    def __str__(self) -> str:
        return f"{self.severity.upper()}: {self.file}: {self.message}"


@dataclass
class ValidationReport:
    folder: Path
    problems: list[Problem] = field(default_factory=list)
    xml_files_validated: int = 0
    document_files_checked: int = 0
    pdfa_files_checked: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, file: str, message: str) -> None:
        self.problems.append(Problem(ERROR, file, message))

    def warning(self, file: str, message: str) -> None:
        self.problems.append(Problem(WARNING, file, message))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Schema validation ---------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _xmlschema(name: str) -> Any:
    import xmlschema

    return xmlschema.XMLSchema10(str(schema_dir() / name))


@lru_cache(maxsize=None)
def _lxml_schema(name: str) -> Any:
    from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type information

    return etree.XMLSchema(etree.parse(str(schema_dir() / name)))


def schema_errors(xml_path: Path, schema_name: str) -> list[str]:
    """Messages for every schema violation of one file ("line N: ..." where the parser knows the line)."""
    try:
        import xmlschema  # noqa: F401
    except ImportError:
        return _lxml_errors(xml_path, schema_name)
    source: Any = str(xml_path)
    try:
        from lxml import etree

        source = etree.parse(str(xml_path))  # gives xmlschema source line numbers
    except ImportError:
        pass
    except Exception as exc:  # lxml.etree.XMLSyntaxError
        return [f"not well-formed XML: {exc}"]
    messages = []
    try:
        for error in _xmlschema(schema_name).iter_errors(source):
            line = getattr(error, "sourceline", None)
            where = f"line {line}, " if line else ""
            messages.append(_NAMESPACE.sub("", f"{where}{error.path}: {error.reason}"))
    except ET.ParseError as exc:
        return [f"not well-formed XML: {exc}"]
    return messages


def _lxml_errors(xml_path: Path, schema_name: str) -> list[str]:
    from lxml import etree

    try:
        document = etree.parse(str(xml_path))
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    schema = _lxml_schema(schema_name)
    if schema.validate(document):
        return []
    return [_NAMESPACE.sub("", f"line {entry.line}: {entry.message}") for entry in schema.error_log]


# The whole extract ---------------------------------------------------------------------------------------


def validate_extract(folder: Path) -> ValidationReport:
    folder = Path(folder)
    report = ValidationReport(folder)
    if not folder.is_dir():
        report.error(".", f"{folder} is not a folder")
        return report
    trees = _validate_xml_files(folder, report)
    _check_schema_copies(folder, report)
    referenced = _check_document_files(folder, trees.get("arkivstruktur.xml"), report)
    _check_unreferenced(folder, referenced, report)
    _check_arkivuttrekk(folder, trees, report)
    _check_top_level(folder, report)
    return report


def _validate_xml_files(folder: Path, report: ValidationReport) -> dict[str, ET.Element]:
    trees: dict[str, ET.Element] = {}
    for xml_name, schema_name in SCHEMA_FOR_XML.items():
        path = folder / xml_name
        if not path.is_file():
            structure = trees.get("arkivstruktur.xml")
            no_entries = structure is not None and next(structure.iter(f"{_AS}registrering"), None) is None
            if not (xml_name in _JOURNALS and no_entries):  # journals are only required when there are entries
                report.error(xml_name, "missing")
            continue
        for message in schema_errors(path, schema_name):
            report.error(xml_name, f"does not validate against {schema_name}: {message}")
        report.xml_files_validated += 1
        try:
            trees[xml_name] = ET.parse(path).getroot()
        except ET.ParseError:
            pass  # already reported as not well-formed
    return trees


def _check_schema_copies(folder: Path, report: ValidationReport) -> None:
    for name in SCHEMA_FILES:
        path = folder / name
        if not path.is_file():
            report.error(name, "official schema missing from the extract")
        elif path.read_bytes() != schema_bytes(name):
            report.error(name, "differs from Arkivverket's official schema (the extract must carry it unmodified)")


def _safe_relative(reference: str) -> PurePosixPath | None:
    path = PurePosixPath(reference.replace("\\", "/"))
    if not reference or path.is_absolute() or ".." in path.parts or reference.startswith("/"):
        return None
    return path


def _check_document_files(folder: Path, arkivstruktur: ET.Element | None, report: ValidationReport) -> set[str]:
    referenced: set[str] = set()
    if arkivstruktur is None:
        return referenced
    for obj in arkivstruktur.iter(f"{_AS}dokumentobjekt"):
        system_id = (obj.findtext(f"{_AS}systemID") or "?").strip()
        reference = (obj.findtext(f"{_AS}referanseDokumentfil") or "").strip()
        label = f"dokumentobjekt {system_id}"
        relative = _safe_relative(reference)
        if relative is None:
            report.error(
                "arkivstruktur.xml",
                f"{label}: referanseDokumentfil {reference!r} is not a relative path inside the extract",
            )
            continue
        key = relative.as_posix()
        if key in referenced:
            report.warning("arkivstruktur.xml", f"{label}: {key} is referenced more than once")
        referenced.add(key)
        path = folder / key
        if not path.is_file():
            report.error(key, f"referenced by {label} but missing")
            continue
        report.document_files_checked += 1
        size_text = (obj.findtext(f"{_AS}filstoerrelse") or "").strip()
        actual_size = path.stat().st_size
        if not size_text.isdigit():
            report.error("arkivstruktur.xml", f"{label}: filstoerrelse {size_text!r} is not a number")
        elif int(size_text) != actual_size:
            report.error(key, f"size is {actual_size} bytes, arkivstruktur.xml says {size_text} ({label})")
        algorithm = (obj.findtext(f"{_AS}sjekksumAlgoritme") or "").strip()
        expected = (obj.findtext(f"{_AS}sjekksum") or "").strip().lower()
        if algorithm.upper().replace("-", "") != SHA256:
            report.error("arkivstruktur.xml", f"{label}: sjekksumAlgoritme {algorithm!r} is not supported (use SHA256)")
            continue
        actual = sha256_of(path)
        if actual != expected:
            report.error(key, f"SHA-256 is {actual}, arkivstruktur.xml says {expected or '(none)'} ({label})")
        if (obj.findtext(f"{_AS}variantformat") or "").strip() == "Arkivformat":
            _check_archival_file(path, key, obj, label, report)
    _check_archival_variants(arkivstruktur, report)
    return referenced


def _check_archival_file(path: Path, key: str, obj: ET.Element, label: str, report: ValidationReport) -> None:
    """An Arkivformat PDF must be PDF/A (structural checks) and say so in its format code."""
    data = path.read_bytes()
    if not data.startswith(b"%PDF-"):
        return  # other archive formats (text, PNG, ...) are not checked here
    report.pdfa_files_checked += 1
    check = check_pdfa(data)
    for problem in check.problems:
        report.error(key, f"not valid PDF/A ({label}): {problem}")
    declared = (obj.findtext(f"{_AS}format") or "").strip()
    if check.ok and declared not in PDFA_PUIDS:
        report.error(
            "arkivstruktur.xml", f"{label}: format {declared!r} is not a PDF/A format code, the file is {check.level}"
        )


def _check_archival_variants(arkivstruktur: ET.Element, report: ValidationReport) -> None:
    """Every document should have an archival version; the depository asks for one (a warning: nothing is lost)."""
    for description in arkivstruktur.iter(f"{_AS}dokumentbeskrivelse"):
        objects = description.findall(f"{_AS}dokumentobjekt")
        variants = [(o.findtext(f"{_AS}variantformat") or "").strip() for o in objects]
        if variants and "Arkivformat" not in variants:
            system_id = (description.findtext(f"{_AS}systemID") or "?").strip()
            report.warning("arkivstruktur.xml", f"dokumentbeskrivelse {system_id} has no Arkivformat version")


def _check_unreferenced(folder: Path, referenced: set[str], report: ValidationReport) -> None:
    documents = folder / DOCUMENT_DIR
    if not documents.is_dir():
        if referenced:
            report.error(DOCUMENT_DIR, "folder missing")
        return
    for path in sorted(documents.rglob("*")):
        if path.is_file():
            key = path.relative_to(folder).as_posix()
            if key not in referenced:
                report.error(key, "not referenced by any dokumentobjekt in arkivstruktur.xml")


def _addml_properties(element: ET.Element) -> list[ET.Element]:
    return element.findall(f"{_ADDML}properties/{_ADDML}property")


def _child_value(prop: ET.Element, name: str) -> str | None:
    for child in _addml_properties(prop):
        if child.get("name") == name:
            return (child.findtext(f"{_ADDML}value") or "").strip()
    return None


def _check_arkivuttrekk(folder: Path, trees: dict[str, ET.Element], report: ValidationReport) -> None:
    root = trees.get("arkivuttrekk.xml")
    if root is None:
        return
    described: set[str] = set()
    for prop in root.iter(f"{_ADDML}property"):
        if prop.get("name") != "file":
            continue
        name = _child_value(prop, "name")
        checksum = next((p for p in _addml_properties(prop) if p.get("name") == "checksum"), None)
        if not name or checksum is None:
            continue
        described.add(name)
        expected = (_child_value(checksum, "value") or "").lower()
        path = folder / name
        if _safe_relative(name) is None or not path.is_file():
            report.error(name, "listed in arkivuttrekk.xml but missing")
        elif sha256_of(path) != expected:
            report.error(name, f"SHA-256 does not match arkivuttrekk.xml (file {sha256_of(path)}, listed {expected})")
    for xml_name in SCHEMA_FOR_XML:
        if xml_name != "arkivuttrekk.xml" and (folder / xml_name).is_file() and xml_name not in described:
            report.error("arkivuttrekk.xml", f"{xml_name} is not described (no checksum)")
    # numberOfOccurrences: the counts must match the files
    for data_object in root.iter(f"{_ADDML}dataObject"):
        xml_name = f"{data_object.get('name')}.xml"
        tree = trees.get(xml_name)
        for prop in data_object.findall(f"{_ADDML}properties/{_ADDML}property"):
            if prop.get("name") != "info":
                continue
            for occurrence in _addml_properties(prop):
                if occurrence.get("name") != "numberOfOccurrences":
                    continue
                element = (occurrence.findtext(f"{_ADDML}value") or "").strip()
                listed = _child_value(occurrence, "value")
                if tree is None or element not in _COUNTED or listed is None:
                    continue
                namespace = tree.tag.split("}")[0] + "}"
                actual = sum(1 for _ in tree.iter(f"{namespace}{element}"))
                if not listed.isdigit() or int(listed) != actual:
                    report.error(
                        "arkivuttrekk.xml", f"{xml_name} has {actual} {element}, arkivuttrekk.xml says {listed}"
                    )
    for prop in root.iter(f"{_ADDML}property"):
        if prop.get("name") == "antallDokumentfiler":
            listed = (prop.findtext(f"{_ADDML}value") or "").strip()
            documents = folder / DOCUMENT_DIR
            actual = sum(1 for p in documents.rglob("*") if p.is_file()) if documents.is_dir() else 0
            if not listed.isdigit() or int(listed) != actual:
                report.error(
                    "arkivuttrekk.xml", f"{DOCUMENT_DIR} holds {actual} files, antallDokumentfiler says {listed}"
                )


def _check_top_level(folder: Path, report: ValidationReport) -> None:
    expected = set(SCHEMA_FOR_XML) | set(SCHEMA_FILES) | {DOCUMENT_DIR, REPORT_FILE}
    for path in sorted(folder.iterdir()):
        if path.name not in expected:
            report.warning(path.name, "not part of a Noark 5 extract")
