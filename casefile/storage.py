"""Content-addressed file store: every raw mail and document is kept under its SHA-256.

Paths are derived from the hash alone, so nothing a sender writes (a filename like ../../etc/passwd) can steer
where a file lands. Writes go to a temp file, are fsynced and renamed into place: a crash leaves either the whole
file or none, and writing the same content twice is harmless.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class StorageError(Exception):
    pass


class DocumentStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

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
        target = self.path_for(relative)
        if target.exists() and target.stat().st_size == len(data):
            try:
                os.utime(target)  # reused: retention (casefile/retention.py) leaves recently touched files alone
                return digest, relative
            except FileNotFoundError:
                pass  # deleted a moment ago: write it again
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
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
