"""The Noark 5 archival extract (avleveringspakke) of one closed case.

Layout of the output folder:
    arkivuttrekk.xml     ADDML: creator, system, period, counts, checksums of the other XML and XSD files
    arkivstruktur.xml    arkiv > arkivdel > klassifikasjonssystem > klasse > saksmappe > journalpost > ...
    endringslogg.xml     staff corrections and case status changes from the audit trail
    loependeJournal.xml  the running journal; offentligJournal.xml the public one (private persons screened)
    *.xsd                Arkivverket's schemas, byte for byte
    DOKUMENT/            one file per dokumentobjekt, named by journal number (never by the sender's file name)
    uttrekksrapport.txt  what the depository should know: formats that are not archive formats

Every XML file is deterministic: exporting the same case twice gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from postmottak.casefile import models as m
from postmottak.casefile.blobstore import DatabaseStore
from postmottak.casefile.noark5 import closing
from postmottak.casefile.noark5.archival import ARCHIVAL_AS_RECEIVED, CONVERTED, versions_by_document
from postmottak.casefile.noark5.archival import FAILED as ARCHIVAL_FAILED
from postmottak.casefile.noark5.formats import FileFormat, extension_for, identify
from postmottak.casefile.noark5.ids import derived_id
from postmottak.casefile.noark5.journal import case_officer, class_id, loepende_journal_xml, offentlig_journal_xml
from postmottak.casefile.noark5.options import SYSTEM_USER, ArchiveOptions
from postmottak.casefile.noark5.schemas import SCHEMA_FILES, schema_bytes
from postmottak.casefile.noark5.source import CANCELLED_STATUS, CaseSource, EntrySource, load_case
from postmottak.casefile.noark5.xmlutil import (
    ADDML,
    FORM_NS,
    FORM_PREFIX,
    N5,
    XSI_TYPE,
    Builder,
    local_date,
    to_bytes,
    xs_date,
    xs_datetime,
)
from postmottak.casefile.storage import DocumentStore

ARKIVSTRUKTUR_NS = N5 + "arkivstruktur"
ENDRINGSLOGG_NS = N5 + "endringslogg"
DOCUMENT_DIR = "DOKUMENT"
REPORT_FILE = "uttrekksrapport.txt"
SHA256 = "SHA256"  # Noark 5 sjekksumAlgoritme
ARCHIVAL_SUFFIX = "-arkivformat.pdf"  # DOKUMENT/2022-17-1-arkivformat.pdf beside DOKUMENT/2022-17-1.docx
EMPTY_VALUE = "(tom)"  # tidligereVerdi/nyVerdi must not be empty
# Form keys that describe the parse, not the response: kept out of virksomhetsspesifikkeMetadata.
_FORM_META_KEYS = {
    "warnings",
    "warning_codes",
    "form_status",
    "profile",
    "source_format",
    "page_count",
    "extra_fields",
    "fields",
}


class ExtractError(Exception):
    """The extract cannot be made; the message says why and what to do."""


class CaseNotClosedError(ExtractError):
    pass


@dataclass
class PlannedFile:
    document: m.Document
    entry: EntrySource
    relative: str  # "DOKUMENT/2022-17-1.pdf"
    data: bytes
    fmt: FileFormat
    role: str  # Hoveddokument | Vedlegg
    # The archival version (PDF/A) when one was made: its row, bytes and place in the extract.
    archival: m.ArchivalVersion | None = None
    archival_data: bytes | None = None
    archival_relative: str | None = None

    @property
    def archival_as_received(self) -> bool:
        """The received file is itself PDF/A: one dokumentobjekt, variantformat Arkivformat, no conversion."""
        return self.archival is not None and self.archival.status == ARCHIVAL_AS_RECEIVED

    @property
    def exemption(self) -> m.PublicationExemption | None:
        return self.entry.document_exemptions.get(self.document.id)

    @property
    def relatives(self) -> list[str]:
        return [self.relative] + ([self.archival_relative] if self.archival_relative else [])


@dataclass
class ExtractResult:
    path: Path
    folders: int
    registrations: int
    document_files: int
    changes: int
    screened: int
    not_archive_format: list[str] = field(default_factory=list)
    conversion_failures: list[str] = field(default_factory=list)  # "2022/414-3 dokument 1: reason"


def export_case(
    session: Session,
    store: DocumentStore | DatabaseStore,
    number: str,
    output: Path,
    options: ArchiveOptions | None = None,
) -> ExtractResult:
    options = options or ArchiveOptions()
    source = load_case(session, number)
    case = source.case
    if case.status != "closed" or case.closed_at is None or not case.closed_by:
        raise CaseNotClosedError(
            f"case {number} is not closed: Noark 5 requires closing date and user on every folder in an extract. "
            f"Close it first: postmottak case close {number}"
        )
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ExtractError(f"output {output} exists and is not an empty folder")

    versions = versions_by_document(session, [d.id for item in source.entries for d in item.documents])
    planned = _plan_files(source, store, versions)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".noark5-", dir=output.parent))
    try:
        (staging / DOCUMENT_DIR).mkdir()
        for item in planned:
            (staging / item.relative).write_bytes(item.data)
            if item.archival_relative and item.archival_data is not None:
                (staging / item.archival_relative).write_bytes(item.archival_data)
        for name in SCHEMA_FILES:
            (staging / name).write_bytes(schema_bytes(name))
        changes = _endringslogg(source)
        (staging / "arkivstruktur.xml").write_bytes(_arkivstruktur(source, planned, options))
        (staging / "endringslogg.xml").write_bytes(changes[0])
        journals = bool(source.journal)
        if journals:
            (staging / "loependeJournal.xml").write_bytes(loepende_journal_xml(source, options))
            (staging / "offentligJournal.xml").write_bytes(offentlig_journal_xml(source, options))
        result = ExtractResult(
            path=output,
            folders=1,
            registrations=len(source.journal),
            document_files=sum(len(item.relatives) for item in planned),
            changes=changes[1],
            screened=sum(1 for item in source.entries if item.is_private_person or item.exemption is not None),
            not_archive_format=[
                item.relative
                for item in planned
                if not item.fmt.is_archive_format and item.archival_data is None and not item.archival_as_received
            ],
            conversion_failures=[
                f"{item.entry.entry.journal_number} dokument {item.document.number}: {item.archival.error}"
                for item in planned
                if item.archival is not None and item.archival.status == ARCHIVAL_FAILED
            ],
        )
        (staging / "arkivuttrekk.xml").write_bytes(_arkivuttrekk(staging, source, result, options, journals))
        (staging / REPORT_FILE).write_text(_report(source, planned, result), encoding="utf-8")
        if output.exists():
            output.rmdir()
        os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


# Documents ---------------------------------------------------------------------------------------------


def _main_document(documents: list[m.Document]) -> m.Document | None:
    """The Hoveddokument: the form if there is one, else the document registered as main, else the first."""
    for predicate in (lambda d: d.is_form, lambda d: d.role == "main", lambda d: True):
        for document in documents:
            if predicate(document):
                return document
    return None


def _plan_files(
    source: CaseSource, store: DocumentStore | DatabaseStore, versions: dict[int, m.ArchivalVersion]
) -> list[PlannedFile]:
    planned = []
    for item in source.entries:
        main = _main_document(item.documents)
        for document in item.documents:
            data = store.read(document.storage_path)
            digest = hashlib.sha256(data).hexdigest()
            if digest != document.sha256 or len(data) != document.size:
                raise ExtractError(
                    f"stored file for document {document.number} of {item.entry.journal_number} does not match the "
                    f"case database (sha256 {digest}, expected {document.sha256}): the storage is damaged"
                )
            fmt = identify(data, document.content_type)
            ext = extension_for(document.filename, document.content_type, fmt)
            entry = item.entry
            relative = f"{DOCUMENT_DIR}/{entry.journal_year}-{entry.journal_sequence}-{document.number}.{ext}"
            role = "Hoveddokument" if document is main else "Vedlegg"
            plan = PlannedFile(document, item, relative, data, fmt, role, archival=versions.get(document.id))
            version = plan.archival
            if version is not None and version.source_sha256 != document.sha256:
                plan.archival = None  # made from other bytes than the document has now: not this document's version
            elif version is not None and version.status == CONVERTED and version.storage_path and version.sha256:
                archival_data = store.read(version.storage_path)
                if hashlib.sha256(archival_data).hexdigest() != version.sha256:
                    raise ExtractError(
                        f"stored archival version of document {document.number} of {item.entry.journal_number} does "
                        "not match the case database: the storage is damaged"
                    )
                plan.archival_data = archival_data
                plan.archival_relative = (
                    f"{DOCUMENT_DIR}/{entry.journal_year}-{entry.journal_sequence}-{document.number}{ARCHIVAL_SUFFIX}"
                )
            planned.append(plan)
    # Within a journalpost the Hoveddokument comes first; dokumentnummer keeps the number it was registered with.
    position = {item.entry.id: index for index, item in enumerate(source.entries)}
    return sorted(planned, key=lambda p: (position[p.entry.entry.id], p.role != "Hoveddokument", p.document.number))


# arkivstruktur.xml -------------------------------------------------------------------------------------


def _arkivstruktur(source: CaseSource, planned: list[PlannedFile], options: ArchiveOptions) -> bytes:
    case = source.case
    tz = case.timezone
    assert case.closed_at is not None and case.closed_by is not None
    created, closed = xs_datetime(case.created_at, tz), xs_datetime(case.closed_at, tz)
    b = Builder(ARKIVSTRUKTUR_NS)
    number = class_id(source)

    arkiv = b.root("arkiv", "arkivstruktur.xsd")
    b.sub(arkiv, "systemID", derived_id(case.system_id, "arkiv"))
    b.sub(arkiv, "tittel", f"Postmottak - sak {number}")
    b.sub(arkiv, "arkivstatus", "Avsluttet")
    b.sub(arkiv, "opprettetDato", created)
    b.sub(arkiv, "opprettetAv", SYSTEM_USER)
    b.sub(arkiv, "avsluttetDato", closed)
    b.sub(arkiv, "avsluttetAv", case.closed_by)
    creator = b.sub(arkiv, "arkivskaper")
    b.sub(creator, "arkivskaperID", options.creator_id)
    b.sub(creator, "arkivskaperNavn", options.creator_name)

    arkivdel = b.sub(arkiv, "arkivdel")
    b.sub(arkivdel, "systemID", derived_id(case.system_id, "arkivdel"))
    b.sub(arkivdel, "tittel", f"Sak {number}: {case.title}")
    b.sub(arkivdel, "arkivdelstatus", "Avsluttet periode")
    b.sub(arkivdel, "opprettetDato", created)
    b.sub(arkivdel, "opprettetAv", SYSTEM_USER)
    b.sub(arkivdel, "avsluttetDato", closed)
    b.sub(arkivdel, "avsluttetAv", case.closed_by)
    start, end = _period(source)
    b.sub(arkivdel, "arkivperiodeStartDato", xs_date(start))
    b.sub(arkivdel, "arkivperiodeSluttDato", xs_date(end))

    system = b.sub(arkivdel, "klassifikasjonssystem")
    b.sub(system, "systemID", derived_id(case.system_id, "klassifikasjonssystem"))
    b.sub(system, "tittel", "Saksnummer")
    b.sub(system, "opprettetDato", created)
    b.sub(system, "opprettetAv", SYSTEM_USER)
    klasse = b.sub(system, "klasse")
    b.sub(klasse, "systemID", derived_id(case.system_id, "klasse"))
    b.sub(klasse, "klasseID", number)
    b.sub(klasse, "tittel", case.title)
    b.sub(klasse, "opprettetDato", created)
    b.sub(klasse, "opprettetAv", SYSTEM_USER)

    folder = b.sub(klasse, "mappe")
    folder.set(XSI_TYPE, "saksmappe")
    b.sub(folder, "systemID", case.system_id)
    b.sub(folder, "mappeID", number)
    b.sub(folder, "tittel", case.title)
    b.sub(folder, "opprettetDato", created)
    b.sub(folder, "opprettetAv", SYSTEM_USER)
    b.sub(folder, "avsluttetDato", closed)
    b.sub(folder, "avsluttetAv", case.closed_by)
    files_by_entry: dict[int, list[PlannedFile]] = {}
    for item in planned:
        files_by_entry.setdefault(item.entry.entry.id, []).append(item)
    for entry_source in source.journal:  # a cancelled journalpost ("Utgår") has no documents
        files = [] if entry_source.cancelled else files_by_entry.get(entry_source.entry.id, [])
        _journalpost(b, folder, entry_source, files, tz)
    b.sub(folder, "saksaar", case.year)
    b.sub(folder, "sakssekvensnummer", case.sequence)
    b.sub(folder, "saksdato", xs_date(local_date(case.created_at, tz)))
    b.sub(folder, "administrativEnhet", options.unit)
    b.sub(folder, "saksansvarlig", case_officer(source, options))
    b.sub(folder, "saksstatus", closing.STATUS_CLOSED)
    return to_bytes(arkiv, ARKIVSTRUKTUR_NS)


def _period(source: CaseSource):  # type: ignore[no-untyped-def]
    tz = source.case.timezone
    assert source.case.closed_at is not None
    days = [local_date(source.case.created_at, tz)] + [local_date(e.entry.received_at, tz) for e in source.entries]
    return min(days), local_date(source.case.closed_at, tz)


def _journalpost(b: Builder, folder: ET.Element, item: EntrySource, files: list[PlannedFile], tz: str) -> None:
    entry = item.entry
    created = xs_datetime(entry.created_at, tz)
    post = b.sub(folder, "registrering")
    post.set(XSI_TYPE, "journalpost")
    b.sub(post, "systemID", entry.system_id)
    b.sub(post, "opprettetDato", created)
    b.sub(post, "opprettetAv", entry.created_by)
    b.sub(post, "arkivertDato", created)
    b.sub(post, "arkivertAv", entry.created_by)
    if item.exemption is not None:
        screened = ["virksomhetsspesifikkeMetadata"]
        if item.exemption.screen_names:
            screened.append("korrespondansepartNavn")
        _skjerming(b, post, item.exemption, screened)
    for planned in files:
        _dokumentbeskrivelse(b, post, planned, tz)
    b.sub(post, "tittel", entry.title)
    public_title = item.public_title()
    if public_title != entry.title:
        b.sub(post, "offentligTittel", public_title)
    if item.form and not item.cancelled:
        _form_metadata(b, post, item.form)
    if not entry.on_time:
        note = b.sub(post, "merknad")
        b.sub(note, "merknadstekst", "Mottatt etter høringsfristen.")
        b.sub(note, "merknadsdato", created)
        b.sub(note, "merknadRegistrertAv", entry.created_by)
    if isinstance(entry, m.CancelledJournalEntry):
        note = b.sub(post, "merknad")
        b.sub(note, "merknadstekst", "Registreringen ble angret; journalposten utgår og har ingen dokumenter.")
        b.sub(note, "merknadsdato", xs_datetime(entry.cancelled_at, tz))
        b.sub(note, "merknadRegistrertAv", entry.cancelled_by)
    party = b.sub(post, "korrespondansepart")
    b.sub(party, "korrespondanseparttype", entry.correspondent_role)
    b.sub(party, "korrespondansepartNavn", item.sender_name)
    if entry.correspondent_email:
        b.sub(party, "epostadresse", entry.correspondent_email)
    if item.contact_person:
        b.sub(party, "kontaktperson", item.contact_person)
    b.sub(post, "journalaar", entry.journal_year)
    b.sub(post, "journalsekvensnummer", entry.journal_sequence)
    b.sub(post, "journalpostnummer", entry.document_number)
    b.sub(post, "journalposttype", entry.entry_type)
    b.sub(post, "journalstatus", CANCELLED_STATUS if item.cancelled else "Arkivert")
    b.sub(post, "journaldato", xs_date(entry.journal_date))
    b.sub(post, "mottattDato", xs_datetime(entry.received_at, tz))
    b.sub(post, "antallVedlegg", max(0, len(files) - 1))


def _dokumentbeskrivelse(b: Builder, post: ET.Element, planned: PlannedFile, tz: str) -> None:
    document, entry = planned.document, planned.entry.entry
    attached = xs_datetime(entry.created_at, tz)
    description = b.sub(post, "dokumentbeskrivelse")
    b.sub(description, "systemID", document.system_id)
    b.sub(description, "dokumenttype", "Brev")
    b.sub(description, "dokumentstatus", "Dokumentet er ferdigstilt")
    b.sub(description, "tittel", (document.title or "").strip() or document.filename or "Dokument")
    b.sub(description, "opprettetDato", xs_datetime(entry.received_at, tz))
    b.sub(description, "opprettetAv", entry.created_by)
    b.sub(description, "tilknyttetRegistreringSom", planned.role)
    b.sub(description, "dokumentnummer", document.number)
    b.sub(description, "tilknyttetDato", attached)
    b.sub(description, "tilknyttetAv", entry.created_by)
    if planned.exemption is not None:
        _skjerming(b, description, planned.exemption, ["dokumentbeskrivelse"])
    variant = "Arkivformat" if planned.archival_as_received else "Produksjonsformat"
    obj = b.sub(description, "dokumentobjekt")
    b.sub(obj, "systemID", derived_id(document.system_id, f"dokumentobjekt/1/{variant}"))
    b.sub(obj, "versjonsnummer", 1)
    b.sub(obj, "variantformat", variant)
    b.sub(obj, "format", planned.fmt.format)
    b.sub(obj, "formatDetaljer", planned.fmt.details)
    b.sub(obj, "opprettetDato", xs_datetime(entry.received_at, tz))
    b.sub(obj, "opprettetAv", entry.created_by)
    b.sub(obj, "referanseDokumentfil", planned.relative)
    b.sub(obj, "sjekksum", document.sha256)
    b.sub(obj, "sjekksumAlgoritme", SHA256)
    b.sub(obj, "filstoerrelse", len(planned.data))
    version = planned.archival
    if version is None or planned.archival_data is None or planned.archival_relative is None:
        return
    converted = xs_datetime(version.converted_at, tz)
    archival = b.sub(description, "dokumentobjekt")
    b.sub(archival, "systemID", derived_id(document.system_id, "dokumentobjekt/1/Arkivformat"))
    b.sub(archival, "versjonsnummer", 1)
    b.sub(archival, "variantformat", "Arkivformat")
    b.sub(archival, "format", version.to_format or "fmt/477")
    b.sub(archival, "formatDetaljer", version.format_details or "PDF/A-2b")
    b.sub(archival, "opprettetDato", converted)
    b.sub(archival, "opprettetAv", version.converted_by)
    b.sub(archival, "referanseDokumentfil", planned.archival_relative)
    b.sub(archival, "sjekksum", version.sha256)
    b.sub(archival, "sjekksumAlgoritme", SHA256)
    b.sub(archival, "filstoerrelse", len(planned.archival_data))
    conversion = b.sub(archival, "konvertering")
    b.sub(conversion, "konvertertDato", converted)
    b.sub(conversion, "konvertertAv", version.converted_by)
    b.sub(conversion, "konvertertFraFormat", version.from_format or planned.fmt.format)
    b.sub(conversion, "konvertertTilFormat", version.to_format or "fmt/477")
    if version.tool:
        b.sub(conversion, "konverteringsverktoey", version.tool)
    b.sub(
        conversion,
        "konverteringskommentar",
        f"Arkivversjon av {planned.fmt.details} ({planned.relative}), kontrollert som PDF/A-2b.",
    )


def _skjerming(b: Builder, parent: ET.Element, exemption: m.PublicationExemption, metadata: list[str]) -> None:
    """Noark 5 skjerming: access code, legal basis, what is screened; the document's content is exempt in full."""
    element = b.sub(parent, "skjerming")
    b.sub(element, "tilgangsrestriksjon", exemption.access_code)
    b.sub(element, "skjermingshjemmel", exemption.legal_basis)
    for name in metadata:
        b.sub(element, "skjermingMetadata", name)
    b.sub(element, "skjermingDokument", "Hele dokumentet")


