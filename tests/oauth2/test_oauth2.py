"""OAuth2 (XOAUTH2) logins to a real Dovecot and a real SMTP server with tokens from a loopback token endpoint."""

from __future__ import annotations

import logging
import smtplib
import stat
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from postmottak.bootstrap import build_worker, mail_source
from postmottak.casefile.db import Database
from postmottak.config.settings import ConfigError, OAuth2Settings, load_settings
from postmottak.intake.oauth2 import OAuth2Error, TokenClient, token_client
from postmottak.intake.receipts import connect as smtp_connect
from postmottak.intake.sources.base import SourceError
from postmottak.intake.worker import full_cycle
from tests import mailfactory as mf
from tests.oauth2.helpers import CLIENT_ID, CLIENT_SECRET, MAILBOX, SCOPE, TokenEndpoint, settings_for
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpSink

ON_TIME = datetime(2022, 9, 20, 10, 0, tzinfo=mf.OSLO)


def imap_login_works(settings) -> None:  # type: ignore[no-untyped-def]
    client = mail_source(settings).connect()
    try:
        assert client.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"] >= 0
    finally:
        client.logout()


def test_client_credentials_login_imap_and_smtp_end_to_end(
    tmp_path: Path, dovecot_oauth2: DovecotServer, smtp_oauth2: SmtpSink, endpoint: TokenEndpoint
) -> None:
    settings = settings_for(tmp_path, imap=dovecot_oauth2, smtp=smtp_oauth2, endpoint=endpoint)
    dovecot_oauth2.append(mf.response_mail(sender_addr="kari@example.no", message_id="<oauth-1@example.no>"), ON_TIME)
    intake = build_worker(settings)
    try:
        report = full_cycle(intake)
    finally:
        intake.close()
    assert report.ok, report.errors
    assert report.counts["registered"] == 1
    assert report.counts["receipt_sent"] == 1
    receipt = smtp_oauth2.wait_for(1)[0]
    assert receipt.rcpt_tos == ("kari@example.no",)
    assert receipt.auth_login == MAILBOX  # authenticated with XOAUTH2 as the mailbox
    assert smtp_oauth2.xoauth2_logins == [MAILBOX]
    assert "method=XOAUTH2" in dovecot_oauth2.log_text()
    assert endpoint.issued == 1  # IMAP and SMTP share one cached token
    assert endpoint.grants == ["client_credentials"]


def test_token_is_cached_and_renewed_before_expiry(
    tmp_path: Path, endpoint: TokenEndpoint, dovecot_oauth2: DovecotServer
) -> None:
    endpoint.lifetime = 600
    now = [1_000_000.0]
    config = OAuth2Settings(
        token_url=endpoint.url(),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope=SCOPE,
        renew_before_seconds=120,
    )
    tokens = TokenClient(config, clock=lambda: now[0])
    first = tokens.token()
    assert first.expires_at == pytest.approx(now[0] + 600)
    now[0] += 470  # 130 s left: still used
    assert tokens.token() is first
    now[0] += 20  # 110 s left: inside renew_before_seconds
    second = tokens.token()
    assert second is not first and second.value != first.value
    assert endpoint.issued == 2
    # The renewed token logs in.
    settings = settings_for(tmp_path, imap=dovecot_oauth2, smtp=None, endpoint=endpoint)
    client = mail_source(settings).connect()
    client.logout()


