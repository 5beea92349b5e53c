"""OAuth2 access tokens for IMAP and SMTP (XOAUTH2): client credentials or refresh token, with plain httpx.

One TokenClient per configuration and process (token_client()), shared by the intake cycle, the IDLE watcher and
the receipt sender, so they reuse one cached token. A token is renewed before it expires (expiry comes from the
token response's `expires_in`; the token itself is never parsed). A token the mail server refuses is renewed
once and tried again; a second refusal is reported as TokenRejected. Secrets (client secret, refresh and access
tokens) never appear in logs or error messages.
"""

from __future__ import annotations

import hashlib
import logging
import os
import smtplib
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from postmottak.config.settings import OAuth2Settings, Settings

log = logging.getLogger(__name__)

DEFAULT_EXPIRES_IN = 3600  # when a provider leaves out expires_in (RFC 6749 only recommends it)


class OAuth2Error(Exception):
    """No usable token: the token endpoint refused or could not be reached. str() is safe to log."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str | None = None,
        description: str | None = None,
        codes: tuple[str, ...] = (),
        kind: str = "refused",  # refused | unreachable | tls | config | rejected
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.description, self.codes, self.kind = status, error, description, codes, kind


class TokenRejected(OAuth2Error):
    """The mail server refused a freshly issued token as well."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="rejected")


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_at: float  # epoch seconds
    renew_at: float  # epoch seconds: renewed from here on

    @property
    def expires(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at, timezone.utc)


