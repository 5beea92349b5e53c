"""One worker per mailbox: a PostgreSQL advisory lock, or a file lock beside the SQLite database."""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from postmottak.casefile.db import Database, database_errors


def _lock_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def mailbox_lock(db: Database, name: str) -> Iterator[bool]:
    """Yields True when this process holds the lock for `name`, False when another worker has it."""
    if db.engine.dialect.name == "postgresql":
        with database_errors(), db.engine.connect() as connection:
            held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _lock_id(name)}).scalar())
            try:
                yield held
            finally:
                if held:
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_id(name)})
                connection.commit()
        return
    database = db.engine.url.database
    if not database or database == ":memory:":
        yield True
        return
    lock_path = Path(f"{database}.{hashlib.sha256(name.encode()).hexdigest()[:12]}.lock")
    with lock_path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
