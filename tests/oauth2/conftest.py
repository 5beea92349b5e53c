"""Fixtures for the OAuth2 and IDLE tests: Dovecot validating JWTs, an XOAUTH2 SMTP sink, a token endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.oauth2.helpers import KEY, TokenEndpoint, verify_jwt
from tests.servers.dovecot import DovecotServer
from tests.servers.fixtures import running_dovecot
from tests.servers.smtp import SmtpSink


@pytest.fixture
def endpoint() -> Iterator[TokenEndpoint]:
    with TokenEndpoint() as server:
        yield server


@pytest.fixture
def dovecot_oauth2() -> Iterator[DovecotServer]:
    """Dovecot accepting XOAUTH2/OAUTHBEARER with JWTs signed by KEY (and the test user's password)."""
    yield from running_dovecot(oauth2_key=KEY)


@pytest.fixture
def smtp_oauth2() -> Iterator[SmtpSink]:
    """An SMTP sink that requires AUTH and accepts XOAUTH2 with JWTs signed by KEY for the token's sub."""
    with SmtpSink(require_auth=True, xoauth2=verify_jwt) as sink:
        yield sink
