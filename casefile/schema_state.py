"""What schema a case database holds, compared with what each migration revision produces.

A database migrated by an older postmottak on SQLite could be left half-migrated by a crash: the DDL of a
migration was committed statement by statement, the version row only at the end. `diagnose` recognises those
states by comparing the database's objects (tables, columns, indexes: names only, so one reference serves
SQLite and PostgreSQL) with the objects each revision produces on a scratch in-memory SQLite database:

- the objects are exactly those of one revision, but the version row says another (or none): stamp it;
- the objects are those of revision V plus part of what the next migration creates: the next migration was
  interrupted - drop the part it created (indexes, tables, columns) and run it again, now in one transaction;
- anything else: the database needs a person (the differences are listed).

Objects not produced by any revision (a DBA's own index, another application's table) are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, create_engine, func, inspect, select, text
from sqlalchemy.pool import StaticPool

VERSION_TABLE = "alembic_version"
BATCH_TEMP_PREFIX = "_alembic_tmp_"

SchemaObject = tuple[str, ...]  # ("table", t) | ("column", t, c) | ("index", t, i)

# Diagnosis kinds
CURRENT = "current"  # version row at head, nothing to do
PENDING = "pending"  # schema matches the version row, migrations to run
STAMP = "stamp"  # schema is exactly one revision's, the version row says otherwise
ROLL_BACK = "roll_back"  # a migration was interrupted after part of its DDL: drop that part, run it again
UNKNOWN_REVISION = "unknown_revision"  # version row names a revision this postmottak does not have
MISMATCH = "mismatch"  # none of the above


@dataclass(frozen=True)
class Diagnosis:
    kind: str
    version: str | None  # the version row (None: no table or no row)
    revision: str | None = None  # STAMP: the revision the schema matches; ROLL_BACK: the one it goes back to
    interrupted: str | None = None  # ROLL_BACK: the migration that was interrupted
    extra: tuple[SchemaObject, ...] = ()  # ROLL_BACK: what to drop; MISMATCH: objects too many
    missing: tuple[SchemaObject, ...] = ()  # MISMATCH: objects not there
    rows_in_extra: int = 0  # ROLL_BACK: rows in tables/columns that would be dropped
    stray_temp_tables: tuple[str, ...] = field(default=())  # batch copies left behind, original still there

    @property
    def repairable_at_start(self) -> bool:
        """Repairs that lose nothing: a stamp, or dropping half-created objects that hold no data."""
        return self.kind == STAMP or (self.kind == ROLL_BACK and self.rows_in_extra == 0)

    def describe(self) -> str:
        """One line (bokmål: operators read it) of what was found."""
        version = self.version or "ingen"
        if self.kind == STAMP:
            return f"tabellene er revisjon {self.revision}, men versjonsraden sier {version}"
        if self.kind == ROLL_BACK:
            rows = f" med {self.rows_in_extra} rad(er) i seg" if self.rows_in_extra else ""
            return (
                f"migrering {self.interrupted} ble avbrutt (versjonsrad {version}) etter å ha laget "
                f"{_summary(self.extra)}{rows}"
            )
        if self.kind == UNKNOWN_REVISION:
            return f"databasen er på revisjon {version}, som denne versjonen av postmottak ikke kjenner (en nyere?)"
        if self.kind == MISMATCH:
            parts = []
            if self.missing:
                parts.append(f"mangler {_summary(self.missing)}")
            if self.extra:
                parts.append(f"har i tillegg {_summary(self.extra)}")
            return f"tabellene passer ikke med noen revisjon (versjonsrad {version}): " + "; ".join(parts)
        return f"på revisjon {version}"


def object_names(objects: Iterable[SchemaObject]) -> list[str]:
    """Tables by name; columns and indexes only where their table is not itself in the list (bokmål)."""
    objects = sorted(objects)
    tables = {obj[1] for obj in objects if obj[0] == "table"}
    words = {"table": "tabell", "column": "kolonne", "index": "indeks"}
    return [
        f"{words[kind]} {'.'.join(rest) if kind != 'table' else rest[0]}"
        for kind, *rest in objects
        if kind == "table" or rest[0] not in tables
    ]


def _summary(objects: Iterable[SchemaObject], limit: int = 4) -> str:
    names = object_names(objects)
    shown = ", ".join(names[:limit])
    return shown + (f" og {len(names) - limit} til" if len(names) > limit else "")


def fingerprint(connection: Connection) -> frozenset[SchemaObject]:
    """Names of the tables, columns and indexes in the connection's schema (the version table left out)."""
    inspector = inspect(connection)
    objects: set[SchemaObject] = set()
    for table in inspector.get_table_names():
        if table == VERSION_TABLE or table.startswith("sqlite_"):
            continue
        objects.add(("table", table))
        objects.update(("column", table, column["name"]) for column in inspector.get_columns(table))
        for name in _index_names(connection, table):
            objects.add(("index", table, name))
    return frozenset(objects)


def _index_names(connection: Connection, table: str) -> list[str]:
    if connection.dialect.name == "sqlite":  # includes expression indexes, which reflection may skip
        rows = connection.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"),
            {"t": table},
        )
        return [row[0] for row in rows]
    indexes = inspect(connection).get_indexes(table)
    return [ix["name"] for ix in indexes if ix["name"] and not ix.get("duplicates_constraint")]


def version_rows(connection: Connection) -> list[str]:
    if not inspect(connection).has_table(VERSION_TABLE):
        return []
    return [row[0] for row in connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]


def revision_order(script: ScriptDirectory) -> list[str]:
    """Revisions from the first to the head (one line of history)."""
    return [rev.revision for rev in reversed(list(script.walk_revisions("base", "heads")))]


