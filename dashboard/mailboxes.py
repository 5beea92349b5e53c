"""The "Postkasser" page: each configured mailbox, who reads it, its last poll and problems, and its mail counts."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from postmottak.casefile import leases
from postmottak.casefile.fleet_status import mailbox_status
from postmottak.dashboard.pages import staff
from postmottak.dashboard.rendering import render
from postmottak.dashboard.security import StaffUser

router = APIRouter()


@router.get("/mailboxes")
def mailboxes_page(request: Request, user: StaffUser = Depends(staff)) -> Response:
    state = request.app.state
    settings = state.settings
    with state.db.session() as session:
        now = leases.db_now(session)
        rows = mailbox_status(session, settings.mailbox_sources())
    return render(
        request,
        "mailboxes.html",
        {
            "mailboxes": rows,
            "uses_leases": settings.uses_leases,
            "now": now,
            "live_after": now - timedelta(seconds=settings.leases.seconds),
            "stale_before": now - state.stale_after,
        },
    )
