"""What an IMAP server offers and how its folders are named: NAMESPACE (RFC 2342), separator, capabilities, rights.

Folder names in the configuration are meant as the user sees them: `processed_folder = "Behandlet"` is the folder
`Behandlet` among the user's own folders, which Cyrus (default namespace) calls `INBOX.Behandlet` and Dovecot,
Exchange Online and Gmail call `Behandlet`. A name that already carries a namespace prefix (`INBOX.Behandlet`,
`Shared Folders/...`) is used exactly as written. Levels may be written with "/" and get the server's separator.
Folder names travel in modified UTF-7 (RFC 3501 5.1.3); imapclient encodes and decodes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# RFC 4314 rights (with the RFC 2086 letters some servers still send): what each step after the commit needs.
RIGHT_CREATE = "k"  # create a sub-folder (RFC 2086: "c")
RIGHT_INSERT = "i"  # MOVE/COPY into the folder
RIGHT_DELETE_MESSAGE = "t"  # set \Deleted (MOVE takes the mail out of INBOX; RFC 2086: "d")
RIGHT_EXPUNGE = "e"  # expunge (RFC 2086: "d")
LEGACY_RIGHTS = {"k": "c", "t": "d", "e": "d"}


@dataclass(frozen=True)
class Namespace:
    """The personal namespace: prefix ("" or e.g. "INBOX.") and hierarchy separator; other namespaces' prefixes."""

    prefix: str = ""
    separator: str = "/"
    others: tuple[str, ...] = ()


def parse_namespace(response: object) -> Namespace | None:
    """From imapclient's namespace() answer (personal, other users, shared), each a list of (prefix, separator)."""
    answer: Any = response  # imapclient's answer is untyped; a malformed one fails to unpack below
    try:
        personal, other_users, shared = answer
    except (TypeError, ValueError):
        return None
    if not personal:
        return None
    prefix, separator = personal[0]
    others = tuple(_text(entry[0]) for group in (other_users or (), shared or ()) for entry in group if entry[0])
    return Namespace(_text(prefix), _text(separator) if separator else "/", others)


def resolve_folder(name: str, namespace: Namespace) -> str:
    """The server's full name for a configured folder name (see the module docstring)."""
    name = name.strip()
    if name.upper() == "INBOX":
        return "INBOX"
    prefix, separator = namespace.prefix, namespace.separator
    if _starts_with(name, prefix) and prefix:
        return name
    if any(_starts_with(name, other) for other in namespace.others):
        return name
    if _starts_with(name, f"INBOX{separator}"):
        return name  # an explicit folder under INBOX, also where the personal prefix is ""
    if separator != "/":
        name = separator.join(part for part in name.split("/"))
    return prefix + name


def parent_folder(full_name: str, namespace: Namespace) -> str | None:
    """The folder a CREATE of `full_name` adds to (its rights decide), or None at the top of an empty prefix."""
    separator = namespace.separator
    if separator and separator in full_name:
        parent = full_name.rsplit(separator, 1)[0]
        return parent or None
    return None


def missing_rights(rights: str, wanted: Iterable[str]) -> list[str]:
    """The rights of `wanted` not granted in a MYRIGHTS answer (legacy RFC 2086 letters count too)."""
    return [right for right in wanted if right not in rights and LEGACY_RIGHTS.get(right, right) not in rights]


@dataclass(frozen=True)
class ServerOffer:
    """The capabilities that matter to postmottak and what it does with each."""

    capabilities: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_capabilities(cls, capabilities: Sequence[bytes | str]) -> "ServerOffer":
        return cls(frozenset(_text(c).upper() for c in capabilities))

    def has(self, name: str) -> bool:
        return name.upper() in self.capabilities

    @property
    def move_method(self) -> str:
        if self.has("MOVE"):
            return "MOVE"
        if self.has("UIDPLUS"):
            return "COPY + STORE \\Deleted + UID EXPUNGE"
        return "COPY + STORE \\Deleted (no UIDPLUS: the original stays flagged \\Deleted, nothing is expunged)"

    @property
    def gmail(self) -> bool:
        return self.has("X-GM-EXT-1")

    def summary(self) -> str:
        wanted = ("IDLE", "MOVE", "UIDPLUS", "NAMESPACE", "ACL", "CONDSTORE", "LITERAL+", "X-GM-EXT-1")
        return ", ".join(c for c in wanted if self.has(c)) or "none of IDLE, MOVE, UIDPLUS, NAMESPACE"


def idle_behaviour(welcome: bytes | str | None) -> str:
    """What is known about how fast this server's IDLE reports new mail, from its greeting."""
    text = _text(welcome or b"")
    if re.search(r"cyrus", text, re.IGNORECASE):
        return (
            "Cyrus IMAP: without its idled daemon it tells an idling client about new mail only every "
            "imapidlepoll seconds (60 s unless configured); ask the administrator whether idled runs"
        )
    return ""


def _starts_with(name: str, prefix: str) -> bool:
    if not prefix:
        return False
    if name.startswith(prefix):
        return True
    # INBOX is case-insensitive (RFC 3501 5.1)
    return prefix.upper().startswith("INBOX") and name.upper().startswith(prefix.upper())


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
