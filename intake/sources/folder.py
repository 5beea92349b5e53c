"""Folder mail source: a Maildir, an mbox file, or a directory of .eml files (a mailbox export, or the demo).

Items are named by a stable key (Maildir unique name, mbox index + content hash, relative .eml path). A folder has no
UIDVALIDITY, so it is always 0, and new items are found by comparing keys with what the case database knows.
Files are never changed or removed.
"""

from __future__ import annotations

import hashlib
import mailbox
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from postmottak.intake.sources.base import FetchedMail, SourceError


def detect_format(path: Path) -> str:
    if path.is_file():
        return "mbox"
    if (path / "cur").is_dir() and (path / "new").is_dir():
        return "maildir"
    if path.is_dir():
        return "eml"
    raise SourceError(f"mail folder not found: {path}")


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)


class FolderSession:
    uidvalidity = 0
    incremental = False

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.format = fmt
        self._mbox_keys: dict[str, object] = {}

    def uids_after(self, last_uid: int) -> list[str]:  # pragma: no cover - folders are not incremental
        return self.all_uids()

    def all_uids(self) -> list[str]:
        if self.format == "eml":
            return sorted(
                str(p.relative_to(self.path))
                for p in self.path.rglob("*")
                if p.is_file() and p.suffix.lower() == ".eml"
            )
        if self.format == "maildir":
            maildir = mailbox.Maildir(self.path, factory=None, create=False)
            return sorted(maildir.keys())
        mbox = mailbox.mbox(self.path, factory=None, create=False)
        keys = []
        for index, key in enumerate(mbox.keys()):
            digest = hashlib.sha256(mbox.get_bytes(key)).hexdigest()[:16]
            uid = f"{index:08d}-{digest}"
            self._mbox_keys[uid] = key
            keys.append(uid)
        return keys

    def fetch(self, uids: Sequence[str]) -> Iterator[FetchedMail]:
        if self.format == "eml":
            for uid in uids:
                file = (self.path / uid).resolve()
                if self.path.resolve() not in file.parents or not file.is_file():
                    continue
                yield FetchedMail(uid=uid, raw=file.read_bytes(), internaldate=None, file_mtime=_mtime(file))
            return
        if self.format == "maildir":
            maildir = mailbox.Maildir(self.path, factory=None, create=False)
            for uid in uids:
                try:
                    raw = maildir.get_bytes(uid)
                except KeyError:
                    continue
                # What MaildirMessage.get_date() would say (the file's mtime), without parsing the message again.
                # _lookup (the file's path in the Maildir) is private, so typeshed does not declare it.
                mtime = _mtime(self.path / maildir._lookup(uid))  # type: ignore[attr-defined]
                yield FetchedMail(uid=uid, raw=raw, internaldate=None, file_mtime=mtime)
            return
        mbox = mailbox.mbox(self.path, factory=None, create=False)
        if not self._mbox_keys:
            self.all_uids()
        for uid in uids:
            key = self._mbox_keys.get(uid)
            if key is not None:
                # typeshed declares every mailbox key a str; an mbox's keys are ints
                raw = mbox.get_bytes(key)  # type: ignore[arg-type]
                yield FetchedMail(uid=uid, raw=raw, internaldate=None, file_mtime=_mtime(self.path))

    def move(self, uids: Sequence[str], folder: str) -> None:
        """Folder sources are read-only: an export is evidence and stays as it was."""


class FolderSource:
    def __init__(self, path: Path, fmt: str = "auto") -> None:
        self.path = Path(path).resolve()
        self.format = fmt
        self.source_key = f"folder://{self.path}"

    @contextmanager
    def open(self) -> Iterator[FolderSession]:
        fmt = detect_format(self.path) if self.format == "auto" else self.format
        if not self.path.exists():
            raise SourceError(f"mail folder not found: {self.path}")
        yield FolderSession(self.path, fmt)
