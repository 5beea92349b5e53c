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
from postmottak.casefile.form_values import (
    FormLayout,
    answer_of,
    choice_labels,
    corrected_form,
    form_layout,
    load_corrections,
)
from postmottak.parsers.forms.answers import FieldSpec

NO_RESPONDENT_TYPE = "Ikke oppgitt"
NO_CHOICE = "Ikke besvart"


@dataclass
class Response:
    intake_id: int
    journal_number: str | None
    received_at: datetime  # in the case's timezone
    on_time: bool
    sender_address: str | None
    sender_name: str | None
    subject: str
    form: dict[str, Any]  # corrected flat keys and `fields`; {} when the mail had no form
    corrected_fields: set[str]
    warnings: list[str]
    form_status: str | None
    case_number: str
    layout: FormLayout

    def answer(self, key: str) -> Any:
        return answer_of(self.form, key)

    @property
    def respondent_type(self) -> str:
        spec = self.layout.respondent_type
        if spec is None:
            return NO_RESPONDENT_TYPE
        chosen = choice_labels(self.answer(spec.key))
        return spec.option_display(chosen[0]) if len(chosen) == 1 else NO_RESPONDENT_TYPE

    @property
    def respondent(self) -> str:
        key = self.layout.respondent_name_key
        named = self.form.get(key) if key else None
        return named or self.sender_name or self.sender_address or "(ukjent)"


@dataclass
class DayCount:
    day: date
    on_time: int = 0
    late: int = 0

    @property
    def total(self) -> int:
        return self.on_time + self.late


@dataclass
class ChoiceSummary:
    spec: FieldSpec
    totals: list[tuple[str, int]]  # option (short name) -> count, in form order, then NO_CHOICE
    by_respondent_type: list[tuple[str, dict[str, int]]]  # respondent type -> option (short name, "" none) -> count

    @property
    def series(self) -> list[tuple[str, str]]:
        return [(option.display, option.display) for option in self.spec.options] + [("", NO_CHOICE)]


@dataclass
class MatrixSummary:
    spec: FieldSpec
    rows: list[tuple[str, dict[str, int]]]  # row label -> column label (or "" none) -> count

    @property
    def series(self) -> list[tuple[str, str]]:
        return [(option.label, option.display) for option in self.spec.options] + [("", NO_CHOICE)]


@dataclass
class TextAnswers:
    spec: FieldSpec
    answers: list[tuple[Response, str]]


@dataclass
class ConsultationSummary:
    case: m.Case
    layout: FormLayout
    responses: list[Response]
    by_respondent_type: list[tuple[str, int]]
    choices: list[ChoiceSummary]
    matrices: list[MatrixSummary]
    texts: list[TextAnswers]
    late: list[Response]
    per_day: list[DayCount]

    @property
    def with_form(self) -> int:
        return sum(1 for r in self.responses if r.form)


def responses(session: Session, case_number: str | None = None) -> list[Response]:
    """Registered responses (of one case, or all), oldest first, with corrected form values."""
    query = (
        select(m.IntakeRecord)
        .where(m.IntakeRecord.status == m.REGISTERED)
        .options(
            selectinload(m.IntakeRecord.case),
            selectinload(m.IntakeRecord.form).selectinload(m.FormResultRow.answers),
            selectinload(m.IntakeRecord.journal_entry).selectinload(m.JournalEntry.case),
        )
        .order_by(m.IntakeRecord.received_at, m.IntakeRecord.id)
    )
    if case_number is not None:
        query = query.join(m.Case, m.Case.id == m.IntakeRecord.case_id).where(m.Case.number == case_number)
    records = list(session.scalars(query))
    corrections = load_corrections(session, [r.id for r in records])
    result = []
    for record in records:
        tz = ZoneInfo(record.case.timezone if record.case else "Europe/Oslo")
        record_corrections = corrections.get(record.id, [])
        form = corrected_form(record, record_corrections) or {}
        profile_name = (
            record.case.form_profile
            if record.case and record.case.form_profile
            else (record.form.profile if record.form else None)
        )
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
                layout=form_layout(profile_name),
            )
        )
    return result


def _ordered_types(layout: FormLayout, counter: Counter[str]) -> list[str]:
    spec = layout.respondent_type
    known_order = [option.display for option in spec.options] if spec is not None else []
    known = [t for t in known_order if counter.get(t)]
    other = sorted(t for t in counter if t not in known_order and t != NO_RESPONDENT_TYPE)
    tail = [NO_RESPONDENT_TYPE] if counter.get(NO_RESPONDENT_TYPE) else []
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


def _choice_summary(spec: FieldSpec, items: list[Response], types: list[str]) -> ChoiceSummary:
    totals: Counter[str] = Counter()
    by_type: dict[str, dict[str, int]] = {t: {} for t in types}
    for response in items:
        chosen = [spec.option_display(label) for label in choice_labels(response.answer(spec.key))] or [""]
        slot = by_type.setdefault(response.respondent_type, {})
        for option in chosen:
            totals[option] += 1
            slot[option] = slot.get(option, 0) + 1
    ordered = [(option.display, totals[option.display]) for option in spec.options]
    ordered += [(name, count) for name, count in totals.items() if name and name not in dict(ordered)]
    ordered.append((NO_CHOICE, totals[""]))
    return ChoiceSummary(spec, ordered, [(t, by_type[t]) for t in by_type])


def _matrix_summary(spec: FieldSpec, items: list[Response]) -> MatrixSummary:
    rows: list[tuple[str, dict[str, int]]] = []
    for row in spec.rows:
        counts: dict[str, int] = {}
        for response in items:
            table = response.answer(spec.key)
            ticked = (table.get(row) if isinstance(table, dict) else None) or [""]
            for column in ticked:
                counts[column] = counts.get(column, 0) + 1
        rows.append((row, counts))
    return MatrixSummary(spec, rows)


def consultation_summary(session: Session, case_number: str) -> ConsultationSummary:
    case = session.scalar(select(m.Case).where(m.Case.number == case_number))
    if case is None:
        raise LookupError(f"no case {case_number}")
    layout = form_layout(case.form_profile)
    items = responses(session, case_number)
    with_form = [r for r in items if r.form]
    by_type = Counter(r.respondent_type for r in items)
    types = _ordered_types(layout, by_type) if layout.respondent_type is not None else []
    respondent_key = layout.respondent_type.key if layout.respondent_type is not None else None
    return ConsultationSummary(
        case=case,
        layout=layout,
        responses=items,
        by_respondent_type=[(t, by_type[t]) for t in types],
        choices=[
            _choice_summary(spec, items, types)
            for spec in layout.specs
            if spec.kind == "choice" and spec.key != respondent_key
        ],
        matrices=[_matrix_summary(spec, with_form) for spec in layout.specs if spec.kind == "matrix"],
        texts=[
            TextAnswers(spec, [(r, str(r.form[spec.key])) for r in with_form if r.form.get(spec.key)])
            for spec in layout.specs
            if spec.kind == "text" and spec.multiline
        ],
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
            select(m.PollRun)
            .where(m.PollRun.ok.is_(False), m.PollRun.finished_at.is_not(None))
            .order_by(m.PollRun.started_at.desc())
            .limit(10)
        )
    )
    retrying = (
        session.scalar(
            select(func.count()).select_from(m.ProcessingFailure).where(m.ProcessingFailure.resolved_at.is_(None))
        )
        or 0
    )
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
    retrying = (
        session.scalar(
            select(func.count()).select_from(m.ProcessingFailure).where(m.ProcessingFailure.resolved_at.is_(None))
        )
        or 0
    )
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
