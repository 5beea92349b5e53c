"""`db repair` and the plan printed by `db upgrade --dry-run`: what start-up would repair and migrate, and the
repairs start-up leaves to a person."""

from __future__ import annotations

import typer

from postmottak.casefile import migrate, schema_state
from postmottak.casefile.db import Database, safe_url
from postmottak.intake.cli.context import cli, console, err

NEEDS_A_PERSON = 3  # the exit status of a database start-up cannot open (same as main() for DatabaseNeedsRepair)


def print_plan(url: str) -> int:
    """Print the diagnosis and the migrations that would run; the exit status (0, or 3 when blocked)."""
    with Database(url).translating_errors():  # an unreachable database: one line, as on start
        plan = migrate.plan(url)
    diagnosis = plan.diagnosis
    console.print(f"database: {safe_url(url)}", highlight=False, soft_wrap=True)
    console.print(f"revisjon nå: {diagnosis.version or 'ingen'}", highlight=False, soft_wrap=True)
    if diagnosis.kind not in (schema_state.CURRENT, schema_state.PENDING):
        console.print(f"funnet: {diagnosis.describe()}", highlight=False, soft_wrap=True)
        _print_objects(diagnosis)
    if diagnosis.kind in (schema_state.UNKNOWN_REVISION, schema_state.MISMATCH):
        err.print("kan ikke migreres automatisk: se `postmottak db repair`", highlight=False, soft_wrap=True)
        return NEEDS_A_PERSON
    if diagnosis.kind == schema_state.STAMP:
        console.print(f"vil sette versjonsraden til {diagnosis.revision}", highlight=False, soft_wrap=True)
    if diagnosis.kind == schema_state.ROLL_BACK:
        where = "ved oppstart" if diagnosis.repairable_at_start else "med `postmottak db repair`"
        console.print(f"vil fjerne det den avbrutte migreringen laget ({where})", highlight=False, soft_wrap=True)
    if not plan.pending:
        console.print("ingen migreringer å kjøre", highlight=False, soft_wrap=True)
    for revision, message in plan.pending:
        console.print(f"vil kjøre {revision}: {message}", highlight=False, soft_wrap=True)
    if plan.pending and url.startswith("sqlite"):
        console.print(
            "SQLite: sikkerhetskopi tas før første setning som endrer eksisterende rader eller bygger om en tabell",
            highlight=False,
            soft_wrap=True,
        )
    return 0


def _print_objects(diagnosis: schema_state.Diagnosis) -> None:
    for name in schema_state.object_names(diagnosis.missing):
        console.print(f"  mangler: {name}", highlight=False, soft_wrap=True)
    for name in schema_state.object_names(diagnosis.extra):
        console.print(f"  i tillegg: {name}", highlight=False, soft_wrap=True)
    for table in diagnosis.stray_temp_tables:
        console.print(f"  halvferdig tabellkopi: {table}", highlight=False, soft_wrap=True)


def repair_command(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what was found and what would be done."),
) -> None:
    """Repair a half-migrated case database (an interrupted migration of an older version), then migrate."""
    url = cli(ctx).settings().database_url
    status = print_plan(url)
    if status or dry_run:
        if status:
            err.print(
                "ingen automatisk reparasjon: legg tilbake siste sikkerhetskopi (SQLite: <database>.*.bak), "
                "eller rett skjemaet og kjør `postmottak db repair` igjen",
                highlight=False,
                soft_wrap=True,
            )
        raise typer.Exit(status)
    db = Database(url)
    try:
        with db.translating_errors():
            report = db.upgrade(roll_back_data=True)
    finally:
        db.dispose()
    if report.backup:
        console.print(f"sikkerhetskopi: {report.backup}", highlight=False, soft_wrap=True)
    if report.repaired:
        console.print(f"reparert: {report.repaired}", highlight=False, soft_wrap=True)
    revision = report.applied[-1] if report.applied else report.start
    console.print(f"databasen er på revisjon {revision}", highlight=False, soft_wrap=True)
