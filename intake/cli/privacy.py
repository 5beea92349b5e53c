"""`postmottak privacy find|export|erase`: a data subject's requests for access (GDPR art. 15) and erasure (art. 17).
The logic lives in casefile/privacy.py; every request is audit-logged (the records involved, not the query)."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Optional

import typer

from postmottak.intake.cli.context import cli, console, err

privacy_app = typer.Typer(
    help="Data subject requests: find, export (art. 15) and erase (art. 17).", no_args_is_help=True
)
STATUS_LABELS = {
    "registered": "registrert",
    "needs_review": "til kontroll",
    "ignored": "ignorert",
    "duplicate": "duplikat",
    "failed": "feilet",
}


def _user(user: Optional[str]) -> str:
    if user:
        return user
    try:
        return getpass.getuser()
    except Exception:  # no login name
        return "postmottak"


def _print_hits(result) -> None:  # type: ignore[no-untyped-def]
    if not result.hits:
        console.print("Ingen poster inneholder opplysninger om denne personen.", highlight=False)
        return
    for hit in result.hits:
        where = ", ".join(hit.fields)
        journal = f" journalpost {hit.journal_number}" if hit.journal_number else ""
        deleted = " (innholdet er allerede slettet)" if hit.content_deleted else ""
        console.print(
            f"Post {hit.intake_id} ({STATUS_LABELS.get(hit.status, hit.status)}{journal}, mottatt "
            f"{hit.received_at[:10]}): {where}; dokumenter: {', '.join(hit.documents) or 'ingen'}{deleted}",
            highlight=False,
            soft_wrap=True,
        )


@privacy_app.command("find")
def privacy_find(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="E-mail address or name."),
    user: Optional[str] = typer.Option(None, "--user", help="Who handles the request (default: the OS user)."),
) -> None:
    """List every record, document and field holding the person's data."""
    from postmottak.casefile.privacy import PrivacyError, record_find

    try:
        with cli(ctx).database().session() as session:
            result = record_find(session, query, _user(user))
    except PrivacyError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    _print_hits(result)


@privacy_app.command("export")
def privacy_export(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="E-mail address or name."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to create (new or empty)."),
    user: Optional[str] = typer.Option(None, "--user", help="Who handles the request (default: the OS user)."),
) -> None:
    """Write out everything held about the person (innsyn.json and the stored mail and documents)."""
    from postmottak.casefile.privacy import PrivacyError, export

    store = cli(ctx).store()
    try:
        with cli(ctx).database().session() as session:
            result = export(session, store, query, output, _user(user))
    except PrivacyError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"Innsyn skrevet til {output}: {len(result.hits)} poster.", highlight=False)


@privacy_app.command("erase")
def privacy_erase(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="E-mail address or name."),
    yes: bool = typer.Option(False, "--yes", help="Erase; without it, only show what would be erased and kept."),
    user: Optional[str] = typer.Option(None, "--user", help="Who handles the request (default: the OS user)."),
) -> None:
    """Erase the person's data where no archival duty applies, and say why the rest is kept."""
    from postmottak.casefile.privacy import PrivacyError, erase

    store = cli(ctx).store()
    try:
        result = erase(cli(ctx).database(), store, query, _user(user), dry_run=not yes)
    except PrivacyError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    verb = "slettet" if yes else "vil bli slettet"
    console.print(
        f"{len(result.erased)} poster {verb}: {', '.join(map(str, result.erased)) or 'ingen'}.", highlight=False
    )
    for intake_id, why in result.kept:
        console.print(f"Post {intake_id} beholdes: {why}", highlight=False, soft_wrap=True)
    if not yes:
        console.print("Prøvekjøring: ingenting er endret. Kjør med --yes for å slette.", highlight=False)
