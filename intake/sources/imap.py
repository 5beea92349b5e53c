"""IMAP mail source (imapclient): incremental by UID, receive time from INTERNALDATE, never deletes."""

from __future__ import annotations

import ast
import imaplib
import logging
import socket
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from postmottak.intake.oauth2 import OAuth2Error, TokenClient, explain, imap_login
from postmottak.intake.sources.base import ConnectionLost, FetchedMail, LoginRefused, ServerStepRefused, SourceError
from postmottak.intake.sources.imap_server import Namespace, ServerOffer, parse_namespace, resolve_folder

log = logging.getLogger(__name__)

# Errors that mean "the connection or server is gone": reconnect and carry on.
CONNECTION_ERRORS = (imaplib.IMAP4.abort, OSError, socket.timeout, ssl.SSLError, EOFError)

# Upper bound of the mail bytes one FETCH brings in (besides batch_size): bounds the worker's memory.
FETCH_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    security: str  # ssl | starttls | none
    username: str
    password: str
    folder: str = "INBOX"
    processed_folder: str = ""
    verify_tls: bool = True
    timeout: float = 60.0
    batch_size: int = 50
    tokens: TokenClient | None = None  # set: log in with XOAUTH2 (username = the mailbox address) instead

    def __repr__(self) -> str:  # never show the password
        return f"ImapConfig(host={self.host!r}, port={self.port}, user={self.username!r}, folder={self.folder!r})"


