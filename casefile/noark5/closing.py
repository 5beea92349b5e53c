"""Closing and reopening a case, with the audit trail the endringslogg is made from."""

from __future__ import annotations

from sqlalchemy.orm import Session

from postmottak.casefile import models as m
from postmottak.casefile.cases import close_case, get_case, reopen_case

CASE_CLOSED = "case_closed"
CASE_REOPENED = "case_reopened"
# Noark 5 saksstatus values
STATUS_OPEN = "Under behandling"
STATUS_CLOSED = "Avsluttet"


class CaseStateError(Exception):
    pass


def close(session: Session, number: str, user: str) -> m.Case:
    case = get_case(session, number)
    if case.status == "closed":
        raise CaseStateError(f"case {number} is already closed ({case.closed_at:%Y-%m-%d %H:%M} by {case.closed_by})")
    case = close_case(session, number, user)
    session.add(
        m.AuditEvent(
            at=case.closed_at,
            actor=user,
            action=CASE_CLOSED,
            case_id=case.id,
            before={"saksstatus": STATUS_OPEN},
            after={"saksstatus": STATUS_CLOSED},
        )
    )
    session.flush()
    return case


def reopen(session: Session, number: str, user: str) -> m.Case:
    case = get_case(session, number)
    if case.status != "closed":
        raise CaseStateError(f"case {number} is not closed")
    case = reopen_case(session, number)
    session.add(
        m.AuditEvent(
            actor=user,
            action=CASE_REOPENED,
            case_id=case.id,
            before={"saksstatus": STATUS_CLOSED},
            after={"saksstatus": STATUS_OPEN},
        )
    )
    session.flush()
    return case
