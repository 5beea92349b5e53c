"""Documents in the case database (`[storage] backend = "database"`): every host that reaches the database
reaches every document, with no shared disk.

A file is kept as chunks of at most CHUNK bytes under the same relative path the file store uses
("sha256/ab/cd/<sha256>"), so records never change when documents move between backends. The chunks and the
`stored_files` row that marks the file complete go in one transaction: a crash leaves the whole file or none.
Writing and reading go chunk by chunk (a 30 MB mail is never held twice). `migrate` copies every file the case
database refers to from one backend to the other, verifying each SHA-256, while workers keep running: each store
reads through to the other backend for a file it does not have yet, so nothing is unreachable meanwhile.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol, cast

from sqlalchemy import CursorResult, delete, exists, select, update
from sqlalchemy.exc import IntegrityError

from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.casefile.storage import DocumentStore, Staged, StorageError

CHUNK = 1024 * 1024
Backend = Literal["filesystem", "database"]


class Store(Protocol):
    """What the pipeline, the dashboard and the archive extract need of a document store."""

    def put(self, data: bytes, sha256: str | None = None) -> tuple[str, str]: ...

    def read(self, relative: str) -> bytes: ...

    def verify(self, relative: str, sha256: str) -> bool: ...

    def chunks(self, relative: str) -> Iterator[bytes]: ...

    def has(self, relative: str) -> bool: ...

    def delete_if_untouched(self, relative: str, since: float) -> bool | None: ...

    def stage(self, data: bytes) -> Staged: ...

    def publish(self, staged: Iterable[Staged]) -> None: ...

    def discard(self, staged: Iterable[Staged]) -> None: ...


def _either(first: bool | None, second: bool | None) -> bool | None:
    """Deleting from a store and from its read-through fallback: kept if either kept it, else deleted if either
    deleted it."""
    if first is False or second is False:
        return False
    if first or second:
        return True
    return None


class FileStore(DocumentStore):
    """The file store, with reads through to the database for files not copied here yet."""

    def __init__(self, root: Path, fallback: "DatabaseStore | None" = None) -> None:
        super().__init__(root)
        self.fallback = fallback

    def has(self, relative: str) -> bool:
        return self.path_for(relative).is_file()

    def chunks(self, relative: str) -> Iterator[bytes]:
        path = self.path_for(relative)
        if not path.is_file() and self.fallback is not None and self.fallback.has(relative):
            yield from self.fallback.chunks(relative)
            return
        with path.open("rb") as handle:
            yield from iter(lambda: handle.read(CHUNK), b"")

    def read(self, relative: str) -> bytes:
        if self.fallback is not None and not self.has(relative) and self.fallback.has(relative):
            return self.fallback.read(relative)
        return super().read(relative)

    def verify(self, relative: str, sha256: str) -> bool:
        if self.has(relative) or self.fallback is None:
            return super().verify(relative, sha256)
        return self.fallback.verify(relative, sha256)

    def delete_if_untouched(self, relative: str, since: float) -> bool | None:
        """Delete from the files, and the copy in the database a migration may have left (retention, erasure)."""
        deleted = super().delete_if_untouched(relative, since)
        if deleted is False or self.fallback is None:
            return deleted
        return _either(deleted, self.fallback.delete_if_untouched(relative, since))

    def put_chunks(self, relative: str, pieces: Iterable[bytes], sha256: str) -> None:
        """Write a file from pieces (temp file, fsync, rename); refuses content that does not hash to sha256."""
        target = self.path_for(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as handle:
                for piece in pieces:
                    digest.update(piece)
                    handle.write(piece)
                handle.flush()
                os.fsync(handle.fileno())
            if digest.hexdigest() != sha256:
                raise StorageError(f"{relative}: content does not match its SHA-256")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass
class DatabaseStore:
    """Files as chunks in the case database, keyed by the file store's relative path."""

    db: Database
    fallback: FileStore | None = None
    _paths: DocumentStore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._paths = DocumentStore(Path("/nonexistent-root"))  # only for its path rules

    def relative_path(self, sha256: str) -> str:
        return self._paths.relative_path(sha256)

    def has(self, relative: str) -> bool:
        with self.db.session() as session:
            return session.get(m.StoredFile, relative) is not None

    def put(self, data: bytes, sha256: str | None = None) -> tuple[str, str]:
        """Store bytes; returns (sha256, relative path). Idempotent; chunks are slices of `data`, not copies."""
        digest = hashlib.sha256(data).hexdigest()
        if sha256 is not None and sha256 != digest:
            raise StorageError("content does not match the given SHA-256")
        relative = self.relative_path(digest)
        view = memoryview(data)
        self.put_chunks(relative, (view[start : start + CHUNK] for start in range(0, len(data), CHUNK)), digest)
        return digest, relative

    def stage(self, data: bytes) -> Staged:
        """Stored at once in its own transaction (durable on commit): nothing is left for `publish`."""
        digest, relative = self.put(data)
        return Staged(digest, relative)

    def publish(self, staged: Iterable[Staged]) -> None:
        pass

    def discard(self, staged: Iterable[Staged]) -> None:
        pass

    def put_chunks(self, relative: str, pieces: Iterable[bytes | memoryview], sha256: str) -> None:
        """Write a file chunk by chunk in one transaction; refuses content that does not hash to sha256."""
        digest = hashlib.sha256()
        size = count = 0
        try:
            with self.db.session() as session:  # one transaction: the check, the chunks, the completion row
                # Stored already: mark it used now, as the file store's put touches the file (retention leaves
                # files reused since its run started alone). An UPDATE, so a delete racing with it either
                # happened before (nothing updated: written again below) or sees the new time and keeps it.
                touched = session.execute(
                    update(m.StoredFile)
                    .where(m.StoredFile.relative_path == relative)
                    .values(created_at=m.utcnow())
                    .execution_options(synchronize_session=False)
                )
                if cast(CursorResult[Any], touched).rowcount:
                    return
                for count, piece in enumerate(pieces, start=1):
                    digest.update(piece)
                    size += len(piece)
                    session.add(m.StoredFileChunk(relative_path=relative, seq=count - 1, data=bytes(piece)))
                    session.flush()  # one chunk at a time goes to the server, not the whole file at commit
                    session.expunge_all()
                if digest.hexdigest() != sha256:
                    raise StorageError(f"{relative}: content does not match its SHA-256")
                session.add(m.StoredFile(relative_path=relative, sha256=sha256, size=size, chunks=count))
        except IntegrityError:
            if not self.has(relative):  # another worker stored the same content at the same moment
                raise

    def chunks(self, relative: str) -> Iterator[bytes]:
        with self.db.session() as session:
            stored = session.get(m.StoredFile, relative)
        if stored is None:
            if self.fallback is not None and self.fallback.has(relative):
                yield from self.fallback.chunks(relative)
                return
            raise StorageError(f"no stored file {relative!r}")
        for seq in range(stored.chunks):  # one chunk per query: memory stays at one chunk
            with self.db.session() as session:
                piece = session.scalar(
                    select(m.StoredFileChunk.data).where(
                        m.StoredFileChunk.relative_path == relative, m.StoredFileChunk.seq == seq
                    )
                )
            if piece is None:
                raise StorageError(f"{relative}: chunk {seq} is missing")
            yield bytes(piece)

    def read(self, relative: str) -> bytes:
        return b"".join(self.chunks(relative))

    def verify(self, relative: str, sha256: str) -> bool:
        try:
            digest = hashlib.sha256()
            for piece in self.chunks(relative):
                digest.update(piece)
        except (StorageError, OSError):
            return False
        return digest.hexdigest() == sha256

    def delete_if_untouched(self, relative: str, since: float) -> bool | None:
        """Delete the file (its row and chunks, in one transaction) unless stored or reused at or after `since`
        (epoch seconds); then the copy in the file store a migration may have left. True / False (kept) / None."""
        cutoff = datetime.fromtimestamp(since, timezone.utc)
        with self.db.session() as session:
            gone = session.execute(
                delete(m.StoredFile)
                .where(m.StoredFile.relative_path == relative, m.StoredFile.created_at < cutoff)
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult[Any], gone).rowcount:
                session.execute(delete(m.StoredFileChunk).where(m.StoredFileChunk.relative_path == relative))
                deleted: bool | None = True
            else:
                deleted = False if session.get(m.StoredFile, relative) is not None else None
        if deleted is False or self.fallback is None:
            return deleted
        return _either(deleted, self.fallback.delete_if_untouched(relative, since))

    def remove(self, relative: str) -> None:
        with self.db.session() as session:
            session.execute(delete(m.StoredFile).where(m.StoredFile.relative_path == relative))
            session.execute(delete(m.StoredFileChunk).where(m.StoredFileChunk.relative_path == relative))


