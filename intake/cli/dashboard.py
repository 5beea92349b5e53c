"""`postmottak serve | users | list | show | review`: the staff web app and its actions from the command line.

Registered by `register_dashboard_commands(app)`; settings and the database come from the CLI context. The
database is opened without the mail pipeline.
"""

from __future__ import annotations

import getpass
import sys
from datetime import datetime
from typing import Optional

import typer
from rich.table import Table

from postmottak.casefile import labels
from postmottak.casefile.clock import local_time
from postmottak.intake.cli.context import CLI_TIME, cli, console, err

users_app = typer.Typer(help="Staff users of the web app (archivist acts, reader sees).", no_args_is_help=True)
review_app = typer.Typer(
    help="Resolve review items: register, ignore, correct a field, resend a receipt.", no_args_is_help=True
)


ROLE_WORDS = {"archivist": "arkivar", "reader": "leser"}


def _actor(user: Optional[str]) -> str:
    return user or f"cli:{getpass.getuser()}"


def _local(stamp: datetime | None) -> str:
    return local_time(stamp, CLI_TIME)


# serve ----------------------------------------------------------------------------------------


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
) -> None:
    """Run the staff web app (put it behind a TLS-terminating proxy; cookies are Secure by default)."""
    import uvicorn

    from postmottak.casefile.storage import DocumentStore
    from postmottak.dashboard.app import create_app
    from postmottak.intake.manual_receipts import receipt_check

    settings = cli(ctx).settings()
    app = create_app(
        settings, cli(ctx).database(), receipt_check=receipt_check(settings, DocumentStore(settings.storage_path))
    )
    if not app.state.web.secure_cookies:
        err.print("note: session cookies are not marked Secure (web.secure_cookies = false)", highlight=False)
    uvicorn.run(app, host=host, port=port, proxy_headers=True, log_level="info")


# users ----------------------------------------------------------------------------------------


def _read_password() -> str:
    if sys.stdin.isatty():
        password: str = typer.prompt("Passord", hide_input=True, confirmation_prompt="Gjenta passord")
        return password
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    username: str = typer.Argument(..., help="Login name."),
    role: str = typer.Option(..., "--role", help="archivist (may act) or reader (may only look)."),
) -> None:
    """Create a user; the password is asked for (or read from standard input when it is not a terminal)."""
    from postmottak.casefile.users import UserError, add_user

    password = _read_password()
    db = cli(ctx).database()
    try:
        with db.session() as session:
            add_user(session, username, password, role)
    except UserError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"bruker {username} ({ROLE_WORDS.get(role, role)}) er opprettet", highlight=False)


@users_app.command("list")
def users_list(ctx: typer.Context) -> None:
    """List users and roles."""
    from postmottak.casefile.users import list_users

    db = cli(ctx).database()
    table = Table(title="Brukere")
    for column in ("Brukernavn", "Rolle", "Opprettet", "Status"):
        table.add_column(column)
    with db.session() as session:
        for user in list_users(session):
            table.add_row(
                user.username,
                ROLE_WORDS.get(user.role, user.role),
                _local(user.created_at),
                "sperret" if user.disabled else "aktiv",
            )
    console.print(table)


@users_app.command("password")
def users_password(ctx: typer.Context, username: str = typer.Argument(...)) -> None:
    """Set a new password (prompt, or standard input)."""
    from postmottak.casefile.users import UserError, set_password

    password = _read_password()
    db = cli(ctx).database()
    try:
        with db.session() as session:
            set_password(session, username, password)
    except UserError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"passordet til {username} er endret", highlight=False)


@users_app.command("disable")
def users_disable(
    ctx: typer.Context, username: str = typer.Argument(...), enable: bool = typer.Option(False, "--enable")
) -> None:
    """Lock a user out (their sessions end at the next request), or let them in again with --enable."""
    from postmottak.casefile.users import UserError, set_disabled

    db = cli(ctx).database()
    try:
        with db.session() as session:
            set_disabled(session, username, not enable)
    except UserError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"bruker {username} er {'åpnet igjen' if enable else 'sperret'}", highlight=False)


# list / show ----------------------------------------------------------------------------------


