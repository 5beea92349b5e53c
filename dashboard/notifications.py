"""Each staff member's own choice: e-mail digests and alerts, or not (the "Varsler" page)."""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from postmottak.casefile import notifications as notes
from postmottak.dashboard.rendering import render
from postmottak.dashboard.security import StaffUser, csrf_protect, current_user, flash

router = APIRouter()


def _user(request: Request) -> StaffUser:
    user = current_user(request)
    request.state.user = user
    return user


@router.get("/notifications")
def notification_settings(request: Request, user: StaffUser = Depends(_user)) -> Response:
    config = request.app.state.settings.notifications
    with request.app.state.db.session() as session:
        out = user.username in notes.opted_out(session)
    return render(
        request,
        "notifications.html",
        {
            "address": config.recipients.get(user.username),
            "opted_out": out,
            "config": config,
        },
    )


@router.post("/notifications", dependencies=[Depends(csrf_protect)])
def change_notifications(request: Request, receive: str = Form(""), user: StaffUser = Depends(_user)) -> Response:
    with request.app.state.db.session() as session:
        notes.set_opt_out(session, user.username, not receive, datetime.now(timezone.utc))
    flash(request, "Du får e-postvarsler." if receive else "Du får ikke lenger e-postvarsler.")
    return RedirectResponse("/notifications", status_code=303)