def _form_metadata(b: Builder, post: ET.Element, form: dict[str, Any]) -> None:
    """The parsed consultation form (with staff corrections) as virksomhetsspesifikkeMetadata."""
    holder = b.sub(post, "virksomhetsspesifikkeMetadata")
    form_element = ET.SubElement(holder, f"{FORM_PREFIX}:skjema", {f"xmlns:{FORM_PREFIX}": FORM_NS})
    fields = {k: v for k, v in form.items() if k not in _FORM_META_KEYS}
    extra = form.get("extra_fields")
    if isinstance(extra, dict):
        fields.update({k: v for k, v in extra.items() if k not in fields})
    # The printed question or label of every field of the form's profile (form.fields) goes with its value.
    labels = {a["key"]: a["label"] for a in form.get("fields") or [] if isinstance(a, dict) and "key" in a}
    for key in sorted(fields):
        attributes = {"navn": key, **({"ledetekst": labels[key]} if key in labels else {})}
        element = ET.SubElement(form_element, f"{FORM_PREFIX}:felt", attributes)
        text = _value_text(fields[key])
        if text is not None:
            element.text = text


def _value_text(value: Any) -> str | None:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "; ".join(value)
    return json.dumps(value, ensure_ascii=False)


# endringslogg.xml --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    at: datetime
    reference: str  # systemID of the changed unit
    metadata: str
    by: str
    before: str
    after: str


