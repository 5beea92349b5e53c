"""`postmottak case close|reopen`, `postmottak archive export|validate` and `postmottak journal`.

Settings and the database come from the CLI context (intake/cli/context.py).
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Optional

import typer

from postmottak.intake.cli.context import cli, console, err

case_app = typer.Typer(help="Close and reopen cases (saksmapper).", no_args_is_help=True)
archive_app = typer.Typer(help="Noark 5 archival extract: export and validate.", no_args_is_help=True)


def _default_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (e.g. a container without passwd entry)
        return "postmottak"


@case_app.command("close")
def case_close(
    ctx: typer.Context,
    number: str = typer.Argument(..., help="Case number, e.g. 22/414."),
    user: Optional[str] = typer.Option(None, "--user", help="Who closes the case (default: the OS user)."),
    archival: bool = typer.Option(
        True, "--archival-versions/--no-archival-versions", help="Convert every document to PDF/A-2b after closing."
    ),
) -> None:
    """Close a case: records closing date and user (required for the archival extract), then makes PDF/A versions."""
    from postmottak.casefile.noark5.closing import CaseStateError, close

    db = cli(ctx).database()
    try:
        with db.session() as session:
            case = close(session, number, user or _default_user())
            closed_at, closed_by = case.closed_at, case.closed_by
    except (LookupError, CaseStateError) as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    assert closed_at is not None
    console.print(
        f"Sak {number} er avsluttet {closed_at.isoformat(timespec='seconds')} av {closed_by}.", highlight=False
    )
    if archival:
        _prepare_archival_versions(ctx, number, closed_by or _default_user())


def _prepare_archival_versions(ctx: typer.Context, number: str, actor: str) -> None:
    """PDF/A-2b versions of every document of the case; failures are listed and block nothing else."""
    from postmottak.casefile.noark5.archival import prepare_case

    console.print("Lager arkivversjoner (PDF/A-2b) av dokumentene ...", highlight=False)
    summary = prepare_case(cli(ctx).database(), cli(ctx).store(), number, actor)
    console.print(
        f"Arkivversjoner: {summary.converted} konvertert, {summary.as_received} mottatt som PDF/A, "
        f"{summary.already_done} laget tidligere, {len(summary.failures)} feilet.",
        highlight=False,
    )
    for failure in summary.failures:
        console.print(
            f"[yellow]Konvertering feilet: {failure.journal_number} dokument {failure.document_number} "
            f"«{failure.title}»: {failure.error}[/yellow]",
            highlight=False,
            soft_wrap=True,
        )


@case_app.command("reopen")
def case_reopen(
    ctx: typer.Context,
    number: str = typer.Argument(..., help="Case number, e.g. 22/414."),
    user: Optional[str] = typer.Option(None, "--user", help="Who reopens the case (default: the OS user)."),
) -> None:
    """Reopen a closed case."""
    from postmottak.casefile.noark5.closing import CaseStateError, reopen

    db = cli(ctx).database()
    try:
        with db.session() as session:
            reopen(session, number, user or _default_user())
    except (LookupError, CaseStateError) as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"Sak {number} er gjenåpnet.", highlight=False)


def _options(creator_id: Optional[str], creator_name: Optional[str], unit: Optional[str], officer: Optional[str]):  # type: ignore[no-untyped-def]
    from postmottak.casefile.noark5.options import ArchiveOptions

    return ArchiveOptions.from_environment(
        creator_id=creator_id, creator_name=creator_name, unit=unit, case_officer=officer
    )


@archive_app.command("export")
def archive_export(
    ctx: typer.Context,
    case: str = typer.Option(..., "--case", help="Case number, e.g. 22/414 (must be closed)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to create (must not exist or be empty)."),
    creator_id: Optional[str] = typer.Option(None, "--creator-id", help="arkivskaperID (organisation number)."),
    creator_name: Optional[str] = typer.Option(None, "--creator-name", help="arkivskaperNavn."),
    unit: Optional[str] = typer.Option(None, "--unit", help="administrativEnhet."),
    case_officer: Optional[str] = typer.Option(
        None, "--case-officer", help="saksansvarlig (default: who closed the case)."
    ),
    archival: bool = typer.Option(
        True,
        "--archival-versions/--no-archival-versions",
        help="Make missing PDF/A-2b versions first (done once per document; failed ones are tried again).",
    ),
) -> None:
    """Write the Noark 5 extract (avleveringspakke) of a closed case, then validate it."""
    from postmottak.casefile.blobstore import open_store
    from postmottak.casefile.noark5.extract import ExtractError, export_case
    from postmottak.casefile.noark5.validate import validate_extract

    settings = cli(ctx).settings()
    db = cli(ctx).database()
    store = open_store(settings.storage.backend, settings.storage_path, db)
    if archival:
        from postmottak.casefile.cases import get_case

        try:
            with db.session() as session:
                closed = get_case(session, case).status == "closed"
        except LookupError as exc:
            err.print(f"[red]{exc}[/red]", highlight=False)
            raise typer.Exit(1) from None
        if closed:  # an open case is refused below; convert nothing for it
            _prepare_archival_versions(ctx, case, _default_user())
    try:
        with db.session() as session:
            result = export_case(session, store, case, output, _options(creator_id, creator_name, unit, case_officer))
    except (LookupError, ExtractError) as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    console.print(
        f"Uttrekk skrevet til {result.path}: {result.registrations} journalposter, {result.document_files} dokumentfiler, "
        f"{result.changes} endringer.",
        highlight=False,
    )
    if result.not_archive_format:
        console.print(
            f"{len(result.not_archive_format)} dokument(er) er ikke i godkjent arkivformat og har ingen arkivversjon; "
            "se uttrekksrapport.txt.",
            highlight=False,
        )
    report = validate_extract(result.path)
    _print_report(report)
    raise typer.Exit(0 if report.ok else 1)


@archive_app.command("validate")
def archive_validate(folder: Path = typer.Argument(..., help="An extract folder.")) -> None:
    """Validate an extract: every XML against the official schemas, every file's checksum and size, no strays."""
    from postmottak.casefile.noark5.validate import validate_extract

    report = validate_extract(folder)
    _print_report(report)
    raise typer.Exit(0 if report.ok else 1)