def test_short_lived_token_renewed_half_way(endpoint: TokenEndpoint) -> None:
    endpoint.lifetime = 4
    now = [0.0]
    config = OAuth2Settings(token_url=endpoint.url(), client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    tokens = TokenClient(config, clock=lambda: now[0])
    first = tokens.token()
    now[0] = 1.5
    assert tokens.token() is first
    now[0] = 2.5  # renew_before (300 s) is longer than the token lives: renewed after half its life
    assert tokens.token() is not first


def test_expired_token_refused_by_the_server_is_renewed_once(
    tmp_path: Path, dovecot_oauth2: DovecotServer, smtp_oauth2: SmtpSink, endpoint: TokenEndpoint
) -> None:
    """A client clock that lags (or a token revoked early): the server refuses the cached token; one renewal."""
    settings = settings_for(tmp_path, imap=dovecot_oauth2, smtp=smtp_oauth2, endpoint=endpoint)
    endpoint.lifetime = 1
    lagging = [time.time() - 30]
    tokens = TokenClient(settings.oauth2, clock=lambda: lagging[0])
    tokens.token()
    time.sleep(2.1)  # the JWT's exp has passed; the lagging clock still thinks it is fresh
    endpoint.lifetime = 3600
    source = mail_source(settings)
    source.config = replace(source.config, tokens=tokens)
    client = source.connect()
    client.logout()
    assert endpoint.issued == 2
    connection = smtp_connect(settings.smtp, tokens)
    connection.quit()
    assert endpoint.issued == 2  # SMTP got the renewed token from the cache
    assert "method=XOAUTH2" in dovecot_oauth2.log_text()


def test_rejected_token_renewed_once_then_clear_error(
    tmp_path: Path, dovecot_oauth2: DovecotServer, smtp_oauth2: SmtpSink, endpoint: TokenEndpoint
) -> None:
    settings = settings_for(tmp_path, imap=dovecot_oauth2, smtp=smtp_oauth2, endpoint=endpoint)
    endpoint.bad_tokens = 1  # the first token is signed with a key the servers do not know
    imap_login_works(settings)
    assert endpoint.issued == 2

    endpoint.bad_tokens = 2
    token_client(settings).renew()  # a bad one cached; its renewal is bad as well
    with pytest.raises(SourceError) as refused:
        mail_source(settings).connect()
    assert "refused a fresh OAuth2 token" in str(refused.value)
    assert "mailbox permission" in str(refused.value)  # the plain-words explanation
    assert endpoint.issued == 4  # exactly one renewal, no loop

    # SMTP: one bad token, renewed once, accepted.
    endpoint.bad_tokens = 1
    token_client(settings).renew()
    failures = smtp_oauth2.auth_failures
    connection = smtp_connect(settings.smtp, token_client(settings))
    connection.quit()
    assert smtp_oauth2.auth_failures == failures + 1
    endpoint.bad_tokens = 2
    token_client(settings).renew()
    with pytest.raises(smtplib.SMTPAuthenticationError):
        smtp_connect(settings.smtp, token_client(settings))


def test_wrong_secret_is_explained_and_never_logged(
    tmp_path: Path, dovecot_oauth2: DovecotServer, endpoint: TokenEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "feil-hemmelighet-som-ikke-skal-logges"
    settings = settings_for(
        tmp_path, imap=dovecot_oauth2, smtp=None, endpoint=endpoint, oauth2_extra={"client_secret": wrong}
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceError) as failed:
        mail_source(settings).connect()
    message = str(failed.value)
    assert "invalid_client" in message and "AADSTS7000215" in message
    assert "client secret is wrong" in message
    assert endpoint.issued == 0
    for text in (message, caplog.text, repr(settings), str(settings.model_dump())):
        assert wrong not in text and CLIENT_SECRET not in text


def test_run_cycle_reports_token_failure(
    tmp_path: Path, dovecot_oauth2: DovecotServer, endpoint: TokenEndpoint
) -> None:
    settings = settings_for(
        tmp_path, imap=dovecot_oauth2, smtp=None, endpoint=endpoint, oauth2_extra={"client_secret": "feil"}
    )
    intake = build_worker(settings)
    try:
        report = intake.run_cycle(reconnects=0)
    finally:
        intake.close()
    assert not report.ok
    assert "client secret is wrong" in report.errors[0]


def test_smtp_token_failure_keeps_receipt_pending(
    tmp_path: Path, dovecot_oauth2: DovecotServer, smtp_oauth2: SmtpSink, endpoint: TokenEndpoint
) -> None:
    """No token for SMTP (endpoint refuses): the receipt waits for a retry, intake is not stopped."""
    settings = settings_for(
        tmp_path, imap=None, smtp=smtp_oauth2, endpoint=endpoint, oauth2_extra={"client_id": "ukjent-klient"}
    )
    from postmottak.bootstrap import open_database
    from postmottak.intake.receipts import send_pending
    from tests.receipts.helpers import register

    db: Database = open_database(settings)
    register(db, sender="kari@example.no")
    counts = send_pending(settings, db)
    assert counts["sent"] == 0 and counts["retry"] == 1
    assert smtp_oauth2.messages == []


def test_refresh_token_flow_stores_rotated_token_privately(
    tmp_path: Path, dovecot_oauth2: DovecotServer, endpoint: TokenEndpoint
) -> None:
    endpoint.rotate_refresh_tokens = True
    endpoint.refresh_tokens = {"rt-start"}
    token_file = tmp_path / "secrets" / "refresh-token"
    token_file.parent.mkdir()
    token_file.write_text("rt-start\n", encoding="utf-8")
    settings = settings_for(
        tmp_path,
        imap=dovecot_oauth2,
        smtp=None,
        endpoint=endpoint,
        oauth2_extra={"flow": "refresh_token", "refresh_token_file": "secrets/refresh-token"},
    )
    imap_login_works(settings)
    stored = token_file.read_text(encoding="utf-8").strip()
    assert stored != "rt-start" and stored in endpoint.refresh_tokens
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert endpoint.grants == ["refresh_token"]
    # A restart reads the rotated token (the old one is no longer valid at the provider).
    restarted = TokenClient(settings.oauth2, token_file)
    restarted.token()
    again = token_file.read_text(encoding="utf-8").strip()
    assert again not in (stored, "rt-start") and again in endpoint.refresh_tokens
    # The rotated token never shows in the files next to it or in the settings.
    assert [p.name for p in token_file.parent.iterdir()] == ["refresh-token"]


def test_refresh_token_without_rotation_from_settings(
    tmp_path: Path, dovecot_oauth2: DovecotServer, endpoint: TokenEndpoint
) -> None:
    endpoint.refresh_tokens = {"rt-google-style"}
    settings = settings_for(
        tmp_path,
        imap=dovecot_oauth2,
        smtp=None,
        endpoint=endpoint,
        oauth2_extra={"flow": "refresh_token", "refresh_token": "rt-google-style"},
    )
    imap_login_works(settings)
    assert endpoint.grants == ["refresh_token"]
    endpoint.refresh_tokens = set()  # revoked
    with pytest.raises(OAuth2Error) as failed:
        token_client(settings).renew()
    assert failed.value.error == "invalid_grant"


def test_settings_secrets_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("fra-fil\n", encoding="utf-8")
    config = tmp_path / "postmottak.toml"
    config.write_text(
        f"""
[imap]
host = "imap.example.no"
auth = "oauth2"
username = "postmottak@ehelse.no"
idle_timeout_seconds = 600
[smtp]
host = "smtp.example.no"
auth = "oauth2"
username = "postmottak@ehelse.no"
[oauth2]
token_url = "https://login.microsoftonline.com/tenant/oauth2/v2.0/token"
client_id = "{CLIENT_ID}"
client_secret_file = "{secret_file}"
scope = "{SCOPE}"
""",
        encoding="utf-8",
    )
    settings = load_settings(config)
    assert settings.oauth2.client_secret.get_secret_value() == "fra-fil"
    assert settings.imap.idle and settings.imap.idle_timeout_seconds == 600
    assert "fra-fil" not in repr(settings)
    monkeypatch.setenv("POSTMOTTAK_OAUTH2__REFRESH_TOKEN", "rt-env")
    monkeypatch.setenv("POSTMOTTAK_OAUTH2__FLOW", "refresh_token")
    assert load_settings(config).oauth2.refresh_token.get_secret_value() == "rt-env"

    broken = tmp_path / "broken.toml"
    broken.write_text('[imap]\nhost = "imap.example.no"\nauth = "oauth2"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_settings(broken)
    assert "needs [oauth2] token_url, client_id" in str(error.value)
    too_long = tmp_path / "idle.toml"
    too_long.write_text("[imap]\nidle_timeout_seconds = 1800\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="idle_timeout_seconds"):
        load_settings(too_long)
    no_user = tmp_path / "no-user.toml"
    no_user.write_text(
        f'[smtp]\nhost = "smtp.example.no"\nauth = "oauth2"\n[oauth2]\ntoken_url = "https://t.invalid/token"\n'
        f'client_id = "{CLIENT_ID}"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"needs \[smtp\] username"):
        load_settings(no_user)
