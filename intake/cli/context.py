"""What every sub-command shares: the parsed global options, the settings and the case database, opened once.

Kept in the Typer (click) context object, so no module-level state and no import of the app assembly.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console

from postmottak import bootstrap
from postmottak.casefile.db import Database
from postmottak.casefile.storage import DocumentStore
from postmottak.config.settings import ConfigError, Settings

CLI_TIME = "%d.%m.%Y %H:%M:%S"  # how the commands show a stored time (Europe/Oslo)

console = Console()
err = Console(stderr=True)


@dataclass
class CliContext:
    config: Path | None = None
    verbose: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _database: Database | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = bootstrap.load_settings(self.config)
            except ConfigError as exc:
                err.print(f"[red]{exc}[/red]", markup=True, highlight=False)
                raise typer.Exit(2) from None
        return self._settings

    def database(self) -> Database:
        """The case database, migrated and with the configured cases in step (DatabaseUnavailable if not)."""
        if self._database is None:
            self._database = bootstrap.open_database(self.settings())
        return self._database

    def store(self) -> DocumentStore:
        """The configured document store (files, or the case database with `[storage] backend = "database"`)."""
        return bootstrap.document_store(self.settings(), self.database())


def cli(ctx: typer.Context) -> CliContext:
    found = ctx.find_object(CliContext)
    if found is None:  # a command invoked without the main callback (only in tests of a single command)
        found = ctx.ensure_object(CliContext)
    return found


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("imapclient", "apscheduler.executors.default", "pdfminer", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
