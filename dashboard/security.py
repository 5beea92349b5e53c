"""Login sessions, roles, CSRF tokens and the failed-login throttle.

Two layers keep anonymous users out: a gate in front of every route except the public ones (login, healthz,
metrics with its own check), and the `current_user` dependency each page declares, which also re-reads the user
so a disabled account or a changed role takes effect at once.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from threading import Lock
from urllib.parse import quote

from fastapi import Request
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from postmottak.casefile import models as m
from postmottak.casefile.users import ARCHIVIST

log = logging.getLogger("postmottak.dashboard.auth")

PUBLIC_PATHS = frozenset({"/login", "/healthz", "/static/style.css", "/static/print.js"})
# Routes that do their own access check (a session or a bearer token).
SELF_CHECKED_PATHS = frozenset({"/metrics"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, message: str = "Du har ikke tilgang til dette.") -> None:
        super().__init__(message)
        self.message = message


class CsrfFailed(Exception):
    pass


@dataclass(frozen=True)
class StaffUser:
    id: int
    username: str
    role: str

    @property
    def can_act(self) -> bool:
        return self.role == ARCHIVIST


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


class LoginGate(BaseHTTPMiddleware):
    """Nothing but the public paths without a session: pages get a redirect to login, other methods a 401."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        if path in PUBLIC_PATHS or path in SELF_CHECKED_PATHS or request.session.get("uid"):
            return await call_next(request)
        if request.method in ("GET", "HEAD"):
            return login_redirect(request)
        return PlainTextResponse("Innlogging kreves.", status_code=401)


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def csrf_protect(request: Request) -> None:
    """Every POST carries the session's token, in the form or a header; compared in constant time."""
    expected = request.session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(str(expected), sent):
        raise CsrfFailed()


def current_user(request: Request) -> StaffUser:
    uid = request.session.get("uid")
    if not uid:
        raise LoginRequired()
    db = request.app.state.db
    with db.session() as session:
        user = session.get(m.User, uid)
        if user is None or user.disabled or user.username != request.session.get("user"):
            request.session.clear()
            raise LoginRequired()
        return StaffUser(user.id, user.username, user.role)


def require_archivist(request: Request) -> StaffUser:
    user = current_user(request)
    if not user.can_act:
        raise Forbidden("Bare arkivarer kan gjøre endringer. Du er logget inn som leser.")
    return user


def start_session(request: Request, user: StaffUser) -> None:
    # A new session on login (no fixation): everything from before is dropped, a fresh CSRF token is made.
    request.session.clear()
    request.session.update({"uid": user.id, "user": user.username, "role": user.role, "login_at": int(time.time())})
    csrf_token(request)


def flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session.setdefault("flash", []).append([kind, message])


def pop_flashes(request: Request) -> list[list[str]]:
    return request.session.pop("flash", []) if "flash" in request.session else []


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class LoginThrottle:
    """Failed logins per username and per client address within a sliding window; in memory, per process."""

    def __init__(self, per_user: int, per_client: int, window_s: float) -> None:
        self.per_user, self.per_client, self.window_s = per_user, per_client, window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        stamps = self._failures.setdefault(key, deque())
        while stamps and stamps[0] <= now - self.window_s:
            stamps.popleft()
        return stamps

    def retry_after(self, username: str, client: str) -> int:
        """Seconds until a login may be tried again; 0 = allowed now."""
        now = time.monotonic()
        with self._lock:
            waits = []
            for key, limit in ((f"user:{username.casefold()}", self.per_user), (f"client:{client}", self.per_client)):
                stamps = self._recent(key, now)
                if len(stamps) >= limit:
                    waits.append(stamps[0] + self.window_s - now)
            return int(max(waits) + 1) if waits else 0

    def failed(self, username: str, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"user:{username.casefold()}", f"client:{client}"):
                self._recent(key, now).append(now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{username.casefold()}", None)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only local paths: a login or action never redirects to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