def _print_report(report) -> None:  # type: ignore[no-untyped-def]
    for problem in report.problems:
        style = "red" if problem.severity == "error" else "yellow"
        console.print(f"[{style}]{problem}[/{style}]", highlight=False, soft_wrap=True)
    summary = (
        f"{report.xml_files_validated} XML-filer validert, {report.document_files_checked} dokumentfiler kontrollert "
        f"({report.pdfa_files_checked} som PDF/A): "
        f"{len(report.errors)} feil, {len(report.problems) - len(report.errors)} advarsler."
    )
    if report.ok:
        console.print(f"[green]Uttrekket er gyldig.[/green] {summary}", highlight=False)
    else:
        console.print(f"[red]Uttrekket er ikke gyldig.[/red] {summary}", highlight=False)


def journal_command(
    ctx: typer.Context,
    case: str = typer.Option(..., "--case", help="Case number, e.g. 22/414."),
    format: str = typer.Option("csv", "--format", "-f", help="csv, json or xml (Noark 5 offentligJournal)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default: standard output)."),
) -> None:
    """The public journal (offentlig journal) of a case, private persons screened, for publication."""
    from postmottak.casefile.noark5.journal import EmptyJournalError, render_public_journal
    from postmottak.casefile.noark5.source import load_case

    if format not in ("csv", "json", "xml"):
        err.print(f"unknown journal format {format!r}; use csv, json or xml", highlight=False)
        raise typer.Exit(2)
    db = cli(ctx).database()
    try:
        with db.session() as session:
            data = render_public_journal(load_case(session, case), format, _options(None, None, None, None))
    except (LookupError, EmptyJournalError) as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    if output:
        output.write_bytes(data)
        err.print(f"wrote the public journal of {case} to {output}", highlight=False)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