class TokenClient:
    """Fetches, caches and renews access tokens for one [oauth2] configuration. Thread-safe."""

    def __init__(
        self,
        config: OAuth2Settings,
        refresh_token_path: Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.refresh_token_path = refresh_token_path
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: AccessToken | None = None
        self._refresh_token: str | None = None  # loaded lazily: the file may be written by a previous run
        self.fetches = 0  # how many tokens were issued to this client (for tests and `check`)

    def __repr__(self) -> str:
        return f"TokenClient(token_url={self.config.token_url!r}, client_id={self.config.client_id!r})"

    def token(self) -> AccessToken:
        """A valid access token: the cached one until its renewal time, else a fresh one."""
        with self._lock:
            cached = self._cached
            if cached is not None and self._clock() < cached.renew_at:
                return cached
            return self._fetch()

    def renew(self, rejected: AccessToken | None = None) -> AccessToken:
        """A fresh token after `rejected` was refused (unless another thread has renewed it meanwhile)."""
        with self._lock:
            cached = self._cached
            renewed_meanwhile = rejected is not None and cached is not None and cached is not rejected
            if renewed_meanwhile and cached is not None and self._clock() < cached.renew_at:
                return cached
            self._cached = None
            return self._fetch()

    # ---------------------------------------------------------------------------------- token endpoint

    def _fetch(self) -> AccessToken:
        config = self.config
        form: dict[str, str] = {"client_id": config.client_id}
        secret = config.client_secret.get_secret_value()
        if secret:
            form["client_secret"] = secret
        if config.scope:
            form["scope"] = config.scope
        if config.flow == "refresh_token":
            form["grant_type"] = "refresh_token"
            form["refresh_token"] = self._current_refresh_token()
        else:
            form["grant_type"] = "client_credentials"
        started = self._clock()
        try:
            response = httpx.post(
                config.token_url,
                data=form,
                headers={"Accept": "application/json"},
                timeout=config.timeout_seconds,
                verify=ssl.create_default_context() if config.verify_tls else False,
            )
        except httpx.HTTPError as exc:
            raise _transport_error(config.token_url, exc) from None
        payload = _json(response)
        if response.status_code != 200 or "access_token" not in payload:
            raise _endpoint_error(config.token_url, response.status_code, payload)
        value = str(payload["access_token"])
        try:
            lifetime = float(payload.get("expires_in", DEFAULT_EXPIRES_IN))
        except (TypeError, ValueError):
            lifetime = DEFAULT_EXPIRES_IN
        # Renew renew_before_seconds ahead, but never later than half-way for short-lived tokens.
        margin = min(config.renew_before_seconds, lifetime / 2)
        token = AccessToken(value=value, expires_at=started + lifetime, renew_at=started + lifetime - margin)
        rotated = payload.get("refresh_token")
        if config.flow == "refresh_token" and isinstance(rotated, str) and rotated and rotated != self._refresh_token:
            self._store_refresh_token(rotated)
        self._cached = token
        self.fetches += 1
        log.info("OAuth2: new access token from %s, valid for %d s", config.token_url, int(lifetime))
        return token

    def _current_refresh_token(self) -> str:
        if self._refresh_token is None:
            path = self.refresh_token_path
            if path is not None and path.is_file():
                try:
                    self._refresh_token = path.read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise OAuth2Error(
                        f"cannot read [oauth2] refresh_token_file {path}: {exc.strerror}", kind="config"
                    ) from None
            else:
                self._refresh_token = self.config.refresh_token.get_secret_value()
        if not self._refresh_token:
            raise OAuth2Error("no refresh token: set [oauth2] refresh_token or refresh_token_file", kind="config")
        return self._refresh_token

    def _store_refresh_token(self, value: str) -> None:
        """Keep the rotated refresh token: the old one may stop working as soon as the new one is issued."""
        self._refresh_token = value
        path = self.refresh_token_path
        if path is None:
            log.warning(
                "OAuth2: the provider rotated the refresh token; it is kept in memory only "
                "(set [oauth2] refresh_token_file so a restart can use it)"
            )
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written to a private temp file next to it, then renamed over it: never readable by others, never torn.
        descriptor, temp_name = tempfile.mkstemp(prefix=".refresh-token-", dir=path.parent)
        try:
            os.fchmod(descriptor, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(value + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, path)
        except OSError as exc:
            Path(temp_name).unlink(missing_ok=True)
            log.error("OAuth2: cannot store the rotated refresh token in %s: %s", path, exc.strerror)
            return
        log.info("OAuth2: stored the rotated refresh token in %s", path)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _transport_error(url: str, exc: httpx.HTTPError) -> OAuth2Error:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return OAuth2Error(
                f"TLS certificate of the token endpoint {url} is not trusted: {cause.verify_message}", kind="tls"
            )
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.TimeoutException):
        return OAuth2Error(f"the token endpoint {url} did not answer in time", kind="unreachable")
    return OAuth2Error(f"cannot reach the token endpoint {url}: {exc}", kind="unreachable")


def _endpoint_error(url: str, status: int, payload: dict[str, Any]) -> OAuth2Error:
    error = str(payload.get("error") or "") or None
    description = " ".join(str(payload.get("error_description") or "").split()) or None
    codes: list[str] = []
    for code in payload.get("error_codes") or ():  # Microsoft Entra ID: numeric AADSTS codes
        codes.append(f"AADSTS{code}")
    if description:
        codes.extend(word.rstrip(":.,") for word in description.split() if word.startswith("AADSTS"))
    unique = tuple(dict.fromkeys(codes))
    detail = error or ("no access_token in the answer" if status == 200 else "no error code")
    if description:
        detail += f": {description.splitlines()[0][:300]}"
    return OAuth2Error(
        f"the token endpoint {url} refused ({status}): {detail}",
        status=status,
        error=error,
        description=description,
        codes=unique,
    )


# Plain-words explanations by Microsoft Entra ID code, then by OAuth2 error (RFC 6749 section 5.2).
_AADSTS_HINTS = {
    "AADSTS90002": "the tenant in [oauth2] token_url does not exist: check the tenant id or domain in the URL",
    "AADSTS900023": "the tenant in [oauth2] token_url is not valid: check the tenant id or domain in the URL",
    "AADSTS90013": "the tenant in [oauth2] token_url is not valid: check the tenant id or domain in the URL",
    "AADSTS700016": (
        "no app with this client_id in this tenant: the client_id is wrong, or token_url names the wrong tenant"
    ),
    "AADSTS7000215": "the client secret is wrong: check [oauth2] client_secret (the secret's value, not its id)",
    "AADSTS7000222": "the client secret has expired: create a new one in the app registration",
    "AADSTS65001": (
        "consent is missing: an administrator must grant admin consent for the app's API permissions "
        "(Office 365 Exchange Online IMAP.AccessAsApp / SMTP.SendAsApp)"
    ),
    "AADSTS70011": "the scope is not valid: for Exchange Online use https://outlook.office365.com/.default",
    "AADSTS1002012": "the scope is not valid: for Exchange Online use https://outlook.office365.com/.default",
    "AADSTS70008": "the refresh token has expired or was revoked: sign in again to get a new refresh token",
    "AADSTS700082": "the refresh token has expired: sign in again to get a new refresh token",
    "AADSTS50126": "the user name or password is wrong",
    "AADSTS7000218": "the request has no client secret: set [oauth2] client_secret or client_secret_file",
}

_ERROR_HINTS = {
    "invalid_client": "the client_id or client secret is wrong (or the secret has expired)",
    "unauthorized_client": (
        "this client may not use this flow, or it is not known in this tenant: check client_id, the tenant in "
        "token_url and [oauth2] flow"
    ),
    "invalid_grant": "the refresh token is no longer valid (expired or revoked): sign in again for a new one",
    "invalid_scope": "the scope is not valid for this provider: check [oauth2] scope",
    "unsupported_grant_type": "the provider does not support this flow: check [oauth2] flow",
    "invalid_request": "the provider refused the request as malformed: check token_url, client_id and scope",
    "consent_required": "consent is missing: an administrator must grant consent for the app's permissions",
}


def explain(exc: OAuth2Error) -> str:
    """What went wrong, in plain words, for the log and `postmottak check`."""
    for code in exc.codes:
        if code in _AADSTS_HINTS:
            return _AADSTS_HINTS[code]
    if exc.error and exc.error in _ERROR_HINTS:
        return _ERROR_HINTS[exc.error]
    if exc.kind == "tls":
        return "the token endpoint's TLS certificate is not trusted (wrong host, or a proxy intercepting TLS)"
    if exc.kind == "unreachable":
        return "the token endpoint cannot be reached: check [oauth2] token_url and the network/firewall"
    if exc.kind == "rejected":
        return (
            "the provider issued a token but the mail server refused it: check the username (the mailbox "
            "address), the app's mailbox permission (Exchange: service principal with FullAccess) and the scope"
        )
    if exc.status == 404:
        return "the token endpoint was not found (HTTP 404): check the path in [oauth2] token_url"
    if exc.status in (401, 403):
        return "the token endpoint refused the client: check client_id and client secret"
    return "the token endpoint refused to issue a token"


# ------------------------------------------------------------------------------------------ sharing

_clients: dict[tuple[str, ...], TokenClient] = {}
_clients_lock = threading.Lock()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def token_client(settings: Settings) -> TokenClient:
    """The process-wide TokenClient for these settings (one cache for IMAP, IDLE and SMTP)."""
    config = settings.oauth2
    path = settings.resolve(config.refresh_token_file) if config.refresh_token_file else None
    key = (
        config.token_url,
        config.client_id,
        config.scope,
        config.flow,
        str(path),
        _digest(config.client_secret.get_secret_value()),
        _digest(config.refresh_token.get_secret_value()),
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = TokenClient(config, path)
        return client


# ------------------------------------------------------------------------------------------ XOAUTH2 logins


def xoauth2_string(user: str, token: str) -> str:
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def imap_login(client: IMAPClient, user: str, tokens: TokenClient) -> AccessToken:
    """AUTHENTICATE XOAUTH2; a refused token is renewed once. Raises TokenRejected on a second refusal."""
    token = tokens.token()
    try:
        client.oauth2_login(user, token.value)
        return token
    except LoginError:
        log.warning("IMAP refused the access token for %s; renewing it and trying once more", user)
    token = tokens.renew(rejected=token)
    try:
        client.oauth2_login(user, token.value)
    except LoginError as exc:
        raise TokenRejected(f"the IMAP server refused a fresh OAuth2 token for {user!r}: {_server_text(exc)}") from None
    return token


def smtp_login(connection: smtplib.SMTP, user: str, tokens: TokenClient) -> AccessToken:
    """AUTH XOAUTH2; a refused token is renewed once. A second refusal raises SMTPAuthenticationError."""
    token = tokens.token()
    try:
        _smtp_xoauth2(connection, user, token)
        return token
    except smtplib.SMTPAuthenticationError:
        log.warning("SMTP refused the access token for %s; renewing it and trying once more", user)
    token = tokens.renew(rejected=token)
    _smtp_xoauth2(connection, user, token)
    return token


def _smtp_xoauth2(connection: smtplib.SMTP, user: str, token: AccessToken) -> None:
    initial = xoauth2_string(user, token.value)

    def answer(challenge: bytes | None = None) -> str:
        # A 334 challenge after the initial response carries the server's error (JSON); an empty answer ends it.
        return initial if challenge is None else ""

    connection.auth("XOAUTH2", answer, initial_response_ok=True)


def _server_text(exc: BaseException) -> str:
    text = str(exc)
    return text[2:-1] if text.startswith(("b'", 'b"')) else text
