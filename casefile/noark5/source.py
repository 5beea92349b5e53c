"""Everything about one case that the extract and the journals need, read in one go (the SQL lives here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from postmottak.casefile import models as m
from postmottak.casefile.cases import get_case
from postmottak.casefile.form_values import FormLayout, corrected_form, form_layout, load_corrections

SCREENED_NAME = "Privatperson (skjermet)"
EXEMPT_NAME = "Avsender skjermet"


CANCELLED_STATUS = "Utgår"  # Noark journalstatus of a journalpost whose registration was undone


@dataclass
class EntrySource:
    entry: m.JournalEntry | m.CancelledJournalEntry  # cancelled: listed in the journals, no documents
    intake: m.IntakeRecord
    documents: list[m.Document]
    form: dict[str, Any] | None  # parsed form with staff corrections applied
    corrections: list[m.FieldCorrection]
    is_private_person: bool
    organisation: str | None
    # Exempt from publication: the whole response (document_id null) and single documents.
    exemption: m.PublicationExemption | None = None
    document_exemptions: dict[int, m.PublicationExemption] = field(default_factory=dict)
    # The fields of the case's form (from its profile).
    layout: FormLayout | None = None

    @property
    def cancelled(self) -> bool:
        return isinstance(self.entry, m.CancelledJournalEntry)

    @property
    def names_screened(self) -> bool:
        """The sender's name is hidden from the public: a private person, or staff screened it with an exemption."""
        return self.is_private_person or (self.exemption is not None and self.exemption.screen_names)

    @property
    def sender_name(self) -> str:
        """Who sent it, as the archive shows it: the organisation if the form names one, else the mail's sender."""
        for candidate in (self.organisation, self.entry.correspondent_name, self.entry.correspondent_email):
            if candidate and candidate.strip():
                return candidate.strip()
        return "Ukjent avsender"

    @property
    def contact_person(self) -> str | None:
        name = (self.entry.correspondent_name or "").strip()
        return name if self.organisation and name and name != self.organisation else None

    @property
    def public_sender_name(self) -> str:
        if self.is_private_person:
            return SCREENED_NAME
        return EXEMPT_NAME if self.names_screened else self.sender_name

    def public_title(self) -> str:
        """The title with a private person's name and address blanked (subjects sometimes carry the name)."""
        title = self.entry.title
        if self.names_screened:
            for secret in (self.entry.correspondent_name, self.entry.correspondent_email, self.organisation):
                if secret and len(secret.strip()) >= 3:
                    title = _replace_casefold(title, secret.strip(), "[skjermet]")
        return title


@dataclass
class CaseSource:
    case: m.Case
    entries: list[EntrySource]
    audit_events: list[m.AuditEvent] = field(default_factory=list)
    cancelled: list[EntrySource] = field(default_factory=list)  # journalposts that "Utgår"

    @property
    def journal(self) -> list[EntrySource]:
        """Every journalpost of the case, cancelled ones included, in journal order."""
        return sorted(
            [*self.entries, *self.cancelled],
            key=lambda item: (item.entry.journal_year, item.entry.journal_sequence),
        )


def _replace_casefold(text: str, needle: str, replacement: str) -> str:
    lowered, target = text.casefold(), needle.casefold()
    if len(lowered) != len(text):  # casefold changed lengths (e.g. ß): fall back to an exact replace
        return text.replace(needle, replacement)
    out, start = [], 0
    while (index := lowered.find(target, start)) >= 0:
        out.append(text[start:index])
        out.append(replacement)
        start = index + len(target)
    out.append(text[start:])
    return "".join(out)