def list_records(
    ctx: typer.Context,
    status: Optional[str] = typer.Option(
        None, "--status", help="registered | needs_review | ignored | duplicate | failed"
    ),
    case: Optional[str] = typer.Option(None, "--case", help="Case number, e.g. 22/414."),
    late: Optional[bool] = typer.Option(None, "--late/--on-time", help="Only late, or only on-time responses."),
    receipt: Optional[str] = typer.Option(None, "--receipt", help="Receipt status."),
    org_type: Optional[str] = typer.Option(None, "--org-type", help="Organisation type from the form."),
    search: Optional[str] = typer.Option(None, "--search", "-s", help="Sender, organisation, subject or answer text."),
    page: int = typer.Option(1, "--page", min=1),
    per_page: int = typer.Option(50, "--per-page", min=1, max=500),
) -> None:
    """List intake records, newest first, with the same filters as the web app."""
    from postmottak.casefile import review

    db = cli(ctx).database()
    criteria = review.IntakeFilter(
        status=status,
        case_number=case,
        timeliness=None if late is None else ("late" if late else "on_time"),
        receipt_status=receipt,
        respondent_type=org_type,
        search=search,
        page=page,
        per_page=per_page,
    )
    with db.session() as session:
        result = review.search_intake(session, criteria)
        table = Table(title=f"Innkommende post ({result.total}, side {result.page}/{result.pages})")
        for column in ("ID", "Mottatt", "Avsender", "Emne", "Status", "Journalnr.", "Frist", "Kvittering"):
            table.add_column(column, overflow="fold")
        for record in result.records:
            timely = "" if record.status != "registered" else ("i tide" if record.on_time else "for sent")
            table.add_row(
                str(record.id),
                _local(record.received_at),
                record.sender_address or "",
                record.subject,
                labels.status_word(record.status),
                record.journal_entry.journal_number if record.journal_entry else "",
                timely,
                labels.receipt_label(record.receipt.status).lower() if record.receipt else "",
            )
    console.print(table)


def show_record(ctx: typer.Context, intake_id: int = typer.Argument(..., help="Intake record ID.")) -> None:
    """Everything about one mail: envelope, verdict, documents, form with corrections, receipt, history."""
    from postmottak.casefile import review
    from postmottak.casefile.form_values import answer_of, shown_value
    from postmottak.casefile.queries import corrected_form

    db = cli(ctx).database()
    with db.session() as session:
        try:
            record = review.load_record(session, intake_id)
        except LookupError:
            err.print(f"[red]no intake record {intake_id}[/red]", highlight=False)
            raise typer.Exit(1) from None
        corrections = review.corrections_for(session, intake_id)
        form = corrected_form(record, corrections)
        events = review.history(session, intake_id)
        lines = [
            f"Post {record.id}: {record.subject or '(uten emne)'}",
            f"Fra:        {record.sender_name or ''} <{record.sender_address or ''}>",
            f"Mottatt:    {_local(record.received_at)} (Europe/Oslo, {record.received_at_source})",
            f"Message-ID: {record.message_id or '-'}",
            f"Status:     {labels.status_word(record.status)}"
            + (f" ({labels.reason_text(record.reason)})" if record.reason else ""),
        ]
        if record.case:
            lines.append(f"Sak:        {record.case.number} {record.case.title}")
        if record.journal_entry:
            timely = "i tide" if record.on_time else "for sent"
            lines.append(f"Journalnr.: {record.journal_entry.journal_number} ({timely})")
        lines.append("Dokumenter:")
        for doc in record.documents:
            lines.append(
                f"  {doc.number}. {doc.filename or doc.title} ({doc.content_type}, {doc.size} B, sha256 {doc.sha256[:12]})"
            )
        if form is not None:
            lines.append(f"Skjema ({labels.form_status_label(record.form.form_status) if record.form else ''}):")
            corrected = {c.field for c in corrections}
            for spec in review.layout_of(record).specs:
                shown = shown_value(spec, answer_of(form, spec.key))
                mark = " [korrigert]" if spec.key in corrected else ""
                lines.append(f"  {spec.column}: {shown or '-'}{mark}")
            for warning in record.form.warnings if record.form else []:
                lines.append(f"  ADVARSEL: {warning}")
        if record.receipt:
            rc = record.receipt
            lines.append(
                f"Kvittering: {labels.receipt_label(rc.status).lower()} til {rc.to_address or '-'}"
                + (f", sendt {_local(rc.sent_at)}" if rc.sent_at else "")
            )
            if rc.reason:
                lines.append(f"  Hvorfor: {labels.reason_text(rc.reason)}")
            if rc.subject:
                lines.append(f"  Emne: {rc.subject}")
            if rc.body:
                lines.extend(f"  | {line}" for line in rc.body.splitlines())
        if events:
            lines.append("Historikk:")
            for event in events:
                lines.append(
                    f"  {_local(event.at)} {event.actor} {labels.action_label(event.action)}: "
                    f"{labels.changes(event.before)} -> {labels.changes(event.after)}"
                    + (f" ({event.note})" if event.note else "")
                )
    console.print("\n".join(lines), highlight=False, markup=False)


# review ---------------------------------------------------------------------------------------


def _run_action(ctx: typer.Context, action, success: str) -> None:  # type: ignore[no-untyped-def]
    from postmottak.casefile.review import ReviewError

    db = cli(ctx).database()
    try:
        with db.session() as session:
            action(session)
    except LookupError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    except ReviewError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    if success:
        console.print(success, highlight=False)


UserOption = typer.Option(None, "--user", help="Who is acting (for the audit trail); default cli:<login name>.")