def _changes(source: CaseSource) -> list[Change]:
    case = source.case
    by_intake = {item.intake.id: item for item in source.entries}
    changes: list[Change] = []
    for item in source.entries:
        previous: dict[str, Any] = {}
        for correction in item.corrections:
            before = previous.get(correction.field, correction.parsed_value)
            changes.append(
                Change(
                    correction.corrected_at,
                    item.entry.system_id,
                    f"virksomhetsspesifikkeMetadata/{correction.field}",
                    correction.corrected_by,
                    _change_text(before),
                    _change_text(correction.corrected_value),
                )
            )
            previous[correction.field] = correction.corrected_value
    corrected_intakes = {item.intake.id for item in source.entries if item.corrections}
    close_logged = False
    for event in source.audit_events:
        if "correct" in event.action and event.intake_id in corrected_intakes:
            continue  # the same correction is already logged from field_corrections
        if (
            event.action == closing.CASE_CLOSED
            and case.closed_at
            and abs(event.at - case.closed_at) < timedelta(seconds=1)
        ):
            close_logged = True
        target = by_intake.get(event.intake_id) if event.intake_id is not None else None
        reference = target.entry.system_id if target is not None else case.system_id
        before = event.before if isinstance(event.before, dict) else {}
        after = event.after if isinstance(event.after, dict) else {}
        if before or after:
            for key in sorted(set(before) | set(after)):
                if before.get(key) != after.get(key):
                    changes.append(
                        Change(
                            event.at,
                            reference,
                            key,
                            event.actor,
                            _change_text(before.get(key)),
                            _change_text(after.get(key)),
                        )
                    )
        else:
            changes.append(
                Change(
                    event.at,
                    reference,
                    event.action,
                    event.actor,
                    _change_text(event.before),
                    _change_text(event.after if event.after is not None else event.note),
                )
            )
    if not close_logged and case.closed_at is not None:
        changes.append(
            Change(
                case.closed_at,
                case.system_id,
                "saksstatus",
                case.closed_by or SYSTEM_USER,
                closing.STATUS_OPEN,
                closing.STATUS_CLOSED,
            )
        )
    return sorted(changes, key=lambda c: (c.at, c.reference, c.metadata))


