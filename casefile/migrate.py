"""Schema migrations that a crash cannot leave half-done, run by one process at a time.

- Each migration runs in ONE transaction with its version-row update, on SQLite as on PostgreSQL. Python's
  sqlite3 driver does not put DDL in a transaction, so the migration connection (only that one) follows
  SQLAlchemy's pysqlite recipe: the driver's own transaction handling off (`isolation_level = None`) and
  `BEGIN IMMEDIATE` emitted on every begin. A kill at any moment leaves the schema as it was before or after a
  migration, never between. Foreign-key enforcement is off on this connection (SQLite cannot switch it inside a
  transaction, and batch-mode table copies need it off); `PRAGMA foreign_key_check` runs before each commit.
- A migration that cannot run in a transaction (`VACUUM`, `PRAGMA journal_mode`, PostgreSQL's
  `CREATE INDEX CONCURRENTLY`) says so: its module docstring states "Not transactional", the statement goes in
  `with op.get_context().autocommit_block():`, and it is written to be re-runnable (`IF NOT EXISTS`), as the
  migration before the block is committed and the part after it runs again after a crash.
- One process migrates, the others wait: a PostgreSQL advisory lock held by the migration connection, or an
  exclusive `flock` on `<database>.migrate.lock` beside the SQLite file (released by the kernel if the process
  dies). A database already at the head is not locked at all.
- Half-applied states left by older versions are recognised before migrating (see `schema_state`): repaired
  when nothing is lost, else `NeedsRepair` with the diagnosis.
- SQLite: before the first statement that changes existing rows or rewrites a table (batch-mode copies, data
  moves, DROP TABLE) of a database holding data, a copy is made with the online backup API and its path logged.

Test hook (inert unless set): `POSTMOTTAK_MIGRATION_KILL_AFTER=N` makes the migrating process SIGKILL itself
right after the N-th schema or data statement (CREATE/ALTER/DROP/INSERT/UPDATE/DELETE) of the migration
connection, so crash tests can stop a migration at every step.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from postmottak.casefile import schema_state
from postmottak.casefile.schema_state import Diagnosis

MIGRATIONS = Path(__file__).with_name("migrations")
KILL_AFTER_ENV = "POSTMOTTAK_MIGRATION_KILL_AFTER"
READ_ONLY = "postmottak_read_only"  # execution option: a plain (deferred) BEGIN on SQLite, for a quick look

log = logging.getLogger("postmottak.migrate")

_WRITE = re.compile(r"^\s*(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
_CHANGES_ROWS = re.compile(r"^\s*(INSERT|UPDATE|DELETE|DROP\s+TABLE|ALTER\s+TABLE)\b", re.IGNORECASE)
_ADDS_COLUMN = re.compile(r"^\s*ALTER\s+TABLE\s+\S+\s+ADD\b", re.IGNORECASE)


class NeedsRepair(Exception):
    """The schema is in a state start-up must not migrate from by itself."""

    def __init__(self, diagnosis: Diagnosis) -> None:
        super().__init__(diagnosis.describe())
        self.diagnosis = diagnosis


class MigrationFailed(Exception):
    """A migration raised; its transaction was rolled back, the database is at `revision`."""

    def __init__(self, migration: str | None, revision: str | None, reason: str) -> None:
        super().__init__(reason)
        self.migration, self.revision, self.reason = migration, revision, reason


@dataclass
class MigrationReport:
    start: str | None = None  # the version row found
    applied: list[str] = field(default_factory=list)
    repaired: str | None = None  # what was repaired first (the diagnosis, described)
    backup: Path | None = None
    statements: int = 0  # schema/data statements run (the checkpoints of KILL_AFTER_ENV)
    waited: bool = False  # another process held the migration lock


@dataclass(frozen=True)
class Plan:
    """What `upgrade` would do now (for `db upgrade --dry-run`)."""

    diagnosis: Diagnosis
    pending: list[tuple[str, str]]  # (revision, first line of its message)


def alembic_config(url: str, script_location: str | Path | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(script_location or MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migration_engine(url: str) -> Engine:
    """An engine for migrations only: no pool, and on SQLite real transactions around DDL."""
    if not url.startswith("sqlite"):
        return create_engine(url, poolclass=NullPool)
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # the driver neither begins nor commits by itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return  # alembic's autocommit_block: statements that cannot run in a transaction
        connection.connection.dbapi_connection.isolation_level = None  # type: ignore[union-attr]
        # The write lock now, not at the first write (a deferred transaction that has read cannot always upgrade).
        connection.exec_driver_sql("BEGIN" if options.get(READ_ONLY) else "BEGIN IMMEDIATE")

    return engine


def upgrade(url: str, script_location: str | Path | None = None, *, roll_back_data: bool = False) -> MigrationReport:
    """Bring the database to the head revision (see the module docstring). Raises NeedsRepair, MigrationFailed
    and SQLAlchemy's errors for an unreachable database."""
    location = str(script_location or MIGRATIONS)
    config = alembic_config(url, location)
    script = ScriptDirectory.from_config(config)
    report = MigrationReport()
    engine = migration_engine(url)
    try:
        with engine.connect() as connection:
            connection.execution_options(**{READ_ONLY: True})
            report.start = _single(schema_state.version_rows(connection))
            connection.commit()
            connection.execution_options(**{READ_ONLY: False})
            if report.start is not None and report.start == script.get_current_head():
                return report
            with migration_lock(connection, url) as waited:
                report.waited = waited
                _repair_first(connection, script, location, report, roll_back_data=roll_back_data, url=url)
                _run_migrations(connection, config, url, report)
    finally:
        engine.dispose()
    return report


