"""The staff web app: `create_app(settings, db)` wires settings, the case database and the document store."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import PlainTextResponse, Response

from postmottak.casefile.blobstore import open_store
from postmottak.casefile.db import Database
from postmottak.casefile.review import ReceiptCheck
from postmottak.config.settings import Settings
from postmottak.dashboard import (
    access,
    actions,
    confirm,
    consultation_setup,
    exemption,
    files,
    notifications,
    pages,
    records,
    scans,
)
from postmottak.dashboard import mailboxes as mailbox_pages
from postmottak.dashboard.metrics import metrics_registry
from postmottak.dashboard.rendering import make_environment, render
from postmottak.dashboard.security import CsrfFailed, Forbidden, LoginGate, LoginRequired, LoginThrottle, login_redirect
from postmottak.dashboard.web_settings import WebSettings, metrics_token, session_secret

log = logging.getLogger("dashboard")

SESSION_COOKIE = "postmottak_session"
# Nothing inline and nothing from elsewhere: styles and the one script are files of this app.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def create_app(
    settings: Settings, db: Database, web: WebSettings | None = None, receipt_check: ReceiptCheck | None = None
) -> FastAPI:
    """The app; `receipt_check` is the worker's receipt policy for mail registered by hand (given by `serve`;
    without it, what the worker recorded about the mail decides)."""
    web = web or settings.web
    app = FastAPI(title="Postmottak", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.web = web
    app.state.db = db
    app.state.receipt_check = receipt_check
    app.state.store = open_store(settings.storage.backend, settings.storage_path, db)
    app.state.templates = Jinja2Templates(env=make_environment())
    app.state.throttle = LoginThrottle(
        web.login_max_failures, web.login_max_failures_per_client, web.login_window_seconds
    )
    app.state.metrics = metrics_registry(db, settings.mailbox_sources())
    app.state.metrics_token = metrics_token(web)
    app.state.stale_after = timedelta(seconds=web.stale_after_seconds or settings.schedule.interval_seconds * 3 + 60)

    # Middleware added last runs first: the session must be decoded before the login gate looks at it.
    app.add_middleware(LoginGate)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings, web),
        session_cookie=SESSION_COOKIE,
        max_age=web.session_max_age_seconds,
        same_site="lax",
        https_only=web.secure_cookies,
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
        if web.secure_cookies:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    static = {
        "/static/style.css": (
            "text/css; charset=utf-8",
            app.state.templates.env.loader.get_source(app.state.templates.env, "style.css")[0],
        ),
        "/static/print.js": (
            "text/javascript; charset=utf-8",
            app.state.templates.env.loader.get_source(app.state.templates.env, "print.js")[0],
        ),
    }

    def _static(path: str) -> Callable[[], Response]:
        media_type, text = static[path]

        def serve() -> Response:
            return Response(text, media_type=media_type, headers={"Cache-Control": "max-age=3600"})

        return serve

    for path in static:
        app.add_api_route(path, _static(path), methods=["GET"], include_in_schema=False)

    app.include_router(access.router)
    app.include_router(consultation_setup.router)  # before pages: /cases/new is not a case's page
    app.include_router(pages.router)
    app.include_router(files.router)
    app.include_router(scans.router)
    app.include_router(actions.router)
    app.include_router(exemption.router)
    app.include_router(exemption.actions)
    app.include_router(confirm.router)
    app.include_router(notifications.router)
    app.include_router(mailbox_pages.router)
    app.include_router(records.router)
    app.include_router(records.actions)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if request.method in ("GET", "HEAD"):
            return login_redirect(request)
        return PlainTextResponse("Innlogging kreves.", status_code=401)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "error.html", {"title": "Ingen tilgang", "message": exc.message}, 403)

    @app.exception_handler(CsrfFailed)
    async def _csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        log.warning(
            "CSRF check failed for %s %s from %s",
            request.method,
            request.url.path,
            request.client.host if request.client else "unknown",
        )
        message = "Skjemaet var utløpt eller ugyldig. Last siden på nytt og prøv igjen."
        return render(request, "error.html", {"title": "Ugyldig skjema", "message": message}, 403)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's answer is English JSON; staff get a page that says which value was wrong.
        names = sorted({str(error["loc"][-1]) for error in exc.errors() if error.get("loc")})
        message = "Adressen eller skjemaet har en ugyldig verdi" + (f" ({', '.join(names)})." if names else ".")
        if request.url.path.startswith("/intake/") and "intake_id" in names:
            return render(request, "error.html", {"title": "Finnes ikke", "message": "Posten finnes ikke."}, 404)
        return render(request, "error.html", {"title": "Ugyldig forespørsel", "message": message}, 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Finnes ikke", 405: "Ikke tillatt", 400: "Ugyldig forespørsel"}
        title = titles.get(exc.status_code, "Feil")
        message = (
            exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else "Siden eller posten finnes ikke."
        )
        return render(request, "error.html", {"title": title, "message": message}, exc.status_code)

    return app