@lru_cache(maxsize=8)
def reference_fingerprints(script_location: str) -> dict[str | None, frozenset[SchemaObject]]:
    """What each revision's schema holds, from migrating a scratch in-memory SQLite step by step. A migration that
    fails there ends the list (the real run reports it, with its context)."""
    from postmottak.casefile.migrate import alembic_config

    engine = create_engine("sqlite://", poolclass=StaticPool)
    references: dict[str | None, frozenset[SchemaObject]] = {None: frozenset()}
    try:
        with engine.connect() as connection:
            config = alembic_config("sqlite://", script_location)
            config.attributes["connection"] = connection
            for revision in revision_order(ScriptDirectory.from_config(config)):
                try:
                    command.upgrade(config, revision)
                    connection.commit()
                except Exception:
                    break
                references[revision] = fingerprint(connection)
    finally:
        engine.dispose()
    return references


def diagnose(connection: Connection, script: ScriptDirectory, script_location: str) -> Diagnosis:
    versions = version_rows(connection)
    order = revision_order(script)
    head = order[-1] if order else None
    version = versions[0] if len(versions) == 1 else None
    if len(versions) > 1:
        return Diagnosis(MISMATCH, ",".join(versions))
    if version is not None and version not in order:
        return Diagnosis(UNKNOWN_REVISION, version)
    if version == head:
        return Diagnosis(CURRENT, version)

    if version is None and not _has_tables(connection):
        return Diagnosis(PENDING, None)  # an empty database: nothing to compare
    present = fingerprint(connection)
    stray = tuple(sorted(t for kind, t, *_ in present if kind == "table" and _is_stray_copy(t, present)))
    references = reference_fingerprints(script_location)
    known = frozenset().union(*references.values())
    found = present & known
    if found == references.get(version):
        return Diagnosis(PENDING, version, stray_temp_tables=stray)
    matching = [revision for revision in order if references.get(revision) == found]
    if len(matching) == 1:  # several: a data-only migration in between, which one ran cannot be told
        return Diagnosis(STAMP, version, revision=matching[-1], stray_temp_tables=stray)
    position = order.index(version) + 1 if version is not None else 0
    if position < len(order) and version in references and order[position] in references:
        before, after = references[version], references[order[position]]
        if before < found < after:
            extra = tuple(sorted(found - before))
            rows = _rows_in(connection, extra)
            return Diagnosis(
                ROLL_BACK,
                version,
                revision=version,
                interrupted=order[position],
                extra=extra,
                rows_in_extra=rows,
                stray_temp_tables=stray,
            )
    expected = references.get(version, frozenset())
    return Diagnosis(
        MISMATCH,
        version,
        extra=tuple(sorted(found - expected)),
        missing=tuple(sorted(expected - found)),
        stray_temp_tables=stray,
    )


def _has_tables(connection: Connection) -> bool:
    return any(t != VERSION_TABLE and not t.startswith("sqlite_") for t in inspect(connection).get_table_names())


def _is_stray_copy(table: str, present: frozenset[SchemaObject]) -> bool:
    """A batch-mode copy whose original is still there (the copy was not finished: the original holds the data)."""
    return table.startswith(BATCH_TEMP_PREFIX) and ("table", table[len(BATCH_TEMP_PREFIX) :]) in present


def _rows_in(connection: Connection, objects: Iterable[SchemaObject]) -> int:
    """Rows in the tables to drop, plus non-NULL values in the columns to drop."""
    rows = 0
    tables = {obj[1] for obj in objects if obj[0] == "table"}
    metadata = MetaData()
    for kind, table, *rest in objects:
        if kind == "table":
            reflected = _reflect(connection, metadata, table)
            rows += connection.execute(select(func.count()).select_from(reflected)).scalar_one()
        elif kind == "column" and table not in tables:
            column = _reflect(connection, metadata, table).c[rest[0]]
            rows += connection.execute(select(func.count()).where(column.is_not(None))).scalar_one()
    return rows


def _reflect(connection: Connection, metadata: MetaData, table: str):  # type: ignore[no-untyped-def]
    if table not in metadata.tables:
        metadata.reflect(connection, only=[table])
    return metadata.tables[table]


def roll_back_interrupted(connection: Connection, diagnosis: Diagnosis) -> None:
    """Drop what an interrupted migration had created (indexes, then columns, then tables), in the caller's
    transaction; the version row stays where it was, so the migration runs again, whole."""
    preparer = connection.dialect.identifier_preparer
    tables = [obj[1] for obj in diagnosis.extra if obj[0] == "table"]
    for kind, table, *rest in diagnosis.extra:
        if kind == "index" and table not in tables:
            connection.execute(text(f"DROP INDEX {preparer.quote(rest[0])}"))
    for kind, table, *rest in diagnosis.extra:
        if kind == "column" and table not in tables:
            connection.execute(text(f"ALTER TABLE {preparer.quote(table)} DROP COLUMN {preparer.quote(rest[0])}"))
    if tables:
        metadata = MetaData()
        metadata.reflect(connection, only=tables)
        metadata.drop_all(connection, tables=[metadata.tables[t] for t in tables])


def drop_stray_copies(connection: Connection, tables: Iterable[str]) -> None:
    preparer = connection.dialect.identifier_preparer
    for table in tables:
        connection.execute(text(f"DROP TABLE {preparer.quote(table)}"))


def stamp(connection: Connection, revision: str) -> None:
    """Set the version row to `revision` (creating the version table if needed), in the caller's transaction."""
    if not inspect(connection).has_table(VERSION_TABLE):
        connection.execute(
            text(
                f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL, "
                f"CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num))"
            )
        )
    connection.execute(text(f"DELETE FROM {VERSION_TABLE}"))
    connection.execute(text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:v)"), {"v": revision})
