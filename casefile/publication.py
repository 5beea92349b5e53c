"""The publication package of a consultation: what the body puts on its website when the case is done.

Layout of the output folder:
    index.html         the respondents, with links to their responses (Norwegian)
    hoeringssvar.csv   the same list as CSV (UTF-8 with BOM, for Excel)
    svar/<name>.pdf    one PDF per public response, named by organisation (private persons: by name)

Rules (offentleglova; personal data kept out):
- An organisation's response is its documents' archival versions (PDF/A) in one PDF, documents exempt by staff
  left out.
- A private person is shown by name only: the PDF is made from the parsed answers, with e-mail addresses, phone
  numbers and postal addresses removed, never from the files they sent (which carry their contact data).
- A response exempt from publication is listed as exempt, with the legal basis, and nothing of its content; with
  screened names its sender is not named either.

`plan` builds the overview (what will be written) without writing anything, for staff to review; `write` writes
it into a fresh folder atomically (a staging folder renamed into place).
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from postmottak.casefile.form_values import FormLayout, form_layout
from postmottak.casefile.models import ArchivalVersion, Document
from postmottak.casefile.noark5.archival import ARCHIVAL_AS_RECEIVED, CONVERTED, versions_by_document
from postmottak.casefile.noark5.convert import Converted, SourceFile, convert_all
from postmottak.casefile.noark5.source import EXEMPT_NAME, EntrySource, load_case
from postmottak.casefile.noark5.xmlutil import local_date
from postmottak.casefile.storage import DocumentStore

RESPONSES_DIR = "svar"
PRIVATE_LABEL = "Privatperson"
# Contact data removed from a private person's text: e-mail addresses, phone numbers (Norwegian and international
# forms), street addresses ("Storgata 5B") and postcode + place ("0155 Oslo").
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w/])(?:\+|00)?(?:\d[ .-]?){7,14}\d(?!\w)")  # 8 digits and more
_STREET = re.compile(
    r"\b[A-ZÆØÅ][\wæøåÆØÅ.-]*(?:gata|gaten|gate|veien|vegen|vei|veg|vn\.|gt\.|allé|alle|plass|stien|svingen|"
    r"bakken|lia|haugen|ringen|tunet|brygge|kaia)\s+\d+\s*[A-Za-z]?\b",
    re.IGNORECASE,
)
_POSTCODE_PLACE = re.compile(r"\b\d{4}\s+[A-ZÆØÅ][a-zæøåA-ZÆØÅ-]+")
REMOVED = "[fjernet]"


class PublicationError(Exception):
    pass


@dataclass
class PlannedResponse:
    journal_number: str
    received: str
    name: str  # as published: organisation, private person's name, or EXEMPT_NAME
    kind: str  # organisation | private | exempt
    legal_basis: str | None = None  # for exempt responses
    filename: str | None = None  # svar/<name>.pdf, None when nothing is published
    documents: list[str] = field(default_factory=list)  # titles of what goes into the PDF
    converting: list[str] = field(default_factory=list)  # of those, the ones with no PDF/A version made yet
    left_out: list[str] = field(default_factory=list)  # documents left out, with why
    problem: str | None = None  # why a public response has no PDF (for staff)


@dataclass
class PublicationPlan:
    case_number: str
    case_title: str
    responses: list[PlannedResponse]

    @property
    def published(self) -> list[PlannedResponse]:
        return [r for r in self.responses if r.filename]


def scrub_contact_data(text: str, known: list[str]) -> str:
    """The text without e-mail addresses, phone numbers, postal addresses and the given known values."""
    for value in sorted({k.strip() for k in known if k and len(k.strip()) >= 5}, key=len, reverse=True):
        text = re.sub(re.escape(value), REMOVED, text, flags=re.IGNORECASE)
    for pattern in (_EMAIL, _STREET, _POSTCODE_PLACE, _PHONE):
        text = pattern.sub(REMOVED, text)
    return text


def _slug(name: str) -> str:
    table = str.maketrans({"æ": "ae", "Æ": "Ae", "ø": "o", "Ø": "O", "å": "a", "Å": "A"})
    ascii_text = unicodedata.normalize("NFKD", name.translate(table)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-").lower()
    return slug[:80] or "svar"


def _layout(item: EntrySource) -> FormLayout:
    return item.layout or form_layout(None)


def _private_name(item: EntrySource) -> str:
    form = item.form or {}
    key = _layout(item).contact_name_key
    for candidate in (form.get(key) if key else None, item.entry.correspondent_name):
        if isinstance(candidate, str) and candidate.strip() and "@" not in candidate:
            return candidate.strip()
    return PRIVATE_LABEL


def _archival_path(version: ArchivalVersion | None, document: Document) -> str | None:
    """The stored PDF/A of a document: its converted version, or the original when that was PDF/A already."""
    if version is None:
        return None
    if version.status == CONVERTED:
        return version.storage_path
    if version.status == ARCHIVAL_AS_RECEIVED:
        return document.storage_path
    return None


def plan(session: Session, case_number: str, *, before_conversion: bool = False) -> PublicationPlan:
    """What the package will hold. `before_conversion`: the overview staff review before writing, which makes
    the missing PDF/A versions first - a document never tried yet counts as published (listed in `converting`)."""
    source = load_case(session, case_number)
    tz = source.case.timezone
    versions = versions_by_document(session, [d.id for item in source.entries for d in item.documents])
    used: set[str] = set()
    responses = []
    for item in source.entries:
        received = local_date(item.entry.received_at, tz).isoformat()
        number = item.entry.journal_number
        if item.exemption is not None:
            if item.exemption.screen_names:
                name = PRIVATE_LABEL if item.is_private_person else EXEMPT_NAME
            else:
                name = _private_name(item) if item.is_private_person else item.sender_name
            responses.append(PlannedResponse(number, received, name, "exempt", item.exemption.legal_basis))
            continue
        private = item.is_private_person
        name = _private_name(item) if private else item.sender_name
        base = _slug(name if name != PRIVATE_LABEL else f"privatperson-{number}")
        filename, counter = f"{RESPONSES_DIR}/{base}.pdf", 2
        while filename in used:
            filename, counter = f"{RESPONSES_DIR}/{base}-{counter}.pdf", counter + 1
        used.add(filename)
        planned = PlannedResponse(number, received, name, "private" if private else "organisation", filename=filename)
        if private:
            planned.documents = ["Svaret gjengitt uten kontaktopplysninger"]
        else:
            for document in item.documents:
                title = document.title or document.filename or f"Dokument {document.number}"
                if document.id in item.document_exemptions:
                    planned.left_out.append(f"{title}: unntatt ({item.document_exemptions[document.id].legal_basis})")
                    continue
                version = versions.get(document.id)
                if version is None and before_conversion:
                    planned.converting.append(title)
                elif _archival_path(version, document) is None:
                    error = version.error if version is not None and version.error else None
                    planned.left_out.append(f"{title}: mangler arkivversjon (PDF/A)" + (f": {error}" if error else ""))
                    continue
                planned.documents.append(title)
            if not planned.documents:
                planned.filename, planned.problem = None, "ingen dokumenter å publisere"
                used.discard(filename)
        responses.append(planned)
    return PublicationPlan(source.case.number, source.case.title, responses)


def _private_text(item: EntrySource, case_title: str, name: str) -> str:
    known = [item.entry.correspondent_email or "", item.intake.sender_address or ""]
    form = item.form or {}
    contact_keys = _layout(item).contact_keys
    # The respondent's e-mail addresses as the form gives them.
    known += [value for key in contact_keys if isinstance(value := form.get(key), str) and "@" in value]
    lines = [f"Høringssvar til {case_title}", f"Journalnummer {item.entry.journal_number}", f"Fra: {name}", ""]
    if item.form:
        for answer in form.get("fields") or []:  # every field of the form's own profile, in form order
            if answer["key"] in contact_keys:
                continue
            text = _answer_text(answer["value"])
            if text:
                lines += [answer["label"], scrub_contact_data(text, known), ""]
    else:
        lines += [scrub_contact_data(item.intake.body_text or "", known), ""]
    return "\n".join(lines)


def _answer_text(value: object) -> str:
    """A text answer, the ticked options of a choice, or each row's ticked columns of a matrix, as one line."""
    if value in (None, "", [], {}):
        return ""
    if isinstance(value, dict):
        return "; ".join(f"{row}: {', '.join(map(str, columns))}" for row, columns in value.items() if columns)
    if isinstance(value, list):
        return "; ".join(map(str, value))
    return str(value)


