"""Fixtures of the reliability tests; figures the tests measure are printed at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dbutil import backends, database_url

_FIGURES: list[tuple[str, dict[str, Any]]] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """figures(**values): record numbers for the README's Reliability section (printed in the summary)."""

    def record(**values: Any) -> None:
        name = request.node.nodeid.split("::", 1)[-1]
        _FIGURES.append((name, values))
        print(f"FIGURES {name}: {values}")

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    if not _FIGURES:
        return
    terminalreporter.section("reliability figures")
    for name, values in _FIGURES:
        terminalreporter.write_line(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


@pytest.fixture(params=backends())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty case database: SQLite, and PostgreSQL when POSTMOTTAK_TEST_DATABASE_URL is set."""
    with database_url(request.param, tmp_path) as url:
        yield url
