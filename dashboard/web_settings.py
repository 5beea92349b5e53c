"""The staff web app's secrets: the session secret and the metrics token, from `[web]` of the settings.

The session secret comes from `secret_key` (or `secret_key_file`, read by the settings), or is generated once and
kept (mode 0600) in the data folder beside the document store.
"""

from __future__ import annotations

import os
import secrets
import tempfile

from postmottak.config.settings import Settings, WebSettings

__all__ = ["WebSettings", "metrics_token", "session_secret"]

SECRET_FILE_NAME = "dashboard-session-secret"


def session_secret(settings: Settings, web: WebSettings) -> str:
    """`[web] secret_key` (or the content of secret_key_file), else one generated once and kept (mode 0600)."""
    if web.secret_key is not None and web.secret_key.get_secret_value():
        return web.secret_key.get_secret_value()
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


def metrics_token(web: WebSettings) -> str | None:
    if web.metrics_token is not None and web.metrics_token.get_secret_value():
        return web.metrics_token.get_secret_value()
    return None