def _change_text(value: Any) -> str:
    return _value_text(value) or EMPTY_VALUE


def _endringslogg(source: CaseSource) -> tuple[bytes, int]:
    b = Builder(ENDRINGSLOGG_NS)
    root = b.root("endringslogg", "endringslogg.xsd")
    changes = _changes(source)
    for change in changes:
        element = b.sub(root, "endring")
        b.sub(element, "referanseArkivenhet", change.reference)
        b.sub(element, "referanseMetadata", change.metadata)
        b.sub(element, "endretDato", xs_datetime(change.at, source.case.timezone))
        b.sub(element, "endretAv", change.by)
        b.sub(element, "tidligereVerdi", change.before)
        b.sub(element, "nyVerdi", change.after)
    return to_bytes(root, ENDRINGSLOGG_NS), len(changes)


# arkivuttrekk.xml (ADDML 8.3) --------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Addml:
    def __init__(self) -> None:
        self.b = Builder(ADDML)

    def prop(self, parent: ET.Element, name: str, value: object = None, data_type: str | None = None) -> ET.Element:
        attributes = {"name": name}
        if data_type:
            attributes["dataType"] = data_type
        element = self.b.sub(parent, "property", **attributes)
        if value is not None:
            self.b.sub(element, "value", value)
        return element

    def props(self, parent: ET.Element) -> ET.Element:
        return self.b.sub(parent, "properties")

    def file_props(self, parent: ET.Element, name: str, checksum: str) -> None:
        file_props = self.props(self.prop(parent, "file"))
        self.prop(file_props, "name", name)
        self.prop(self.props(self.prop(file_props, "format", "XML")), "version", "1.0")
        checksum_props = self.props(self.prop(file_props, "checksum"))
        self.prop(checksum_props, "algorithm", "SHA-256")
        self.prop(checksum_props, "value", checksum)

    def schema(self, parent: ET.Element, name: str, checksum: str, main: bool) -> None:
        schema = self.prop(parent, "schema", "main" if main else None)
        schema_props = self.props(schema)
        self.file_props(schema_props, name, checksum)
        self.prop(self.props(self.prop(schema_props, "type", "XML Schema")), "version", "1.0")

    def count(self, parent: ET.Element, element: str, value: int) -> None:
        occurrence = self.props(self.prop(parent, "numberOfOccurrences", element))
        self.prop(occurrence, "elementPath", f"//{element}")
        self.prop(occurrence, "value", value, data_type="integer")


