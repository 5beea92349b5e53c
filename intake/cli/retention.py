"""`postmottak retention run [--dry-run]`: delete the raw content of mail that is not a response, by the rules in
`[retention]` (casefile/retention.py)."""

from __future__ import annotations

import getpass
from typing import Optional

import typer

from postmottak.intake.cli.context import cli, console, err

retention_app = typer.Typer(
    help="Retention: delete raw mail that is not a response after the configured days.", no_args_is_help=True
)
KIND_LABELS = {"ignored": "ignorert", "duplicate": "duplikat", "unrelated": "uten sak"}


@retention_app.command("run")
def retention_run(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be deleted; change nothing."),
    user: Optional[str] = typer.Option(None, "--user", help="Who runs it (default: the OS user)."),
) -> None:
    """Delete raw mail and attachments of ignored, duplicate and unrelated mail older than configured."""
    from postmottak.casefile import retention
    from postmottak.intake.retention import configured_days

    settings = cli(ctx).settings()
    days = configured_days(settings)
    if all(value is None for value in days.values()):
        err.print(
            "Ingen oppbevaringsregler er satt ([retention] ignored_days, duplicate_days, unrelated_days).",
            highlight=False,
        )
        raise typer.Exit(1)
    try:
        actor = user or getpass.getuser()
    except Exception:  # no login name
        actor = "postmottak"
    report = retention.run(cli(ctx).database(), cli(ctx).store(), days, actor, dry_run=dry_run)
    rules = ", ".join(f"{KIND_LABELS[k]} etter {v} dager" for k, v in days.items() if v is not None)
    counts = ", ".join(f"{KIND_LABELS[k]}: {n}" for k, n in sorted(report.candidates.items())) or "ingen"
    if dry_run:
        console.print(
            f"Prøvekjøring ({rules}). Innholdet ville blitt slettet for {sum(report.candidates.values())} "
            f"poster ({counts}). Ingenting er endret.",
            highlight=False,
        )
        if report.record_ids:
            console.print("Poster: " + ", ".join(str(i) for i in report.record_ids), highlight=False, soft_wrap=True)
        return
    console.print(
        f"Oppbevaringsregler ({rules}): innholdet slettet for {report.deleted_records} poster ({counts}), "
        f"{report.deleted_files} filer slettet, {report.kept_files} beholdt (brukt av andre poster), "
        f"{report.repaired} avbrutte slettinger fullført.",
        highlight=False,
    )
