"""Login, logout, and the two operator endpoints: /healthz (public, minimal) and /metrics (login or token)."""

from __future__ import annotations

import hmac
import logging
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from postmottak.casefile import review
from postmottak.casefile.summary import worker_health
from postmottak.casefile.users import authenticate
from postmottak.dashboard.metrics import render as render_metrics
from postmottak.dashboard.rendering import render
from postmottak.dashboard.security import (
    LoginRequired,
    StaffUser,
    client_address,
    csrf_protect,
    current_user,
    safe_next,
    start_session,
)

log = logging.getLogger("postmottak.dashboard.auth")
router = APIRouter()


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    if request.session.get("uid"):
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next)})


@router.post("/login", dependencies=[Depends(csrf_protect)])
def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
) -> Response:
    username = username.strip()
    client = client_address(request)
    throttle = request.app.state.throttle
    context = {"next": safe_next(next), "username": username}
    wait = throttle.retry_after(username, client)
    if wait:
        log.warning("login refused (too many failures) for user %r from %s", username, client)
        minutes = max(1, round(wait / 60))
        context["error"] = f"For mange mislykkede forsøk. Prøv igjen om {minutes} min."
        response = render(request, "login.html", context, 429)
        response.headers["Retry-After"] = str(wait)
        return response
    db = request.app.state.db
    with db.session() as session:
        user = authenticate(session, username, password) if username and password else None
        staff = StaffUser(user.id, user.username, user.role) if user else None
        review.record_login(session, actor=username or "(tomt)", ok=staff is not None, client=client)
    if staff is None:
        throttle.failed(username, client)
        log.warning("failed login for user %r from %s", username, client)
        context["error"] = "Feil brukernavn eller passord."
        return render(request, "login.html", context, 401)
    throttle.succeeded(username)
    log.info("user %s logged in from %s", staff.username, client)
    start_session(request, staff)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", dependencies=[Depends(csrf_protect)])
def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/healthz")
def healthz(request: Request) -> Response:
    """ok or stale, and the last successful poll: nothing else leaves without a login."""
    with request.app.state.db.session() as session:
        health = worker_health(session, stale_after=request.app.state.stale_after, now=datetime.now(timezone.utc))
    body = {
        "status": "stale" if health.stale else "ok",
        "last_poll_at": health.last_success_at.isoformat(timespec="seconds") if health.last_success_at else None,
    }
    return JSONResponse(body, status_code=503 if health.stale else 200)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    token = request.app.state.metrics_token
    header = request.headers.get("authorization", "")
    bearer_ok = (
        bool(token)
        and header.startswith("Bearer ")
        and hmac.compare_digest(header[7:].strip().encode(), str(token).encode())
    )
    if not bearer_ok:
        try:
            current_user(request)
        except LoginRequired:
            return PlainTextResponse(
                "Innlogging eller token kreves.",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    return Response(render_metrics(request.app.state.metrics), media_type="text/plain; version=0.0.4; charset=utf-8")
