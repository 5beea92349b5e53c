"""Data subject requests (GDPR art. 15 and 17): find, export and erase one person's data in the case database.

A person is given by e-mail address (matched exactly, case-insensitively, in address fields, and as text in
subjects, bodies and form answers) or by name (matched as text). Text matching is done in Python over the
candidate rows so it behaves the same on SQLite and PostgreSQL.

Erasure removes what no archival duty covers: mail that was never journalled (ignored, duplicate, failed, waiting
for review) loses its raw content and attachments (tombstone first, as in retention), its sender, subject, body
and parsed form, and its receipt's address and text (and the sender and title of a journalpost whose registration
was undone, which keeps only its number, date and status "Utgår"). A journalled response is kept: it is part of the case's
archive (arkivlova § 6, arkivforskrifta), which the GDPR allows to keep (art. 17 (3) (b)); the answer says so.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from postmottak.casefile import models as m
from postmottak.casefile import retention
from postmottak.casefile.db import Database
from postmottak.casefile.storage import DocumentStore

FIND_ACTION = "privacy_find"
EXPORT_ACTION = "privacy_export"
ERASE_ACTION = "privacy_erase"
ERASE_RULE = "privacy.erase"
ERASED = "[slettet etter krav fra den registrerte]"
ARCHIVAL_DUTY = (
    "Journalført som {journal} i sak {case}: arkivplikt etter arkivlova § 6 og arkivforskrifta. "
    "Retten til sletting gjelder ikke når behandlingen er nødvendig for å oppfylle en rettslig forpliktelse "
    "(personvernforordningen art. 17 nr. 3 bokstav b)."
)


class PrivacyError(ValueError):
    pass


@dataclass
class Hit:
    intake_id: int
    status: str
    received_at: str
    fields: list[str]  # where the person was found: "avsenderadresse", "skjema.<feltnøkkel>", ...
    documents: list[str]  # the mail's documents (file names), which hold the person's data too
    journal_number: str | None
    case_number: str | None
    content_deleted: bool  # raw mail and documents already deleted (retention or an earlier erasure)
    archival_duty: str | None  # why it is kept, when it is


@dataclass
class FindResult:
    query: str
    hits: list[Hit] = field(default_factory=list)


def _normalise(query: str) -> tuple[str, bool]:
    text = " ".join((query or "").split())
    if len(text) < 3:
        raise PrivacyError("Oppgi en e-postadresse eller et navn (minst tre tegn).")
    return text.casefold(), "@" in text


def _contains(value: Any, needle: str) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return needle in value.casefold()
    if isinstance(value, (list, tuple)):
        return any(_contains(v, needle) for v in value)
    if isinstance(value, dict):
        return any(_contains(v, needle) for v in value.values())
    return needle in str(value).casefold()


def _fields(
    record: m.IntakeRecord,
    corrections: list[m.FieldCorrection],
    needle: str,
    is_address: bool,
    cancelled: Sequence[m.CancelledJournalEntry] = (),
) -> list[str]:
    found = []
    if is_address:
        if (record.sender_address or "").casefold() == needle:
            found.append("avsenderadresse")
    elif _contains(record.sender_name, needle):
        found.append("avsendernavn")
    for label, value in (("emne", record.subject), ("e-posttekst", record.body_text)):
        if _contains(value, needle):
            found.append(label)
    # The journal entry, and those of an undone registration ("Utgår"): the same fields each.
    entries: list[tuple[str, m.JournalEntry | m.CancelledJournalEntry]] = []
    if record.journal_entry is not None:
        entries.append(("journalpost", record.journal_entry))
    entries += [("utgått_journalpost", old) for old in cancelled]
    for prefix, entry in entries:
        if is_address and (entry.correspondent_email or "").casefold() == needle:
            found.append(f"{prefix}.korrespondansepart_epost")
        if not is_address and _contains(entry.correspondent_name, needle):
            found.append(f"{prefix}.korrespondansepart_navn")
        if _contains(entry.title, needle):
            found.append(f"{prefix}.tittel")
    if record.form is not None:
        found += [f"skjema.{key}" for key, value in sorted(record.form.data.items()) if _contains(value, needle)]
    for correction in corrections:
        if _contains(correction.corrected_value, needle) or _contains(correction.parsed_value, needle):
            found.append(f"korreksjon.{correction.field}")
    receipt = record.receipt
    if receipt is not None and (_contains(receipt.to_address, needle) or _contains(receipt.body, needle)):
        found.append("kvittering")
    return sorted(set(found), key=found.index)


def find(session: Session, query: str) -> FindResult:
    needle, is_address = _normalise(query)
    records = session.scalars(
        select(m.IntakeRecord)
        .options(
            selectinload(m.IntakeRecord.documents),
            selectinload(m.IntakeRecord.form),
            selectinload(m.IntakeRecord.receipt),
            selectinload(m.IntakeRecord.case),
            selectinload(m.IntakeRecord.journal_entry).selectinload(m.JournalEntry.case),
        )
        .order_by(m.IntakeRecord.received_at, m.IntakeRecord.id)
    )
    corrections: dict[int, list[m.FieldCorrection]] = {}
    for correction in session.scalars(select(m.FieldCorrection)):
        corrections.setdefault(correction.intake_id, []).append(correction)
    cancelled: dict[int, list[m.CancelledJournalEntry]] = {}
    for old in session.scalars(select(m.CancelledJournalEntry).order_by(m.CancelledJournalEntry.id)):
        cancelled.setdefault(old.intake_id, []).append(old)
    tombstoned = set(session.scalars(select(m.ContentTombstone.intake_id)))
    result = FindResult(query)
    for record in records:
        where = _fields(record, corrections.get(record.id, []), needle, is_address, cancelled.get(record.id, []))
        if not where:
            continue
        entry = record.journal_entry
        duty = None
        if entry is not None:
            duty = ARCHIVAL_DUTY.format(journal=entry.journal_number, case=entry.case.number)
        result.hits.append(
            Hit(
                intake_id=record.id,
                status=record.status,
                received_at=record.received_at.isoformat(),
                fields=where,
                documents=[d.filename or d.title for d in record.documents],
                journal_number=entry.journal_number if entry else None,
                case_number=entry.case.number if entry else (record.case.number if record.case else None),
                content_deleted=record.id in tombstoned,
                archival_duty=duty,
            )
        )
    return result


def _audit(
    session: Session,
    actor: str,
    action: str,
    result: FindResult,
    note: str | None = None,
    intake_id: int | None = None,
    after: Any = None,
) -> None:
    # The query itself is personal data: the audit trail keeps which records were involved, not who was asked for.
    session.add(
        m.AuditEvent(
            actor=actor,
            action=action,
            intake_id=intake_id,
            after=after if after is not None else {"poster": [h.intake_id for h in result.hits]},
            note=note,
        )
    )


def record_find(session: Session, query: str, actor: str) -> FindResult:
    result = find(session, query)
    _audit(session, actor, FIND_ACTION, result)
    return result


def export(session: Session, store: DocumentStore, query: str, output: Path, actor: str) -> FindResult:
    """Everything held about the person (art. 15): innsyn.json, and the stored mail and documents under filer/."""
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise PrivacyError(f"output {output} exists and is not an empty folder")
    result = find(session, query)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".innsyn-", dir=output.parent))
    try:
        records = []
        for hit in result.hits:
            record = session.get(m.IntakeRecord, hit.intake_id)
            assert record is not None
            folder = staging / "filer" / str(record.id)
            files = []
            if not hit.content_deleted:
                folder.mkdir(parents=True)
                (folder / "e-post.eml").write_bytes(store.read(record.raw_path))
                files.append(f"filer/{record.id}/e-post.eml")
                for document in record.documents:
                    name = f"dokument-{document.number}-{_safe_name(document.filename or document.title)}"
                    (folder / name).write_bytes(store.read(document.storage_path))
                    files.append(f"filer/{record.id}/{name}")
            records.append(
                {
                    **asdict(hit),
                    "avsender": record.sender_name,
                    "avsenderadresse": record.sender_address,
                    "emne": record.subject,
                    "e-posttekst": record.body_text,
                    "skjema": record.form.data if record.form else None,
                    "kvittering": (
                        {
                            "til": record.receipt.to_address,
                            "status": record.receipt.status,
                            "tekst": record.receipt.body,
                        }
                        if record.receipt
                        else None
                    ),
                    "filer": files,
                }
            )
        payload = {
            "sok": result.query,
            "laget": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "poster": records,
        }
        (staging / "innsyn.json").write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        if output.exists():
            output.rmdir()
        staging.replace(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _audit(session, actor, EXPORT_ACTION, result, note="innsyn (art. 15) skrevet")
    return result


def _safe_name(name: str | None) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in (name or "fil"))
    return cleaned.strip("._")[:80] or "fil"


@dataclass
class EraseResult:
    found: FindResult
    erased: list[int] = field(default_factory=list)
    kept: list[tuple[int, str]] = field(default_factory=list)  # (intake id, why)


def erase(db: Database, store: retention.FileDeleter, query: str, actor: str, *, dry_run: bool) -> EraseResult:
    """Erase the person's data where no archival duty applies; say why the rest is kept (art. 17 (3) (b))."""
    with db.session() as session:
        found = find(session, query)
    result = EraseResult(found)
    for hit in found.hits:
        if hit.archival_duty:
            result.kept.append((hit.intake_id, hit.archival_duty))
        else:
            result.erased.append(hit.intake_id)
    if dry_run:
        return result
    started = datetime.now(timezone.utc).timestamp()
    for intake_id in result.erased:
        with db.session() as session:
            record = session.get(m.IntakeRecord, intake_id)
            assert record is not None
            if record.journal_entry is not None:  # journalled since the search: keep it
                continue
            existing = session.scalar(select(m.ContentTombstone).where(m.ContentTombstone.intake_id == intake_id))
            tombstone_id = (
                existing.id
                if existing
                else retention.tombstone(session, record, ERASE_RULE, actor, note="krav om sletting (art. 17)").id
            )
            if existing is not None:
                existing.completed_at = None  # run the deletes again: they were done or are harmless
            record.sender_name, record.sender_address, record.subject, record.body_text = None, None, ERASED, ""
            if record.form is not None:
                record.form.data, record.form.warnings = {}, []
            if record.receipt is not None:
                record.receipt.to_address, record.receipt.body, record.receipt.subject = None, None, None
            own = select(m.FieldCorrection).where(m.FieldCorrection.intake_id == intake_id)
            for correction in session.scalars(own):
                correction.parsed_value, correction.corrected_value = None, None
            # A cancelled journalpost keeps its number, date and status (no gap in the journal), not the person.
            undone = select(m.CancelledJournalEntry).where(m.CancelledJournalEntry.intake_id == intake_id)
            for old in session.scalars(undone):
                old.correspondent_name, old.correspondent_email, old.title = None, None, ERASED
                old.correspondent_is_private_person = True
            session.add(
                m.AuditEvent(
                    actor=actor,
                    action=ERASE_ACTION,
                    intake_id=intake_id,
                    after={"slettet": True},
                    note="krav om sletting (art. 17)",
                )
            )
        retention.complete(db, store, tombstone_id, started)
    with db.session() as session:
        _audit(
            session,
            actor,
            ERASE_ACTION,
            found,
            note="krav om sletting (art. 17) behandlet",
            after={"slettet": result.erased, "beholdt": [intake_id for intake_id, _ in result.kept]},
        )
    return result
