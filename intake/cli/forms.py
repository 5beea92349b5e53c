"""`postmottak forms learn BLANK --case NUMBER --output PROFILE.toml`: a form profile from the blank form."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from postmottak.casefile.labels import learned_field_rows
from postmottak.intake.cli.context import console, err

forms_app = typer.Typer(help="Consultation forms: learn a form profile from the blank form.", no_args_is_help=True)


@forms_app.command("learn")
def learn(
    blank: Path = typer.Argument(..., exists=True, dir_okay=False, help="The blank form (.docx or .pdf)."),
    case: str = typer.Option(..., "--case", help="The case number the form belongs to, e.g. 23/1234."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the profile (TOML)."),
    title: Optional[str] = typer.Option(None, "--title", help="The form's title (default: its first heading)."),
) -> None:
    """Find the form's headings, fields, questions, choice groups and checkbox tables; print them; write the
    profile (the same format as the packaged profiles, which a person may edit)."""
    from postmottak.parsers.forms.learn import LearnError, learn_profile, profile_to_toml

    name = output.name.removesuffix(".toml") or "skjema-" + re.sub(r"\W+", "-", case)
    try:
        profile = learn_profile(blank.read_bytes(), name=name, case_number=case, title=title, filename=blank.name)
    except LearnError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    table = Table(title=f"Skjema lært fra {blank.name}", show_header=True)
    table.add_column("Type")
    table.add_column("Ledetekst", overflow="fold")
    table.add_column("Valg", overflow="fold")
    for row in learned_field_rows(profile):  # the same words as the dashboard's "Ny høring" page
        table.add_row(*row)
    console.print(table)
    output.write_text(profile_to_toml(profile), encoding="utf-8")
    console.print(f"Skrev {output} ({len(profile.sections)} deler).", highlight=False)