def _arkivuttrekk(
    folder: Path, source: CaseSource, result: ExtractResult, options: ArchiveOptions, journals: bool
) -> bytes:
    a = _Addml()
    b = a.b
    root = b.root("addml", "addml.xsd", name="Noark 5-arkivuttrekk")
    dataset = b.sub(root, "dataset")
    b.sub(dataset, "description", f"Noark 5-arkivuttrekk av sak {class_id(source)}: {source.case.title}")
    reference = b.sub(dataset, "reference")
    context = b.sub(b.sub(reference, "context"), "additionalElements")
    creators = b.sub(b.sub(context, "additionalElement", name="recordCreators"), "additionalElements")
    b.sub(b.sub(creators, "additionalElement", name="recordCreator"), "value", options.creator_name)
    b.sub(b.sub(context, "additionalElement", name="systemType"), "value", "Sakarkiv (Noark-5)")
    b.sub(b.sub(context, "additionalElement", name="systemName"), "value", options.system_name)
    b.sub(b.sub(context, "additionalElement", name="archive"), "value", f"Postmottak - sak {class_id(source)}")
    content = b.sub(b.sub(reference, "content"), "additionalElements")
    period = a.props(b.sub(content, "additionalElement", name="archivalPeriod"))
    start, end = _period(source)
    a.prop(period, "startDate", xs_date(start))
    a.prop(period, "endDate", xs_date(end))

    top = b.sub(b.sub(dataset, "dataObjects"), "dataObject", name="Noark 5-arkivuttrekk")
    info = a.props(a.prop(a.props(top), "info"))
    a.prop(a.props(a.prop(info, "type", "Noark 5")), "version", "5.0")
    additional = a.props(a.prop(info, "additionalInfo"))
    split = a.props(a.prop(additional, "periode"))
    a.prop(split, "inngaaendeSkille", "skarpt")
    a.prop(split, "utgaaendeSkille", "skarpt")
    a.prop(additional, "inneholderSkjermetInformasjon", str(result.screened > 0).lower(), "boolean")
    a.prop(additional, "omfatterDokumenterSomErKassert", "false", "boolean")
    a.prop(additional, "inneholderDokumenterSomSkalKasseres", "false", "boolean")
    has_form = any(item.form for item in source.entries)
    a.prop(additional, "inneholderVirksomhetsspesifikkeMetadata", str(has_form).lower(), "boolean")
    a.prop(additional, "antallDokumentfiler", result.document_files, "integer")

    files = b.sub(top, "dataObjects")
    catalogue = sha256_file(folder / "metadatakatalog.xsd")
    counts: dict[str, list[tuple[str, int]]] = {
        "arkivstruktur": [("mappe", result.folders), ("registrering", result.registrations)],
        "endringslogg": [("endring", result.changes)],
    }
    if journals:
        counts["loependeJournal"] = [("journalregistrering", result.registrations)]
        counts["offentligJournal"] = [("journalregistrering", result.registrations)]
    for name, occurrences in counts.items():
        data_object = b.sub(files, "dataObject", name=name)
        properties = a.props(data_object)
        a.file_props(properties, f"{name}.xml", sha256_file(folder / f"{name}.xml"))
        a.schema(properties, f"{name}.xsd", sha256_file(folder / f"{name}.xsd"), main=True)
        a.schema(properties, "metadatakatalog.xsd", catalogue, main=False)
        info_props = a.props(a.prop(properties, "info"))
        for element, value in occurrences:
            a.count(info_props, element, value)
    return to_bytes(root, ADDML)