def _repair_first(
    connection: Connection,
    script: ScriptDirectory,
    location: str,
    report: MigrationReport,
    *,
    roll_back_data: bool,
    url: str,
) -> None:
    diagnosis = schema_state.diagnose(connection, script, location)
    report.start = diagnosis.version
    if diagnosis.kind in (schema_state.UNKNOWN_REVISION, schema_state.MISMATCH):
        connection.rollback()
        raise NeedsRepair(diagnosis)
    if diagnosis.kind == schema_state.ROLL_BACK and not (diagnosis.repairable_at_start or roll_back_data):
        connection.rollback()
        raise NeedsRepair(diagnosis)
    if diagnosis.kind == schema_state.ROLL_BACK and diagnosis.rows_in_extra:
        connection.rollback()  # the copy must not wait behind our write lock's snapshot
        report.backup = backup_sqlite(url, f"before-repair-{diagnosis.version or 'base'}")
        diagnosis = schema_state.diagnose(connection, script, location)
    if diagnosis.kind == schema_state.STAMP:
        assert diagnosis.revision is not None
        schema_state.stamp(connection, diagnosis.revision)
        report.start = diagnosis.revision
    elif diagnosis.kind == schema_state.ROLL_BACK:
        schema_state.roll_back_interrupted(connection, diagnosis)
    if diagnosis.stray_temp_tables:
        schema_state.drop_stray_copies(connection, diagnosis.stray_temp_tables)
    connection.commit()
    if diagnosis.kind in (schema_state.STAMP, schema_state.ROLL_BACK) or diagnosis.stray_temp_tables:
        report.repaired = diagnosis.describe()
        log.warning("repaired a half-migrated case database: %s", report.repaired)


def _run_migrations(connection: Connection, config: AlembicConfig, url: str, report: MigrationReport) -> None:
    kill_after = int(os.environ.get(KILL_AFTER_ENV) or 0)
    is_sqlite = connection.dialect.name == "sqlite"

    def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if is_sqlite and report.backup is None and _changes_existing_rows(statement):
            report.backup = backup_sqlite(url, f"before-{report.applied[-1] if report.applied else report.start}")

    def after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if _WRITE.match(statement):
            report.statements += 1
            if kill_after and report.statements >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    def applied(ctx, step, heads, run_args):  # type: ignore[no-untyped-def]
        if is_sqlite:  # the table copies of batch mode ran with foreign keys off: check before the commit
            problems = ctx.connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise MigrationFailed(step.up_revision_id, report.start, f"foreign keys broken: {problems[:3]}")
        report.applied.append(step.up_revision_id)

    config.attributes["connection"] = connection
    config.attributes["configure_options"] = {
        "transaction_per_migration": True,
        "transactional_ddl": True,
        "on_version_apply": [applied],
    }
    event.listen(connection, "before_cursor_execute", before)
    event.listen(connection, "after_cursor_execute", after)
    try:
        command.upgrade(config, "head")
    except MigrationFailed:
        connection.rollback()
        raise
    except Exception as exc:  # a failing migration (SQL or Python) is rolled back and will fail the same way again
        if isinstance(exc, DBAPIError) and (connection.invalidated or _transient(exc)):
            raise  # the database went away or is busy: the caller may try again later
        connection.rollback()
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        at = report.applied[-1] if report.applied else report.start
        raise MigrationFailed(_next_revision(config, at), at, reason) from exc
    finally:
        event.remove(connection, "before_cursor_execute", before)
        event.remove(connection, "after_cursor_execute", after)
    if report.applied:
        log.info("migrated the case database: %s -> %s", report.start or "empty", report.applied[-1])


