"""Exemption from publication in the dashboard: a page per response (own template), archivists decide.

Kept apart from the record page: the record page only includes a link (templates/_exemption_link.html).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from postmottak.casefile import exemptions, review
from postmottak.casefile.queries import corrected_form
from postmottak.dashboard.pages import staff
from postmottak.dashboard.rendering import render
from postmottak.dashboard.security import StaffUser, csrf_protect, flash, require_archivist

router = APIRouter()
actions = APIRouter(dependencies=[Depends(csrf_protect)])


@router.get("/intake/{intake_id}/exemption")
def exemption_page(request: Request, intake_id: int, user: StaffUser = Depends(staff)) -> Response:
    with request.app.state.db.session() as session:
        try:
            record = review.load_record(session, intake_id)
        except LookupError:
            raise HTTPException(404) from None
        form = corrected_form(record, review.corrections_for(session, intake_id))
        rows = exemptions.for_record(session, intake_id)
        numbers = {d.id: d.number for d in record.documents}
        suggestion = exemptions.suggest(form, record.case.form_profile if record.case else None)
        return render(
            request,
            "exemption.html",
            {
                "record": record,
                "rows": rows,
                "numbers": numbers,
                "suggestion": suggestion,
                "default_basis": suggestion.legal_basis if suggestion else "",
            },
        )


def _back(intake_id: int) -> RedirectResponse:
    return RedirectResponse(f"/intake/{intake_id}/exemption", status_code=303)


@actions.post("/intake/{intake_id}/exemption")
def exemption_set(
    request: Request,
    intake_id: int,
    basis: str = Form(""),
    document: str = Form(""),
    screen_names: str = Form(""),
    note: str = Form(""),
    user: StaffUser = Depends(require_archivist),
) -> Response:
    try:
        with request.app.state.db.session() as session:
            exemptions.mark_exempt(
                session,
                intake_id,
                basis,
                user.username,
                document_number=int(document) if document.strip().isdigit() else None,
                screen_names=bool(screen_names),
                note=note,
            )
    except LookupError:
        raise HTTPException(404) from None
    except exemptions.ExemptionError as exc:
        flash(request, str(exc), "error")
        return _back(intake_id)
    flash(request, "Unntaket er registrert.")
    return _back(intake_id)


@actions.post("/intake/{intake_id}/exemption/lift")
def exemption_lift(
    request: Request,
    intake_id: int,
    document: str = Form(""),
    user: StaffUser = Depends(require_archivist),
) -> Response:
    try:
        with request.app.state.db.session() as session:
            exemptions.lift(
                session, intake_id, user.username, document_number=int(document) if document.strip().isdigit() else None
            )
    except LookupError:
        raise HTTPException(404) from None
    except exemptions.ExemptionError as exc:
        flash(request, str(exc), "error")
        return _back(intake_id)
    flash(request, "Unntaket er opphevet.")
    return _back(intake_id)
