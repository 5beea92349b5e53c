"""What the pipeline needs from a mail source: a folder with a UIDVALIDITY, new items, their bytes, and a move."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class FetchedMail:
    uid: str
    raw: bytes
    # Server receive time (IMAP INTERNALDATE); None when the source has none (a file export).
    internaldate: datetime | None
    # For sources without INTERNALDATE: the file's modification time, the last fallback.
    file_mtime: datetime | None = None


class SourceError(Exception):
    """The source cannot be reached or read now; the cycle fails and is retried later."""


class ConnectionLost(SourceError):
    """The connection to the source broke during the cycle (a dropped socket, a timeout): reconnect and carry on."""


class LoginRefused(SourceError):
    """The server refused our credentials: reported at once, not retried within the cycle."""


class MailboxSession(Protocol):
    uidvalidity: int
    # True when UIDs are integers that grow (IMAP), so a high-water mark is enough to find new mail.
    incremental: bool

    def uids_after(self, last_uid: int) -> list[str]: ...

    def all_uids(self) -> list[str]: ...

    def fetch(self, uids: Sequence[str]) -> Iterator[FetchedMail]: ...

    def move(self, uids: Sequence[str], folder: str) -> None: ...


class MailSource(Protocol):
    source_key: str

    def open(self) -> AbstractContextManager[MailboxSession]: ...


class ServerStepRefused(Exception):
    """The server refused a step after the commit (CREATE, MOVE/COPY, STORE, EXPUNGE of the processed folder move).

    The mail is registered already; the move stays pending and is tried again next cycle. The message is one line
    in Norwegian with the server's own reply, for staff (status, dashboard)."""
