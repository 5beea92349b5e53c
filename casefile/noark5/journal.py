"""Journals: the public journal (offentlig journal) for publication, and the two journal files of the extract.

Private persons are screened wherever the public sees a journal: their name becomes "Privatperson (skjermet)",
their e-mail address is never shown, and their name is blanked in the title. The running journal
(loependeJournal.xml) keeps the names and marks which element the public version screens (skjermingMetadata).

A journalpost whose registration was undone stays in every journal with its number (no gap), without documents:
journalstatus "Utgår" in the CSV and JSON; the two XML journal schemas have no journalstatus element, so there its
title starts with "Utgår:" and antallVedlegg is 0 (the extract's arkivstruktur.xml has journalstatus "Utgår").
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass

from postmottak.casefile.noark5.options import ArchiveOptions
from postmottak.casefile.noark5.source import CANCELLED_STATUS, CaseSource, EntrySource
from postmottak.casefile.noark5.xmlutil import N5, Builder, local_date, to_bytes, xs_date

LOEPENDE_NS = N5 + "loependeJournal"
OFFENTLIG_NS = N5 + "offentligJournal"
SCREENED_ELEMENT = "korrespondansepartNavn"
REGISTERED_STATUS = "Journalført"


class EmptyJournalError(Exception):
    pass


@dataclass(frozen=True)
class PublicJournalRow:
    journalnummer: str  # "2022/414-5"
    journaldato: str
    mottatt: str  # date received, local time
    journalposttype: str
    avsender: str  # screened for private persons
    tittel: str  # private person's name blanked
    saksnummer: str
    sakstittel: str
    skjermet: bool
    unntatt_offentlighet: str  # the legal basis when the response is exempt from publication, else ""
    journalstatus: str  # "Journalført", or "Utgår" for a registration that was undone


def public_rows(source: CaseSource) -> list[PublicJournalRow]:
    case = source.case
    return [
        PublicJournalRow(
            journalnummer=item.entry.journal_number,
            journaldato=xs_date(item.entry.journal_date),
            mottatt=xs_date(local_date(item.entry.received_at, case.timezone)),
            journalposttype=item.entry.entry_type,
            avsender=item.public_sender_name,
            tittel=item.public_title(),
            saksnummer=f"{case.year}/{case.sequence}",
            sakstittel=case.title,
            skjermet=item.names_screened,
            unntatt_offentlighet=item.exemption.legal_basis if item.exemption is not None else "",
            journalstatus=CANCELLED_STATUS if item.cancelled else REGISTERED_STATUS,
        )
        for item in source.journal
    ]


def _title(item: EntrySource, title: str) -> str:
    """A cancelled journalpost's title in the XML journals, whose schemas have no journalstatus."""
    return f"{CANCELLED_STATUS}: {title}" if item.cancelled else title


