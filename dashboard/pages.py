"""The pages staff read: overview, intake list, detail, review queue, cases and their summaries, audit log."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.responses import Response

from postmottak.casefile import audit, review
from postmottak.casefile import models as m
from postmottak.casefile import summary as summaries
from postmottak.casefile.cases import get_case
from postmottak.casefile.labels import ACTION_LABELS, local_time
from postmottak.casefile.queries import corrected_form, status_summary
from postmottak.dashboard.charts import responses_per_day, stacked_bars
from postmottak.dashboard.rendering import case_key, render
from postmottak.dashboard.scans import scan_pages
from postmottak.dashboard.security import StaffUser, current_user

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

router = APIRouter()

TIMELINESS = {"on_time": "I tide", "late": "For sent"}


@dataclass
class IntakeQuery:
    """The intake list's filters as the address gives them; read leniently in `intake_list`."""

    status: str = ""
    case: str = ""
    timeliness: str = ""
    receipt: str = ""
    org_type: str = ""
    q: str = ""


@dataclass
class AuditQuery:
    """The audit log's filters as the address gives them; read in `_audit_criteria`."""

    actor: str = ""
    action: str = ""
    case: str = ""
    intake: str = ""
    since: str = ""
    until: str = ""


def given_filters(query: IntakeQuery | AuditQuery) -> dict[str, str]:
    """The filters that are set, in declaration order: for links that keep them."""
    return {name: value for name, value in asdict(query).items() if value}


def staff(request: Request) -> StaffUser:
    """The logged-in user, plus what the navigation shows on every page."""
    user = current_user(request)
    request.state.user = user
    with request.app.state.db.session() as session:
        request.state.review_count = review.review_count(session)
    return user


def find_case(session: Session, key: str) -> m.Case:
    for number in review.case_numbers(session):
        if case_key(number) == key:
            return get_case(session, number)
    raise HTTPException(404)


@router.get("/")
def overview(request: Request, user: StaffUser = Depends(staff)) -> Response:
    state = request.app.state
    with state.db.session() as session:
        status = status_summary(session)
        health = summaries.worker_health(session, stale_after=state.stale_after)
        waiting: dict[str, int] = {}
        for record in review.review_queue(session).form_warnings:
            if record.case is not None:
                waiting[record.case.number] = waiting.get(record.case.number, 0) + 1
        for row in status.cases:
            row.to_review = waiting.get(row.number, 0)
        charts = []
        for case in status.cases:
            deadline = date.fromisoformat(case.deadline)
            days = summaries.per_day(summaries.responses(session, case.number), deadline)
            charts.append((case, responses_per_day(days, deadline)))
        return render(
            request,
            "overview.html",
            {
                "status": status,
                "open_cases": [c for c in status.cases if c.status == "open"],
                "health": health,
                "charts": charts,
                "statuses": m.INTAKE_STATUSES,
                "receipt_statuses": m.RECEIPT_STATUSES,
                "interval": state.settings.schedule.interval_seconds,
            },
        )


@router.get("/intake")
def intake_list(
    request: Request,
    query: IntakeQuery = Depends(),
    page: str = "1",
    sort: str = "received",
    order: str = "desc",
    user: StaffUser = Depends(staff),
) -> Response:
    state = request.app.state
    with state.db.session() as session:
        cases = review.case_numbers(session)
        criteria = review.IntakeFilter(
            status=query.status if query.status in m.INTAKE_STATUSES else None,
            case_number=query.case if query.case in cases else None,
            timeliness=query.timeliness if query.timeliness in TIMELINESS else None,
            receipt_status=query.receipt if query.receipt in m.RECEIPT_STATUSES else None,
            respondent_type=query.org_type or None,
            search=query.q[:200] or None,
            page=int(page) if page.isdigit() and len(page) < 7 else 1,
            per_page=state.web.page_size,
            sort=sort if sort in review.SORT_COLUMNS else "received",
            descending=order != "asc",
        )
        result = review.search_intake(session, criteria)
        ordering = (
            {}
            if criteria.sort == "received" and criteria.descending
            else {"sort": criteria.sort, "order": "desc" if criteria.descending else "asc"}
        )
        params = given_filters(query)
        return render(
            request,
            "intake_list.html",
            {
                "result": result,
                "filters": params,
                "cases": cases,
                "statuses": m.INTAKE_STATUSES,
                "receipt_statuses": m.RECEIPT_STATUSES,
                "timeliness": TIMELINESS,
                "respondent_types": review.respondent_type_options(session),
                "page_url": lambda n: "/intake?" + urlencode({**params, **ordering, "page": n}),
                "sort_url": lambda key: (
                    "/intake?"
                    + urlencode(
                        {
                            **params,
                            "sort": key,
                            "order": "asc" if criteria.sort == key and criteria.descending else "desc",
                        }
                    )
                ),
                "sort": criteria.sort,
                "descending": criteria.descending,
            },
        )