def _merge(parts: list[bytes]) -> bytes:
    import pikepdf

    merged = pikepdf.new()
    opened = []
    try:
        for part in parts:
            pdf = pikepdf.open(io.BytesIO(part))
            opened.append(pdf)
            merged.pages.extend(pdf.pages)
        out = io.BytesIO()
        merged.save(out, deterministic_id=True)
        return out.getvalue()
    finally:
        for pdf in opened:
            pdf.close()
        merged.close()


def private_sources(session: Session, case_number: str) -> list[SourceFile]:
    """The text of every public private person's response (contact data removed), to be rendered as PDF/A."""
    source = load_case(session, case_number)
    sources = []
    for item in source.entries:
        if item.is_private_person and item.exemption is None:
            text = _private_text(item, source.case.title, _private_name(item))
            sources.append(
                SourceFile(
                    f"publisering:{item.entry.journal_number}",
                    text.encode("utf-8"),
                    "text/plain; charset=utf-8",
                    "svar.txt",
                )
            )
    return sources


def write(
    session: Session,
    store: DocumentStore,
    publication: PublicationPlan,
    output: Path,
    rendered: dict[str, Converted] | None = None,
) -> list[str]:
    """Write the package; returns the files written (relative paths). `rendered`: private persons' PDFs made
    already (from `private_sources`, e.g. in the archival batch); the missing ones are rendered here."""
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise PublicationError(f"output {output} exists and is not an empty folder")
    source = load_case(session, publication.case_number)
    by_number = {item.entry.journal_number: item for item in source.entries}
    versions = versions_by_document(session, [d.id for item in source.entries for d in item.documents])
    rendered = dict(rendered or {})
    missing = [s for s in private_sources(session, publication.case_number) if s.key not in rendered]
    if missing:
        rendered.update(convert_all(missing))
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".publisering-", dir=output.parent))
    written: list[str] = []
    try:
        (staging / RESPONSES_DIR).mkdir()
        for planned in publication.published:
            assert planned.filename is not None
            item = by_number[planned.journal_number]
            if planned.kind == "private":
                result = rendered[f"publisering:{planned.journal_number}"]
                if result.data is None:
                    planned.problem, planned.filename = f"PDF kunne ikke lages: {result.error}", None
                    continue
                data = result.data
            else:
                parts = []
                for document in item.documents:
                    path = _archival_path(versions.get(document.id), document)
                    title = document.title or document.filename or f"Dokument {document.number}"
                    if title in planned.documents and path is not None:
                        parts.append(store.read(path))
                data = _merge(parts)
            (staging / planned.filename).write_bytes(data)
            written.append(planned.filename)
        (staging / "index.html").write_text(_html(publication), encoding="utf-8")
        (staging / "hoeringssvar.csv").write_bytes(_csv(publication))
        written += ["index.html", "hoeringssvar.csv"]
        if output.exists():
            output.rmdir()
        os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written


