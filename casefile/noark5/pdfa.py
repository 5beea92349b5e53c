"""Structural PDF/A checks (no full validator such as veraPDF is packaged for Debian).

What is checked, cheaply and with pikepdf: the file opens and is not encrypted; the XMP metadata declares
pdfaid:part and pdfaid:conformance (and is not compressed); the catalogue has a PDF/A output intent with an ICC
profile; every font used on a page (also inside form XObjects and annotation appearances) is embedded; no
JavaScript, no embedded files, no LZW compression; and for PDF/A-1 no transparency groups. That catches what
conversions and senders' "PDF/A" files usually get wrong; it is not a full ISO 19005 validation.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

PDFA_NS = "http://www.aiim.org/pdfa/ns/id/"
# Recursion bound for nested XObjects (a malicious file can nest them deeply or in cycles).
MAX_XOBJECT_DEPTH = 12


@dataclass
class PdfaReport:
    part: str | None = None
    conformance: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.part is not None

    @property
    def level(self) -> str:
        return f"PDF/A-{self.part}{(self.conformance or '').lower()}" if self.part else "ikke PDF/A"


def check_pdfa(data: bytes, *, required_part: str | None = None) -> PdfaReport:
    import pikepdf

    report = PdfaReport()
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError:
        report.problems.append("filen er kryptert med passord")
        return report
    except Exception as exc:
        report.problems.append(f"filen kan ikke leses som PDF: {exc}")
        return report
    with pdf:
        if pdf.is_encrypted:
            report.problems.append("filen er kryptert (PDF/A tillater ikke kryptering)")
        _check_identification(pdf, report)
        if required_part is not None and report.part is not None and report.part != required_part:
            report.problems.append(f"PDF/A-del {report.part}, ventet {required_part}")
        _check_output_intent(pdf, report)
        _check_javascript_and_attachments(pdf, report)
        fonts: dict[str, bool] = {}
        transparency = False
        for page in pdf.pages:
            obj = page.obj
            group = obj.get("/Group")
            if group is not None and str(group.get("/S")) == "/Transparency":
                transparency = True
            _collect_fonts(obj.get("/Resources"), fonts, 0)
            for annotation in obj.get("/Annots", []) or []:
                if str(annotation.get("/Subtype")) in ("/Widget", "/Link") and annotation.get("/A") is not None:
                    if str(annotation.A.get("/S")) == "/JavaScript":
                        report.problems.append("en lenke eller et skjemafelt kjører JavaScript")
                appearance = annotation.get("/AP")
                if appearance is not None:
                    for stream in _streams_in(appearance):
                        _collect_fonts(stream.get("/Resources"), fonts, 1)
        missing = sorted(name for name, embedded in fonts.items() if not embedded)
        if missing:
            more = " ..." if len(missing) > 5 else ""
            report.problems.append(f"skrift ikke innebygd: {', '.join(missing[:5])}{more}")
        if transparency and report.part == "1":
            report.problems.append("PDF/A-1 tillater ikke transparensgrupper")
        if any(_uses_lzw(obj) for obj in pdf.objects):
            report.problems.append("LZW-komprimering er ikke tillatt i PDF/A")
    if report.part is None and not any("PDF/A-identifikasjon" in p for p in report.problems):
        report.problems.append("mangler PDF/A-identifikasjon (pdfaid) i XMP-metadata")
    return report


def _check_identification(pdf: Any, report: PdfaReport) -> None:
    import pikepdf

    metadata = pdf.Root.get("/Metadata")
    if metadata is None:
        report.problems.append("mangler XMP-metadata med PDF/A-identifikasjon (pdfaid)")
        return
    if metadata.get("/Filter") is not None:
        report.problems.append("XMP-metadata er komprimert (PDF/A krever ukomprimert metadatastrøm)")
    try:
        with pdf.open_metadata(set_pikepdf_as_editor=False) as xmp:
            part = xmp.get(f"{{{PDFA_NS}}}part")
            conformance = xmp.get(f"{{{PDFA_NS}}}conformance")
    except (pikepdf.PdfError, ValueError, KeyError) as exc:
        report.problems.append(f"XMP-metadata kan ikke leses: {exc}")
        return
    if part:
        report.part = str(part).strip()
        report.conformance = str(conformance).strip().upper() if conformance else None
        if report.part not in {"1", "2", "3", "4"}:
            report.problems.append(f"ukjent PDF/A-del {report.part!r}")
        if report.part in {"1", "2", "3"} and report.conformance not in {"A", "B", "U"}:
            report.problems.append(f"ugyldig PDF/A-samsvarsnivå {report.conformance!r}")


def _check_output_intent(pdf: Any, report: PdfaReport) -> None:
    intents = pdf.Root.get("/OutputIntents")
    found = False
    for intent in intents or []:
        if str(intent.get("/S")) == "/GTS_PDFA1":
            found = True
            if intent.get("/DestOutputProfile") is None:
                report.problems.append("PDF/A-utdataintensjon mangler ICC-profil (DestOutputProfile)")
    if not found:
        report.problems.append("mangler PDF/A-utdataintensjon (OutputIntent GTS_PDFA1)")


def _check_javascript_and_attachments(pdf: Any, report: PdfaReport) -> None:
    names = pdf.Root.get("/Names")
    if names is not None and names.get("/JavaScript") is not None:
        report.problems.append("dokumentet inneholder JavaScript")
    if names is not None and names.get("/EmbeddedFiles") is not None and report.part in {"1", "2"}:
        report.problems.append("dokumentet har innebygde filer (ikke tillatt i PDF/A-1 og kun PDF/A i PDF/A-2)")
    action = pdf.Root.get("/OpenAction")
    if action is not None and hasattr(action, "get") and str(action.get("/S")) == "/JavaScript":
        report.problems.append("dokumentet kjører JavaScript ved åpning")
    if pdf.Root.get("/AA") is not None:
        report.problems.append("dokumentet har tilleggshandlinger (AA), ikke tillatt i PDF/A")


def _streams_in(appearance: Any) -> list[Any]:
    import pikepdf

    found = []
    for key in ("/N", "/R", "/D"):
        value = appearance.get(key)
        if isinstance(value, pikepdf.Stream):
            found.append(value)
        elif isinstance(value, pikepdf.Dictionary):
            found.extend(v for v in value.values() if isinstance(v, pikepdf.Stream))
    return found


def _collect_fonts(resources: Any, fonts: dict[str, bool], depth: int) -> None:
    import pikepdf

    if resources is None or depth > MAX_XOBJECT_DEPTH or not isinstance(resources, pikepdf.Dictionary):
        return
    for font in (resources.get("/Font") or {}).values():
        name = str(font.get("/BaseFont", "/(uten navn)"))[1:]
        fonts[name] = fonts.get(name, False) or _font_embedded(font)
    for xobject in (resources.get("/XObject") or {}).values():
        if str(xobject.get("/Subtype")) == "/Form":
            _collect_fonts(xobject.get("/Resources"), fonts, depth + 1)


def _font_embedded(font: Any) -> bool:
    subtype = str(font.get("/Subtype"))
    if subtype == "/Type3":
        return True  # glyphs are content streams inside the font itself
    if subtype == "/Type0":
        descendants = font.get("/DescendantFonts") or []
        return bool(descendants) and all(_font_embedded(d) for d in descendants)
    descriptor = font.get("/FontDescriptor")
    if descriptor is None:
        return False
    return any(descriptor.get(key) is not None for key in ("/FontFile", "/FontFile2", "/FontFile3"))


def _uses_lzw(obj: Any) -> bool:
    import pikepdf

    if not isinstance(obj, pikepdf.Stream):
        return False
    filters = obj.get("/Filter")
    if filters is None:
        return False
    names = [str(f) for f in filters] if isinstance(filters, pikepdf.Array) else [str(filters)]
    return "/LZWDecode" in names
