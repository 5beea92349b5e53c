"""The audit trail as staff browse it: filtered by person, action, case and date, paged, and exported."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from postmottak.casefile import models as m
from postmottak.casefile.labels import action_label, changes, local_time

OSLO = ZoneInfo("Europe/Oslo")
EXPORT_LIMIT = 100_000  # rows in one CSV export; the filters narrow a larger log


@dataclass
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    case_number: str | None = None
    intake_id: int | None = None
    since: date | None = None  # Oslo dates, both days included
    until: date | None = None
    page: int = 1
    per_page: int = 50


@dataclass
class AuditPage:
    events: list[m.AuditEvent]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=OSLO)


def _conditions(session: Session, criteria: AuditFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if criteria.actor:
        conditions.append(m.AuditEvent.actor == criteria.actor)
    if criteria.action:
        conditions.append(m.AuditEvent.action == criteria.action)
    if criteria.case_number:
        case_id = session.scalar(select(m.Case.id).where(m.Case.number == criteria.case_number))
        conditions.append(m.AuditEvent.case_id == (case_id if case_id is not None else -1))
    if criteria.intake_id is not None:
        conditions.append(m.AuditEvent.intake_id == criteria.intake_id)
    if criteria.since:
        conditions.append(m.AuditEvent.at >= _start_of(criteria.since))
    if criteria.until:
        conditions.append(m.AuditEvent.at < _start_of(criteria.until + timedelta(days=1)))
    return conditions


def search_audit(session: Session, criteria: AuditFilter) -> AuditPage:
    where = and_(*_conditions(session, criteria)) if _conditions(session, criteria) else None
    count = select(func.count()).select_from(m.AuditEvent)
    query = select(m.AuditEvent).order_by(m.AuditEvent.at.desc(), m.AuditEvent.id.desc())
    if where is not None:
        count, query = count.where(where), query.where(where)
    per_page = max(1, min(criteria.per_page, 500))
    page = max(1, criteria.page)
    events = list(session.scalars(query.offset((page - 1) * per_page).limit(per_page)))
    return AuditPage(events=events, total=session.scalar(count) or 0, page=page, per_page=per_page)


def actors(session: Session) -> list[str]:
    return list(session.scalars(select(m.AuditEvent.actor).distinct().order_by(m.AuditEvent.actor)))


def export_csv(session: Session, criteria: AuditFilter) -> tuple[bytes, int]:
    """The filtered log as CSV (UTF-8 with BOM, semicolons, Norwegian words and times); returns (data, rows)."""
    found = search_audit(session, AuditFilter(**{**criteria.__dict__, "page": 1, "per_page": EXPORT_LIMIT}))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(["Tidspunkt", "Hvem", "Handling", "Post", "Før", "Etter", "Merknad"])
    for event in found.events:
        writer.writerow(
            [
                local_time(event.at, "%d.%m.%Y %H:%M:%S"),
                event.actor,
                action_label(event.action),
                event.intake_id or "",
                changes(event.before) if event.before is not None else "",
                changes(event.after) if event.after is not None else "",
                event.note or "",
            ]
        )
    return buffer.getvalue().encode("utf-8-sig"), len(found.events)
