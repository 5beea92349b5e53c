"""A loopback OAuth2 token endpoint issuing HS256 JWTs that Dovecot's `oauth2` passdb validates locally.

TokenEndpoint serves `POST /<tenant>/oauth2/v2.0/token` (Microsoft Entra ID's shape) for the client_credentials
and refresh_token grants, answering errors the way Entra ID does (error, error_description with the AADSTS code,
error_codes). Tokens carry `kid: default` and `sub` = the mailbox user; SMTP and Dovecot share the key.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt

from postmottak.config.settings import Settings
from tests import mailfactory as mf
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpSink

KEY = secrets.token_bytes(32)
OTHER_KEY = b"not-the-key-dovecot-knows-about!"
TENANT = "ehelse-test-tenant"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "hemmelig-klienthemmelighet~0123456789"
SCOPE = "https://outlook.office365.com/.default"
MAILBOX = "postmottak"  # Dovecot test user = the XOAUTH2 user and the tokens' sub


def issue_jwt(subject: str, lifetime: float, key: bytes = KEY) -> str:
    now = int(time.time())
    claims = {"sub": subject, "iat": now, "nbf": now, "exp": now + max(1, int(lifetime)), "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": "default"})


def verify_jwt(user: str, token: str) -> bool:
    """The SMTP sink's check: signed with KEY, not expired, for this user."""
    try:
        claims = jwt.decode(token, KEY, algorithms=["HS256"])
    except jwt.PyJWTError:
        return False
    return claims.get("sub") == user


@dataclass
class TokenEndpoint:
    subject: str = MAILBOX
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    lifetime: float = 3600
    consent_granted: bool = True
    rotate_refresh_tokens: bool = False
    refresh_tokens: set[str] = field(default_factory=set)
    bad_tokens: int = 0  # the next N tokens are signed with a key the servers do not know
    issued: int = 0
    grants: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, tenant: str = TENANT) -> str:
        return f"http://127.0.0.1:{self.port}/{tenant}/oauth2/v2.0/token"

    def start(self) -> "TokenEndpoint":
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8")).items()}
                status, body = endpoint.answer(self.path, form)
                data = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "TokenEndpoint":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        tenant = path.strip("/").split("/", 1)[0]
        if tenant != TENANT:
            return _error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("client_id") != self.client_id:
            return _error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form.get('client_id')}' was not found in the directory '{tenant}'.",
            )
        if form.get("client_secret") != self.client_secret:
            return _error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        grant = form.get("grant_type", "")
        self.grants.append(grant)
        body: dict[str, Any] = {}
        if grant == "client_credentials":
            if not self.consent_granted:
                return _error(
                    400,
                    "invalid_grant",
                    65001,
                    "The user or administrator has not consented to use the application.",
                )
        elif grant == "refresh_token":
            presented = form.get("refresh_token", "")
            if presented not in self.refresh_tokens:
                return _error(400, "invalid_grant", 70008, "The provided refresh token has expired or was revoked.")
            if self.rotate_refresh_tokens:
                self.refresh_tokens.discard(presented)
                rotated = f"rt-{uuid.uuid4().hex}"
                self.refresh_tokens.add(rotated)
                body["refresh_token"] = rotated
        else:
            return _error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        key = KEY
        if self.bad_tokens > 0:
            self.bad_tokens -= 1
            key = OTHER_KEY
        self.issued += 1
        body.update(
            access_token=issue_jwt(self.subject, self.lifetime, key),
            token_type="Bearer",
            expires_in=int(self.lifetime),
        )
        return 200, body


def _error(status: int, error: str, code: int, text: str) -> tuple[int, dict[str, Any]]:
    description = f"AADSTS{code}: {text} Trace ID: {uuid.uuid4()} Timestamp: 2026-01-01 00:00:00Z"
    return status, {"error": error, "error_description": description, "error_codes": [code]}


def settings_for(
    tmp_path: Path,
    *,
    imap: DovecotServer | None,
    smtp: SmtpSink | None,
    endpoint: TokenEndpoint | None,
    database_url: str | None = None,
    imap_extra: dict[str, Any] | None = None,
    smtp_extra: dict[str, Any] | None = None,
    oauth2_extra: dict[str, Any] | None = None,
) -> Settings:
    data: dict[str, Any] = {
        "database": {"url": database_url or f"sqlite:///{tmp_path / 'postmottak.db'}"},
        "storage": {"path": str(tmp_path / "documents")},
        "cases": [
            {
                "number": mf.CASE_NUMBER,
                "title": mf.CASE_TITLE,
                "deadline": "2022-10-01",
                "keywords": ["e-helsestrategi"],
            }
        ],
        "receipts": {"retry_base_seconds": 0},
    }
    if imap is not None:
        data["imap"] = {
            "host": imap.host,
            "port": imap.port,
            "security": "none",
            "username": imap.username,
            "auth": "oauth2",
            **(imap_extra or {}),
        }
    if smtp is not None:
        data["smtp"] = {
            "host": smtp.host,
            "port": smtp.port,
            "security": "none",
            "username": MAILBOX,
            "auth": "oauth2",
            "sender": mf.POSTMOTTAK,
            **(smtp_extra or {}),
        }
    if endpoint is not None:
        data["oauth2"] = {
            "token_url": endpoint.url(),
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scope": SCOPE,
            **(oauth2_extra or {}),
        }
    return Settings(base_dir=tmp_path, **data)


def toml_config(settings: Settings, path: Path) -> Path:
    """Write settings as a TOML config for the CLI (secrets excluded: pass them in the environment)."""
    lines: list[str] = []
    for section in ("database", "storage", "imap", "smtp", "oauth2", "schedule", "intake", "receipts"):
        values = getattr(settings, section).model_dump(exclude_defaults=True)
        values = {k: v for k, v in values.items() if k not in ("password", "client_secret", "refresh_token")}
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items() if value is not None)
    for case in settings.cases:
        lines.append("[[cases]]")
        lines.extend(
            f"{key} = {json.dumps(value, default=str)}" for key, value in case.model_dump(exclude_defaults=True).items()
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
