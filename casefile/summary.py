"""Read-side summaries: the consultation per case (who answered, what they said), and the worker's health.

A "response" is an intake record registered to the case. Form values are the parsed ones with staff corrections
applied (queries.corrected_form), so every summary, page and spreadsheet shows the same corrected answers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from postmottak.casefile import models as m
from postmottak.casefile.queries import corrected_form


def _organisation_types() -> tuple[str, ...]:
    """The organisation types in the form's own order, from the form profile (data, not code)."""
    from postmottak.parsers.forms import load_profile

    return tuple(
        option.value
        for section in load_profile().sections
        if section.kind == "checkboxes" and section.field == "organisation_type"
        for option in section.options
    )


ORGANISATION_TYPES = _organisation_types()
NO_ORGANISATION_TYPE = "Ikke oppgitt"
Q1_CHOICES = {"ja": "Ja", "nei": "Nei", "vet_ikke": "Vet ikke"}
NO_Q1_CHOICE = "Ikke besvart"
GOAL_LABELS = {
    "goal_1": "Mål 1: Aktiv medvirkning i egen og næres helse",
    "goal_2": "Mål 2: Enklere arbeidshverdag",
    "goal_3": "Mål 3: Helsedata til fornying og forbedring",
    "goal_4": "Mål 4: Tilgjengelig informasjon og styrket samhandling",
    "goal_5": "Mål 5: Samarbeid og virkemidler som styrker gjennomføringskraft",
}
GOAL_FIELDS = tuple(GOAL_LABELS)
# Every form field staff see and may correct, in form order, with its Norwegian label.
FIELD_LABELS = {
    "organisation_type": "Type organisasjon/virksomhet",
    "organisation_name": "Navn på virksomheten",
    "contact_person": "Kontaktperson",
    "email": "E-postadresse",
    "q1_choice": "1) Stiller seg bak målene",
    "q1_text": "1) Utdyping",
    **{key: label for key, label in GOAL_LABELS.items()},
    "q3_text": "3) Oppfølging av strategien",
    "q4_text": "4) Andre innspill",
}
FORM_FIELDS = tuple(FIELD_LABELS)
ANSWER_TEXT_FIELDS = ("q1_text", *GOAL_FIELDS, "q3_text", "q4_text")


@dataclass
class Response:
    intake_id: int
    journal_number: str | None
    received_at: datetime  # in the case's timezone
    on_time: bool
    sender_address: str | None
    sender_name: str | None
    subject: str
    form: dict[str, Any]  # corrected; {} when the mail had no form
    corrected_fields: set[str]
    warnings: list[str]
    form_status: str | None
    case_number: str

    @property
    def organisation_type(self) -> str:
        return self.form.get("organisation_type") or NO_ORGANISATION_TYPE

    @property
    def respondent(self) -> str:
        return self.form.get("organisation_name") or self.sender_name or self.sender_address or "(ukjent)"


@dataclass
class DayCount:
    day: date
    on_time: int = 0
    late: int = 0

    @property
    def total(self) -> int:
        return self.on_time + self.late


@dataclass
class ConsultationSummary:
    case: m.Case
    responses: list[Response]
    by_organisation_type: list[tuple[str, int]]
    q1_by_organisation_type: list[tuple[str, dict[str, int]]]  # choice key (or "" for none) -> count
    per_goal: dict[str, list[tuple[Response, str]]]
    late: list[Response]
    per_day: list[DayCount]

    @property
    def with_form(self) -> int:
        return sum(1 for r in self.responses if r.form)


def _corrections_by_intake(session: Session, intake_ids: list[int]) -> dict[int, list[m.FieldCorrection]]:
    grouped: dict[int, list[m.FieldCorrection]] = {}
    if not intake_ids:
        return grouped
    for chunk_start in range(0, len(intake_ids), 500):
        chunk = intake_ids[chunk_start : chunk_start + 500]
        for correction in session.scalars(select(m.FieldCorrection).where(m.FieldCorrection.intake_id.in_(chunk))):
            grouped.setdefault(correction.intake_id, []).append(correction)
    return grouped