def _changes_existing_rows(statement: str) -> bool:
    return (
        bool(_CHANGES_ROWS.match(statement))
        and not _ADDS_COLUMN.match(statement)
        and schema_state.VERSION_TABLE not in statement
    )


def _transient(exc: DBAPIError) -> bool:
    text_ = str(getattr(exc, "orig", exc)).lower()
    return any(word in text_ for word in ("database is locked", "unable to open", "disk i/o", "connection"))


def _next_revision(config: AlembicConfig, current: str | None) -> str | None:
    order = schema_state.revision_order(ScriptDirectory.from_config(config))
    position = order.index(current) + 1 if current in order else 0
    return order[position] if position < len(order) else None


def _single(versions: list[str]) -> str | None:
    return versions[0] if len(versions) == 1 else None


# ------------------------------------------------------------------------------------------ lock


@contextmanager
def migration_lock(connection: Connection, url: str) -> Iterator[bool]:
    """Held while checking and migrating; yields True when another process had it first (we waited)."""
    if connection.dialect.name == "postgresql":
        key = text("SELECT hashtext(current_database() || '.' || current_schema() || '.postmottak-migrations')")
        lock_id = connection.execute(key).scalar_one()
        waited = not connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_id}).scalar_one()
        if waited:
            log.info("another process is migrating the case database; waiting for it")
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_id})
        connection.commit()  # the lock is the session's; alembic wants a connection outside a transaction
        try:
            yield waited
        finally:
            if not connection.invalidated:
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_id})
                connection.commit()
        return
    database = make_url(url).database
    if not database or database == ":memory:":
        yield False
        return
    with open(f"{database}.migrate.lock", "a+") as handle:
        waited = False
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waited = True
            log.info("another process is migrating the case database; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield waited
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------------ backup


def backup_sqlite(url: str, label: str) -> Path | None:
    """A consistent copy of a SQLite database that holds rows (online backup API), beside it; None if empty."""
    database = make_url(url).database
    if not url.startswith("sqlite") or not database or database == ":memory:":
        return None  # PostgreSQL: the repair and each migration are one transaction; backups are the DBA's
    source = sqlite3.connect(database, timeout=30)
    try:
        if not _holds_rows(source):
            return None
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target_path = Path(f"{database}.{label}.{stamp}.bak")
        target = sqlite3.connect(target_path)
        try:
            started = time.monotonic()
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()
    log.warning("backup of the case database before migrating: %s (%.1f s)", target_path, time.monotonic() - started)
    return target_path


def _holds_rows(connection: sqlite3.Connection) -> bool:
    tables = [
        row[0]
        for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not row[0].startswith("sqlite_") and row[0] != schema_state.VERSION_TABLE
    ]
    return any(connection.execute(f'SELECT EXISTS (SELECT 1 FROM "{table}")').fetchone()[0] for table in tables)


# ------------------------------------------------------------------------------------------ dry run


def plan(url: str, script_location: str | Path | None = None) -> Plan:
    """The diagnosis and the migrations `upgrade` would run now; reads only, takes no lock."""
    location = str(script_location or MIGRATIONS)
    script = ScriptDirectory.from_config(alembic_config(url, location))
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            diagnosis = schema_state.diagnose(connection, script, location)
    finally:
        engine.dispose()
    order = schema_state.revision_order(script)
    start = diagnosis.revision if diagnosis.kind in (schema_state.STAMP, schema_state.ROLL_BACK) else diagnosis.version
    if diagnosis.kind in (schema_state.UNKNOWN_REVISION, schema_state.MISMATCH):
        return Plan(diagnosis, [])
    pending = order[order.index(start) + 1 :] if start in order else order
    messages = {rev: (script.get_revision(rev).doc or "").strip().splitlines() for rev in pending}
    return Plan(diagnosis, [(rev, messages[rev][0] if messages[rev] else "") for rev in pending])
