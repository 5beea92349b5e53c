"""Test databases: a fresh SQLite file, or a fresh schema in the PostgreSQL named by POSTMOTTAK_TEST_DATABASE_URL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from postmottak.casefile.db import Database

PG_ENV = "POSTMOTTAK_TEST_DATABASE_URL"


def backend_params() -> list[object]:
    """Parameters for a fixture over both databases; PostgreSQL skipped where it is not configured (CI sets it)."""
    return [
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"set {PG_ENV} to test on PostgreSQL"),
        ),
    ]


def backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get(PG_ENV) else ["sqlite"]


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@contextmanager
def database_url(kind: str, tmp_path: Path) -> Iterator[str]:
    """Yields a URL of an empty database (PostgreSQL: a throwaway schema, dropped afterwards)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'postmottak-test.db'}"
        return
    base = os.environ[PG_ENV]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _with_search_path(base, schema)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def migrated_database(kind: str, tmp_path: Path) -> Iterator[Database]:
    with database_url(kind, tmp_path) as url:
        db = Database(url)
        db.upgrade()
        try:
            yield db
        finally:
            db.dispose()