def _status(planned: PlannedResponse) -> str:
    if planned.kind == "exempt":
        return f"Unntatt offentlighet ({planned.legal_basis})"
    return "Publisert" if planned.filename else "Ikke publisert"


def _csv(publication: PublicationPlan) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["journalnummer", "mottatt", "avsender", "type", "status", "fil"])
    kinds = {"organisation": "Virksomhet", "private": "Privatperson", "exempt": "Unntatt"}
    for planned in publication.responses:
        writer.writerow(
            [
                planned.journal_number,
                planned.received,
                planned.name,
                kinds[planned.kind],
                _status(planned),
                planned.filename or "",
            ]
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _html(publication: PublicationPlan) -> str:
    e = html.escape
    rows = []
    for planned in publication.responses:
        link = f'<a href="{e(planned.filename)}">Les svaret (PDF)</a>' if planned.filename else e(_status(planned))
        rows.append(
            f"<tr><td>{e(planned.journal_number)}</td><td>{e(planned.received)}</td>"
            f"<td>{e(planned.name)}</td><td>{link}</td></tr>"
        )
    title = f"Høringssvar - {publication.case_title} (sak {publication.case_number})"
    return (
        '<!DOCTYPE html>\n<html lang="nb">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{e(title)}</title>\n</head>\n<body>\n<main>\n<h1>{e(title)}</h1>\n"
        f"<p>{len(publication.published)} av {len(publication.responses)} høringssvar er publisert. "
        "Privatpersoner er oppført med navn uten kontaktopplysninger.</p>\n"
        "<table>\n<caption>Høringsinstanser og svar</caption>\n"
        '<thead><tr><th scope="col">Journalnummer</th><th scope="col">Mottatt</th>'
        '<th scope="col">Avsender</th><th scope="col">Svar</th></tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table>\n</main>\n</body>\n</html>\n"
    )


def published_kinds(publication: PublicationPlan) -> dict[str, int]:
    counts: dict[str, int] = {}
    for planned in publication.responses:
        key = planned.kind if planned.filename or planned.kind == "exempt" else "not_published"
        counts[key] = counts.get(key, 0) + 1
    return counts