def responses(session: Session, case_number: str | None = None) -> list[Response]:
    """Registered responses (of one case, or all), oldest first, with corrected form values."""
    query = (
        select(m.IntakeRecord)
        .where(m.IntakeRecord.status == m.REGISTERED)
        .options(
            selectinload(m.IntakeRecord.case),
            selectinload(m.IntakeRecord.form),
            selectinload(m.IntakeRecord.journal_entry).selectinload(m.JournalEntry.case),
        )
        .order_by(m.IntakeRecord.received_at, m.IntakeRecord.id)
    )
    if case_number is not None:
        query = query.join(m.Case, m.Case.id == m.IntakeRecord.case_id).where(m.Case.number == case_number)
    records = list(session.scalars(query))
    corrections = _corrections_by_intake(session, [r.id for r in records])
    result = []
    for record in records:
        tz = ZoneInfo(record.case.timezone if record.case else "Europe/Oslo")
        record_corrections = corrections.get(record.id, [])
        form = corrected_form(record, record_corrections) or {}
        result.append(
            Response(
                intake_id=record.id,
                journal_number=record.journal_entry.journal_number if record.journal_entry else None,
                received_at=record.received_at.astimezone(tz),
                on_time=bool(record.on_time),
                sender_address=record.sender_address,
                sender_name=record.sender_name,
                subject=record.subject,
                form=form,
                corrected_fields={c.field for c in record_corrections},
                warnings=list(record.form.warnings) if record.form else [],
                form_status=record.form.form_status if record.form else None,
                case_number=record.case.number if record.case else "",
            )
        )
    return result


def _ordered_types(counter: Counter[str]) -> list[str]:
    known = [t for t in ORGANISATION_TYPES if counter.get(t)]
    other = sorted(t for t in counter if t not in ORGANISATION_TYPES and t != NO_ORGANISATION_TYPE)
    tail = [NO_ORGANISATION_TYPE] if counter.get(NO_ORGANISATION_TYPE) else []
    return [*known, *other, *tail]


def per_day(items: list[Response], deadline: date | None = None) -> list[DayCount]:
    """Responses per local day, every day from the first response to the last (or the deadline) included."""
    if not items:
        return []
    counts: dict[date, DayCount] = {}
    for response in items:
        day = response.received_at.date()
        slot = counts.setdefault(day, DayCount(day))
        if response.on_time:
            slot.on_time += 1
        else:
            slot.late += 1
    first, last = min(counts), max(counts)
    if deadline is not None:
        last = max(last, deadline)
        first = min(first, deadline)
    days = []
    current = first
    while current <= last:
        days.append(counts.get(current, DayCount(current)))
        current += timedelta(days=1)
    return days


def consultation_summary(session: Session, case_number: str) -> ConsultationSummary:
    case = session.scalar(select(m.Case).where(m.Case.number == case_number))
    if case is None:
        raise LookupError(f"no case {case_number}")
    items = responses(session, case_number)
    by_type = Counter(r.organisation_type for r in items)
    types = _ordered_types(by_type)
    q1: dict[str, dict[str, int]] = {t: {} for t in types}
    for response in items:
        choice = response.form.get("q1_choice") or ""
        slot = q1[response.organisation_type]
        slot[choice] = slot.get(choice, 0) + 1
    goals: dict[str, list[tuple[Response, str]]] = {}
    for goal in GOAL_FIELDS:
        goals[goal] = [(r, str(r.form[goal])) for r in items if r.form.get(goal)]
    return ConsultationSummary(
        case=case,
        responses=items,
        by_organisation_type=[(t, by_type[t]) for t in types],
        q1_by_organisation_type=[(t, q1[t]) for t in types],
        per_goal=goals,
        late=[r for r in items if not r.on_time],
        per_day=per_day(items, case.deadline),
    )


# Worker health --------------------------------------------------------------------------------


@dataclass
class WorkerHealth:
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    stale: bool
    last_run_ok: bool | None
    recent_failed_runs: list[m.PollRun]
    retrying: int
    sources: list[m.MailboxState] = field(default_factory=list)

    @property
    def failing(self) -> bool:
        return self.last_run_ok is False or bool(self.last_error)


