"""The case database as the commands open it: migrated, with the configured cases in step. Light to import."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from casefile import cases as case_store
from casefile.db import Database
from config.settings import Settings


class DatabaseUnavailable(Exception):
    """The case database cannot be reached or opened now (the message never holds a password)."""


def open_database(settings: Settings) -> Database:
    url = settings.database_url
    try:
        db = Database(url)
        db.upgrade()
        with db.session() as session:
            case_store.sync_cases(
                session, [(c.number, c.title, c.deadline, c.timezone, c.form) for c in settings.cases]
            )
    except (OperationalError, DBAPIError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(getattr(exc, "orig", exc)).strip() else type(exc).__name__
        safe = make_url(url).render_as_string(hide_password=True)
        raise DatabaseUnavailable(f"cannot open the case database {safe}: {reason}") from None
    return db


def configured_settings() -> Settings:
    """The settings named by the command line's --config (imported lazily: intake.cli loads the command modules)."""
    from intake.cli import state

    return state.settings()


def open_configured_database() -> Database:
    return open_database(configured_settings())
