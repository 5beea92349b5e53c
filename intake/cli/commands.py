"""The worker's own commands: run, import, status, export, parse, db upgrade."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from postmottak import bootstrap
from postmottak.casefile.clock import local_time
from postmottak.casefile.db import Database, DatabaseNeedsRepair, safe_url
from postmottak.config.settings import Settings
from postmottak.intake.cli.context import CLI_TIME, cli, console, err
from postmottak.intake.pipeline import Intake

app = typer.Typer()  # merged into the main app by intake/cli/__init__.py
db_app = typer.Typer(help="Case database maintenance.", no_args_is_help=True)


@app.command()
def run(ctx: typer.Context, once: bool = typer.Option(False, "--once", help="One full cycle, then exit.")) -> None:
    """Poll the mailbox and register new mail (every interval_seconds, or once)."""
    from postmottak.intake.worker import full_cycle

    settings = cli(ctx).settings()
    if settings.uses_leases:
        from postmottak.intake.cli.workers import run_fleet

        run_fleet(settings, once=once)
        return
    try:
        intake = _start_intake(settings, wait=not once)
    except bootstrap.ConfigError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    try:
        if once:
            report = full_cycle(intake)
            raise typer.Exit(0 if report.ok else 1)
        from postmottak.intake.backoff import BackoffCycle
        from postmottak.intake.digest import scheduled_notify
        from postmottak.intake.scheduler import SideJob, run_forever

        cycle = BackoffCycle(lambda: full_cycle(intake), settings.schedule.interval_seconds)
        notify_job = scheduled_notify(settings, intake.db)
        side_jobs = [SideJob("notify", notify_job, settings.schedule.interval_seconds)] if notify_job else []
        run_forever(cycle, settings.schedule.interval_seconds, watcher=_idle_watcher(intake), side_jobs=side_jobs)
    finally:
        intake.close()


def _start_intake(settings: Settings, *, wait: bool) -> Intake:
    """Build the worker. A database that is down: `--once` fails with one clear line; `run` waits for it."""
    delay = 5.0
    while True:
        try:
            return bootstrap.build_worker(settings)
        except bootstrap.DatabaseUnavailable as exc:
            if not wait or isinstance(exc, DatabaseNeedsRepair):
                raise  # a schema that needs a person: retrying cannot help, main() exits with status 3
            logging.getLogger("intake").error("%s; trying again in %.0f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 300.0)


def _idle_watcher(intake: Intake):  # type: ignore[no-untyped-def]
    """With an IMAP source and `[imap] idle = true`: a factory for the IDLE watcher, else None."""
    from postmottak.intake.sources.imap import ImapSource

    imap = intake.settings.imap
    if not imap.idle or not isinstance(intake.source, ImapSource):
        return None
    from postmottak.intake.idle import IdleWatcher

    return lambda wake: IdleWatcher(intake.source, wake, renew_seconds=imap.idle_timeout_seconds)


@app.command("import")
def import_folder(
    ctx: typer.Context, path: Path = typer.Argument(..., help="Maildir, mbox file or folder of .eml files.")
) -> None:
    """Import a mailbox export once (registered like mail from the server), with progress."""
    from postmottak.intake.worker import import_with_progress

    context = cli(ctx)
    report = import_with_progress(bootstrap.build_worker(context.settings(), context.database(), folder=path))
    console.print(report.summary(), highlight=False)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def status(ctx: typer.Context) -> None:
    """Summary: counts by status, on time/late per case, pending review, receipts, last poll."""
    from postmottak.casefile.queries import status_summary

    db = cli(ctx).database()
    with db.session() as session:
        summary = status_summary(session)
    print_status(summary)


def print_status(summary) -> None:  # type: ignore[no-untyped-def]
    table = Table(title="Postmottak - status", show_header=True)
    table.add_column("Status")
    table.add_column("Antall", justify="right")
    from postmottak.casefile.labels import RECEIPT_LABELS, STATUS_LABELS

    for key, label in STATUS_LABELS.items():
        table.add_row(label, str(summary.by_status.get(key, 0)))
    table.add_row("totalt", str(sum(summary.by_status.values())), style="bold")
    console.print(table)
    cases = Table(title="Saker", show_header=True)
    for column in ("Sak", "Frist", "Registrert", "I tide", "For sent", "Status"):
        cases.add_column(column, no_wrap=True)
    for case in summary.cases:
        cases.add_row(
            case.number,
            ".".join(reversed(case.deadline.split("-"))),
            str(case.registered),
            str(case.on_time),
            str(case.late),
            "åpen" if case.status == "open" else "avsluttet",
        )
    console.print(cases)
    for case in summary.cases:
        console.print(f"  {case.number}: {case.title}", highlight=False)
    receipts = (
        ", ".join(f"{RECEIPT_LABELS.get(k, k).lower()} {v}" for k, v in sorted(summary.receipts.items())) or "ingen"
    )
    console.print(f"Kvitteringer: {receipts}", highlight=False)
    console.print(
        f"Til vurdering: {summary.pending_review}   Feilet: {summary.failed}   Prøves igjen: {summary.retrying}"
    )
    last = local_time(summary.last_poll_at, CLI_TIME, empty="aldri")
    ok = local_time(summary.last_success_at, CLI_TIME, empty="aldri")
    console.print(f"Siste henting: {last}   Siste vellykkede: {ok}", highlight=False)
    if summary.last_error:
        console.print(f"[red]Siste feil: {summary.last_error}[/red]", highlight=False)
    for problem in summary.server_problems:
        console.print(f"[yellow]Serveren: {escape(problem)}[/yellow]", highlight=False)


@app.command()
def export(
    ctx: typer.Context,
    format: str = typer.Option(
        "json",
        "--format",
        "-f",
        help="json (every intake record) | csv | xlsx (one row per registered response, corrections applied)",
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default: standard output)."),
    case: Optional[str] = typer.Option(None, "--case", help="Only records registered to this case."),
) -> None:
    """Export every intake record."""
    from postmottak.casefile.queries import export_records

    if format in ("csv", "xlsx"):
        _export_spreadsheet(cli(ctx).database(), format, output, case)
        return
    if format != "json":
        err.print(f"unknown export format {format!r}; use json, csv or xlsx")
        raise typer.Exit(2)
    db = cli(ctx).database()
    with db.session() as session:
        rows = export_records(session, case_number=case)
    text = json.dumps(rows, ensure_ascii=False, indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        err.print(f"wrote {len(rows)} records to {output}")
    else:
        sys.stdout.write(text + "\n")


def _export_spreadsheet(db: Database, format: str, output: Optional[Path], case: Optional[str]) -> None:
    from postmottak.casefile import spreadsheet

    if format == "xlsx" and output is None:
        err.print("xlsx is binary: give --output FILE.xlsx")
        raise typer.Exit(2)
    with db.session() as session:
        rows = spreadsheet.rows(session, case)
    data = spreadsheet.to_csv(rows) if format == "csv" else spreadsheet.to_xlsx(rows)
    if output:
        output.write_bytes(data)
        err.print(f"wrote {len(rows)} responses to {output}")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


@app.command()
def parse(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A form as PDF or DOCX."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    profile: Optional[str] = typer.Option(
        None,
        "--profile",
        help="Form profile: a packaged profile's name or a profile TOML file (default: the packaged default).",
    ),
    text_layer: Optional[Path] = typer.Option(
        None,
        "--text-layer",
        dir_okay=False,
        help="For a scan: write the searchable PDF (page images with the OCR'd text) to this file.",
    ),
) -> None:
    """Parse one form file and print its fields: every key of the profile, and `fields` in form order."""
    from postmottak.intake.form_worker import read_form_isolated

    form, layer = read_form_isolated(file.read_bytes(), file.name, profile, timeout_s=120, memory_mb=2048)
    # The profile's own keys at the top level, beside the parse's own keys and `fields` (with how each was read).
    result: dict[str, object] = form.model_dump(mode="json")
    if layer is not None:  # pages were read by OCR: say whether the searchable PDF was made (and where it went)
        written = None
        if layer.pdf is not None and text_layer is not None:
            text_layer.write_bytes(layer.pdf)
            written = str(text_layer)
        result["text_layer"] = {
            "made": layer.pdf is not None,
            "ocr_pages": [page + 1 for page in layer.ocr_pages],
            "size": len(layer.pdf) if layer.pdf is not None else None,
            "written_to": written,
            "error": layer.error,
        }
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
        return
    table = Table(title=f"Skjema: {file.name} ({form.form_status})", show_header=True)
    table.add_column("Felt")
    table.add_column("Ledetekst", overflow="fold")
    table.add_column("Svar", overflow="fold")
    table.add_column("Lest fra")
    for answer in form.fields:
        value = answer.value
        if isinstance(value, dict):
            shown = "; ".join(f"{row}: {', '.join(cols)}" for row, cols in value.items())
        elif isinstance(value, list):
            shown = ", ".join(value)
        else:
            shown = value or ""
        table.add_row(answer.key, answer.label, shown, answer.read_by)
    console.print(table)
    for warning in form.warnings:
        console.print(f"Advarsel: {warning}", highlight=False, markup=False)
    if layer is not None and layer.pdf is not None:
        where = f" og skrevet til {text_layer}" if text_layer is not None else " (lagre den med --text-layer FIL)"
        console.print(f"Søkbar PDF (tekstlag) laget{where}.", highlight=False, markup=False)


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be repaired and migrated; change nothing."),
) -> None:
    """Apply database migrations (also done automatically on start)."""
    context = cli(ctx)
    if dry_run:
        from postmottak.intake.cli.database import print_plan

        raise typer.Exit(print_plan(context.settings().database_url))
    report = context.database().migration_report
    if report is not None and report.repaired:
        console.print(f"reparert: {report.repaired}", highlight=False)
    if report is not None and report.backup:
        console.print(f"sikkerhetskopi: {report.backup}", highlight=False)
    if report is not None and report.applied:
        console.print(f"migrert: {report.start or 'tom'} -> {', '.join(report.applied)}", highlight=False)
    console.print(f"database is up to date ({safe_url(context.settings().database_url)})", highlight=False)
