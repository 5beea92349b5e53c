"""Security checks: secrets never in logs or exports, storage paths never outside the storage directory, TLS
verified by default (turning it off is explicit and logged), and no dashboard route open to anonymous users.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import ssl
import threading
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from postmottak.casefile.db import Database
from postmottak.casefile.storage import DocumentStore, StorageError
from postmottak.config.settings import CaseSettings, DatabaseSettings, Settings, SmtpSettings, StorageSettings
from postmottak.intake.sources.base import SourceError
from postmottak.intake.sources.imap import ImapConfig, ImapSource
from tests import mailfactory as mf
from tests.dbutil import PG_ENV
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpSink

from .helpers import dump_tables, export_json, run_cli, worker_env, write_config

IMAP_SECRET = "imap-S3cret-9f1c2e"
SMTP_SECRET = "smtp-S3cret-7a4b0d"
DB_SECRET = "db-S3cret-5e8c13"
STORE_ROOT = Path("/nonexistent/postmottak-store/documents")


# The dashboard's route/method pairs that need a login (README: Security); a new route raises the count.
ANONYMOUS_REFUSALS = 18


# ------------------------------------------------------------------------------------------ secrets


def test_secrets_never_appear_in_output_logs_exports_or_storage(tmp_path: Path, figures) -> None:  # type: ignore[no-untyped-def]
    from tests.servers.fixtures import _require_dovecot

    _require_dovecot()
    with (
        contextlib.ExitStack() as stack,
        DovecotServer(password=IMAP_SECRET) as imap,
        SmtpSink(require_auth=True, password=SMTP_SECRET) as sink,
    ):
        items = mf.realistic_mailbox_items(20, seed=9)
        for item in items:
            imap.append(item.raw, item.internaldate)
        db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        if os.environ.get(PG_ENV):  # a password in the database URL too (the test server trusts loopback)
            from sqlalchemy.engine import make_url

            from tests.dbutil import database_url

            schema_url = stack.enter_context(database_url("postgresql", tmp_path))  # a throwaway schema
            db_url = make_url(schema_url).set(password=DB_SECRET).render_as_string(hide_password=False)
        config = write_config(tmp_path, db_url=db_url, imap=imap, smtp=sink, smtp_auth=True)
        good = worker_env(tmp_path, IMAP_SECRET, SMTP_SECRET)
        outputs = [
            run_cli(config, "-v", "run", "--once", env=worker_env(tmp_path, IMAP_SECRET, "wrong-" + SMTP_SECRET)),
            run_cli(config, "-v", "run", "--once", env=worker_env(tmp_path, "wrong-" + IMAP_SECRET, SMTP_SECRET)),
            run_cli(config, "-v", "run", "--once", env=good),
            run_cli(config, "export", "--format", "json", env=good),
            run_cli(config, "export", "--format", "csv", env=good),
            run_cli(config, "status", env=good),
            run_cli(config, "db", "upgrade", env=good),
        ]
        assert outputs[2].returncode == 0, outputs[2].stderr[-3000:]
        assert len(sink.messages) > 0 and sink.auth_failures >= 1, outputs[2].stderr[
            -3000:
        ]  # both secrets were really used
        assert "login refused" in outputs[1].stderr and "SMTP login" in outputs[0].stderr
        db = Database(db_url)
        try:
            haystacks = {"db export": export_json(db), "db tables": dump_tables(db)}
        finally:
            db.dispose()
        haystacks.update({f"cli {i} stdout": o.stdout for i, o in enumerate(outputs)})
        haystacks.update({f"cli {i} stderr": o.stderr for i, o in enumerate(outputs)})
        haystacks["smtp sink"] = "\n".join(m.raw.decode("utf-8", "replace") for m in sink.messages)
        for path in tmp_path.rglob("*"):
            if path.is_file() and path.suffix != ".toml":  # the config holds no password (they come from the env)
                haystacks[str(path)] = path.read_bytes().decode("utf-8", "replace")
        assert IMAP_SECRET not in config.read_text() and SMTP_SECRET not in config.read_text()
        secrets = [IMAP_SECRET, SMTP_SECRET, DB_SECRET]
        leaks = [(name, secret) for name, text in haystacks.items() for secret in secrets if secret in text]
        assert not leaks, leaks
    # Scanned: the JSON export, every table, stdout and stderr of each command, the SMTP sink, every stored file.
    stored = sum(1 for path in tmp_path.rglob("*") if path.is_file() and path.suffix != ".toml")
    assert stored >= len(items)  # at least every raw mail
    assert len(haystacks) == 2 + 2 * len(outputs) + 1 + stored
    figures(places_scanned=len(haystacks), secrets=len(secrets), leaks=0)


# ------------------------------------------------------------------------------------------ storage paths


@hyp_settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.lists(
            st.sampled_from(["..", ".", "/", "sha256", "etc", "passwd", "\x00", "~", "%2e%2e", "\\", "a"]), max_size=12
        ).map("/".join),
    )
)
def test_no_relative_path_leaves_the_storage_directory(relative: str) -> None:
    store = DocumentStore(STORE_ROOT)  # path_for only resolves; nothing is written
    try:
        resolved = store.path_for(relative)
    except (StorageError, ValueError):  # ValueError: an embedded NUL is refused by the OS path layer
        return
    assert resolved == store.root or store.root in resolved.parents


@hyp_settings(max_examples=50, deadline=None)
@given(st.binary(max_size=2000))
def test_stored_files_land_under_their_hash(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    store = DocumentStore(tmp_path_factory.mktemp("put"))
    digest, relative = store.put(data)
    assert re.fullmatch(r"sha256/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}", relative)
    assert store.root in store.path_for(relative).parents and store.verify(relative, digest)


def test_relative_path_refuses_anything_but_a_digest(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    for bad in ["../../etc/passwd", "/etc/passwd", "a" * 63, "A" * 64, "0" * 64 + "/..", ""]:
        with pytest.raises(StorageError):
            store.relative_path(bad)
    for bad in ["../x", "/etc/passwd", "sha256/../../x", "sha256/../../../etc"]:
        with pytest.raises(StorageError):
            store.path_for(bad)


# ------------------------------------------------------------------------------------------ TLS


def test_tls_verification_is_on_by_default() -> None:
    defaults = Settings()
    assert defaults.imap.verify_tls is True and defaults.imap.security == "ssl"
    assert defaults.smtp.verify_tls is True and defaults.smtp.security == "starttls"
    from postmottak.intake.receipts import tls_context as smtp_context
    from postmottak.intake.sources.imap import tls_context as imap_context

    for context in (imap_context(True), smtp_context(SmtpSettings())):
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_smtp_tls_opt_out_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    from postmottak.intake.receipts import tls_context as smtp_context

    caplog.set_level(logging.WARNING)
    context = smtp_context(SmtpSettings(host="smtp.example.no", verify_tls=False))
    assert context.verify_mode == ssl.CERT_NONE
    assert "TLS certificate verification is OFF" in caplog.text


class TlsTerminator:
    """A TLS server with a self-signed certificate in front of the plain-text Dovecot (like stunnel)."""

    def __init__(self, tmp_path: Path, target_port: int) -> None:
        from tests.receipts.test_tls import self_signed

        cert, key = self_signed(tmp_path)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(raw,), daemon=True).start()

    def _handle(self, raw: socket.socket) -> None:
        try:
            client = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


def test_imap_tls_is_verified_and_the_opt_out_is_explicit_and_logged(
    dovecot_server: DovecotServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tls = TlsTerminator(tmp_path, dovecot_server.port)
    try:
        config = ImapConfig(
            host="127.0.0.1",
            port=tls.port,
            security="ssl",
            username=dovecot_server.username,
            password=dovecot_server.password,
            timeout=10,
        )
        with pytest.raises(SourceError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            ImapSource(config).connect()
        caplog.set_level(logging.WARNING)
        unverified = ImapConfig(**{**config.__dict__, "verify_tls": False})
        client = ImapSource(unverified).connect()
        try:
            assert client.select_folder("INBOX")
        finally:
            client.logout()
        assert "IMAP TLS certificate verification is switched off" in caplog.text
    finally:
        tls.close()


# ------------------------------------------------------------------------------------------ dashboard


def _routes(routes):  # type: ignore[no-untyped-def]
    for route in routes:
        if hasattr(route, "original_router"):
            yield from _routes(route.original_router.routes)
        elif getattr(route, "routes", None) and not hasattr(route, "methods"):
            yield from _routes(route.routes)
        else:
            yield route


def test_every_dashboard_route_refuses_anonymous_access(tmp_path: Path) -> None:
    """Whatever routes `dashboard.create_app` has now or later: none serves anything to an anonymous user."""
    from fastapi.testclient import TestClient

    from postmottak.casefile import cases as case_store
    from postmottak.dashboard import app as dashboard_app

    settings = Settings(
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'db.sqlite'}"),
        storage=StorageSettings(path=str(tmp_path / "documents")),
        cases=[CaseSettings(number="22/414", title=mf.CASE_TITLE, deadline=date(2022, 10, 1))],
        base_dir=tmp_path,
    )
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as session:
        case_store.sync_cases(session, [("22/414", mf.CASE_TITLE, date(2022, 10, 1), "Europe/Oslo", None)])
    from postmottak.dashboard.web_settings import WebSettings

    app = dashboard_app.create_app(
        settings, db, WebSettings(secure_cookies=False, secret_key="reliability-test-key", metrics_token="tok-42")
    )
    public = {("GET", "/login"), ("POST", "/login"), ("GET", "/healthz"), ("HEAD", "/login"), ("HEAD", "/healthz")}
    # The login page's own style sheet and script: code of the app, no data (served to everyone, as files).
    public |= {("GET", "/static/style.css"), ("GET", "/static/print.js")}
    client = TestClient(app, follow_redirects=False)
    checked = []
    for route in _routes(app.routes):
        path = getattr(route, "path", None)
        if path is None:
            continue
        concrete = re.sub(r"{[^}:]+(:path)?}", lambda m_: "static/x.css" if m_.group(1) else "1", path)
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if (method, path) in public:
                continue
            response = client.request(method, concrete, data={"x": "y"} if method == "POST" else None)
            checked.append((method, path, response.status_code))
            if response.status_code in (303, 302, 307):
                assert response.headers["location"].startswith("/login"), (method, path)
            else:  # 405 would only say the method is wrong, not that an anonymous user is refused
                assert response.status_code in (401, 403), (method, path, response.status_code)
            assert "22/414" not in response.text
    db.dispose()
    assert len(checked) >= ANONYMOUS_REFUSALS, checked
    print(f"dashboard: {len(checked)} route/method pairs refused to anonymous users")
