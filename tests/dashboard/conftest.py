from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from postmottak.casefile import cases as case_store
from postmottak.casefile.db import Database
from postmottak.casefile.storage import DocumentStore
from postmottak.casefile.users import add_user
from postmottak.config.settings import (
    CaseSettings,
    DatabaseSettings,
    ImapSettings,
    MailboxSettings,
    Settings,
    StorageSettings,
)
from postmottak.dashboard.app import create_app
from postmottak.dashboard.web_settings import WebSettings
from tests.dashboard.seed import CASE, CASE_TITLE, Seeded, seed_consultation, seed_fleet
from tests.dbutil import backends, database_url

PASSWORDS = {"arkivar": "arkiv-passord-1", "leser": "leser-passord-1"}
METRICS_TOKEN = "test-metrics-token"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'postmottak.db'}"),
        storage=StorageSettings(path=str(tmp_path / "documents")),
        cases=[CaseSettings(number=CASE, title=CASE_TITLE, deadline=date(2022, 10, 1), keywords=["e-helsestrategi"])],
        # Two mailboxes (the seeded mail came from the first): the "Postkasser" page shows one read, one not.
        mailboxes=[
            MailboxSettings(name="postmottak", imap=ImapSettings(host="imap.example.no", username="postmottak")),
            MailboxSettings(name="horing", imap=ImapSettings(host="imap.example.no", username="horing")),
        ],
        base_dir=tmp_path,
    )


@pytest.fixture(params=backends())
def db(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Database:
    """SQLite, and PostgreSQL too when POSTMOTTAK_TEST_DATABASE_URL names one (as in CI)."""
    with database_url(request.param, tmp_path) as url:
        database = Database(url)
        database.upgrade()
        with database.session() as session:
            case_store.sync_cases(
                session, [(c.number, c.title, c.deadline, c.timezone, c.form) for c in settings.cases]
            )
            add_user(session, "arkivar", PASSWORDS["arkivar"], "archivist")
            add_user(session, "leser", PASSWORDS["leser"], "reader")
        yield database
        database.dispose()


@pytest.fixture
def store(settings: Settings) -> DocumentStore:
    return DocumentStore(settings.storage_path)


@pytest.fixture
def seeded(db: Database, store: DocumentStore) -> Seeded:
    seeded = seed_consultation(db, store)
    seed_fleet(db)
    return seeded


@pytest.fixture
def web() -> WebSettings:
    return WebSettings(secure_cookies=False, secret_key="test-secret-key-for-sessions", metrics_token=METRICS_TOKEN)


@pytest.fixture
def app(settings: Settings, db: Database, web: WebSettings, seeded: Seeded):  # type: ignore[no-untyped-def]
    return create_app(settings, db, web)


@pytest.fixture
def anon(app) -> TestClient:  # type: ignore[no-untyped-def]
    with TestClient(app, follow_redirects=False) as client:
        yield client


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client: TestClient, username: str, password: str | None = None) -> str:
    """Log in; returns the session's CSRF token."""
    page = client.get("/login")
    token = csrf_from(page.text)
    response = client.post(
        "/login",
        data={"username": username, "password": password or PASSWORDS[username], "csrf_token": token, "next": "/"},
    )
    assert response.status_code == 303, response.text
    return csrf_from(client.get("/").text)


@pytest.fixture
def archivist(app):  # type: ignore[no-untyped-def]
    with TestClient(app, follow_redirects=False) as client:
        client.csrf = login(client, "arkivar")  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def reader(app):  # type: ignore[no-untyped-def]
    with TestClient(app, follow_redirects=False) as client:
        client.csrf = login(client, "leser")  # type: ignore[attr-defined]
        yield client
