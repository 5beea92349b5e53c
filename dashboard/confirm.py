"""Confirmation pages: register, ignore and resend are asked for once more, with what will happen, before the POST.

The buttons on the pages lead here (GET, nothing changes); the page's own form makes the change. Without
JavaScript, so it works with the keyboard, screen readers and the strict Content-Security-Policy."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.responses import Response

from postmottak.casefile import review
from postmottak.dashboard.actions import too_long
from postmottak.dashboard.rendering import render
from postmottak.dashboard.security import StaffUser, require_archivist, safe_next

router = APIRouter()


def _record(session, intake_id: int):  # type: ignore[no-untyped-def]
    try:
        return review.load_record(session, intake_id)
    except LookupError:
        raise HTTPException(404) from None


@router.get("/intake/{intake_id}/register/confirm")
def confirm_register(
    request: Request,
    intake_id: int,
    case_number: str = "",
    send_receipt: str = "",
    note: str = "",
    next: str = "",
    user: StaffUser = Depends(require_archivist),
) -> Response:
    request.state.user = user
    with request.app.state.db.session() as session:
        record = _record(session, intake_id)
        plan = review.receipt_preview(session, record, request.app.state.receipt_check) if send_receipt else None
        return render(
            request,
            "confirm.html",
            {
                "record": record,
                "kind": "register",
                "case_number": case_number[:32],
                "send_receipt": bool(send_receipt),
                "note": note,
                "plan": plan,
                "problem": too_long(case_number=case_number, note=note),
                "back": safe_next(next, f"/intake/{intake_id}"),
            },
        )


@router.get("/intake/{intake_id}/ignore/confirm")
def confirm_ignore(
    request: Request,
    intake_id: int,
    reason: str = "",
    next: str = "",
    user: StaffUser = Depends(require_archivist),
) -> Response:
    request.state.user = user
    with request.app.state.db.session() as session:
        record = _record(session, intake_id)
        problem = too_long(reason=reason) or (None if reason.strip() else "Oppgi en begrunnelse.")
        return render(
            request,
            "confirm.html",
            {
                "record": record,
                "kind": "ignore",
                "reason": reason,
                "problem": problem,
                "back": safe_next(next, f"/intake/{intake_id}"),
            },
        )


@router.get("/intake/{intake_id}/resend-receipt/confirm")
def confirm_resend(
    request: Request,
    intake_id: int,
    next: str = "",
    user: StaffUser = Depends(require_archivist),
) -> Response:
    request.state.user = user
    with request.app.state.db.session() as session:
        record = _record(session, intake_id)
        return render(
            request,
            "confirm.html",
            {
                "record": record,
                "kind": "resend",
                "back": safe_next(next, f"/intake/{intake_id}"),
            },
        )


@router.get("/intake/{intake_id}/undo/confirm")
def confirm_undo(
    request: Request,
    intake_id: int,
    next: str = "",
    user: StaffUser = Depends(require_archivist),
) -> Response:
    """Undoing a registration: what happens to the journal entry and the receipt, before it is done."""
    request.state.user = user
    with request.app.state.db.session() as session:
        record = _record(session, intake_id)
        event = review.last_decision(session, intake_id)
        return render(
            request,
            "confirm.html",
            {
                "record": record,
                "kind": "undo",
                "event": event,
                "deadline": review.undo_deadline(event) if event is not None else None,
                "problem": review.undo_refusal(session, intake_id),
                "back": safe_next(next, f"/intake/{intake_id}"),
            },
        )
