"""The review actions: archivists only, CSRF-checked, each one a transaction with its audit event."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass
class IntakeAction:
    """One archivist's POST on one mail: where to go afterwards, and who acts."""

    request: Request
    intake_id: int
    next_url: str
    user: StaffUser

    def run(
        self,
        success: str | Callable[[Any], str],
        action: Callable[[Session], Any],
        **inputs: str,
    ) -> Response:
        """Check the inputs' lengths, run `action` in one transaction, flash the outcome and redirect (303)."""
        request = self.request
        target = safe_next(self.next_url, f"/intake/{self.intake_id}")
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


def intake_action(
    request: Request, intake_id: int, next: str = Form(""), user: StaffUser = Depends(require_archivist)
) -> IntakeAction:
    """The parts every action on a mail takes; the role is checked before the form's fields are validated."""
    return IntakeAction(request, intake_id, next, user)


@router.post("/intake/{intake_id}/register")
def register(
    case_number: str = Form(...),
    send_receipt: str = Form(""),
    note: str = Form(""),
    act: IntakeAction = Depends(intake_action),
) -> Response:
    return act.run(
        f"Post {act.intake_id} er registrert på sak {case_number}.",
        lambda s: review.register_to_case(
            s,
            act.intake_id,
            case_number,
            act.user.username,
            send_receipt=bool(send_receipt),
            note=note.strip() or None,
            receipt_check=act.request.app.state.receipt_check,
        ),
        case_number=case_number,
        note=note,
    )


@router.post("/intake/{intake_id}/ignore")
def ignore(reason: str = Form(""), act: IntakeAction = Depends(intake_action)) -> Response:
    return act.run(
        f"Post {act.intake_id} er markert som ignorert.",
        lambda s: review.mark_ignored(s, act.intake_id, reason, act.user.username),
        reason=reason,
    )


@router.post("/intake/{intake_id}/correct")
def correct(field: str = Form(...), value: str = Form(""), act: IntakeAction = Depends(intake_action)) -> Response:
    return act.run(
        "Korreksjonen er lagret.",
        lambda s: review.correct_field(s, act.intake_id, field, value, act.user.username),
        field=field,
        value=value,
    )


@router.post("/intake/{intake_id}/resend-receipt")
def resend_receipt(act: IntakeAction = Depends(intake_action)) -> Response:
    return act.run(
        "Kvitteringen sendes på nytt ved neste kjøring.",
        lambda s: review.resend_receipt(s, act.intake_id, act.user.username),
    )


@router.post("/intake/{intake_id}/confirm-form")
def confirm_form(note: str = Form(""), act: IntakeAction = Depends(intake_action)) -> Response:
    return act.run(
        "Skjemaet er merket som kontrollert.",
        lambda s: review.confirm_form(s, act.intake_id, act.user.username, note),
        note=note,
    )


@router.post("/intake/{intake_id}/undo")
def undo(act: IntakeAction = Depends(intake_action)) -> Response:
    return act.run(undone_message, lambda s: review.undo_last(s, act.intake_id, act.user.username))


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
