"""What format a document file is in, as Noark 5 records it (M701 format, M702 formatDetaljer).

`format` is the PRONOM identifier (PUID) where we can tell it from the bytes, else the MIME type. Only cheap
signature checks: the PDF header version and the PDF/A identification in the XMP metadata (pdfaid:part and
pdfaid:conformance), which every PDF/A file must carry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PDF_VERSION = re.compile(rb"^%PDF-(\d\.\d)")
_PDFA_PART = re.compile(rb"pdfaid:part(?:>|\s*=\s*[\"'])\s*(\d)")
_PDFA_CONFORMANCE = re.compile(rb"pdfaid:conformance(?:>|\s*=\s*[\"'])\s*([ABUabu])")

_PDF_PUID = {
    "1.0": "fmt/14",
    "1.1": "fmt/15",
    "1.2": "fmt/16",
    "1.3": "fmt/17",
    "1.4": "fmt/18",
    "1.5": "fmt/19",
    "1.6": "fmt/20",
    "1.7": "fmt/276",
    "2.0": "fmt/1129",
}
_PDFA_PUID = {
    ("1", "A"): "fmt/95",
    ("1", "B"): "fmt/354",
    ("2", "A"): "fmt/476",
    ("2", "B"): "fmt/477",
    ("2", "U"): "fmt/478",
    ("3", "A"): "fmt/479",
    ("3", "B"): "fmt/480",
    ("3", "U"): "fmt/481",
}
PDFA_PUIDS = frozenset(_PDFA_PUID.values())
# Archive formats for PDF (riksarkivarens forskrift § 5-17): PDF/A-1a/1b/2a/2b/2u. PDF/A-3 allows embedded files.
_ARCHIVE_PDFA = {("1", "A"), ("1", "B"), ("2", "A"), ("2", "B"), ("2", "U")}
_SIMPLE = {
    "text/plain": ("x-fmt/111", True),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ("fmt/412", False),
    "image/png": ("fmt/11", True),
    "image/jpeg": ("fmt/43", True),
    "image/tiff": ("fmt/353", True),
    "application/xml": ("fmt/101", True),
    "text/xml": ("fmt/101", True),
}


@dataclass(frozen=True)
class FileFormat:
    format: str  # M701: PUID, or the MIME type when unknown
    details: str  # M702 formatDetaljer: human-readable
    is_pdf: bool
    is_archive_format: bool  # an approved archive format as received (no conversion needed)


def identify(data: bytes, content_type: str) -> FileFormat:
    mime = content_type.split(";", 1)[0].strip().lower() or "application/octet-stream"
    header = _PDF_VERSION.match(data[:16])
    if header is not None:
        version = header.group(1).decode()
        part_match = _PDFA_PART.search(data)
        conformance_match = _PDFA_CONFORMANCE.search(data)
        if part_match is not None:
            part = part_match.group(1).decode()
            conformance = conformance_match.group(1).decode().upper() if conformance_match else "B"
            puid = _PDFA_PUID.get((part, conformance), _PDF_PUID.get(version, "application/pdf"))
            return FileFormat(
                puid, f"PDF/A-{part}{conformance.lower()} (PDF {version})", True, (part, conformance) in _ARCHIVE_PDFA
            )
        return FileFormat(_PDF_PUID.get(version, "application/pdf"), f"PDF {version} (ikke PDF/A)", True, False)
    puid, archival = _SIMPLE.get(mime, (mime, False))
    return FileFormat(puid, content_type.strip() or mime, False, archival)


def extension_for(filename: str | None, content_type: str, fmt: FileFormat) -> str:
    """A safe file extension for the copy under DOKUMENT/ (the sender's file name is never used as a path)."""
    if fmt.is_pdf:
        return "pdf"
    mime = content_type.split(";", 1)[0].strip().lower()
    known = {
        "text/plain": "txt",
        "image/png": "png",
        "image/jpeg": "jpg",
        "image/tiff": "tif",
        "application/xml": "xml",
        "text/xml": "xml",
        "text/html": "html",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
        "application/msword": "doc",
    }
    if mime in known:
        return known[mime]
    if filename and "." in filename:
        suffix = filename.rsplit(".", 1)[1].lower()
        if re.fullmatch(r"[a-z0-9]{1,8}", suffix):
            return suffix
    return "bin"