def tls_context(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class ImapSession:
    incremental = True

    def __init__(self, client: IMAPClient, config: ImapConfig, uidvalidity: int) -> None:
        self.client = client
        self.config = config
        self.uidvalidity = uidvalidity
        self._namespace: Namespace | None = None
        self._ensured: dict[str, str] = {}  # configured folder name -> the server's name, known to exist

    def uids_after(self, last_uid: int) -> list[str]:
        # "N:*" always matches the highest UID even when it is below N (RFC 3501), so filter here.
        found = self.client.search(["UID", f"{last_uid + 1}:*"])
        return [str(uid) for uid in sorted(found) if uid > last_uid]

    def all_uids(self) -> list[str]:
        return [str(uid) for uid in sorted(self.client.search(["ALL"]))]

    def fetch(self, uids: Sequence[str]) -> Iterator[FetchedMail]:
        wanted = [int(uid) for uid in uids]
        for start in range(0, len(wanted), self.config.batch_size):
            for batch in self._by_size(wanted[start : start + self.config.batch_size]):
                response = self.client.fetch(batch, ["BODY.PEEK[]", "INTERNALDATE"])
                for uid in batch:  # in UID order; a UID expunged meanwhile is simply absent
                    data = response.pop(uid, None)  # a mail handed on is not kept alive by the batch
                    if data is None or b"BODY[]" not in data:
                        continue
                    yield FetchedMail(uid=str(uid), raw=bytes(data[b"BODY[]"]), internaldate=data.get(b"INTERNALDATE"))

    def _by_size(self, uids: list[int]) -> Iterator[list[int]]:
        """Split a batch so one FETCH carries at most FETCH_BYTES (a big mail goes alone): a batch of 30 MB mails
        must not be held in memory at once."""
        if len(uids) <= 1:
            yield uids
            return
        sizes = self.client.fetch(uids, ["RFC822.SIZE"])
        batch: list[int] = []
        batch_bytes = 0
        for uid in uids:
            size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
            if batch and batch_bytes + size > FETCH_BYTES:
                yield batch
                batch, batch_bytes = [], 0
            batch.append(uid)
            batch_bytes += size
        if batch:
            yield batch

    def move(self, uids: Sequence[str], folder: str) -> None:
        """Move to the processed folder with what the server offers: MOVE, else COPY + STORE \\Deleted and, with
        UIDPLUS, UID EXPUNGE of exactly these UIDs (a plain EXPUNGE would also remove mail others flagged)."""
        numbers = [int(uid) for uid in uids]
        if not numbers:
            return
        target = self.ensure_folder(folder)
        offer = ServerOffer.from_capabilities(self.client.capabilities())
        step = "MOVE" if offer.has("MOVE") else "COPY"
        try:
            if offer.has("MOVE"):
                self.client.move(numbers, target)
                return
            self.client.copy(numbers, target)
            step = "STORE \\Deleted"
            self.client.add_flags(numbers, [b"\\Deleted"], silent=True)
            if offer.has("UIDPLUS"):
                step = "UID EXPUNGE"
                self.client.expunge(numbers)
        except imaplib.IMAP4.abort:
            raise
        except IMAPClientError as exc:
            raise ServerStepRefused(
                f"flytting til IMAP-mappen «{target}» venter: serveren avviste {step} ({_text(exc)})"
            ) from None

    def namespace(self) -> Namespace:
        """The personal namespace (RFC 2342), asked once per connection."""
        if self._namespace is None:
            self._namespace = server_namespace(self.client)
        return self._namespace

    def ensure_folder(self, folder: str) -> str:
        """The server's name of `folder`, created when missing; a refused CREATE raises ServerStepRefused."""
        if folder in self._ensured:
            return self._ensured[folder]
        target = folder
        step = "LIST"
        try:
            exists = self.client.folder_exists(folder)
            if not exists:
                target = resolve_folder(folder, self.namespace())
                exists = target != folder and self.client.folder_exists(target)
            if not exists:
                step = "CREATE"
                self.client.create_folder(target)
                log.info("created the IMAP folder %r for processed mail", target)
        except imaplib.IMAP4.abort:
            raise
        except IMAPClientError as exc:
            raise ServerStepRefused(
                f"flytting til IMAP-mappen «{target}» venter: serveren avviste {step} ({_text(exc)})"
            ) from None
        self._ensured[folder] = target
        return target


class ImapSource:
    def __init__(self, config: ImapConfig) -> None:
        self.config = config
        self.source_key = f"imap://{config.username}@{config.host}:{config.port}/{config.folder}"
        self._tls: ssl.SSLContext | None = None

    def tls(self) -> ssl.SSLContext:
        # Built once: loading the system's CA certificates costs ~20 ms, half of an idle poll.
        if self._tls is None:
            self._tls = tls_context(self.config.verify_tls)
        return self._tls

    def connect(self) -> IMAPClient:
        config = self.config
        if not config.verify_tls and config.security != "none":
            log.warning("IMAP TLS certificate verification is switched off (imap.verify_tls = false)")
        context = self.tls() if config.security != "none" else None
        try:
            client = IMAPClient(
                config.host,
                port=config.port,
                ssl=config.security == "ssl",
                ssl_context=context if config.security == "ssl" else None,
                timeout=config.timeout,
            )
            client.normalise_times = False  # keep INTERNALDATE's own offset: tz-aware datetimes
            # imapclient switches imaplib's level-5 tracing on, which formats the repr of every response - a 30 MB
            # message twice over - only for a logger that normally drops it: keep it on only when that logs.
            if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
                client._imap.debug = 0
            if config.security == "starttls":
                client.starttls(context)
            if config.tokens is not None:
                try:
                    imap_login(client, config.username, config.tokens)
                except OAuth2Error as exc:
                    _close_quietly(client)
                    message = f"IMAP OAuth2 login for {config.username!r} failed: {exc} ({explain(exc)})"
                    raise SourceError(message) from exc
            else:
                client.login(config.username, config.password)
        except LoginError as exc:
            raise LoginRefused(f"IMAP login refused for {config.username!r} at {config.host}: {_text(exc)}") from None
        except (IMAPClientError, *CONNECTION_ERRORS) as exc:
            raise SourceError(f"cannot connect to IMAP {config.host}:{config.port}: {_text(exc)}") from None
        return client

    @contextmanager
    def open(self) -> Iterator[ImapSession]:
        client = self.connect()
        try:
            try:
                info = client.select_folder(self.config.folder)
            except IMAPClientError as exc:
                raise SourceError(f"cannot open IMAP folder {self.config.folder!r}: {_text(exc)}") from None
            yield ImapSession(client, self.config, int(info[b"UIDVALIDITY"]))
        except (imaplib.IMAP4.abort, EOFError) as exc:  # OSError and its kin pass on as they are (see pipeline)
            raise ConnectionLost(f"IMAP connection to {self.config.host} lost: {_text(exc)}") from exc
        finally:
            try:
                client.logout()
            except Exception:
                pass


def server_namespace(client: IMAPClient) -> Namespace:
    """The personal namespace from NAMESPACE (RFC 2342); without it, prefix "" and the separator of LIST."""
    if client.has_capability("NAMESPACE"):
        try:
            found = parse_namespace(client.namespace())
        except imaplib.IMAP4.abort:
            raise
        except IMAPClientError:
            found = None
        if found is not None:
            return found
    return Namespace("", _list_separator(client))


def my_rights(client: IMAPClient, folder: str) -> str | None:
    """MYRIGHTS (RFC 4314) of a folder, or None when the server has no ACL or does not answer it."""
    if not client.has_capability("ACL"):
        return None
    imap = client._imap
    try:
        typ, data = imap._simple_command("MYRIGHTS", client._normalise_folder(folder))
        typ, data = imap._untagged_response(typ, data, "MYRIGHTS")
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error:
        return None
    if typ != "OK" or not data or data[-1] is None:
        return None
    line = data[-1].decode("utf-8", "replace") if isinstance(data[-1], bytes) else str(data[-1])
    return line.rsplit(" ", 1)[-1] if " " in line else ""


def _list_separator(client: IMAPClient) -> str:
    """The hierarchy separator from LIST "" "" (RFC 3501 6.3.8), for servers without NAMESPACE."""
    try:
        entries = client.list_folders("", "")
    except IMAPClientError:
        return "/"
    for _flags, separator, _name in entries:
        if separator:
            return separator.decode() if isinstance(separator, bytes) else str(separator)
    return "/"


def _close_quietly(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:
        pass


def _text(exc: BaseException) -> str:
    # imapclient passes on the server's reply as str(bytes): show the text, not a b'...' repr
    text = exc.args[0] if len(exc.args) == 1 else str(exc)
    if isinstance(text, bytes):
        return text.decode(errors="replace")
    text = str(text)
    if len(text) >= 3 and text[:2] in ("b'", 'b"') and text[-1] == text[1]:
        try:
            decoded: str = ast.literal_eval(text).decode(errors="replace")
            return decoded
        except (ValueError, SyntaxError, AttributeError):
            return text
    return text