def is_private_person(
    entry: m.JournalEntry | m.CancelledJournalEntry,
    form: dict[str, Any] | None,
    corrections: list[m.FieldCorrection],
    layout: FormLayout | None = None,
) -> bool:
    """Private person if registered as one, or if staff corrected the form's respondent type to say so; when
    unknown, if no organisation is named. Errs on the side of screening."""
    layout = layout or form_layout(None)
    type_key = layout.respondent_type.key if layout.respondent_type is not None else None
    if form is not None and type_key and any(c.field == type_key for c in corrections):
        corrected = layout.is_private_person(form)
        if corrected is not None:
            return corrected
    if entry.correspondent_is_private_person is not None:
        return bool(entry.correspondent_is_private_person)
    return respondent_name(form, layout) is None


def respondent_name(form: dict[str, Any] | None, layout: FormLayout | None = None) -> str | None:
    """The respondent's name as the form states it (the profile's respondent name field)."""
    key = (layout or form_layout(None)).respondent_name_key
    if not form or not key:
        return None
    value = form.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def load_case(session: Session, number: str) -> CaseSource:
    case = get_case(session, number)
    entries = list(
        session.scalars(
            select(m.JournalEntry)
            .where(m.JournalEntry.case_id == case.id)
            .options(
                selectinload(m.JournalEntry.intake).selectinload(m.IntakeRecord.documents),
                selectinload(m.JournalEntry.intake)
                .selectinload(m.IntakeRecord.form)
                .selectinload(m.FormResultRow.answers),
                selectinload(m.JournalEntry.case),
            )
            .order_by(m.JournalEntry.journal_year, m.JournalEntry.journal_sequence, m.JournalEntry.id)
        )
    )
    cancelled_entries = list(
        session.scalars(
            select(m.CancelledJournalEntry)
            .where(m.CancelledJournalEntry.case_id == case.id)
            .options(
                selectinload(m.CancelledJournalEntry.intake)
                .selectinload(m.IntakeRecord.form)
                .selectinload(m.FormResultRow.answers),
                selectinload(m.CancelledJournalEntry.case),
            )
            .order_by(m.CancelledJournalEntry.journal_year, m.CancelledJournalEntry.journal_sequence)
        )
    )
    intake_ids = [e.intake_id for e in entries]
    corrections = load_corrections(session, intake_ids + [e.intake_id for e in cancelled_entries])
    layout = form_layout(case.form_profile)

    def source_of(entry: m.JournalEntry | m.CancelledJournalEntry, documents: list[m.Document]) -> EntrySource:
        own = corrections.get(entry.intake_id, [])
        form = corrected_form(entry.intake, own)
        return EntrySource(
            entry=entry,
            intake=entry.intake,
            documents=documents,
            form=form,
            corrections=own,
            is_private_person=is_private_person(entry, form, own, layout),
            organisation=respondent_name(form, layout),
            layout=layout,
        )

    sources = [source_of(entry, sorted(entry.intake.documents, key=lambda d: d.number)) for entry in entries]
    cancelled = [source_of(entry, []) for entry in cancelled_entries]
    exemptions: dict[int, list[m.PublicationExemption]] = {}
    if intake_ids or cancelled_entries:
        for exemption in session.scalars(
            select(m.PublicationExemption).where(
                m.PublicationExemption.intake_id.in_(intake_ids + [e.intake_id for e in cancelled_entries])
            )
        ):
            exemptions.setdefault(exemption.intake_id, []).append(exemption)
    for item in [*sources, *cancelled]:
        for exemption in exemptions.get(item.intake.id, []):
            if exemption.document_id is None:
                item.exemption = exemption  # a cancelled entry screened as the mail is now: never less
            elif not item.cancelled:
                item.document_exemptions[exemption.document_id] = exemption
    audit_filter = [m.AuditEvent.case_id == case.id]
    if intake_ids:
        audit_filter.append(m.AuditEvent.intake_id.in_(intake_ids))
    events = list(
        session.scalars(select(m.AuditEvent).where(or_(*audit_filter)).order_by(m.AuditEvent.at, m.AuditEvent.id))
    )
    return CaseSource(case=case, entries=sources, audit_events=events, cancelled=cancelled)
