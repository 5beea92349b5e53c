"""Retention from the worker's schedule: at most once per `[retention] run_every_hours`, after an intake cycle."""

from __future__ import annotations

import logging
from datetime import timedelta

from postmottak.casefile import retention
from postmottak.casefile.db import Database
from postmottak.config.settings import Settings

log = logging.getLogger(__name__)
WORKER_ACTOR = "postmottak (oppbevaringsregler)"


def configured_days(settings: Settings) -> dict[str, int | None]:
    section = settings.retention
    return {"ignored": section.ignored_days, "duplicate": section.duplicate_days, "unrelated": section.unrelated_days}


def run_if_due(settings: Settings, db: Database, store: retention.FileDeleter) -> retention.RetentionReport | None:
    days = configured_days(settings)
    if all(value is None for value in days.values()):
        return None
    with db.session() as session:
        if not retention.due(session, timedelta(hours=settings.retention.run_every_hours)):
            return None
    report = retention.run(db, store, days, WORKER_ACTOR, dry_run=False)
    if report.deleted_records or report.repaired:
        log.info(
            "retention: content of %d records deleted (%d files), %d unfinished completed",
            report.deleted_records,
            report.deleted_files,
            report.repaired,
        )
    return report
