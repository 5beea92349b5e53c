"""Conversion of documents to the archival format PDF/A-2b, with Debian's tools, as subprocesses with timeouts.

- Word, ODT, RTF and text (the mail body): LibreOffice headless, writer_pdf_Export with SelectPdfVersion=2
  (PDF/A-2b). One soffice process converts a whole batch: its start-up costs seconds, a document far less.
- PDF: Ghostscript pdfwrite with -dPDFA=2 and an sRGB output intent (fonts embedded, transparency kept as
  PDF/A-2 allows).
- Images (PNG, JPEG, TIFF, GIF, BMP): Pillow writes a plain PDF page per image, Ghostscript makes it PDF/A-2b.

Every result is checked (pdfa.check_pdfa) before it is accepted. A failure is an outcome with a reason, never
an exception: one bad document must not stop the rest.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from postmottak.casefile.noark5.pdfa import check_pdfa

PDF_TIMEOUT_SECONDS = 120.0
# LibreOffice: start-up plus this much per document in the batch.
OFFICE_START_SECONDS = 90.0
OFFICE_PER_DOCUMENT_SECONDS = 60.0
OFFICE_FILTER = 'pdf:writer_pdf_Export:{"SelectPdfVersion":{"type":"long","value":"2"}}'
TARGET_PUID = "fmt/477"  # PDF/A-2b
TARGET_DETAILS = "PDF/A-2b"
ICC_CANDIDATES = (
    "/usr/share/color/icc/ghostscript/srgb.icc",
    "/usr/share/color/icc/sRGB.icc",
    "/usr/share/color/icc/colord/sRGB.icc",
)

OFFICE_TYPES = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/msword": "doc",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/rtf": "rtf",
    "text/rtf": "rtf",
    "text/plain": "txt",
    "text/html": "html",
}
IMAGE_TYPES = {"image/png", "image/jpeg", "image/tiff", "image/gif", "image/bmp"}
OFFICE_SUFFIXES = {"docx", "doc", "odt", "rtf", "txt"}


@dataclass(frozen=True)
class SourceFile:
    key: str  # the caller's identifier, unique within a batch
    data: bytes
    content_type: str
    filename: str | None = None


@dataclass(frozen=True)
class Converted:
    key: str
    data: bytes | None
    tool: str | None
    error: str | None  # Norwegian, for staff

    @property
    def ok(self) -> bool:
        return self.data is not None


def kind_of(source: SourceFile) -> str | None:
    """pdf | office | image, or None when no converter applies."""
    if source.data[:5] == b"%PDF-" or source.data.lstrip()[:5] == b"%PDF-":
        return "pdf"
    mime = source.content_type.split(";", 1)[0].strip().lower()
    if mime in IMAGE_TYPES:
        return "image"
    if mime in OFFICE_TYPES:
        return "office"
    suffix = (source.filename or "").rsplit(".", 1)[-1].lower() if source.filename and "." in source.filename else ""
    if suffix in OFFICE_SUFFIXES:
        return "office"
    return None


def convert_all(sources: Sequence[SourceFile]) -> dict[str, Converted]:
    """Convert every source; one soffice run for all office documents."""
    results: dict[str, Converted] = {}
    office: list[SourceFile] = []
    for source in sources:
        kind = kind_of(source)
        if kind == "pdf":
            results[source.key] = _pdf(source)
        elif kind == "image":
            results[source.key] = _image(source)
        elif kind == "office":
            office.append(source)
        else:
            results[source.key] = Converted(
                source.key, None, None, f"formatet {source.content_type!r} kan ikke konverteres til PDF/A"
            )
    if office:
        results.update(_office(office))
    return results


# Tools ---------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def ghostscript_version() -> str | None:
    try:
        done = subprocess.run(["gs", "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def libreoffice_version() -> str | None:
    binary = shutil.which("soffice")
    if binary is None:
        return None
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = done.stdout.split()
    return words[1] if len(words) > 1 and words[0] == "LibreOffice" else (done.stdout.strip() or None)


def icc_profile() -> Path | None:
    for candidate in ICC_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


def _ps_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def _pdfa_definition(icc: Path) -> str:
    """Ghostscript's PDFA_def.ps, reduced to what PDF/A-2b with an sRGB output intent needs."""
    return f"""%!
/ICCProfile {_ps_string(str(icc))} def
[/_objdef {{icc_PDFA}} /type /stream /OBJ pdfmark
[{{icc_PDFA}} << /N 3 >> /PUT pdfmark
[{{icc_PDFA}} ICCProfile (r) file /PUT pdfmark
[/_objdef {{OutputIntent_PDFA}} /type /dict /OBJ pdfmark
[{{OutputIntent_PDFA}} << /Type /OutputIntent /S /GTS_PDFA1 /DestOutputProfile {{icc_PDFA}}
  /OutputConditionIdentifier (sRGB) /Info (sRGB IEC61966-2.1) >> /PUT pdfmark
[{{Catalog}} << /OutputIntents [ {{OutputIntent_PDFA}} ] >> /PUT pdfmark
"""