@router.get("/intake/{intake_id}")
def intake_detail(request: Request, intake_id: int, user: StaffUser = Depends(staff)) -> Response:
    with request.app.state.db.session() as session:
        try:
            record = review.load_record(session, intake_id)
        except LookupError:
            raise HTTPException(404) from None
        corrections = review.corrections_for(session, intake_id)
        by_field: dict[str, list[m.FieldCorrection]] = {}
        for correction in corrections:
            by_field.setdefault(correction.field, []).append(correction)
        return render(
            request,
            "intake_detail.html",
            {
                "record": record,
                "form": corrected_form(record, corrections),
                "corrections": by_field,
                "events": review.history(session, intake_id),
                "open_cases": review.open_case_numbers(session),
                "form_checked": review.form_checked(session, intake_id),
                "layout": review.layout_of(record),
                "answers": {a.key: a for a in record.form.answers} if record.form is not None else {},
                "registrable": record.status in review.REGISTRABLE,
                "undoable": (undoable := review.last_decision(session, intake_id)),
                "undo_deadline": review.undo_deadline(undoable) if undoable is not None else None,
                "cancelled_numbers": review.cancelled_journal_numbers(session, intake_id),
                "receipt_plan": (
                    review.receipt_preview(session, record, request.app.state.receipt_check)
                    if record.status in review.REGISTRABLE
                    else None
                ),
                "ignorable": record.status in review.IGNORABLE,
                "scans": scan_pages(session, record, {s.key: s.column for s in review.layout_of(record).specs}),
            },
        )


@router.get("/review")
def review_page(request: Request, user: StaffUser = Depends(staff)) -> Response:
    with request.app.state.db.session() as session:
        queue = review.review_queue(session)
        check = request.app.state.receipt_check
        plans = {record.id: review.receipt_preview(session, record, check) for record in queue.needs_review}
        return render(
            request,
            "review.html",
            {"queue": queue, "open_cases": review.open_case_numbers(session), "receipt_plans": plans},
        )


@router.get("/cases")
def case_list(request: Request, user: StaffUser = Depends(staff)) -> Response:
    with request.app.state.db.session() as session:
        return render(request, "cases.html", {"cases": status_summary(session).cases})


@router.get("/cases/{key}")
def case_summary(request: Request, key: str, user: StaffUser = Depends(staff)) -> Response:
    with request.app.state.db.session() as session:
        case = find_case(session, key)
        result = summaries.consultation_summary(session, case.number)
        return render(
            request,
            "case_summary.html",
            {
                "case": case,
                "summary": result,
                "choice_charts": [
                    stacked_bars(
                        choice.by_respondent_type or [("Alle svar", dict(choice_counts(choice)))],
                        choice.series,
                        f"Svar på «{choice.spec.column}»",
                    )
                    for choice in result.choices
                ],
                "matrix_charts": [
                    stacked_bars(matrix.rows, matrix.series, f"Svar i tabellen «{matrix.spec.column}»")
                    for matrix in result.matrices
                ],
                "day_chart": responses_per_day(result.per_day, case.deadline),
                "key": key,
                "now_text": local_time(datetime.now(timezone.utc)),
            },
        )


def _audit_criteria(
    session: Session, query: AuditQuery, page: str, per_page: int = 50
) -> tuple[audit.AuditFilter, list[str]]:
    """The audit filters from the address; values that cannot be read are named back to staff, not a 422."""
    problems: list[str] = []

    def day(text: str, label: str) -> date | None:
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            problems.append(f"{label} «{text[:20]}» er ikke en dato (åååå-mm-dd).")
            return None

    intake = query.intake
    intake_id = int(intake) if intake.isdigit() and len(intake) < 10 else None
    if intake and intake_id is None:
        problems.append(f"Postnummeret «{intake[:20]}» er ikke et tall.")
    criteria = audit.AuditFilter(
        actor=query.actor[:128] or None,
        action=query.action if query.action in ACTION_LABELS else None,
        case_number=query.case if query.case in review.case_numbers(session) else None,
        intake_id=intake_id,
        since=day(query.since, "Fra-datoen"),
        until=day(query.until, "Til-datoen"),
        page=int(page) if page.isdigit() and len(page) < 7 else 1,
        per_page=per_page,
    )
    return criteria, problems


@router.get("/audit")
def audit_log(
    request: Request, query: AuditQuery = Depends(), page: str = "1", user: StaffUser = Depends(staff)
) -> Response:
    with request.app.state.db.session() as session:
        criteria, problems = _audit_criteria(session, query, page, request.app.state.web.page_size)
        result = audit.search_audit(session, criteria)
        params = given_filters(query)
        return render(
            request,
            "audit.html",
            {
                "result": result,
                "filters": params,
                "problems": problems,
                "actors": audit.actors(session),
                "actions": ACTION_LABELS,
                "cases": review.case_numbers(session),
                "page_url": lambda n: "/audit?" + urlencode({**params, "page": n}),
                "export_url": "/audit/export.csv" + ("?" + urlencode(params) if params else ""),
            },
        )


@router.get("/audit/export.csv")
def audit_export(request: Request, query: AuditQuery = Depends(), user: StaffUser = Depends(staff)) -> Response:
    with request.app.state.db.session() as session:
        criteria, _problems = _audit_criteria(session, query, "1")
        data, rows = audit.export_csv(session, criteria)
        review.record_access(session, actor=user.username, action="export", note=f"logg som CSV, {rows} rader")
    return Response(
        data,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="logg.csv"'},
    )


def choice_counts(choice: summaries.ChoiceSummary) -> list[tuple[str, int]]:
    """Totals keyed as the chart's series are ("" for not answered)."""
    return [("" if name == summaries.NO_CHOICE else name, count) for name, count in choice.totals]
