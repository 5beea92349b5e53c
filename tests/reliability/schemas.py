"""Schema and data checks for the migration crash tests: a database's schema as comparable data, a case database
at revision 0001 with data in it, the way older versions migrated (and bricked) SQLite, and a digest of the data.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, event, inspect, select, text
from sqlalchemy.pool import NullPool

from postmottak.casefile import migrate, schema_state
from postmottak.casefile.models import Base
from postmottak.casefile.storage import DocumentStore

SEED_RECORDS = 6  # intake records in the revision-0001 data set, two documents each
CYCLE_TABLES = {"poll_runs", "mailbox_states"}  # every worker cycle adds to these (an empty folder too)


def schema_snapshot(url: str) -> dict[str, Any]:
    """Tables, columns (type, nullable), primary keys, foreign keys, unique constraints, indexes, version row."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection, warnings.catch_warnings():
            # SQLite: expression indexes are not reflected (their names are compared, from sqlite_master)
            warnings.filterwarnings("ignore", message=".*expression-based index.*")
            inspector = inspect(connection)
            tables: dict[str, Any] = {}
            for table in sorted(inspector.get_table_names()):
                if table == schema_state.VERSION_TABLE:
                    continue
                tables[table] = {
                    "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
                    "pk": inspector.get_pk_constraint(table)["constrained_columns"],
                    "fks": sorted(
                        (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                        for fk in inspector.get_foreign_keys(table)
                    ),
                    "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
                    "indexes": sorted(schema_state._index_names(connection, table)),
                }
            versions = schema_state.version_rows(connection)
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    return {"tables": tables, "version": versions, "autogenerate": sorted(repr(d) for d in differences)}


def migrate_to(url: str, revision: str) -> None:
    """Migrate an empty database to `revision` (transactional, as start-up does)."""
    engine = migrate.migration_engine(url)
    try:
        with engine.connect() as connection:
            config = migrate.alembic_config(url)
            config.attributes["connection"] = connection
            config.attributes["configure_options"] = {"transaction_per_migration": True, "transactional_ddl": True}
            command.upgrade(config, revision)
    finally:
        engine.dispose()


class Stop(Exception):
    pass


def old_style_upgrade(url: str, stop_after: int) -> None:
    """How postmottak migrated before: one `engine.begin()`, the sqlite3 driver's own transaction handling (DDL
    committed statement by statement), stopped by an exception after `stop_after` statements, as a crash would."""
    engine = create_engine(url, poolclass=NullPool)
    count = 0

    def after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        nonlocal count
        if statement.lstrip().upper().startswith(("CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE")):
            count += 1
            if count >= stop_after:
                raise Stop

    event.listen(engine, "after_cursor_execute", after)
    try:
        with engine.begin() as connection:
            config = migrate.alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except Stop:
        pass
    finally:
        engine.dispose()


def seed_revision_0001(url: str, storage: Path) -> None:
    """A case database at revision 0001 holding a case, users, registered responses with stored mail and documents,
    journal entries, receipts, form results and audit events - written with the 0001 tables as they were."""
    migrate_to(url, "0001")
    store = DocumentStore(storage)
    now = datetime(2022, 9, 20, 10, 0, tzinfo=timezone.utc)
    engine = create_engine(url, poolclass=NullPool)
    metadata = MetaData()
    try:
        with engine.begin() as connection:
            metadata.reflect(connection)
            t = metadata.tables
            connection.execute(
                t["cases"].insert(),
                [
                    {
                        "id": 1,
                        "system_id": "c0000000-0000-4000-8000-000000000001",
                        "number": "22/414",
                        "year": 2022,
                        "sequence": 414,
                        "title": "Nasjonal e-helsestrategi",
                        "deadline": date(2022, 10, 1),
                        "timezone": "Europe/Oslo",
                        "form_profile": None,
                        "status": "open",
                        "created_at": now,
                        "closed_at": None,
                        "closed_by": None,
                        "last_document_number": SEED_RECORDS,
                    }
                ],
            )
            connection.execute(
                t["users"].insert(),
                [
                    {
                        "id": 1,
                        "username": "arkivar",
                        "password_hash": "$argon2id$seed",
                        "role": "archivist",
                        "created_at": now,
                        "disabled": False,
                    }
                ],
            )
            connection.execute(t["sequences"].insert(), [{"name": "journal-2022", "value": SEED_RECORDS}])
            connection.execute(
                t["mailbox_states"].insert(),
                [
                    {
                        "id": 1,
                        "source_key": "seed",
                        "uidvalidity": 7,
                        "last_uid": SEED_RECORDS,
                        "last_poll_at": now,
                        "last_success_at": now,
                        "last_error": None,
                    }
                ],
            )
            for n in range(1, SEED_RECORDS + 1):
                raw = f"From: svar{n}@example.no\r\nSubject: 22/414 svar {n}\r\n\r\nHøringssvar nummer {n}\r\n".encode()
                raw_sha, raw_path = store.put(raw)
                connection.execute(
                    t["intake_records"].insert(),
                    [
                        {
                            "id": n,
                            "status": "registered",
                            "reason": None,
                            "message_id": f"<svar{n}@example.no>",
                            "raw_sha256": raw_sha,
                            "raw_size": len(raw),
                            "raw_path": raw_path,
                            "received_at": now,
                            "received_at_source": "internaldate",
                            "date_header": now,
                            "sender_name": f"Avsender {n}",
                            "sender_address": f"svar{n}@example.no",
                            "subject": f"22/414 svar {n}",
                            "body_text": f"Høringssvar nummer {n}",
                            "in_reply_to": [],
                            "references": [],
                            "machine_reason": None,
                            "parse_defects": [],
                            "case_id": 1,
                            "on_time": True,
                            "duplicate_of_id": None,
                            "source_key": "seed",
                            "created_at": now,
                            "updated_at": now,
                        }
                    ],
                )
                connection.execute(
                    t["mail_locations"].insert(),
                    [
                        {
                            "id": n,
                            "intake_id": n,
                            "source_key": "seed",
                            "uidvalidity": 7,
                            "uid": str(n),
                            "seen_at": now,
                            "moved_at": None if n % 2 else now,
                        }
                    ],
                )
                for number in (1, 2):
                    data = raw if number == 1 else f"%PDF-1.4 skjema {n}".encode()
                    sha, path = store.put(data)
                    connection.execute(
                        t["documents"].insert(),
                        [
                            {
                                "id": 2 * n - 2 + number,
                                "system_id": f"d{n:07d}-0000-4000-8000-00000000000{number}",
                                "intake_id": n,
                                "number": number,
                                "role": "main" if number == 1 else "attachment",
                                "kind": "email" if number == 1 else "pdf",
                                "title": f"Dokument {number}",
                                "filename": None if number == 1 else f"skjema{n}.pdf",
                                "content_type": "message/rfc822" if number == 1 else "application/pdf",
                                "size": len(data),
                                "sha256": sha,
                                "storage_path": path,
                                "is_form": number == 2,
                                "depth": 0,
                            }
                        ],
                    )
                connection.execute(
                    t["journal_entries"].insert(),
                    [
                        {
                            "id": n,
                            "system_id": f"j{n:07d}-0000-4000-8000-000000000001",
                            "intake_id": n,
                            "case_id": 1,
                            "journal_year": 2022,
                            "journal_sequence": n,
                            "document_number": n,
                            "journal_date": date(2022, 9, 20),
                            "received_at": now,
                            "entry_type": "I",
                            "title": f"Høringssvar {n}",
                            "correspondent_role": "avsender",
                            "correspondent_name": f"Avsender {n}",
                            "correspondent_email": f"svar{n}@example.no",
                            "correspondent_is_private_person": True,
                            "on_time": True,
                            "created_at": now,
                            "created_by": "postmottak",
                        }
                    ],
                )
                connection.execute(
                    t["receipts"].insert(),
                    [
                        {
                            "id": n,
                            "intake_id": n,
                            "status": "sent",
                            "to_address": f"svar{n}@example.no",
                            "reason": None,
                            "message_id": f"kvittering{n}@ehelse.no",
                            "subject": "Kvittering",
                            "body": "Mottatt",
                            "attempts": 1,
                            "next_attempt_at": None,
                            "sent_at": now,
                            "smtp_response": "250 OK",
                            "bounced_at": None,
                            "bounce_intake_id": None,
                            "created_at": now,
                        }
                    ],
                )
                connection.execute(
                    t["form_results"].insert(),
                    [
                        {
                            "id": n,
                            "intake_id": n,
                            "document_id": 2 * n,
                            "profile": "ehelse-2022",
                            "form_status": "ok",
                            "data": {"navn": f"Avsender {n}"},
                            "warnings": [],
                            "parsed_at": now,
                        }
                    ],
                )
                connection.execute(
                    t["audit_events"].insert(),
                    [
                        {
                            "id": n,
                            "at": now,
                            "actor": "postmottak",
                            "action": "register",
                            "intake_id": n,
                            "case_id": 1,
                            "before": None,
                            "after": {"status": "registered"},
                            "note": None,
                        }
                    ],
                )
                connection.execute(t["dedup_keys"].insert(), [{"key": f"msgid:svar{n}@example.no", "intake_id": n}])
            if connection.dialect.name == "postgresql":  # explicit ids: move the id sequences past them
                for name, table in t.items():
                    if "id" in table.c and table.c.id.autoincrement and name != "sequences":
                        connection.execute(
                            text(
                                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                f"(SELECT coalesce(max(id), 0) + 1 FROM {name}), false)"
                            )
                        )
    finally:
        engine.dispose()


def data_digest(url: str, storage: Path, tables: Iterable[str] | None = None) -> dict[str, Any]:
    """Row counts of the given tables (default: all but those a worker cycle adds to; later revisions add tables,
    so an upgrade compares the tables the earlier revision had), the stored files' identities, and whether each
    file still matches its SHA-256 (read back from the store)."""
    engine = create_engine(url, poolclass=NullPool)
    store = DocumentStore(storage)
    metadata = MetaData()
    try:
        with engine.connect() as connection, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*expression-based index.*")
            metadata.reflect(connection)
            t = metadata.tables
            counts = {
                name: connection.execute(select(text("count(*)")).select_from(t[name])).scalar_one()
                for name in sorted(t if tables is None else tables)
                if name != schema_state.VERSION_TABLE and name not in CYCLE_TABLES
            }
            raws = connection.execute(
                select(
                    t["intake_records"].c.id, t["intake_records"].c.raw_path, t["intake_records"].c.raw_sha256
                ).order_by(t["intake_records"].c.id)
            ).all()
            documents = connection.execute(
                select(t["documents"].c.id, t["documents"].c.storage_path, t["documents"].c.sha256).order_by(
                    t["documents"].c.id
                )
            ).all()
            journal = connection.execute(
                select(t["journal_entries"].c.journal_year, t["journal_entries"].c.journal_sequence).order_by(
                    t["journal_entries"].c.id
                )
            ).all()
    finally:
        engine.dispose()
    files = [(path, sha) for _, path, sha in [*raws, *documents]]
    return {
        "counts": counts,
        "files": files,
        "files_matching": sum(hashlib.sha256(store.read(path)).hexdigest() == sha for path, sha in files),
        "journal": [tuple(row) for row in journal],
    }
