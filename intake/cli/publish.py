"""`postmottak publish` (the publication package of a case) and `postmottak exempt set|lift|list` (exemption from
publication). The building logic lives in casefile.publication and casefile.exemptions."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Optional

import typer

from postmottak.intake.cli.context import cli, console, err

exempt_app = typer.Typer(help="Exemption from publication (unntatt offentlighet).", no_args_is_help=True)


def _user(user: Optional[str]) -> str:
    if user:
        return user
    try:
        return getpass.getuser()
    except Exception:  # no login name (e.g. a container without passwd entry)
        return "postmottak"


def publish_command(
    ctx: typer.Context,
    case: str = typer.Option(..., "--case", help="Case number, e.g. 22/414."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Folder to create (new or empty)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be published; write nothing."),
    archival: bool = typer.Option(
        True, "--archival-versions/--no-archival-versions", help="Make missing PDF/A versions first."
    ),
    user: Optional[str] = typer.Option(None, "--user", help="Who publishes (default: the OS user)."),
) -> None:
    """The publication package of a case: one PDF per public response, and a list (HTML, CSV) of respondents."""
    from postmottak.casefile import models as m
    from postmottak.casefile.cases import get_case
    from postmottak.casefile.noark5.archival import prepare_case
    from postmottak.casefile.publication import PublicationError, plan, private_sources, write

    if not dry_run and output is None:
        err.print("[red]Oppgi --output MAPPE, eller --dry-run for bare oversikten.[/red]", highlight=False)
        raise typer.Exit(2)
    db = cli(ctx).database()
    store = cli(ctx).store()
    actor = _user(user)
    rendered = None
    if archival and not dry_run:
        try:
            with db.session() as session:
                extra = private_sources(session, case)
        except LookupError as exc:
            err.print(f"[red]{exc}[/red]", highlight=False)
            raise typer.Exit(1) from None
        rendered = prepare_case(db, store, case, actor, extra_sources=extra).extra  # one LibreOffice run for all
    try:
        with db.session() as session:
            publication = plan(session, case, before_conversion=dry_run and archival)
            _print_plan(publication)
            if dry_run:
                console.print("Prøvekjøring: ingenting er skrevet.", highlight=False)
                return
            assert output is not None
            written = write(session, store, publication, output, rendered)
            case_id = get_case(session, case).id
            session.add(
                m.AuditEvent(
                    actor=actor,
                    action="publication_written",
                    case_id=case_id,
                    after={"filer": len(written), "publisert": len(publication.published)},
                    note=str(output),
                )
            )
    except (LookupError, PublicationError) as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"Publiseringspakken er skrevet til {output}: {len(written)} filer.", highlight=False)


def _print_plan(publication) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    table = Table(title=f"Publisering av sak {publication.case_number}", show_lines=False)
    for column in ("Journalnr.", "Avsender", "Publiseres", "Innhold / merknad"):
        table.add_column(column)
    for planned in publication.responses:
        if planned.kind == "exempt":
            status, content = "Nei", f"Unntatt offentlighet ({planned.legal_basis})"
        elif planned.filename:
            status = "Ja"
            content = f"{planned.filename}: " + ", ".join(planned.documents)
            if planned.converting:
                content += " | konverteres til PDF/A: " + ", ".join(planned.converting)
            if planned.left_out:
                content += " | utelatt: " + "; ".join(planned.left_out)
        else:
            status, content = "Nei", "; ".join(filter(None, [planned.problem, *planned.left_out]))
        kind = " (privatperson)" if planned.kind == "private" else ""
        table.add_row(planned.journal_number, planned.name + kind, status, content)
    console.print(table)


@exempt_app.command("set")
def exempt_set(
    ctx: typer.Context,
    intake_id: int = typer.Argument(..., help="The intake record (see `postmottak list`)."),
    basis: str = typer.Option(..., "--basis", help='Legal basis, e.g. "Offl. § 13 jf. fvl. § 13".'),
    document: Optional[int] = typer.Option(None, "--document", help="Only this document number of the mail."),
    screen_names: bool = typer.Option(False, "--screen-names", help="Screen the sender's name in public too."),
    code: Optional[str] = typer.Option(None, "--code", help="tilgangsrestriksjon (default: the paragraph, or UO)."),
    note: Optional[str] = typer.Option(None, "--note", help="Why (kept in the audit trail)."),
    user: Optional[str] = typer.Option(None, "--user", help="Who decides (default: the OS user)."),
) -> None:
    """Exempt a response (or one of its documents) from publication."""
    from postmottak.casefile.exemptions import ExemptionError, mark_exempt

    try:
        with cli(ctx).database().session() as session:
            row = mark_exempt(
                session,
                intake_id,
                basis,
                _user(user),
                document_number=document,
                screen_names=screen_names,
                access_code=code,
                note=note,
            )
            basis_text, access = row.legal_basis, row.access_code
    except (LookupError, ExemptionError) as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    target = f"dokument {document} i post {intake_id}" if document else f"post {intake_id}"
    console.print(
        f"{target.capitalize()} er unntatt offentlighet: {basis_text} (tilgangskode {access}).", highlight=False
    )


@exempt_app.command("lift")
def exempt_lift(
    ctx: typer.Context,
    intake_id: int = typer.Argument(...),
    document: Optional[int] = typer.Option(None, "--document", help="Only this document number of the mail."),
    user: Optional[str] = typer.Option(None, "--user", help="Who decides (default: the OS user)."),
) -> None:
    """Lift an exemption: the response (or document) is public again."""
    from postmottak.casefile.exemptions import ExemptionError, lift

    try:
        with cli(ctx).database().session() as session:
            lift(session, intake_id, _user(user), document_number=document)
    except (LookupError, ExemptionError) as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"Unntaket for post {intake_id} er opphevet.", highlight=False)


@exempt_app.command("list")
def exempt_list(ctx: typer.Context, case: str = typer.Option(..., "--case", help="Case number, e.g. 22/414.")) -> None:
    """Exemptions of a case, and the respondents' own requests not yet decided (suggestions)."""
    from postmottak.casefile.exemptions import suggest
    from postmottak.casefile.noark5.source import load_case

    with cli(ctx).database().session() as session:
        try:
            source = load_case(session, case)
        except LookupError as exc:
            err.print(f"[red]{exc}[/red]", highlight=False)
            raise typer.Exit(1) from None
        for item in source.entries:
            label = f"{item.entry.journal_number} (post {item.intake.id}) {item.sender_name}"
            if item.exemption is not None:
                console.print(
                    f"{label}: unntatt, {item.exemption.legal_basis}"
                    + (", navn skjermet" if item.exemption.screen_names else ""),
                    highlight=False,
                )
            for number, exemption in sorted(
                ((d.number, item.document_exemptions[d.id]) for d in item.documents if d.id in item.document_exemptions)
            ):
                console.print(f"{label}: dokument {number} unntatt, {exemption.legal_basis}", highlight=False)
            suggestion = suggest(item.form, source.case.form_profile)
            if suggestion is not None and item.exemption is None:
                console.print(
                    f"{label}: ber selv om unntak («{suggestion.reason}»); forslag: {suggestion.legal_basis}",
                    highlight=False,
                )


def register_publication_commands(app: typer.Typer) -> None:
    app.command("publish")(publish_command)
    app.add_typer(exempt_app, name="exempt")
