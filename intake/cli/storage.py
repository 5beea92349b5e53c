"""`postmottak storage migrate --to database|filesystem`: move the documents between backends while workers run."""

from __future__ import annotations

import typer

from postmottak.intake.cli.context import cli, console, err

storage_app = typer.Typer(help="The document store.", no_args_is_help=True)


@storage_app.command("migrate")
def migrate_command(
    ctx: typer.Context,
    to: str = typer.Option(..., "--to", help="database | filesystem"),
) -> None:
    """Copy every stored file to the other backend, each checked by its SHA-256 (no downtime; run it again after
    switching `[storage] backend` to copy what was written meanwhile)."""
    from postmottak.casefile.blobstore import migrate

    if to not in ("database", "filesystem"):
        err.print("--to must be database or filesystem", highlight=False)
        raise typer.Exit(2)
    settings = cli(ctx).settings()
    db = cli(ctx).database()
    report = migrate(db, settings.storage_path, to)  # type: ignore[arg-type]
    megabytes = report.bytes_copied / 1024 / 1024
    console.print(
        f"Filer: {report.files}, kopiert: {report.copied} ({megabytes:.1f} MB), fantes fra før: {report.already}, "
        f"feil: {len(report.problems)}",
        highlight=False,
    )
    for problem in report.problems:
        err.print(f"[red]{problem}[/red]", highlight=False)
    if report.problems:
        raise typer.Exit(1)
    if settings.storage.backend != to:
        console.print(
            f'Alle filer er kontrollert. Sett [storage] backend = "{to}", start arbeiderne på nytt, og kjør '
            "kommandoen en gang til for filer som kom til i mellomtiden.",
            highlight=False,
        )