def open_store(backend: str, root: Path, db: Database | None) -> FileStore | DatabaseStore:
    """The configured store; each reads through to the other backend (during a migration between them)."""
    if backend == "database":
        if db is None:
            raise StorageError('[storage] backend = "database" needs the case database')
        return DatabaseStore(db, fallback=FileStore(root) if root.is_dir() else None)
    if backend != "filesystem":
        raise StorageError(f"unknown storage backend {backend!r}")
    return FileStore(root, fallback=DatabaseStore(db) if db is not None else None)


@dataclass
class MigrationReport:
    files: int = 0
    copied: int = 0
    already: int = 0
    bytes_copied: int = 0
    problems: list[str] = field(default_factory=list)


def referenced_files(db: Database) -> Iterator[tuple[str, str]]:
    """(relative path, sha256) of every file the case database refers to: raw mails, documents and searchable PDFs (not those of
    records whose content was deleted: retention or erasure, see casefile/retention.py)."""
    live = ~exists().where(m.ContentTombstone.intake_id == m.IntakeRecord.id)
    with db.session() as session:
        raw = session.execute(select(m.IntakeRecord.raw_path, m.IntakeRecord.raw_sha256).where(live))
        documents = session.execute(
            select(m.Document.storage_path, m.Document.sha256)
            .join(m.IntakeRecord, m.IntakeRecord.id == m.Document.intake_id)
            .where(live)
        )
        searchable = session.execute(
            select(m.SearchableVersion.storage_path, m.SearchableVersion.sha256)
            .join(m.Document, m.Document.id == m.SearchableVersion.document_id)
            .join(m.IntakeRecord, m.IntakeRecord.id == m.Document.intake_id)
            .where(live, m.SearchableVersion.storage_path.is_not(None))
        )
        rows = {(path, sha) for path, sha in raw} | {(path, sha) for path, sha in documents}
        rows |= {(path, sha) for path, sha in searchable if path and sha}
    yield from sorted(rows)


