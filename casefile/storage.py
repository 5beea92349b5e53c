"""Content-addressed file store: every raw mail and document is kept under its SHA-256.

Paths are derived from the hash alone, so nothing a sender writes (a filename like ../../etc/passwd) can steer
where a file lands. Writes go to a temp file, are fsynced and renamed into place: a crash leaves either the whole
file or none, and writing the same content twice is harmless.

The intake stores a batch of mails with one flush: `stage` writes each file to its temp name without fsync, and
`publish` makes the batch's temp files durable, renames them into place and makes the renames durable, before the
transaction that refers to them commits. Until then a staged file exists only under its temp name. On Linux each
of the two steps is one syncfs(2) of the store's file system (every fsync costs a device flush, so one per file and
directory would cost several per mail); elsewhere each file and directory is fsynced.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _libc_syncfs() -> Callable[[int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    return cast(Callable[[int], int], function)


_SYNCFS = _libc_syncfs()


def sync_filesystem(path: Path) -> bool:
    """syncfs(2): write out and flush everything of the file system holding `path` (data, metadata, journal) with
    one device flush. False when the platform has no syncfs (the caller fsyncs file by file)."""
    if _SYNCFS is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _SYNCFS(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"syncfs: {os.strerror(error)}")
    finally:
        os.close(fd)
    return True


class StorageError(Exception):
    pass


@dataclass(frozen=True)
class Staged:
    """A file written for a batch: `temp` holds the bytes until `publish` (None: already in place, or not a file)."""

    sha256: str
    relative: str
    temp: Path | None = None
    target: Path | None = None  # where it will be; a local path a reader may open (None for the database store)

    @property
    def readable_path(self) -> Path | None:
        return self.temp or self.target


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DocumentStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        # Fan-out directories (relative -> absolute) checked to lie inside the root and made: `stage` resolves and
        # makes each once, not again for every file written into it.
        self._directories: dict[str, Path] = {}

    def relative_path(self, sha256: str) -> str:
        if not _HEX64.match(sha256):
            raise StorageError(f"not a SHA-256 hex digest: {sha256!r}")
        return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def path_for(self, relative: str) -> Path:
        """The absolute path of a stored file; refuses anything that would leave the storage root."""
        candidate = (self.root / relative).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            raise StorageError(f"path leaves the storage directory: {relative!r}")
        return candidate

    def put(self, data: bytes, sha256: str | None = None) -> tuple[str, str]:
        """Store bytes; returns (sha256, relative path). Idempotent."""
        digest = hashlib.sha256(data).hexdigest()
        if sha256 is not None and sha256 != digest:
            raise StorageError("content does not match the given SHA-256")
        relative = self.relative_path(digest)
        target = self._target(relative)
        if target.exists() and target.stat().st_size == len(data):
            try:
                os.utime(target)  # reused: retention (casefile/retention.py) leaves recently touched files alone
                return digest, relative
            except FileNotFoundError:
                pass  # deleted a moment ago: write it again
        target, fd, tmp = self._temp_file(relative, target)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest, relative

    def stage(self, data: bytes) -> Staged:
        """Write bytes to a temp file beside their place, without fsync; `publish` makes them durable and visible."""
        digest = hashlib.sha256(data).hexdigest()
        relative = self.relative_path(digest)
        target = self._target(relative)
        if target.exists() and target.stat().st_size == len(data):
            try:
                os.utime(target)
                return Staged(digest, relative, None, target)
            except FileNotFoundError:
                pass
        target, fd, tmp = self._temp_file(relative, target)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Staged(digest, relative, Path(tmp), target)

    def _target(self, relative: str) -> Path:
        """`path_for(relative)` of a file to be written, its directory made. The directory is resolved (and checked)
        once; the file's own name only when it is a symbolic link."""
        directory, _, name = relative.rpartition("/")
        parent = self._directories.get(directory)
        if parent is None:
            parent = self.path_for(directory)
            parent.mkdir(parents=True, exist_ok=True)
            self._directories[directory] = parent
        target = parent / name
        return self.path_for(relative) if target.is_symlink() else target

    def _temp_file(self, relative: str, target: Path) -> tuple[Path, int, str]:
        """A new temp file beside `target` (the place of `relative`): the target, the open descriptor, its name."""
        try:
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        except FileNotFoundError:  # the directory was removed since it was made: made again
            self._directories.clear()
            target = self._target(relative)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        return target, fd, tmp

    def publish(self, staged: Iterable[Staged]) -> None:
        """Make staged files durable: fsync each, rename each into place, fsync each directory once. A crash
        meanwhile leaves whole files or none under the final names."""
        pending = []
        for item in staged:
            if item.temp is None or item.target is None:
                continue
            if not item.temp.exists():  # published already (a batch registered again one by one)
                if not item.target.exists():
                    raise StorageError(f"staged file {item.relative} is gone")
                continue
            pending.append(item)
        if not pending:
            return
        synced = sync_filesystem(self.root)  # the data of every temp file, before any takes its final name
        if not synced:
            for item in pending:
                assert item.temp is not None
                _fsync_path(item.temp)
        directories: set[Path] = set()
        for item in pending:
            assert item.temp is not None and item.target is not None
            os.replace(item.temp, item.target)
            os.utime(item.target)  # published now: retention leaves files touched since its run started alone
            directories.add(item.target.parent)
            directories.add(item.target.parent.parent)  # the fan-out directory may be new as well
        if synced and sync_filesystem(self.root):  # the renames
            return
        for directory in sorted(directories):
            _fsync_path(directory, directory=True)

    def discard(self, staged: Iterable[Staged]) -> None:
        """Remove staged temp files that will not be published (the mail was not registered this time)."""
        for item in staged:
            if item.temp is not None:
                item.temp.unlink(missing_ok=True)

    def read(self, relative: str) -> bytes:
        return self.path_for(relative).read_bytes()

    def delete_if_untouched(self, relative: str, since: float) -> bool | None:
        """Delete a stored file unless it was written or reused (`put`) at or after `since` (epoch seconds).

        True: deleted; False: kept (touched); None: not here. The file is first renamed aside and its time read
        there: a `put` reusing it at the same moment either touched it before (the file is put back) or finds it
        gone and writes it again, so a file a new record is about to point at is never lost."""
        target = self.path_for(relative)
        aside = target.with_name(f".deleting-{target.name}")
        try:
            os.replace(target, aside)
        except FileNotFoundError:
            aside.unlink(missing_ok=True)  # left by a run that died between the rename and the delete
            return None
        if aside.stat().st_mtime >= since:
            os.replace(aside, target)  # the same content: harmless if a `put` wrote it again meanwhile
            return False
        aside.unlink()
        return True

    def verify(self, relative: str, sha256: str) -> bool:
        path = self.path_for(relative)
        if not path.is_file():
            return False
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest() == sha256
