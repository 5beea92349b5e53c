"""Confirmation pages: register, ignore and resend are asked for once more, with what will happen, before the POST.

The buttons on the pages lead here (GET, nothing changes); the page's own form makes the change. Without
JavaScript, so it works with the keyboard, screen readers and the strict Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy.orm import Session
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


def _confirm_page(
    request: Request,
    user: StaffUser,
    intake_id: int,
    kind: str,
    next: str,
    details: Callable[[Session, Any], dict[str, Any]] = lambda session, record: {},
) -> Response:
    """The confirmation page of `kind` for one mail; `details(session, record)` adds what that action will do."""
    request.state.user = user
    with request.app.state.db.session() as session:
        record = _record(session, intake_id)
        context = {"record": record, "kind": kind, "back": safe_next(next, f"/intake/{intake_id}")}
        return render(request, "confirm.html", context | details(session, record))


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
    def details(session: Session, record: Any) -> dict[str, Any]:
        check = request.app.state.receipt_check
        return {
            "case_number": case_number[:32],
            "send_receipt": bool(send_receipt),
            "note": note,
            "plan": review.receipt_preview(session, record, check) if send_receipt else None,
            "problem": too_long(case_number=case_number, note=note),
        }

    return _confirm_page(request, user, intake_id, "register", next, details)


@router.get("/intake/{intake_id}/ignore/confirm")
def confirm_ignore(
    request: Request,
    intake_id: int,
    reason: str = "",
    next: str = "",
    user: StaffUser = Depends(require_archivist),
) -> Response:
    problem = too_long(reason=reason) or (None if reason.strip() else "Oppgi en begrunnelse.")
    return _confirm_page(
        request, user, intake_id, "ignore", next, lambda session, record: {"reason": reason, "problem": problem}
    )


@router.get("/intake/{intake_id}/resend-receipt/confirm")
def confirm_resend(
    request: Request,
    intake_id: int,
    next: str = "",
    user: StaffUser = Depends(require_archivist),
) -> Response:
    return _confirm_page(request, user, intake_id, "resend", next)


@router.get("/intake/{intake_id}/undo/confirm")
def confirm_undo(
    request: Request,
    intake_id: int,
    next: str = "",
    user: StaffUser = Depends(require_archivist),
) -> Response:
    """Undoing a registration: what happens to the journal entry and the receipt, before it is done."""

    def details(session: Session, record: Any) -> dict[str, Any]:
        event = review.last_decision(session, intake_id)
        return {
            "event": event,
            "deadline": review.undo_deadline(event) if event is not None else None,
            "problem": review.undo_refusal(session, intake_id),
        }

    return _confirm_page(request, user, intake_id, "undo", next, details)