def _report(source: CaseSource, planned: list[PlannedFile], result: ExtractResult) -> str:
    case = source.case
    lines = [
        f"Uttrekksrapport for sak {class_id(source)}: {case.title}",
        f"Avsluttet {xs_datetime(case.closed_at, case.timezone) if case.closed_at else '-'} av {case.closed_by}",
        f"Journalposter: {result.registrations}   Dokumentfiler: {result.document_files}   "
        f"Endringer i endringsloggen: {result.changes}   Skjermede avsendere i offentlig journal: {result.screened}",
        "",
        "Dokumentformater (originalen som mottatt, variantformat Produksjonsformat, og arkivversjonen i PDF/A-2b, "
        "variantformat Arkivformat, der den er laget):",
    ]
    for item in planned:
        verdict = "godkjent arkivformat" if item.fmt.is_archive_format else "IKKE godkjent arkivformat"
        lines.append(f"  {item.relative}  {item.fmt.format}  {item.fmt.details}  - {verdict}")
        if item.archival_relative and item.archival is not None:
            lines.append(
                f"    arkivversjon {item.archival_relative}  {item.archival.to_format}  "
                f"{item.archival.format_details}  (konvertert med {item.archival.tool})"
            )
        elif item.archival_as_received:
            lines.append("    mottatt i arkivformat (PDF/A): ingen konvertering")
    if result.conversion_failures:
        lines += ["", "Konvertering til arkivformat feilet (originalen er med; konverter manuelt før avlevering):"]
        lines += [f"  {failure}" for failure in result.conversion_failures]
    pdfs = [p for p in planned if p.fmt.is_pdf and not p.fmt.is_archive_format and p.archival_data is None]
    if pdfs:
        lines += [
            "",
            f"{len(pdfs)} PDF-fil(er) er ikke PDF/A. Ingen Arkivformat-variant er laget; konverter til PDF/A "
            "før avlevering dersom depotet krever det.",
        ]
    return "\n".join(lines) + "\n"
