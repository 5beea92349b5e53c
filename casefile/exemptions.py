"""Exemption from publication (unntatt offentlighet): staff decide, with a legal basis, per response or document.

A respondent's own request (a form question named in the form profile as `exemption_field`) only pre-fills a
suggestion for staff; nothing is exempted without a staff decision. Every decision and every lifted exemption is
an audit event. The public journal, the Noark 5 extract (skjerming) and the publication package read the rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postmottak.casefile import models as m

EXEMPTED = "exempt_from_publication"
EXEMPTION_LIFTED = "exemption_lifted"
DEFAULT_ACCESS_CODE = "UO"  # unntatt offentlighet, when the basis names no paragraph of offentleglova
_PARAGRAPH = re.compile(r"offl\.?\s*§\s*(\d+)", re.IGNORECASE)
_NO_ANSWERS = {"", "nei", "no", "false", "0", "ikke besvart"}


class ExemptionError(ValueError):
    """The decision cannot be recorded (the message is for staff, in Norwegian)."""


@dataclass(frozen=True)
class Suggestion:
    legal_basis: str
    reason: str  # what the respondent wrote


def access_code_for(legal_basis: str) -> str:
    """tilgangsrestriksjon from the basis: the paragraph of offentleglova ("Offl. § 13 ..." -> "13"), else UO."""
    found = _PARAGRAPH.search(legal_basis)
    return found.group(1) if found else DEFAULT_ACCESS_CODE


def suggest(form: dict[str, Any] | None, profile_name: str | None) -> Suggestion | None:
    """A suggestion when the respondent answered the form's exemption question; None otherwise."""
    if not form:
        return None
    from postmottak.parsers.forms import load_profile

    try:
        profile = load_profile(profile_name) if profile_name else load_profile()
    except ValueError:
        return None
    if not profile.exemption_field:
        return None
    answer = form.get(profile.exemption_field)
    text = "; ".join(str(v) for v in answer) if isinstance(answer, list) else str(answer or "")
    if text.strip().casefold() in _NO_ANSWERS:
        return None
    return Suggestion(profile.exemption_suggested_basis, text.strip())


def _record(session: Session, intake_id: int) -> m.IntakeRecord:
    record = session.get(m.IntakeRecord, intake_id)
    if record is None:
        raise LookupError(f"no intake record {intake_id}")
    if record.status != m.REGISTERED:
        raise ExemptionError(f"Post {intake_id} er ikke registrert på en sak (status «{record.status}»).")
    return record


def _document_id(session: Session, intake_id: int, document_number: int | None) -> int | None:
    if document_number is None:
        return None
    document_id = session.scalar(
        select(m.Document.id).where(m.Document.intake_id == intake_id, m.Document.number == document_number)
    )
    if document_id is None:
        raise ExemptionError(f"Post {intake_id} har ikke dokument nummer {document_number}.")
    return document_id


def _snapshot(row: m.PublicationExemption | None, document_number: int | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "unntatt_offentlighet": row.legal_basis,
        "tilgangsrestriksjon": row.access_code,
        "navn_skjermet": row.screen_names,
        "dokument": document_number,
    }


def find(session: Session, intake_id: int, document_id: int | None) -> m.PublicationExemption | None:
    condition = (
        m.PublicationExemption.document_id.is_(None)
        if document_id is None
        else m.PublicationExemption.document_id == document_id
    )
    return session.scalar(
        select(m.PublicationExemption).where(m.PublicationExemption.intake_id == intake_id, condition)
    )


def mark_exempt(
    session: Session,
    intake_id: int,
    legal_basis: str,
    actor: str,
    *,
    document_number: int | None = None,
    screen_names: bool = False,
    access_code: str | None = None,
    note: str | None = None,
) -> m.PublicationExemption:
    """Exempt a response (or one of its documents) from publication; changing an existing decision is allowed."""
    basis = (legal_basis or "").strip()
    if not basis:
        raise ExemptionError("Oppgi hjemmel for unntaket (f.eks. «Offl. § 13 jf. fvl. § 13»).")
    record = _record(session, intake_id)
    document_id = _document_id(session, intake_id, document_number)
    row = find(session, intake_id, document_id)
    before = _snapshot(row, document_number)
    if row is None:
        row = m.PublicationExemption(intake_id=intake_id, document_id=document_id)
        session.add(row)
    row.legal_basis, row.access_code = basis[:2000], (access_code or access_code_for(basis))[:16]
    row.screen_names, row.decided_by, row.decided_at = screen_names, actor, datetime.now(timezone.utc)
    row.note = (note or "").strip() or None
    session.flush()
    session.add(
        m.AuditEvent(
            actor=actor,
            action=EXEMPTED,
            intake_id=intake_id,
            case_id=record.case_id,
            before=before,
            after=_snapshot(row, document_number),
            note=row.note,
        )
    )
    session.flush()
    return row


def lift(
    session: Session, intake_id: int, actor: str, *, document_number: int | None = None, note: str | None = None
) -> None:
    record = _record(session, intake_id)
    document_id = _document_id(session, intake_id, document_number)
    row = find(session, intake_id, document_id)
    if row is None:
        raise ExemptionError(f"Post {intake_id} er ikke unntatt offentlighet.")
    before = _snapshot(row, document_number)
    session.delete(row)
    session.add(
        m.AuditEvent(
            actor=actor,
            action=EXEMPTION_LIFTED,
            intake_id=intake_id,
            case_id=record.case_id,
            before=before,
            after=None,
            note=(note or "").strip() or None,
        )
    )
    session.flush()


def for_record(session: Session, intake_id: int) -> list[m.PublicationExemption]:
    return list(
        session.scalars(
            select(m.PublicationExemption)
            .where(m.PublicationExemption.intake_id == intake_id)
            .order_by(m.PublicationExemption.document_id.is_not(None), m.PublicationExemption.id)
        )
    )
