"""A full worker cycle (poll, process, send pending receipts) and the folder import."""

from __future__ import annotations

import logging
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from casefile.db import Database
from casefile.storage import DocumentStore
from config.settings import Settings
from intake.pipeline import CycleReport, Intake
from intake.sources.folder import FolderSource

log = logging.getLogger(__name__)


def full_cycle(intake: Intake) -> CycleReport:
    report = intake.run_cycle()
    try:
        from intake.receipts import send_pending  # the receipts step, when installed
    except ImportError:
        return report
    if intake.settings.smtp.configured:
        try:
            sent = send_pending(intake.settings, intake.db)
            report.counts.update({f"receipt_{key}": value for key, value in sent.items() if value})
        except Exception as exc:  # noqa: BLE001 - a receipt problem must not stop intake
            log.exception("sending receipts failed")
            report.errors.append(f"receipts: {exc}")
    return report


def import_with_progress(settings: Settings, db: Database, path: Path) -> CycleReport:
    intake = Intake(settings=settings, db=db, store=DocumentStore(settings.storage_path), source=FolderSource(path))
    columns = (
        TextColumn("[bold]Importerer"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("igjen"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("import", total=None, rate="")

        def update(done: int, total: int) -> None:
            elapsed = progress.tasks[0].elapsed or 0.0
            rate = f"{done / elapsed:.1f} e-post/s" if elapsed > 0 and done else ""
            progress.update(task, completed=done, total=total, rate=rate)

        intake.progress = update
        try:
            return intake.run_cycle()
        finally:
            intake.close()