def render_public_journal(source: CaseSource, fmt: str, options: ArchiveOptions | None = None) -> bytes:
    """The public journal as csv, json or xml (xml = Noark 5 offentligJournal)."""
    if fmt == "json":
        records = [asdict(row) for row in public_rows(source)]
        return (json.dumps(records, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    if fmt == "csv":
        rows = public_rows(source)
        buffer = io.StringIO()
        columns = list(PublicJournalRow.__dataclass_fields__)
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            values = asdict(row)
            values["skjermet"] = "ja" if row.skjermet else "nei"
            writer.writerow(values)
        return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 CSV correctly
    if fmt == "xml":
        return offentlig_journal_xml(source, options or ArchiveOptions())
    raise ValueError(f"unknown journal format {fmt!r}; use csv, json or xml")


def _journal_head(b: Builder, root: ET.Element, source: CaseSource, options: ArchiveOptions) -> None:
    if not source.journal:
        raise EmptyJournalError(f"case {source.case.number} has no journal entries")
    dates = [item.entry.journal_date for item in source.journal]
    head = b.sub(root, "journalhode")
    b.sub(head, "journalStartDato", xs_date(min(dates)))
    b.sub(head, "journalSluttDato", xs_date(max(dates)))
    b.sub(head, "antallJournalposter", len(source.journal))
    creator = b.sub(head, "arkivskaper")
    b.sub(creator, "arkivskaperID", options.creator_id)
    b.sub(creator, "arkivskaperNavn", options.creator_name)


def _class(b: Builder, parent: ET.Element, source: CaseSource) -> None:
    klasse = b.sub(parent, "klasse")
    b.sub(klasse, "klasseID", class_id(source))
    b.sub(klasse, "tittel", source.case.title)


def class_id(source: CaseSource) -> str:
    return f"{source.case.year}/{source.case.sequence}"


def case_officer(source: CaseSource, options: ArchiveOptions) -> str:
    return options.case_officer or source.case.closed_by or options.system_name


def loepende_journal_xml(source: CaseSource, options: ArchiveOptions) -> bytes:
    b = Builder(LOEPENDE_NS)
    root = b.root("loependeJournal", "loependeJournal.xsd")
    _journal_head(b, root, source, options)
    case = source.case
    for item in source.journal:
        registration = b.sub(root, "journalregistrering")
        _class(b, registration, source)
        folder = b.sub(registration, "saksmappe")
        b.sub(folder, "mappeID", class_id(source))
        b.sub(folder, "saksaar", case.year)
        b.sub(folder, "sakssekvensnummer", case.sequence)
        b.sub(folder, "tittel", case.title)
        b.sub(folder, "administrativEnhet", options.unit)
        b.sub(folder, "saksansvarlig", case_officer(source, options))
        _loepende_post(b, registration, item, options)
    return to_bytes(root, LOEPENDE_NS)


def _loepende_post(b: Builder, parent: ET.Element, item: EntrySource, options: ArchiveOptions) -> None:
    entry = item.entry
    post = b.sub(parent, "journalpost")
    b.sub(post, "systemID", entry.system_id)
    b.sub(post, "journalaar", entry.journal_year)
    b.sub(post, "journalsekvensnummer", entry.journal_sequence)
    b.sub(post, "journalpostnummer", entry.document_number)
    b.sub(post, "tittel", _title(item, entry.title))
    public_title = item.public_title()
    if public_title != entry.title:
        b.sub(post, "offentligTittel", _title(item, public_title))
    if item.names_screened:
        b.sub(post, "skjermingMetadata", SCREENED_ELEMENT)
    b.sub(post, "journaldato", xs_date(entry.journal_date))
    attachments = max(0, len(item.documents) - 1)
    b.sub(post, "antallVedlegg", attachments)
    b.sub(post, "administrativEnhet", options.unit)
    _exemption_elements(b, post, item)
    party = b.sub(post, "korrespondansepart")
    b.sub(party, "korrespondanseparttype", entry.correspondent_role)
    b.sub(party, "korrespondansepartNavn", item.sender_name)
    if item.names_screened:
        b.sub(party, "skjermingMetadata", SCREENED_ELEMENT)


def _exemption_elements(b: Builder, post: ET.Element, item: EntrySource) -> None:
    """tilgangsrestriksjon and skjermingshjemmel of a response exempt from publication (both journal schemas)."""
    if item.exemption is not None:
        b.sub(post, "tilgangsrestriksjon", item.exemption.access_code)
        b.sub(post, "skjermingshjemmel", item.exemption.legal_basis)


def offentlig_journal_xml(source: CaseSource, options: ArchiveOptions) -> bytes:
    b = Builder(OFFENTLIG_NS)
    root = b.root("offentligJournal", "offentligJournal.xsd")
    _journal_head(b, root, source, options)
    case = source.case
    for item in source.journal:
        registration = b.sub(root, "journalregistrering")
        _class(b, registration, source)
        folder = b.sub(registration, "saksmappe")
        b.sub(folder, "mappeID", class_id(source))
        b.sub(folder, "saksaar", case.year)
        b.sub(folder, "sakssekvensnummer", case.sequence)
        b.sub(folder, "offentligTittel", case.title)
        b.sub(folder, "administrativEnhet", options.unit)
        entry = item.entry
        post = b.sub(registration, "journalpost")
        b.sub(post, "systemID", entry.system_id)
        b.sub(post, "journalaar", entry.journal_year)
        b.sub(post, "journalsekvensnummer", entry.journal_sequence)
        b.sub(post, "journalpostnummer", entry.document_number)
        b.sub(post, "offentligTittel", _title(item, item.public_title()))
        if item.names_screened:
            b.sub(post, "skjermingMetadata", SCREENED_ELEMENT)
        b.sub(post, "journaldato", xs_date(entry.journal_date))
        b.sub(post, "administrativEnhet", options.unit)
        _exemption_elements(b, post, item)
        party = b.sub(post, "korrespondansepart")
        b.sub(party, "korrespondanseparttype", entry.correspondent_role)
        b.sub(party, "korrespondansepartNavn", item.public_sender_name)
    return to_bytes(root, OFFENTLIG_NS)
