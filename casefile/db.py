"""Engine, sessions and migrations for the case database (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


class DatabaseUnavailable(Exception):
    """The case database cannot be reached or opened now (the message never holds a password)."""


def safe_url(url: str) -> str:
    """The URL as it may be shown: the password masked."""
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """One engine plus a session factory; `session()` is the unit of work (commit on success, else roll back)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine: Engine = _make_engine(url, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str) -> Database:
        """Connect and apply the migrations; DatabaseUnavailable with one clear line when that fails."""
        db = cls(url)
        with db.translating_errors():
            db.upgrade()
        return db

    @contextmanager
    def translating_errors(self) -> Iterator[None]:
        """Connection-level failures become DatabaseUnavailable, so callers above casefile need no SQLAlchemy."""
        try:
            yield
        except (OperationalError, DBAPIError) as exc:
            text = str(getattr(exc, "orig", exc)).strip()
            reason = text.splitlines()[0] if text else type(exc).__name__
            raise DatabaseUnavailable(f"cannot open the case database {safe_url(self.url)}: {reason}") from None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def upgrade(self) -> None:
        """Apply all migrations (idempotent)."""
        with self.engine.begin() as connection:
            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


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