@review_app.command("queue")
def review_queue(ctx: typer.Context) -> None:
    """What waits for a human: mail needing review, and registered forms with warnings."""
    from postmottak.casefile import review

    db = cli(ctx).database()
    with db.session() as session:
        queue = review.review_queue(session)
        table = Table(title=f"Til vurdering ({queue.total})")
        for column in ("ID", "Mottatt", "Avsender", "Emne", "Hvorfor"):
            table.add_column(column, overflow="fold")
        for record in queue.needs_review:
            table.add_row(
                str(record.id),
                _local(record.received_at),
                record.sender_address or "",
                record.subject,
                labels.reason_text(record.reason),
            )
        for record in queue.form_warnings:
            table.add_row(
                str(record.id),
                _local(record.received_at),
                record.sender_address or "",
                record.subject,
                "; ".join(record.form.warnings if record.form else []),
            )
    console.print(table)


@review_app.command("register")
def review_register(
    ctx: typer.Context,
    intake_id: int = typer.Argument(...),
    case: str = typer.Option(..., "--case", help="Case number, e.g. 22/414."),
    no_receipt: bool = typer.Option(False, "--no-receipt", help="Do not send a receipt."),
    note: Optional[str] = typer.Option(None, "--note"),
    user: Optional[str] = UserOption,
) -> None:
    """Register a mail from the review queue to a case (journal number, receipt)."""
    from postmottak.casefile import review
    from postmottak.casefile.labels import reason_text
    from postmottak.casefile.storage import DocumentStore
    from postmottak.intake.manual_receipts import receipt_check

    settings = cli(ctx).settings()
    check = receipt_check(settings, DocumentStore(settings.storage_path))
    outcome: dict[str, str] = {}

    def act(session) -> None:  # type: ignore[no-untyped-def]
        record = review.register_to_case(
            session, intake_id, case, _actor(user), send_receipt=not no_receipt, note=note, receipt_check=check
        )
        journal = record.journal_entry.journal_number if record.journal_entry else "–"
        outcome["text"] = f"Post {intake_id} er registrert på sak {case} med journalnummer {journal}."
        receipt = record.receipt
        if no_receipt:
            outcome["receipt"] = "Kvittering sendes ikke (--no-receipt)."
        elif receipt is not None and receipt.status == "pending":
            outcome["receipt"] = f"Kvittering sendes til {receipt.to_address}."
        elif receipt is not None:
            outcome["receipt"] = f"Kvittering sendes ikke: {reason_text(receipt.reason)}."

    _run_action(ctx, act, "")
    console.print(outcome.get("text", ""), highlight=False)
    if outcome.get("receipt"):
        console.print(outcome["receipt"], highlight=False)


@review_app.command("ignore")
def review_ignore(
    ctx: typer.Context,
    intake_id: int = typer.Argument(...),
    reason: str = typer.Option(..., "--reason", help="Why the mail is not registered."),
    user: Optional[str] = UserOption,
) -> None:
    """Mark a mail as ignored, with a reason."""
    from postmottak.casefile import review

    _run_action(
        ctx,
        lambda s: review.mark_ignored(s, intake_id, reason, _actor(user)),
        f"post {intake_id} er markert som ignorert",
    )


@review_app.command("correct")
def review_correct(
    ctx: typer.Context,
    intake_id: int = typer.Argument(...),
    field: str = typer.Argument(..., help="A field key of the form's profile (see `postmottak parse FILE --json`)."),
    value: str = typer.Argument(..., help="Corrected value ('' for empty)."),
    user: Optional[str] = UserOption,
) -> None:
    """Correct a parsed form field; the parsed value is kept beside the correction."""
    from postmottak.casefile import review

    _run_action(
        ctx,
        lambda s: review.correct_field(s, intake_id, field, value, _actor(user)),
        f"feltet {field} i post {intake_id} er korrigert",
    )


@review_app.command("resend-receipt")
def review_resend(ctx: typer.Context, intake_id: int = typer.Argument(...), user: Optional[str] = UserOption) -> None:
    """Put a mail's receipt back in the outbox (pending)."""
    from postmottak.casefile import review

    _run_action(
        ctx,
        lambda s: review.resend_receipt(s, intake_id, _actor(user)),
        f"kvitteringen for post {intake_id} sendes på nytt ved neste kjøring",
    )


@review_app.command("confirm-form")
def review_confirm(
    ctx: typer.Context,
    intake_id: int = typer.Argument(...),
    note: Optional[str] = typer.Option(None, "--note"),
    user: Optional[str] = UserOption,
) -> None:
    """Mark a form's warnings as checked (it leaves the review queue)."""
    from postmottak.casefile import review

    _run_action(
        ctx,
        lambda s: review.confirm_form(s, intake_id, _actor(user), note),
        f"skjemaet i post {intake_id} er merket som kontrollert",
    )


def register_dashboard_commands(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("list")(list_records)
    app.command("show")(show_record)
    app.add_typer(users_app, name="users")
    app.add_typer(review_app, name="review")
