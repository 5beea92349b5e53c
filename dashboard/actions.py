"""The review actions: archivists only, CSRF-checked, each one a transaction with its audit event."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from postmottak.casefile import review
from postmottak.dashboard.security import StaffUser, csrf_protect, flash, require_archivist, safe_next

log = logging.getLogger("postmottak.dashboard.actions")
router = APIRouter(dependencies=[Depends(csrf_protect)])


# Longest accepted input per form field: a correction is an answer text, the rest are short.
LIMITS = {"value": 20_000, "reason": 1_000, "note": 1_000, "case_number": 32, "field": 64}
LIMIT_NAMES = {
    "value": "Verdien",
    "reason": "Begrunnelsen",
    "note": "Merknaden",
    "case_number": "Saksnummeret",
    "field": "Feltnavnet",
}


def too_long(**values: str) -> str | None:
    """The Norwegian message for the first value over its limit, or None."""
    for name, value in values.items():
        limit = LIMITS[name]
        if len(value) > limit:
            return f"{LIMIT_NAMES[name]} er for lang ({len(value)} tegn); største tillatte lengde er {limit} tegn."
    return None


def _act(
    request: Request,
    intake_id: int,
    next_url: str,
    success: str | Callable[[Any], str],
    action: Callable[[Session], Any],
    **inputs: str,
) -> Response:
    target = safe_next(next_url, f"/intake/{intake_id}")
    problem = too_long(**inputs)
    if problem:
        flash(request, problem, "error")
        return RedirectResponse(target, status_code=303)
    try:
        with request.app.state.db.session() as session:
            result = action(session)
            if callable(success):
                success = success(result)
    except LookupError:
        raise HTTPException(404) from None
    except review.ReviewError as exc:
        flash(request, str(exc), "error")
        return RedirectResponse(target, status_code=303)
    flash(request, success if isinstance(success, str) else "")
    return RedirectResponse(target, status_code=303)


@router.post("/intake/{intake_id}/register")
def register(
    request: Request,
    intake_id: int,
    case_number: str = Form(...),
    send_receipt: str = Form(""),
    note: str = Form(""),
    next: str = Form(""),
    user: StaffUser = Depends(require_archivist),
) -> Response:
    return _act(
        request,
        intake_id,
        next,
        f"Post {intake_id} er registrert på sak {case_number}.",
        lambda s: review.register_to_case(
            s,
            intake_id,
            case_number,
            user.username,
            send_receipt=bool(send_receipt),
            note=note.strip() or None,
            receipt_check=request.app.state.receipt_check,
        ),
        case_number=case_number,
        note=note,
    )


@router.post("/intake/{intake_id}/ignore")
def ignore(
    request: Request,
    intake_id: int,
    reason: str = Form(""),
    next: str = Form(""),
    user: StaffUser = Depends(require_archivist),
) -> Response:
    return _act(
        request,
        intake_id,
        next,
        f"Post {intake_id} er markert som ignorert.",
        lambda s: review.mark_ignored(s, intake_id, reason, user.username),
        reason=reason,
    )


@router.post("/intake/{intake_id}/correct")
def correct(
    request: Request,
    intake_id: int,
    field: str = Form(...),
    value: str = Form(""),
    next: str = Form(""),
    user: StaffUser = Depends(require_archivist),
) -> Response:
    return _act(
        request,
        intake_id,
        next,
        "Korreksjonen er lagret.",
        lambda s: review.correct_field(s, intake_id, field, value, user.username),
        field=field,
        value=value,
    )


@router.post("/intake/{intake_id}/resend-receipt")
def resend_receipt(
    request: Request, intake_id: int, next: str = Form(""), user: StaffUser = Depends(require_archivist)
) -> Response:
    return _act(
        request,
        intake_id,
        next,
        "Kvitteringen sendes på nytt ved neste kjøring.",
        lambda s: review.resend_receipt(s, intake_id, user.username),
    )


@router.post("/intake/{intake_id}/confirm-form")
def confirm_form(
    request: Request,
    intake_id: int,
    note: str = Form(""),
    next: str = Form(""),
    user: StaffUser = Depends(require_archivist),
) -> Response:
    return _act(
        request,
        intake_id,
        next,
        "Skjemaet er merket som kontrollert.",
        lambda s: review.confirm_form(s, intake_id, user.username, note),
        note=note,
    )


@router.post("/intake/{intake_id}/undo")
def undo(
    request: Request, intake_id: int, next: str = Form(""), user: StaffUser = Depends(require_archivist)
) -> Response:
    return _act(
        request,
        intake_id,
        next,
        undone_message,
        lambda s: review.undo_last(s, intake_id, user.username),
    )


def undone_message(event: Any) -> str:
    """What an undo did, for staff; for a registration, the cancelled journal number and the receipt's fate."""
    after = event.after if isinstance(event.after, dict) else {}
    if "journal_number" not in after:
        return "Den siste beslutningen er angret."
    message = (
        f"Registreringen er angret: posten er tilbake i vurderingskøen, og journalpost {after['journal_number']} "
        "utgår (nummeret brukes ikke igjen)."
    )
    outcome = after.get("receipt_outcome")
    if outcome == "cancelled":
        message += " Kvitteringen er stoppet før den ble sendt."
    elif outcome == "cancelled_after_attempt":
        message += " Kvitteringen er stoppet, men et forsøk på å sende den var allerede gjort: den kan ha kommet fram."
    elif outcome == "sent":
        message += (
            " Merk: kvitteringen med journalnummeret var allerede sendt til avsenderen og kan ikke trekkes tilbake;"
            " gi avsenderen beskjed om at journalnummeret utgår."
        )
    return message
