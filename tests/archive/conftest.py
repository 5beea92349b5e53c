"""Fixtures for the Noark 5 tests: a realistic case on SQLite (and PostgreSQL when configured)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from postmottak.casefile.storage import DocumentStore
from tests.archive.builders import (
    CASE_DEADLINE,
    CASE_NUMBER,
    CASE_TITLE,
    BuiltCase,
    TestDatabase,
    build_realistic_case,
    open_test_database,
)
from tests.dbutil import backend_params

SHARED_NOARK5 = Path(__file__).resolve().parents[2] / ".." / "shared" / "noark5"


@dataclass
class Setup:
    database: TestDatabase
    store: DocumentStore
    config: Path
    tmp: Path


@pytest.fixture(params=backend_params())
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    database = open_test_database(request.param, tmp_path)
    store = DocumentStore(tmp_path / "documents")
    config = tmp_path / "postmottak.toml"
    config.write_text(
        f'[database]\nurl = "{database.url}"\n\n[storage]\npath = "{store.root}"\n\n'
        f'[[cases]]\nnumber = "{CASE_NUMBER}"\ntitle = "{CASE_TITLE}"\ndeadline = "{CASE_DEADLINE.isoformat()}"\n',
        encoding="utf-8",
    )
    try:
        yield Setup(database, store, config, tmp_path)
    finally:
        database.dispose()


@pytest.fixture
def closed_case(setup: Setup) -> BuiltCase:
    return build_realistic_case(setup.database.db, setup.store)


@pytest.fixture
def official_schemas() -> Path:
    if not (SHARED_NOARK5 / "arkivstruktur.xsd").is_file():
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("../shared/noark5 (Arkivverket's schemas) is missing in CI")
        pytest.skip("../shared/noark5 (Arkivverket's schemas) is not available")
    return SHARED_NOARK5.resolve()


def run_cli(config: Path, *args: str) -> Result:
    """Run `postmottak -c CONFIG ...` in-process (the CLI caches its settings between calls: reset them)."""
    from postmottak.intake import cli

    return CliRunner().invoke(cli.app, ["--config", str(config), *args], catch_exceptions=False)
