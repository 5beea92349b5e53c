"""Shared fixtures: real servers (tests/servers) and case databases on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from postmottak.casefile.db import Database
from tests.dbutil import PG_ENV, backends, migrated_database
from tests.servers.fixtures import cyrus_server, dovecot_server, imap_server, smtp_sink, smtp_sink_auth  # noqa: F401 - re-exported fixtures  # noqa: F401 - re-exported fixtures

# The CLI's rich consoles take their width from COLUMNS when created (at import); without a terminal (pytest-xdist
# workers, CI) tables would be cut at 80 characters.
os.environ.setdefault("COLUMNS", "250")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_report_header(config: pytest.Config) -> str:
    pg = os.environ.get(PG_ENV)
    return f"postmottak: databases {', '.join(backends())}" + ("" if pg else f" (set {PG_ENV} for PostgreSQL)")


@pytest.fixture(params=backends())
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty case database: SQLite, and PostgreSQL when POSTMOTTAK_TEST_DATABASE_URL is set."""
    with migrated_database(request.param, tmp_path) as db:
        yield db


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"../shared not found at {SHARED} (CI must have it)")
        pytest.skip(f"../shared not found at {SHARED}: not on this machine")
    return SHARED


# With pytest-xdist (scripts/test runs two workers, --dist loadgroup): the reliability tests (worker processes
# killed, paused and timed against leases) run one after another on one worker, beside the rest of the suite on
# the other, so two of them never compete for the cores; the OCR scans share their session fixtures on one worker.
_XDIST_GROUPS = {"reliability": "reliability", "test_ocr_scans.py": "ocr"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.parts
        for part, group in _XDIST_GROUPS.items():
            if part in parts:
                item.add_marker(pytest.mark.xdist_group(group))