def worker_health(session: Session, *, stale_after: timedelta, now: datetime | None = None) -> WorkerHealth:
    """Stale = no successful poll within stale_after (or never); failing = the last cycle reported errors."""
    now = now or datetime.now(timezone.utc)
    states = list(session.scalars(select(m.MailboxState).order_by(m.MailboxState.source_key)))
    last_poll = max((s.last_poll_at for s in states if s.last_poll_at), default=None)
    last_success = max((s.last_success_at for s in states if s.last_success_at), default=None)
    errors = [f"{s.source_key}: {s.last_error}" for s in states if s.last_error]
    last_run = session.scalar(
        select(m.PollRun).where(m.PollRun.finished_at.is_not(None)).order_by(m.PollRun.started_at.desc()).limit(1)
    )
    failed_runs = list(
        session.scalars(
            select(m.PollRun).where(m.PollRun.ok.is_(False), m.PollRun.finished_at.is_not(None))
            .order_by(m.PollRun.started_at.desc()).limit(10)
        )
    )
    retrying = session.scalar(
        select(func.count()).select_from(m.ProcessingFailure).where(m.ProcessingFailure.resolved_at.is_(None))
    ) or 0
    return WorkerHealth(
        last_poll_at=last_poll,
        last_success_at=last_success,
        last_error="; ".join(errors) or None,
        stale=last_success is None or now - last_success > stale_after,
        last_run_ok=last_run.ok if last_run else None,
        recent_failed_runs=failed_runs,
        retrying=retrying,
        sources=states,
    )


@dataclass
class MetricsSnapshot:
    records_by_status: dict[str, int]
    registered_by_case: list[tuple[str, bool, int]]  # case number, on time, count
    receipts_by_status: dict[str, int]
    cycles_by_outcome: dict[bool, int]
    fetched_total: int
    last_cycle_duration_s: float | None
    last_success_at: datetime | None
    retrying: int
    review_queue: int


def metrics_snapshot(session: Session) -> MetricsSnapshot:
    by_status = dict(session.execute(select(m.IntakeRecord.status, func.count()).group_by(m.IntakeRecord.status)).all())
    by_case = [
        (number, bool(on_time), count)
        for number, on_time, count in session.execute(
            select(m.Case.number, m.IntakeRecord.on_time, func.count())
            .join(m.Case, m.Case.id == m.IntakeRecord.case_id)
            .where(m.IntakeRecord.status == m.REGISTERED)
            .group_by(m.Case.number, m.IntakeRecord.on_time)
        ).all()
    ]
    receipts = dict(session.execute(select(m.Receipt.status, func.count()).group_by(m.Receipt.status)).all())
    cycles = {
        bool(ok): count
        for ok, count in session.execute(
            select(m.PollRun.ok, func.count()).where(m.PollRun.finished_at.is_not(None)).group_by(m.PollRun.ok)
        ).all()
    }
    fetched = session.scalar(select(func.coalesce(func.sum(m.PollRun.fetched), 0))) or 0
    last = session.scalar(
        select(m.PollRun).where(m.PollRun.finished_at.is_not(None)).order_by(m.PollRun.started_at.desc()).limit(1)
    )
    duration = (last.finished_at - last.started_at).total_seconds() if last and last.finished_at else None
    last_success = session.scalar(select(func.max(m.MailboxState.last_success_at)))
    if isinstance(last_success, datetime) and last_success.tzinfo is None:
        last_success = last_success.replace(tzinfo=timezone.utc)
    retrying = session.scalar(
        select(func.count()).select_from(m.ProcessingFailure).where(m.ProcessingFailure.resolved_at.is_(None))
    ) or 0
    return MetricsSnapshot(
        records_by_status=by_status,
        registered_by_case=by_case,
        receipts_by_status=receipts,
        cycles_by_outcome=cycles,
        fetched_total=int(fetched),
        last_cycle_duration_s=duration,
        last_success_at=last_success if isinstance(last_success, datetime) else None,
        retrying=retrying,
        review_queue=by_status.get(m.NEEDS_REVIEW, 0),
    )
