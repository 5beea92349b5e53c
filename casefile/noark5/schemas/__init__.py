"""Arkivverket's official Noark 5 and ADDML schemas, byte for byte (see SOURCE.md). Never edit these files."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# The XSDs that go into every extract, and the XML file each main schema validates.
SCHEMA_FILES = (
    "addml.xsd",
    "arkivstruktur.xsd",
    "endringslogg.xsd",
    "loependeJournal.xsd",
    "metadatakatalog.xsd",
    "offentligJournal.xsd",
)
SCHEMA_FOR_XML = {
    "arkivuttrekk.xml": "addml.xsd",
    "arkivstruktur.xml": "arkivstruktur.xsd",
    "endringslogg.xml": "endringslogg.xsd",
    "loependeJournal.xml": "loependeJournal.xsd",
    "offentligJournal.xml": "offentligJournal.xsd",
}


def schema_bytes(name: str) -> bytes:
    return resources.files(__name__).joinpath(name).read_bytes()


def schema_dir() -> Path:
    """A real folder holding the schemas (validators resolve metadatakatalog.xsd relative to it)."""
    folder = Path(str(resources.files(__name__)))
    if not (folder / "arkivstruktur.xsd").is_file():  # pragma: no cover - zipped install
        raise RuntimeError("the Noark 5 schemas are not installed as files")
    return folder
