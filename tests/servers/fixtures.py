"""pytest fixtures for the real test servers; tests/conftest.py re-exports them.

Each fixture gives a fresh server per test (Dovecot starts in a few hundredths of a second) and tears it down.
Without Dovecot installed the IMAP fixtures skip, except in CI (CI=true) where they fail, so a missing
install step cannot hide behind a green run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .dovecot import DovecotServer, dovecot_available
from .smtp import SmtpSink


def _require_dovecot() -> None:
    if dovecot_available():
        return
    reason = "Dovecot is not installed (run scripts/ensure-system-packages)"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(reason)
    pytest.skip(reason)


def running_dovecot(**options: object) -> Iterator[DovecotServer]:
    """Start a Dovecot (its log printed if it fails to start), yield it, remove it: the body of every Dovecot fixture."""
    _require_dovecot()
    yield from _running(DovecotServer(**options))  # type: ignore[arg-type]


def _running(server: Any) -> Iterator[Any]:
    """Start a test server (its log printed if it fails to start), yield it, remove it."""
    try:
        server.start()
    except Exception:
        print(server.log_text())
        server.cleanup()
        raise
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def dovecot_server() -> Iterator[DovecotServer]:
    """A running, empty Dovecot on 127.0.0.1 with user `postmottak`; removed after the test."""
    yield from running_dovecot()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A running SMTP sink on 127.0.0.1 without AUTH, with SMTPUTF8."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def smtp_sink_auth() -> Iterator[SmtpSink]:
    """A running SMTP sink that requires AUTH PLAIN/LOGIN (`sink.username` / `sink.password`) over plain TCP."""
    with SmtpSink(require_auth=True) as sink:
        yield sink


# ------------------------------------------------------------------ a second server: Cyrus IMAP

IMAP_SERVERS = ("dovecot", "cyrus-default", "cyrus-altnamespace")
CYRUS_OPTIONS = {
    "cyrus-default": {},  # personal folders under INBOX. (separator ".")
    "cyrus-altnamespace": {"altnamespace": True},  # personal folders next to INBOX
    "cyrus-unixsep": {"unixhierarchysep": True},  # INBOX/Behandlet
}


def _require_cyrus() -> None:
    from .cyrus import cyrus_available

    if cyrus_available():
        return
    reason = "Cyrus imapd is not installed (run scripts/ensure-system-packages)"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(reason)
    pytest.skip(reason)


def running_cyrus(**options: object) -> Iterator["CyrusServer"]:
    """Start a Cyrus (its log printed if it fails to start), yield it, remove it."""
    from .cyrus import CyrusServer

    _require_cyrus()
    yield from _running(CyrusServer(**options))  # type: ignore[arg-type]


def running_imap_server(kind: str, **options: object) -> Iterator["DovecotServer | CyrusServer"]:
    """`dovecot` or one of CYRUS_OPTIONS' Cyrus set-ups, running for the test."""
    if kind == "dovecot":
        yield from running_dovecot(**options)
    else:
        yield from running_cyrus(**CYRUS_OPTIONS[kind], **options)


@pytest.fixture(params=IMAP_SERVERS)
def imap_server(request: pytest.FixtureRequest) -> Iterator["DovecotServer | CyrusServer"]:
    """A running, empty IMAP server with user `postmottak`: Dovecot, Cyrus (default namespace), Cyrus
    (altnamespace). Both kinds share the API tests use (append, list_uids, personal(), restart, ...)."""
    yield from running_imap_server(request.param)


@pytest.fixture
def cyrus_server() -> Iterator["CyrusServer"]:
    """A running Cyrus in its default namespace (personal folders under INBOX.)."""
    yield from running_cyrus()


if TYPE_CHECKING:
    from .cyrus import CyrusServer


def servers_by_database(*cyrus_kinds: str) -> list[tuple[str, str]]:
    """(imap_server, db_url) pairs for tests parametrised over both: Dovecot on every database backend, each Cyrus
    set-up on one (PostgreSQL when configured, as in CI): the servers and the databases are independent axes, and
    the full product would double the Cyrus runs of the suite's most expensive tests."""
    from tests.dbutil import backends

    return [("dovecot", backend) for backend in backends()] + [(kind, backends()[-1]) for kind in cyrus_kinds]
