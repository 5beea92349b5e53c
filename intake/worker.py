"""A full worker cycle (poll, process, send pending receipts) and the folder import."""

from __future__ import annotations

import logging

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from postmottak.intake.pipeline import CycleReport, Intake

log = logging.getLogger(__name__)


def full_cycle(intake: Intake) -> CycleReport:
    """The intake cycle, with the receipts step running alongside it in a thread of its own (it only ever sees
    receipts of registrations already committed) and finishing after it."""
    companion = None
    if intake.settings.smtp.configured and intake.settings.receipts.enabled:
        from postmottak.intake.receipts import ReceiptsAlongside

        companion = ReceiptsAlongside(intake.settings, intake.db).start()
    sent: dict[str, int] = {}
    failure: Exception | None = None
    try:
        report = intake.run_cycle()
    finally:
        if companion is not None:
            try:
                sent = companion.finish()
            except Exception as exc:
                log.error("sending receipts failed", exc_info=exc)
                failure = exc
    if failure is not None:
        report.errors.append(f"receipts: {failure}")
    report.counts.update({f"receipt_{key}": value for key, value in sent.items() if value})
    try:
        from postmottak.intake.retention import run_if_due

        run_if_due(intake.settings, intake.db, intake.store)
    except Exception as exc:
        log.error("retention failed", exc_info=exc)
        report.errors.append(f"retention: {exc}")
    return report


def import_with_progress(intake: Intake) -> CycleReport:
    """One cycle over a folder export, with a progress bar (rate and time left)."""
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
