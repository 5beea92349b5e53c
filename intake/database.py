"""The case database as the commands open it: migrated, with the configured cases in step. Light to import."""

from __future__ import annotations

from casefile import cases as case_store
from casefile.db import Database
from config.settings import Settings


def open_database(settings: Settings) -> Database:
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as session:
        case_store.sync_cases(
            session, [(c.number, c.title, c.deadline, c.timezone, c.form) for c in settings.cases]
        )
    return db
