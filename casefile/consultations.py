"""Consultations set up in the dashboard: stored in the case database, read by the worker at every cycle.

A stored consultation is what a `[[cases]]` entry says (number, title, deadline, timezone, keywords) plus the form's
profile learned from its blank, kept as TOML text. Creating one also creates its case (saksmappe), so mail can be
registered to it at once. A `[[cases]]` entry of the same number wins: such a number cannot be set up here, and a
stored consultation whose number is configured later is left out of `stored_consultations(..., configured=...)`.

The parsers load a profile by name or by file path, so a stored profile is written to a file named by the SHA-256
of its text (`profile_file`): every process writes the same file for the same text, and a changed text is a new file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from postmottak.casefile import models as m
from postmottak.casefile.cases import split_case_number
from postmottak.casefile.clock import utc_now

CREATED = "consultation_created"
CASE_NUMBER = re.compile(r"^(\d{2}|\d{4})/\d{1,7}$")
MAX_TITLE = 500
MAX_KEYWORDS = 20
MAX_KEYWORD = 100


class ConsultationError(ValueError):
    """A consultation that cannot be saved; the message is for staff (Norwegian)."""


@dataclass(frozen=True)
class NewConsultation:
    number: str
    title: str
    deadline: date
    deadline_time: time | None
    timezone: str
    keywords: tuple[str, ...]
    profile_toml: str
    blank_sha256: str
    blank_filename: str | None = None


@dataclass(frozen=True)
class StoredConsultation:
    number: str
    title: str
    deadline: date
    deadline_time: time | None
    timezone: str
    keywords: tuple[str, ...]
    profile_toml: str
    blank_sha256: str
    created_by: str


def check(new: NewConsultation, configured: Collection[str]) -> None:
    """Raise ConsultationError with a Norwegian message when the input cannot be saved."""
    if not CASE_NUMBER.match(new.number):
        raise ConsultationError("Saksnummeret må se ut som ÅÅ/NNN eller ÅÅÅÅ/NNN, for eksempel 23/1234.")
    if new.number in configured:
        raise ConsultationError(
            f"Sak {new.number} er allerede satt opp i konfigurasjonsfilen ([[cases]]). "
            "Oppsettet i konfigurasjonsfilen gjelder; endre saken der eller velg et annet saksnummer."
        )
    if not new.title.strip():
        raise ConsultationError("Tittel mangler.")
    if len(new.title) > MAX_TITLE:
        raise ConsultationError(f"Tittelen er for lang; største tillatte lengde er {MAX_TITLE} tegn.")
    try:
        ZoneInfo(new.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConsultationError(f"Ukjent tidssone: {new.timezone}.") from None
    if len(new.keywords) > MAX_KEYWORDS or any(len(k) > MAX_KEYWORD for k in new.keywords):
        raise ConsultationError(
            f"For mange eller for lange stikkord (høyst {MAX_KEYWORDS} stikkord på høyst {MAX_KEYWORD} tegn)."
        )
    if not new.profile_toml.strip():
        raise ConsultationError("Skjemaet mangler.")


def create(
    session: Session, new: NewConsultation, actor: str, configured: Collection[str], form_profile: str | None = None
) -> m.Case:
    """Store the consultation and create its case (`form_profile`: the stored profile's file, see `profile_file`),
    with an audit event; ConsultationError if it cannot be saved."""
    check(new, configured)
    if session.scalar(select(m.Case.id).where(m.Case.number == new.number)) is not None:
        raise ConsultationError(f"Sak {new.number} finnes allerede i saksdatabasen. Velg et annet saksnummer.")
    year, sequence = split_case_number(new.number)
    if session.scalar(select(m.Case.id).where(m.Case.year == year, m.Case.sequence == sequence)) is not None:
        raise ConsultationError(f"Sak {year}/{sequence} finnes allerede i saksdatabasen. Velg et annet saksnummer.")
    now = utc_now()
    keywords = [k for k in new.keywords if k]
    session.add(
        m.Consultation(
            number=new.number,
            title=new.title.strip(),
            deadline=new.deadline,
            deadline_time=new.deadline_time,
            timezone=new.timezone,
            keywords=keywords,
            profile_toml=new.profile_toml,
            blank_sha256=new.blank_sha256,
            blank_filename=(new.blank_filename or "")[:255] or None,
            created_by=actor[:128],
            created_at=now,
        )
    )
    case = m.Case(
        number=new.number,
        year=year,
        sequence=sequence,
        title=new.title.strip(),
        deadline=new.deadline,
        deadline_time=new.deadline_time,
        timezone=new.timezone,
        form_profile=form_profile,
        created_at=now,
    )
    session.add(case)
    session.flush()
    session.add(
        m.AuditEvent(
            at=now,
            actor=actor[:128],
            action=CREATED,
            case_id=case.id,
            after={
                "case": new.number,
                "title": case.title,
                "deadline": _deadline_text(new.deadline, new.deadline_time),
                "timezone": new.timezone,
                "keywords": ", ".join(keywords),
                "form": new.blank_filename or "",
                "sha256": new.blank_sha256,
            },
        )
    )
    session.flush()
    return case


def _deadline_text(day: date, at: time | None) -> str:
    return f"{day:%d.%m.%Y}" + (f" kl. {at:%H:%M}" if at is not None else "")


def stored_consultations(session: Session, configured: Collection[str] = ()) -> list[StoredConsultation]:
    """Every stored consultation whose number is not configured in `[[cases]]` (closed ones too: a mail citing a
    closed case goes to review, as for a configured one)."""
    return [
        StoredConsultation(
            row.number,
            row.title,
            row.deadline,
            row.deadline_time,
            row.timezone,
            tuple(row.keywords or ()),
            row.profile_toml,
            row.blank_sha256,
            row.created_by,
        )
        for row in session.scalars(select(m.Consultation).order_by(m.Consultation.number))
        if row.number not in configured
    ]


def set_form_profiles(session: Session, references: Iterable[tuple[str, str]]) -> None:
    """Point each (case number, profile file) at its profile file, where the case does not already."""
    for number, reference in references:
        case = session.scalar(select(m.Case).where(m.Case.number == number))
        if case is not None and case.form_profile != reference:
            case.form_profile = reference
    session.flush()


def profile_file(folder: Path, profile_toml: str) -> Path:
    """The stored profile as a file the parsers can load: `<folder>/<sha256 of the text>.toml`, written once
    (atomically, so a reader never sees half a file)."""
    text = profile_toml.encode("utf-8")
    path = folder / f"{hashlib.sha256(text).hexdigest()}.toml"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
