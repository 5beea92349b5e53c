"""`postmottak check` against real servers: what it reports for a working setup and for each misconfiguration."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from postmottak.intake.check import Step, run_checks
from tests import mailfactory as mf
from tests.oauth2.helpers import CLIENT_SECRET, TokenEndpoint, settings_for, toml_config
from tests.receipts.test_tls import TlsSink, _server
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpSink, _free_loopback_port

REPO = Path(__file__).resolve().parents[2]
ON_TIME = datetime(2022, 9, 20, 10, 0, tzinfo=mf.OSLO)


@pytest.fixture
def tls_listener(tmp_path: Path) -> Iterator[TlsSink]:
    """A TLS server (implicit TLS) whose certificate nobody trusts."""
    yield from _server(tmp_path, "ssl")


def by_name(steps: list[Step]) -> dict[str, Step]:
    return {step.name: step for step in steps}


def failure(steps: list[Step]) -> Step:
    failed = [step for step in steps if not step.ok]
    assert failed, steps
    return failed[0]


def test_working_configuration(
    tmp_path: Path, dovecot_oauth2: DovecotServer, smtp_oauth2: SmtpSink, endpoint: TokenEndpoint
) -> None:
    for n in range(3):
        dovecot_oauth2.append(mf.response_mail(message_id=f"<check-{n}@example.no>"), ON_TIME)
    settings = settings_for(
        tmp_path, imap=dovecot_oauth2, smtp=smtp_oauth2, endpoint=endpoint, imap_extra={"processed_folder": "Behandlet"}
    )
    steps = by_name(run_checks(settings))
    assert all(step.ok for step in steps.values()), steps
    assert "expires" in steps["OAuth2 token"].detail
    assert steps["IMAP folder"].detail == "'INBOX' has 3 message(s)"
    assert "offered" in steps["IMAP IDLE"].detail
    assert steps["Processed folder"].warning  # not there yet; check does not create it
    assert "nothing sent" in steps["SMTP"].detail
    # Nothing changed: no folder created, no mail sent, the messages untouched and unseen.
    assert not dovecot_oauth2.folder_exists("Behandlet")
    assert smtp_oauth2.messages == []
    client = dovecot_oauth2.connect()
    client.select_folder("INBOX", readonly=True)
    assert client.search(["SEEN"]) == []
    client.logout()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"oauth2": {"token_url": "tenant"}}, "tenant in [oauth2] token_url does not exist"),
        ({"oauth2": {"client_id": "00000000-dead-beef-0000-000000000000"}}, "no app with this client_id"),
        ({"oauth2": {"client_secret": "feil"}}, "client secret is wrong"),
        ({"consent": False}, "admin consent"),
        ({"imap": {"username": "annen@ehelse.no"}}, "the mail server refused it"),
    ],
    ids=["wrong-tenant", "unknown-client", "wrong-secret", "consent-missing", "token-refused-by-imap"],
)
def test_oauth2_misconfigurations(
    tmp_path: Path, dovecot_oauth2: DovecotServer, endpoint: TokenEndpoint, change: dict[str, Any], expected: str
) -> None:
    oauth2 = dict(change.get("oauth2", {}))
    if oauth2.get("token_url") == "tenant":
        oauth2["token_url"] = endpoint.url("feil-tenant")
    endpoint.consent_granted = change.get("consent", True)
    settings = settings_for(
        tmp_path, imap=dovecot_oauth2, smtp=None, endpoint=endpoint, oauth2_extra=oauth2, imap_extra=change.get("imap")
    )
    steps = run_checks(settings)
    first = failure(steps)
    assert expected in first.hint, first
    if "imap" not in change:
        assert first.name == "OAuth2 token"
        assert "not tried" in by_name(steps)["IMAP"].detail


def test_password_misconfigurations(tmp_path: Path, dovecot_server: DovecotServer, tls_listener: TlsSink) -> None:
    def imap_check(**imap: Any) -> Step:
        settings = settings_for(
            tmp_path,
            imap=dovecot_server,
            smtp=None,
            endpoint=None,
            imap_extra={"auth": "password", "password": dovecot_server.password, **imap},
        )
        return failure(run_checks(settings))

    wrong = imap_check(password="feil-passord")
    assert wrong.name == "IMAP" and "refused the username or password" in wrong.hint
    assert "feil-passord" not in wrong.detail + wrong.hint
    missing = imap_check(folder="Høringssvar")
    assert missing.name == "IMAP folder"
    assert "does not exist" in missing.hint and "'INBOX'" in missing.hint  # lists what is there
    refused = imap_check(port=_free_loopback_port())
    assert "connection refused" in refused.hint
    tls = imap_check(port=tls_listener.port, security="ssl")
    assert "TLS certificate of 127.0.0.1 is not trusted" in tls.hint


def test_smtp_misconfigurations(tmp_path: Path, smtp_sink_auth: SmtpSink, tls_listener: TlsSink) -> None:
    def smtp_check(sink: Any, **smtp: Any) -> Step:
        settings = settings_for(
            tmp_path,
            imap=None,
            smtp=sink,
            endpoint=None,
            smtp_extra={"auth": "password", "username": "postmottak", **smtp},
        )
        settings.folder.path = str(tmp_path)  # a mail source, so only SMTP can fail
        return by_name(run_checks(settings))["SMTP"]

    ok = smtp_check(smtp_sink_auth, password=smtp_sink_auth.password)
    assert ok.ok and "nothing sent" in ok.detail
    wrong = smtp_check(smtp_sink_auth, password="feil")
    assert not wrong.ok and "refused the username or password" in wrong.hint
    tls_sink = SmtpSink(port=tls_listener.port)  # only its host/port are used
    tls = smtp_check(tls_sink, security="ssl")
    assert not tls.ok and "is not trusted" in tls.hint
    refused = smtp_check(SmtpSink(port=_free_loopback_port()), password="x")
    assert not refused.ok and "connection refused" in refused.hint


def test_check_command(
    tmp_path: Path, dovecot_oauth2: DovecotServer, smtp_oauth2: SmtpSink, endpoint: TokenEndpoint
) -> None:
    settings = settings_for(tmp_path, imap=dovecot_oauth2, smtp=smtp_oauth2, endpoint=endpoint)
    config = toml_config(settings, tmp_path / "postmottak.toml")

    def check(secret: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "POSTMOTTAK_OAUTH2__CLIENT_SECRET": secret}
        return subprocess.run(
            [sys.executable, "-m", "postmottak", "--config", str(config), "check"],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            timeout=120,
        )

    good = check(CLIENT_SECRET)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "OK  OAuth2 token: issued by" in good.stdout and "expires" in good.stdout
    assert "OK  IMAP folder: 'INBOX' has 0 message(s)" in good.stdout
    assert "The configuration works." in good.stdout
    bad = check("feil-hemmelighet")
    assert bad.returncode == 1
    assert "FAIL  OAuth2 token" in bad.stdout and "client secret is wrong" in bad.stdout
    assert "feil-hemmelighet" not in bad.stdout + bad.stderr
    assert CLIENT_SECRET not in good.stdout + good.stderr
