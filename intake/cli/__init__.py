"""The `postmottak` command: the Typer app assembled from the sub-command modules, and `main`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from postmottak.casefile.db import DatabaseUnavailable
from postmottak.intake.check import check_command
from postmottak.intake.cli import (
    archive,
    commands,
    dashboard,
    database,
    forms,
    notify,
    privacy,
    publish,
    receipts,
    retention,
    storage,
    workers,
)
from postmottak.intake.cli.context import CliContext, setup_logging

app = typer.Typer(
    help="postmottak: register consultation responses from the official mailbox into a case database.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config file (or $POSTMOTTAK_CONFIG)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    ctx.obj = CliContext(config=config, verbose=verbose)
    setup_logging(verbose)


app.registered_commands.extend(commands.app.registered_commands)  # run, import, status, export, parse
app.add_typer(commands.db_app, name="db")
app.add_typer(archive.case_app, name="case")
app.add_typer(archive.archive_app, name="archive")
app.command("journal")(archive.journal_command)
app.add_typer(receipts.receipts_app, name="receipts")
dashboard.register_dashboard_commands(app)  # serve, users, list, show, review
app.command("check")(check_command)
commands.db_app.command("repair")(database.repair_command)
app.registered_commands.extend(workers.workers_app.registered_commands)  # workers
app.add_typer(workers.mailboxes_app, name="mailboxes")
app.add_typer(storage.storage_app, name="storage")
app.add_typer(forms.forms_app, name="forms")
publish.register_publication_commands(app)  # publish, exempt
app.add_typer(retention.retention_app, name="retention")
app.add_typer(privacy.privacy_app, name="privacy")
app.command("notify")(notify.notify_command)  # staff digest and alerts


def main() -> None:
    try:
        app()
    except DatabaseUnavailable as exc:
        sys.stderr.write(f"postmottak: {exc}\n")  # one unwrapped line, for people and for log scrapers
        sys.exit(exc.exit_code)  # 3: the database needs a person (README: do not restart on it)
