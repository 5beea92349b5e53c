"""Engine, sessions and migrations for the case database (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from postmottak.casefile import migrate

MIGRATIONS = migrate.MIGRATIONS


class DatabaseUnavailable(Exception):
    """The case database cannot be reached, opened or written now (down, or locked); the message never holds a
    password. `reason` is the driver's one-line account."""

    exit_code = 1  # the process's exit status when this ends it

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class WriteConflict(Exception):
    """Another transaction wrote the same unique row first (two workers registering one mail); nothing of this
    transaction was written."""


def _one_line(exc: DBAPIError) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return " ".join(text.split()) if text else type(exc).__name__


@contextmanager
def database_errors() -> Iterator[None]:
    """SQLAlchemy's errors as casefile's own, so the layers above need no SQLAlchemy: a database that is down or
    locked becomes DatabaseUnavailable, a unique row written by someone else first becomes WriteConflict."""
    try:
        yield
    except OperationalError as exc:
        reason = _one_line(exc)
        raise DatabaseUnavailable(f"database unavailable: {reason}", reason) from exc
    except IntegrityError as exc:
        raise WriteConflict(_one_line(exc)) from exc


class DatabaseNeedsRepair(DatabaseUnavailable):
    """The schema is half-migrated in a way start-up does not repair by itself, or a migration failed: starting
    again will not help, a person must act (the message names the command). Ends the process with status 3, which
    the service manager is told not to restart on (see the README)."""

    exit_code = 3


def safe_url(url: str) -> str:
    """The URL as it may be shown: the password masked."""
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """One engine plus a session factory; `session()` is the unit of work (commit on success, else roll back)."""

    def __init__(self, url: str, *, echo: bool = False, migrations: str | Path | None = None) -> None:
        self.url = url
        self.migrations = migrations  # a script location other than casefile/migrations (tests)
        self.migration_report: migrate.MigrationReport | None = None  # what the last upgrade() did
        self.engine: Engine = _make_engine(url, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, *, migrations: str | Path | None = None) -> Database:
        """Connect and apply the migrations; DatabaseUnavailable with one clear line when that fails."""
        db = cls(url, migrations=migrations)
        with db.translating_errors():
            db.upgrade()
        return db

    @contextmanager
    def translating_errors(self) -> Iterator[None]:
        """Connection-level failures become DatabaseUnavailable, so callers above casefile need no SQLAlchemy."""
        try:
            yield
        except DatabaseNeedsRepair:  # its own one line and exit status: starting again will not help
            raise
        except DatabaseUnavailable as exc:  # from a session
            raise DatabaseUnavailable(f"cannot open the case database {safe_url(self.url)}: {exc.reason}") from None
        except (OperationalError, DBAPIError) as exc:
            text = str(getattr(exc, "orig", exc)).strip()
            reason = text.splitlines()[0] if text else type(exc).__name__
            raise DatabaseUnavailable(f"cannot open the case database {safe_url(self.url)}: {reason}") from None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Raises DatabaseUnavailable or WriteConflict (rolled back) for the database errors above casefile cares
        about; other errors pass unchanged."""
        with database_errors(), self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def upgrade(self, *, roll_back_data: bool = False) -> migrate.MigrationReport:
        """Apply all migrations (idempotent), each in one transaction, one process at a time (casefile.migrate).
        DatabaseNeedsRepair when the schema is half-migrated beyond what start-up repairs, or a migration failed."""
        where = safe_url(self.url)
        if self.is_sqlite and make_url(self.url).database in (None, "", ":memory:"):
            return self._upgrade_in_memory()  # nothing survives a crash; the migration must share the one connection
        try:
            self.migration_report = migrate.upgrade(self.url, self.migrations, roll_back_data=roll_back_data)
            return self.migration_report
        except migrate.NeedsRepair as exc:
            diagnosis = exc.diagnosis
            if diagnosis.kind == "unknown_revision":
                action = "start den versjonen av postmottak som oppgraderte den"
            else:
                action = "kjør `postmottak db repair`"
            raise DatabaseNeedsRepair(
                f"saksdatabasen {where} må repareres før start: {diagnosis.describe()}; {action}"
            ) from None
        except migrate.MigrationFailed as exc:
            raise DatabaseNeedsRepair(
                f"migrering {exc.migration} av saksdatabasen {where} feilet og er rullet tilbake (databasen er "
                f"uendret på revisjon {exc.revision or 'tom'}): {exc.reason}; se `postmottak db upgrade --dry-run`"
            ) from None

    def _upgrade_in_memory(self) -> migrate.MigrationReport:
        from alembic import command

        with self.engine.begin() as connection:
            config = migrate.alembic_config(self.url, self.migrations)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        self.migration_report = migrate.MigrationReport()
        return self.migration_report

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str) -> AlembicConfig:
    return migrate.alembic_config(url)


def _casefold(value: object) -> str | None:
    return None if value is None else str(value).casefold()


def _make_engine(url: str, *, echo: bool) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # WAL: readers (status, dashboard) never block the worker; foreign keys: SQLite leaves them off.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            # SQLite's lower()/LIKE fold ASCII only: searches fold æøå (and every other letter) with Python's rules.
            dbapi_connection.create_function("casefold", 1, _casefold, deterministic=True)

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)
