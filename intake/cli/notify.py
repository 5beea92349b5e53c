"""`postmottak notify`: send the staff digest and alerts that are due now. `postmottak run` does this itself each
interval; the command is for a worker run with `--once` from a timer, or to check the settings by hand."""

from __future__ import annotations

import typer

from postmottak.intake.cli.context import cli, console, err


def notify_command(ctx: typer.Context) -> None:
    """Send the daily digest and any alerts that are due to the staff recipients (notifications section)."""
    from postmottak.intake.digest import notify

    report = notify(cli(ctx).settings(), cli(ctx).database())
    if report.error:
        err.print(f"[red]Varsler kunne ikke sendes: {report.error}[/red]", highlight=False)
        raise typer.Exit(1)
    if report.sent:
        for subject in report.sent:
            console.print(f"Sendt til {len(report.recipients)} mottaker(e): {subject}", highlight=False)
    else:
        console.print("Ingen varsler eller sammendrag å sende nå.", highlight=False)