def migrate(
    db: Database, root: Path, to: Backend, progress: Callable[[int, int], None] | None = None
) -> MigrationReport:
    """Copy every referenced file to backend `to`, each verified by its SHA-256 there. Idempotent; safe while
    workers run (run it again after switching `[storage] backend` to copy what was written meanwhile)."""
    files = FileStore(root)
    database = DatabaseStore(db)
    source, target = (files, database) if to == "database" else (database, files)
    report = MigrationReport()
    wanted = list(referenced_files(db))
    for done, (relative, sha256) in enumerate(wanted, start=1):
        report.files += 1
        if progress is not None:
            progress(done, len(wanted))
        if target.has(relative) and target.verify(relative, sha256):
            report.already += 1
            continue
        if not source.has(relative):
            report.problems.append(f"{relative}: in neither backend")
            continue
        try:
            if to == "database" and target.has(relative):  # present but damaged: write it again
                database.remove(relative)
            counted = _Counted(source.chunks(relative))
            target.put_chunks(relative, counted, sha256)
        except (StorageError, OSError) as exc:
            report.problems.append(str(exc))
            continue
        if not target.verify(relative, sha256):
            report.problems.append(f"{relative}: copy does not match its SHA-256")
            continue
        report.copied += 1
        report.bytes_copied += counted.size
    return report


class _Counted:
    def __init__(self, pieces: Iterator[bytes]) -> None:
        self.pieces = pieces
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            self.size += len(piece)
            yield piece


def copy_to(store: Store, relative: str, handle: BinaryIO) -> int:
    """Write a stored file to an open file, chunk by chunk; returns the size."""
    size = 0
    for piece in store.chunks(relative):
        handle.write(piece)
        size += len(piece)
    return size
