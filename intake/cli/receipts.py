"""`postmottak receipts send|list|resend`: the receipt outbox from the command line.

Settings and the database come from the CLI context (intake/cli/context.py).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

import typer
from rich.table import Table

from postmottak.intake.cli.context import cli, console, err

receipts_app = typer.Typer(
    help="Receipts (kvitteringer): send pending ones, list them, resend failed ones.", no_args_is_help=True
)


STATUS_LABELS = {
    "pending": "venter",
    "sent": "sendt",
    "failed": "feilet",
    "suppressed": "ikke sendt",
    "bounced": "kom i retur",
}


@receipts_app.command("send")
def send(ctx: typer.Context) -> None:
    """Send the pending receipts that are due now (the worker also does this every cycle)."""
    from postmottak.intake.receipt_message import TemplateError
    from postmottak.intake.receipts import send_pending

    settings = cli(ctx).settings()
    if not settings.smtp.configured:
        err.print("[red]no SMTP server configured: set [smtp] host[/red]", highlight=False)
        raise typer.Exit(2)
    if not settings.receipts.enabled:
        err.print("receipts are disabled ([receipts] enabled = false)", highlight=False)
        raise typer.Exit(2)
    db = cli(ctx).database()
    try:
        counts = send_pending(settings, db)
    except (TemplateError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    console.print(
        f"Kvitteringer: sendt {counts.get('sent', 0)}, prøves igjen {counts.get('retry', 0)}, "
        f"feilet {counts.get('failed', 0)}, ikke sendt {counts.get('suppressed', 0)}",
        highlight=False,
    )
    raise typer.Exit(1 if counts.get("failed") else 0)


@receipts_app.command("list")
def list_command(
    ctx: typer.Context,
    status: Optional[str] = typer.Option(None, "--status", "-s", help="pending, sent, failed, suppressed or bounced."),
    limit: int = typer.Option(50, "--limit", "-n", help="Show at most this many (newest first)."),
) -> None:
    """List receipts, newest first, with status, attempts and the reason or server reply."""
    from postmottak.casefile import outbox

    if status is not None and status not in STATUS_LABELS:
        err.print(f"unknown status {status!r}; use {', '.join(STATUS_LABELS)}", highlight=False)
        raise typer.Exit(2)
    db = cli(ctx).database()
    with db.session() as session:
        rows = outbox.list_receipts(session, status=status, limit=limit)
        counts = outbox.counts_by_status(session)
    table = Table(title="Kvitteringer", show_header=True)
    for column in ("Nr", "Post", "Status", "Til", "Forsøk", "Sendt", "Årsak / svar"):
        table.add_column(column, overflow="fold")
    for row in rows:
        sent = row.sent_at.isoformat(timespec="seconds") if row.sent_at else ""
        detail = row.reason or row.smtp_response or ""
        table.add_row(
            str(row.id),
            str(row.intake_id),
            f"{STATUS_LABELS.get(row.status, row.status)} ({row.status})",
            row.to_address or "",
            str(row.attempts),
            sent,
            detail,
        )
    console.print(table)
    summary = ", ".join(f"{STATUS_LABELS.get(k, k)} {v}" for k, v in sorted(counts.items())) or "ingen"
    console.print(f"Totalt: {summary}", highlight=False)


@receipts_app.command("resend")
def resend(
    ctx: typer.Context,
    receipt_id: int = typer.Argument(..., help="Receipt number (from `postmottak receipts list`)."),
    to: Optional[str] = typer.Option(None, "--to", help="Send to this corrected address instead."),
) -> None:
    """Queue a failed, bounced or suppressed receipt again; it goes out with the next send."""
    from postmottak.casefile import outbox

    db = cli(ctx).database()
    try:
        with db.session() as session:
            outbox.requeue(session, receipt_id, datetime.now(timezone.utc), to_address=to)
    except outbox.ResendRefused as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"Kvittering {receipt_id} sendes på nytt ved neste utsending.", highlight=False)
