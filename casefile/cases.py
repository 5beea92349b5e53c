"""Cases (saksmapper) as configured: created on start, kept in step with the config while open."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from postmottak.casefile import models as m


def split_case_number(number: str) -> tuple[int, int]:
    """ "22/414" -> (2022, 414); "2022/414" -> (2022, 414)."""
    year_text, sequence_text = number.strip().split("/", 1)
    year = int(year_text)
    return (2000 + year if year < 100 else year), int(sequence_text)


def sync_cases(session: Session, configured: Iterable[tuple[str, str, date, str, str | None]]) -> None:
    """Insert configured cases that are missing; update title/deadline/timezone of open ones."""
    for number, title, deadline, tz, form_profile in configured:
        case = session.scalar(select(m.Case).where(m.Case.number == number))
        if case is None:
            year, sequence = split_case_number(number)
            session.add(
                m.Case(
                    number=number,
                    year=year,
                    sequence=sequence,
                    title=title,
                    deadline=deadline,
                    timezone=tz,
                    form_profile=form_profile,
                )
            )
        elif case.status == "open":
            case.title, case.deadline, case.timezone, case.form_profile = title, deadline, tz, form_profile
            case.deadline_time = None  # a configured deadline is a day
    session.flush()


def case_on_time(case: m.Case, received_at: datetime) -> bool:
    """Received no later than the case's deadline in its own timezone: the end of the deadline day, or the end of
    the deadline minute when the case has a time of day (as intake/triage.py judges a new mail)."""
    local = received_at.astimezone(ZoneInfo(case.timezone))
    if case.deadline_time is None:
        return local.date() <= case.deadline
    return (local.date(), local.time().replace(second=0, microsecond=0, tzinfo=None)) <= (
        case.deadline,
        case.deadline_time.replace(second=0, microsecond=0),
    )


def get_case(session: Session, number: str) -> m.Case:
    case = session.scalar(select(m.Case).where(m.Case.number == number))
    if case is None:
        raise LookupError(f"no case {number} in the case database")
    return case


def closed_numbers(session: Session) -> set[str]:
    return set(session.scalars(select(m.Case.number).where(m.Case.status == "closed")))


def close_case(session: Session, number: str, user: str) -> m.Case:
    case = get_case(session, number)
    case.status, case.closed_at, case.closed_by = "closed", datetime.now(timezone.utc), user
    return case


def reopen_case(session: Session, number: str) -> m.Case:
    case = get_case(session, number)
    case.status, case.closed_at, case.closed_by = "open", None, None
    return case
