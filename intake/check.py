"""`postmottak check`: try the configuration end to end without changing anything, and explain each failure.

Gets an OAuth2 token (when configured) and shows its expiry, logs in to IMAP and looks at the folder (STATUS only:
no SELECT, nothing created, moved or flagged), logs in to SMTP and quits without sending. Every failure comes with
a plain-words explanation of the likely cause. Registered in intake/cli/__init__.py. One exception to "nothing changes":
with the refresh_token flow the provider may rotate the refresh token, which is then stored as in every run.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime, timezone

import typer
from imapclient.exceptions import IMAPClientError, LoginError
from rich.console import Console
from rich.markup import escape

from postmottak.config.settings import Settings
from postmottak.intake.sources.imap_server import (
    RIGHT_CREATE,
    RIGHT_DELETE_MESSAGE,
    RIGHT_EXPUNGE,
    RIGHT_INSERT,
    ServerOffer,
    idle_behaviour,
    missing_rights,
    parent_folder,
    resolve_folder,
)

console = Console(soft_wrap=True)  # long explanations stay on one line each


@dataclass
class Step:
    name: str
    ok: bool
    detail: str
    hint: str = ""
    warning: bool = False  # ok, but worth a look


def run_checks(settings: Settings) -> list[Step]:
    from postmottak.intake.oauth2 import OAuth2Error, TokenClient, explain, token_client

    steps: list[Step] = []
    tokens: TokenClient | None = None
    token_failed = False
    if "oauth2" in (settings.imap.auth if settings.imap.configured else "", settings.smtp.auth):
        tokens = token_client(settings)
        try:
            token = tokens.token()
        except OAuth2Error as exc:
            token_failed = True
            steps.append(Step("OAuth2 token", False, str(exc), explain(exc)))
        else:
            left = token.expires_at - datetime.now(timezone.utc).timestamp()
            expires = token.expires.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
            steps.append(
                Step(
                    "OAuth2 token",
                    True,
                    f"issued by {settings.oauth2.token_url} ({settings.oauth2.flow}); expires {expires} "
                    f"(in {_duration(left)}); renewed automatically",
                )
            )
    steps.extend(_check_source(settings, tokens, token_failed and settings.imap.auth == "oauth2"))
    steps.append(_check_smtp(settings, tokens, token_failed and settings.smtp.auth == "oauth2"))
    return steps


# ------------------------------------------------------------------------------------------ IMAP


def _check_source(settings: Settings, tokens, skip: bool) -> list[Step]:  # type: ignore[no-untyped-def]
    from postmottak.bootstrap import mail_source as make_source
    from postmottak.intake.oauth2 import OAuth2Error
    from postmottak.intake.sources.imap import ImapSource

    imap = settings.imap
    if not imap.configured:
        path = settings.folder_path
        if path is None:
            return [Step("Mail source", False, "none configured", "set [imap] host (or [folder] path for an export)")]
        if not path.exists():
            return [Step("Mail source", False, f"folder export {path} does not exist", "check [folder] path")]
        return [Step("Mail source", True, f"folder export {path} ({settings.folder.format})")]
    where = f"{imap.host}:{imap.port} ({imap.security}) as {imap.username!r} with {imap.auth}"
    if skip:
        return [Step("IMAP", False, f"{where}: not tried, there is no OAuth2 token", "fix the OAuth2 token first")]
    source = make_source(settings)
    assert isinstance(source, ImapSource)
    try:
        client = source.connect()
    except Exception as exc:
        root = _root(exc)
        detail = root if isinstance(root, OAuth2Error) else exc  # the wrapper repeats the explanation
        return [Step("IMAP", False, f"{where}: {detail}", _explain_imap(exc, settings))]
    steps = [Step("IMAP", True, f"logged in to {where}")]
    try:
        steps.append(_server_offer(client, settings))
        idle = client.has_capability("IDLE")
        if imap.idle and not idle:
            steps.append(
                Step(
                    "IMAP IDLE",
                    True,
                    "not offered by the server: new mail waits for the poll "
                    f"(every {settings.schedule.interval_seconds} s)",
                    warning=True,
                )
            )
        elif imap.idle:
            behaviour = idle_behaviour(client.welcome)
            steps.append(
                Step(
                    "IMAP IDLE",
                    True,
                    f"offered: new mail is processed at once; IDLE is renewed every "
                    f"{imap.idle_timeout_seconds} s" + (f". {behaviour}" if behaviour else ""),
                    warning=bool(behaviour),
                )
            )
        steps.append(_check_folder(client, imap.folder, settings))
        if imap.processed_folder:
            steps.append(_check_processed_folder(client, imap.folder, imap.processed_folder))
    except Exception as exc:
        steps.append(Step("IMAP folder", False, str(exc), _explain_imap(exc, settings)))
    finally:
        try:
            client.logout()
        except Exception:
            pass
    return steps


def _check_folder(client, folder: str, settings: Settings) -> Step:  # type: ignore[no-untyped-def]
    try:
        status = client.folder_status(folder, [b"MESSAGES", b"UIDVALIDITY"])
    except IMAPClientError as exc:
        names = sorted(_folder_name(entry) for entry in client.list_folders())
        shown = ", ".join(repr(name) for name in names[:20]) + (" ..." if len(names) > 20 else "")
        return Step(
            "IMAP folder",
            False,
            f"{folder!r}: {_text(exc)}",
            f"the folder {folder!r} does not exist for this user; folders found: {shown or 'none'}. "
            "Check [imap] folder (and the username: for a shared mailbox, its own address)",
        )
    return Step("IMAP folder", True, f"{folder!r} has {int(status[b'MESSAGES'])} message(s)")


def _server_offer(client, settings: Settings) -> Step:  # type: ignore[no-untyped-def]
    """What the server offers and what postmottak will use of it."""
    offer = ServerOffer.from_capabilities(client.capabilities())
    uses = []
    if settings.imap.processed_folder:
        uses.append(f"{offer.move_method} for the processed folder")
    if settings.imap.idle and offer.has("IDLE"):
        uses.append("IDLE for new mail")
    else:
        uses.append(f"polling every {settings.schedule.interval_seconds} s")
    uses.append("NAMESPACE for folder names" if offer.has("NAMESPACE") else "folder names as written")
    detail = f"offers {offer.summary()}; postmottak uses {', '.join(uses)} (CONDSTORE and LITERAL+ are not needed)"
    if offer.gmail:
        detail += (
            "; Gmail: labels are folders, one message in several labels is fetched once per folder "
            "polled and recognised as a duplicate by Message-ID and content hash"
        )
    return Step("IMAP server", True, detail)


def _check_processed_folder(client, inbox: str, configured: str) -> Step:  # type: ignore[no-untyped-def]
    """Which folder processed mail goes to, whether it exists, and whether the rights allow the move.
    Creates nothing: a missing folder is created by `postmottak run`."""
    from postmottak.intake.sources.imap import my_rights, server_namespace

    namespace = server_namespace(client)
    target = configured if client.folder_exists(configured) else resolve_folder(configured, namespace)
    where = f"{target!r}" if target == configured else f"{target!r} ({configured!r} among the user's own folders)"
    problems: list[str] = []
    notes: list[str] = []
    source_rights = my_rights(client, inbox)
    if source_rights is not None:
        lacking = missing_rights(source_rights, RIGHT_DELETE_MESSAGE + RIGHT_EXPUNGE)
        if lacking:
            problems.append(
                f"the user may not take mail out of {inbox!r} (rights {source_rights!r} lack "
                f"{', '.join(lacking)}): the server will refuse the move"
            )
    if client.folder_exists(target):
        rights = my_rights(client, target)
        if rights is not None and missing_rights(rights, RIGHT_INSERT):
            problems.append(
                f"the user may not put mail into {target!r} (rights {rights!r} lack i): the server will refuse the move"
            )
        state = f"{where} exists"
    else:
        state = f"{where} does not exist yet; `postmottak run` creates it (check creates nothing)"
        parent = parent_folder(target, namespace)
        while parent and not client.folder_exists(parent):  # CREATE makes missing levels too (RFC 3501 6.3.3)
            parent = parent_folder(parent, namespace)
        rights = my_rights(client, parent) if parent else None
        other = next((prefix for prefix in namespace.others if target.startswith(prefix)), None)
        if parent is None and other is not None:
            problems.append(
                f"it lies outside the user's own folders (under {other!r}, where nothing above it "
                "exists): the server will probably refuse to create it; write the name without a "
                "prefix to use the user's own folders"
            )
        elif parent and rights is None and client.has_capability("ACL"):
            problems.append(
                f"the rights on the folder above it, {parent!r}, cannot be read: the server will "
                "probably refuse to create it"
            )
        elif rights is not None and missing_rights(rights, RIGHT_CREATE):
            notes.append(
                f"the rights on {parent!r} ({rights!r}) lack k (create): the server may refuse to "
                "create it; create it by hand or grant the right"
            )
    if problems:
        return Step(
            "Processed folder",
            False,
            f"{state}; " + "; ".join(problems),
            "mail is still registered, but stays in the inbox until this is fixed: ask the mail "
            "administrator for the rights, or change [imap] processed_folder",
        )
    if notes:
        return Step("Processed folder", True, f"{state}; " + "; ".join(notes), warning=True)
    return Step("Processed folder", True, state, warning="does not exist" in state)


def _folder_name(entry) -> str:  # type: ignore[no-untyped-def]
    name = entry[2]
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)


def _explain_imap(exc: BaseException, settings: Settings) -> str:
    from postmottak.intake.oauth2 import OAuth2Error, explain

    imap = settings.imap
    root = _root(exc)
    if isinstance(root, OAuth2Error):
        return explain(root)
    if isinstance(root, LoginError):
        return (
            "the server refused the username or password: check [imap] username and password (password_file or "
            'POSTMOTTAK_IMAP__PASSWORD). Exchange Online and Google refuse passwords: use auth = "oauth2"'
        )
    network = _explain_network(root, imap.host, imap.port, "[imap]")
    if network:
        return network
    if isinstance(root, IMAPClientError):
        return f"the IMAP server refused a command: {_text(root)}"
    return "unexpected error; run with -v for details"


# ------------------------------------------------------------------------------------------ SMTP


def _check_smtp(settings: Settings, tokens, skip: bool) -> Step:  # type: ignore[no-untyped-def]
    from postmottak.intake.oauth2 import OAuth2Error, explain
    from postmottak.intake.receipts import _close, connect

    smtp = settings.smtp
    if not smtp.configured:
        detail = "not configured: receipts are not sent" if settings.receipts.enabled else "not configured"
        return Step("SMTP", True, detail, warning=settings.receipts.enabled)
    login = f"as {smtp.username!r} with {smtp.auth}" if smtp.username else "without login"
    where = f"{smtp.host}:{smtp.port} ({smtp.security}) {login}"
    if skip:
        return Step("SMTP", False, f"{where}: not tried, there is no OAuth2 token", "fix the OAuth2 token first")
    try:
        connection = connect(smtp, tokens)
    except OAuth2Error as exc:
        return Step("SMTP", False, f"{where}: {exc}", explain(exc))
    except smtplib.SMTPAuthenticationError as exc:
        if smtp.auth == "oauth2":
            hint = (
                "the provider issued a token but the SMTP server refused it (also a fresh one): check [smtp] "
                "username (the sending mailbox) and the app's permission to send (Exchange: SMTP.SendAsApp, "
                "and SMTP AUTH enabled for the mailbox)"
            )
        else:
            hint = "the server refused the username or password: check [smtp] username and password"
        return Step("SMTP", False, f"{where}: login refused ({exc.smtp_code} {_text(exc.smtp_error)})", hint)
    except smtplib.SMTPNotSupportedError as exc:
        return Step("SMTP", False, f"{where}: {exc}", "the server does not offer this: check [smtp] security and port")
    except Exception as exc:
        hint = _explain_network(_root(exc), smtp.host, smtp.port, "[smtp]") or "unexpected error; run with -v"
        return Step("SMTP", False, f"{where}: {_text(exc) or type(exc).__name__}", hint)
    _close(connection)
    return Step("SMTP", True, f"logged in to {where}; nothing sent")


# ------------------------------------------------------------------------------------------ shared


def _explain_network(root: BaseException, host: str, port: int, section: str) -> str:
    if isinstance(root, ssl.SSLCertVerificationError):
        return (
            f"the TLS certificate of {host} is not trusted ({root.verify_message}): check {section} host (it must "
            "match the certificate), install the CA certificate, or - for testing only - verify_tls = false"
        )
    if isinstance(root, ssl.SSLError):
        return (
            f"the TLS handshake with {host}:{port} failed ({root.reason or root}): check {section} security and "
            "port (ssl = implicit TLS, e.g. 993/465; starttls = e.g. 143/587)"
        )
    if isinstance(root, ConnectionRefusedError):
        return f"connection refused: nothing listens on {host}:{port}; check {section} host and port"
    if isinstance(root, socket.gaierror):
        return f"the host name {host!r} cannot be resolved: check {section} host and DNS"
    if isinstance(root, (TimeoutError, socket.timeout)):
        return f"{host}:{port} does not answer: a firewall may block it, or the port is wrong"
    if isinstance(root, OSError):
        return f"network error talking to {host}:{port}: check {section} host, port and the network"
    return ""


def _root(exc: BaseException) -> BaseException:
    """The original error behind SourceError wrappers (kept as __cause__ or __context__)."""
    from postmottak.intake.sources.base import SourceError

    seen = exc
    while isinstance(seen, SourceError):
        inner = seen.__cause__ or seen.__context__
        if inner is None:
            break
        seen = inner
    return seen


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    text = str(value)
    return text[2:-1] if text.startswith(("b'", 'b"')) else text


def print_steps(steps: list[Step]) -> None:
    for step in steps:
        mark = "[red]FAIL[/red]" if not step.ok else ("[yellow]NOTE[/yellow]" if step.warning else "[green]OK[/green]")
        console.print(f"{mark}  {escape(step.name)}: {escape(step.detail)}", highlight=False)
        if step.hint:
            console.print(f"      -> {escape(step.hint)}", highlight=False)


def check_command(ctx: typer.Context) -> None:
    """Test the configuration (OAuth2 token, IMAP login and folder, SMTP login) without changing anything."""
    from postmottak.config.settings import ConfigError, load_settings
    from postmottak.intake.cli.context import cli

    try:
        settings = load_settings(cli(ctx).config)
    except ConfigError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        raise typer.Exit(2) from None
    steps = run_checks(settings)
    print_steps(steps)
    failed = [step for step in steps if not step.ok]
    if failed:
        console.print(f"{len(failed)} problem(s) found.", highlight=False)
        raise typer.Exit(1)
    console.print("The configuration works.", highlight=False)
