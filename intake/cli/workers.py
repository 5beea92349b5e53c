"""`postmottak workers` and `postmottak mailboxes`: who reads which mailbox, and each mailbox's configuration
checked; `run` with several mailboxes (or `[leases] enabled`) goes through `run_fleet`."""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from postmottak import bootstrap
from postmottak.config.settings import Settings
from postmottak.intake.cli.context import cli, console, err

workers_app = typer.Typer()  # merged into the main app by intake/cli/__init__.py
mailboxes_app = typer.Typer(help="The configured mailboxes.", no_args_is_help=True)

OSLO = ZoneInfo("Europe/Oslo")


def run_fleet(settings: Settings, *, once: bool) -> None:
    """This process as one worker among several: leases decide which mailboxes it reads."""
    delay = 5.0
    while True:
        try:
            fleet = bootstrap.build_fleet(settings)
            break
        except bootstrap.DatabaseUnavailable as exc:
            if once:
                raise
            logging.getLogger("intake").error("%s; trying again in %.0f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 300.0)
    if once:
        raise typer.Exit(0 if fleet.run_once() else 1)

    def _stop(signum: int, _frame: object) -> None:
        logging.getLogger("intake").info(
            "received %s; finishing the running cycles and stopping", signal.Signals(signum).name
        )
        fleet.stopping.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    fleet.run()


@workers_app.command("workers")
def workers_command(
    ctx: typer.Context,
    stopped: bool = typer.Option(False, "--stopped", help="Also workers that stopped in the last 24 hours."),
) -> None:
    """List the workers, the mailboxes each one reads and its last heartbeat."""
    from datetime import timedelta

    from postmottak.casefile import leases

    db = cli(ctx).database()
    settings = cli(ctx).settings()
    with db.session() as session:
        now = leases.db_now(session)
        since = now - timedelta(hours=24) if stopped else now
        workers, rows = leases.overview(session, since=since)
    live_after = now.timestamp() - settings.leases.seconds
    table = Table(title="Arbeidere", show_header=True)
    for column in (
        "Arbeider",
        "Vert",
        "PID",
        "Startet",
        "Siste livstegn",
        "Tilstand",
        "Postkasser",
        "Skrivinger",
        "Avvist",
    ):
        table.add_column(column)
    for worker in workers:
        if worker.stopped_at is not None:
            state = "stoppet"
        elif worker.heartbeat_at.timestamp() > live_after:
            state = "i live"
        else:
            state = "borte"
        table.add_row(
            worker.id,
            worker.host,
            str(worker.pid),
            _local(worker.started_at),
            f"{_local(worker.heartbeat_at)} ({now.timestamp() - worker.heartbeat_at.timestamp():.0f} s siden)",
            state,
            ", ".join(worker.mailboxes) or "-",
            str(worker.commits),
            str(worker.rejected),
        )
    console.print(table)
    boxes = Table(title="Postkasser", show_header=True)
    for column in ("Postkasse", "Leses av", "Token", "Utløper"):
        boxes.add_column(column)
    configured = settings.mailbox_names()
    by_name = {row.mailbox: row for row in rows}
    for name in configured:
        row = by_name.get(name)
        if row is None or row.holder is None or row.expires_at is None or row.expires_at <= now:
            holder, expires = "ingen", "-"
        else:
            holder, expires = str(row.holder), _local(row.expires_at)
        boxes.add_row(name, holder, str(row.token) if row else "0", expires)
    console.print(boxes)
    unread = [name for name in configured if by_name.get(name) is None or by_name[name].holder is None]
    if unread:
        err.print(f"Ingen arbeider leser: {', '.join(unread)}", highlight=False)


@mailboxes_app.command("list")
def mailboxes_list(ctx: typer.Context) -> None:
    """The configured mailboxes: source, cases served, reader, last poll and problems, mail by status."""
    from postmottak.casefile.fleet_status import mailbox_status

    settings = cli(ctx).settings()
    db = cli(ctx).database()
    with db.session() as session:
        rows = mailbox_status(session, settings.mailbox_sources())
    table = Table(title="Postkasser", show_header=True)
    columns = ("Postkasse", "Kilde", "Saker", "Leses av", "Siste henting", "Siste vellykkede", "Siste feil")
    for column in columns:
        table.add_column(column, overflow="fold")
    for column in ("Registrert", "Til vurdering", "Feilet", "Prøves igjen", "Venter på flytting"):
        table.add_column(column, justify="right")
    for box in rows:
        cases = ", ".join(case.number for case in settings.for_mailbox(box.name).cases) if box.name else "-"
        problem = "; ".join(text for text in (box.last_error, box.server_problem) if text)
        table.add_row(
            box.name or "(ikke i oppsettet)",
            box.source_key,
            cases or "ingen",
            (box.holder or "ingen") if settings.uses_leases and box.name else "-",
            _local(box.last_poll_at),
            _local(box.last_success_at),
            problem,
            str(box.by_status.get("registered", 0)),
            str(box.by_status.get("needs_review", 0)),
            str(box.by_status.get("failed", 0)),
            str(box.retrying),
            str(box.moves_pending),
        )
    console.print(table)


@mailboxes_app.command("check")
def mailboxes_check(
    ctx: typer.Context, name: str = typer.Argument(None, help="One mailbox (default: every configured mailbox).")
) -> None:
    """`check` for each mailbox: token, IMAP login and folder, SMTP login, nothing changed."""
    from postmottak.intake.check import print_steps, run_checks

    settings = cli(ctx).settings()
    names = [name] if name else settings.mailbox_names()
    problems = 0
    for mailbox in names:
        try:
            box = settings.for_mailbox(mailbox)
        except KeyError:
            err.print(f"[red]ukjent postkasse: {mailbox}[/red]", highlight=False)
            raise typer.Exit(2) from None
        console.print(f"[bold]Postkasse {mailbox}[/bold]", highlight=False)
        steps = run_checks(box)
        print_steps(steps)
        problems += sum(1 for step in steps if not step.ok)
    if problems:
        console.print(f"{problems} problem(er) funnet.", highlight=False)
        raise typer.Exit(1)
    console.print("Konfigurasjonen virker for alle postkassene.", highlight=False)


def _local(stamp: datetime | None) -> str:
    if stamp is None:
        return "aldri"
    return stamp.astimezone(OSLO).strftime("%d.%m.%Y %H:%M:%S")


__all__ = ["mailboxes_app", "run_fleet", "workers_app"]
