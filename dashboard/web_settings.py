"""Settings of the staff web app.

Read from a `[web]` section of the main config when the schema has one, else from the environment
(`POSTMOTTAK_WEB__SECURE_COOKIES=false`, ...). The session secret comes from `secret_key`, `secret_key_file`,
or is generated once and kept (mode 0600) in the data folder beside the document store.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from postmottak.config.settings import Settings

SECRET_FILE_NAME = "dashboard-session-secret"


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POSTMOTTAK_WEB__", extra="ignore")

    secret_key: SecretStr | None = None
    secret_key_file: str | None = None
    # Cookies only over HTTPS; turn off for plain-http development on localhost.
    secure_cookies: bool = True
    session_max_age_seconds: int = Field(8 * 3600, ge=60)
    # /metrics: a logged-in user, or this bearer token (for Prometheus). Unset = login only.
    metrics_token: SecretStr | None = None
    metrics_token_file: str | None = None
    # /healthz says "stale" when no poll succeeded for this long (default: 3 intervals + 60 s).
    stale_after_seconds: int | None = Field(None, ge=1)
    login_max_failures: int = Field(5, ge=1)
    login_max_failures_per_client: int = Field(20, ge=1)
    login_window_seconds: int = Field(900, ge=1)
    page_size: int = Field(50, ge=1, le=500)


def web_settings_for(settings: Settings) -> WebSettings:
    section: Any = getattr(settings, "web", None)
    if isinstance(section, WebSettings):
        return section
    if isinstance(section, BaseModel):
        return WebSettings(**section.model_dump(exclude_none=True))
    return WebSettings()


def _read_file(path: str, base: Path) -> str:
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = base / candidate
    return candidate.read_text(encoding="utf-8").strip()


def session_secret(settings: Settings, web: WebSettings) -> str:
    if web.secret_key is not None and web.secret_key.get_secret_value():
        return web.secret_key.get_secret_value()
    if web.secret_key_file:
        return _read_file(web.secret_key_file, settings.base_dir)
    path = settings.storage_path.parent / SECRET_FILE_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole to a temp file and linked into place: a second process never reads a half-written secret.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_urlsafe(48) + "\n")
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    return path.read_text(encoding="utf-8").strip()


def metrics_token(settings: Settings, web: WebSettings) -> str | None:
    if web.metrics_token is not None and web.metrics_token.get_secret_value():
        return web.metrics_token.get_secret_value()
    if web.metrics_token_file:
        return _read_file(web.metrics_token_file, settings.base_dir) or None
    return None