def _run(command: list[str], timeout: float, cwd: Path) -> tuple[int | None, str]:
    """Run in its own process group; on timeout the whole group is killed. Returns (exit code or None, stderr)."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "HOME": str(cwd)},
    )
    try:
        _out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.communicate()
        return None, "tidsavbrudd"
    return process.returncode, err.decode("utf-8", "replace")


def _accepted(key: str, data: bytes, tool: str) -> Converted:
    report = check_pdfa(data, required_part="2")
    if not report.ok:
        return Converted(key, None, tool, "resultatet er ikke gyldig PDF/A-2: " + "; ".join(report.problems))
    return Converted(key, data, tool, None)


def _ghostscript(key: str, data: bytes, tool_name: str) -> Converted:
    version = ghostscript_version()
    if version is None:
        return Converted(key, None, None, "Ghostscript (gs) er ikke installert")
    icc = icc_profile()
    if icc is None:
        return Converted(key, None, None, "fant ingen sRGB ICC-profil (pakken libgs-common)")
    tool = f"{tool_name} {version}"
    with tempfile.TemporaryDirectory(prefix="pdfa-") as folder:
        work = Path(folder)
        (work / "in.pdf").write_bytes(data)
        (work / "pdfa.ps").write_text(_pdfa_definition(icc), encoding="latin-1")
        command = [
            "gs",
            "-q",
            "-dBATCH",
            "-dNOPAUSE",
            "-dSAFER",
            f"--permit-file-read={icc}",
            "-sDEVICE=pdfwrite",
            "-dPDFA=2",
            "-dPDFACompatibilityPolicy=1",
            "-sColorConversionStrategy=RGB",
            "-dAutoRotatePages=/None",
            "-sOutputFile=out.pdf",
            "pdfa.ps",
            "in.pdf",
        ]
        code, stderr = _run(command, PDF_TIMEOUT_SECONDS, work)
        output = work / "out.pdf"
        if code != 0 or not output.is_file() or output.stat().st_size == 0:
            reason = "tidsavbrudd" if code is None else (stderr.strip().splitlines() or [f"avslutningskode {code}"])[-1]
            return Converted(key, None, tool, f"Ghostscript klarte ikke konverteringen: {reason[:300]}")
        return _accepted(key, output.read_bytes(), tool)


def page_count(data: bytes) -> int | None:
    """Pages of a PDF as qpdf (pikepdf) reads it, repairing what it can; None when it cannot be read at all."""
    import pikepdf

    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            return len(pdf.pages)
    except Exception:
        return None


def _pdf(source: SourceFile) -> Converted:
    """Ghostscript renders what it can of a damaged file (even a blank page): the page count must survive."""
    pages = page_count(source.data)
    if pages is None or pages == 0:
        return Converted(source.key, None, None, "PDF-filen er skadet eller passordbeskyttet og kan ikke konverteres")
    result = _ghostscript(source.key, source.data, "Ghostscript")
    if result.data is not None and page_count(result.data) != pages:
        reason = f"konverteringen ga et annet antall sider enn originalen ({pages})"
        return Converted(source.key, None, result.tool, reason)
    return result


def _image(source: SourceFile) -> Converted:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(source.data)) as image:
            pages = []
            for frame in ImageSequence.Iterator(image):
                page = frame.convert("RGBA")
                flattened = Image.new("RGB", page.size, (255, 255, 255))
                flattened.paste(page, mask=page.getchannel("A"))  # PDF/A-2b allows alpha, but flat is simpler
                pages.append(flattened)
                if image.format != "TIFF":
                    break  # GIF animations: the first frame
            buffer = io.BytesIO()
            dpi = image.info.get("dpi", (150, 150))
            pages[0].save(buffer, format="PDF", save_all=True, append_images=pages[1:], resolution=float(dpi[0] or 150))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return Converted(source.key, None, None, f"bildet kan ikke leses: {exc}")
    import PIL

    return _ghostscript(source.key, buffer.getvalue(), f"Pillow {PIL.__version__} + Ghostscript")


def _office(sources: list[SourceFile]) -> dict[str, Converted]:
    version = libreoffice_version()
    binary = shutil.which("soffice")
    if binary is None or version is None:
        return {s.key: Converted(s.key, None, None, "LibreOffice (soffice) er ikke installert") for s in sources}
    tool = f"LibreOffice {version}"
    results: dict[str, Converted] = {}
    with tempfile.TemporaryDirectory(prefix="pdfa-office-") as folder:
        work = Path(folder)
        (work / "in").mkdir()
        names: dict[str, str] = {}
        for index, source in enumerate(sources):
            mime = source.content_type.split(";", 1)[0].strip().lower()
            suffix = OFFICE_TYPES.get(mime) or (source.filename or "x.txt").rsplit(".", 1)[-1].lower()
            name = f"d{index:05d}"
            (work / "in" / f"{name}.{suffix}").write_bytes(source.data)
            names[source.key] = name
        command = [
            binary,
            "--headless",
            "--norestore",
            "--nolockcheck",
            "--nodefault",
            f"-env:UserInstallation={(work / 'profile').as_uri()}",
            "--convert-to",
            OFFICE_FILTER,
            "--outdir",
            str(work / "out"),
            *sorted(str(p) for p in (work / "in").iterdir()),
        ]
        timeout = OFFICE_START_SECONDS + OFFICE_PER_DOCUMENT_SECONDS * len(sources)
        code, stderr = _run(command, timeout, work)
        for source in sources:
            output = work / "out" / f"{names[source.key]}.pdf"
            if output.is_file() and output.stat().st_size > 0:
                results[source.key] = _accepted(source.key, output.read_bytes(), tool)
            else:
                reason = "tidsavbrudd" if code is None else "LibreOffice laget ingen PDF (skadet eller ukjent fil?)"
                results[source.key] = Converted(source.key, None, tool, reason)
    return results
