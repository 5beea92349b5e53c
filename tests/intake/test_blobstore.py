"""Documents in the case database: chunked, idempotent, verified; migration both ways on a populated store."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from postmottak.bootstrap import build_worker
from postmottak.casefile import models as m
from postmottak.casefile.blobstore import CHUNK, DatabaseStore, FileStore, migrate, open_store, referenced_files
from postmottak.casefile.db import Database
from postmottak.casefile.storage import StorageError
from postmottak.config.settings import load_settings
from tests import mailfactory as mf
from tests.dbutil import backends, database_url

REPO = Path(__file__).resolve().parents[2]


def test_a_large_file_is_stored_in_chunks_and_read_back_whole(database: Database, tmp_path: Path) -> None:
    store = DatabaseStore(database)
    data = os.urandom(2 * CHUNK + 123)
    digest, relative = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest() and relative.endswith(digest)
    assert store.put(data) == (digest, relative)  # idempotent
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(m.StoredFileChunk)) == 3
        assert max(len(piece) for piece in session.scalars(select(m.StoredFileChunk.data))) == CHUNK
    assert store.read(relative) == data
    assert store.verify(relative, digest) and not store.verify(relative, "0" * 64)
    with pytest.raises(StorageError):
        store.put(data, sha256="0" * 64)


def test_a_wrong_chunk_is_found_by_verify(database: Database) -> None:
    store = DatabaseStore(database)
    digest, relative = store.put(b"one form" * 1000)
    with database.session() as session:
        chunk = session.get(m.StoredFileChunk, (relative, 0))
        assert chunk is not None
        chunk.data = b"something else"
    assert not store.verify(relative, digest)


def _settings(tmp_path: Path, db_url: str, folder: Path, backend: str):  # type: ignore[no-untyped-def]
    config = tmp_path / "postmottak.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[storage]\npath = "{tmp_path / "documents"}"\nbackend = "{backend}"\n'
        f'[folder]\npath = "{folder}"\n[[cases]]\nnumber = "22/414"\ntitle = "{mf.CASE_TITLE}"\n'
        'deadline = "2022-10-01"\nkeywords = ["e-helsestrategi"]\n',
        encoding="utf-8",
    )
    return config, load_settings(config)


@pytest.mark.parametrize("kind", backends())
def test_migrate_both_ways_on_a_populated_store_keeps_every_file(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "eksport"
    folder.mkdir()
    for index, item in enumerate(mf.realistic_mailbox_items(10, seed=3)):
        (folder / f"{index:03}.eml").write_bytes(item.raw)
    with database_url(kind, tmp_path) as url:
        config, settings = _settings(tmp_path, url, folder, "filesystem")
        intake = build_worker(settings)
        try:
            assert intake.run_cycle().ok
        finally:
            intake.close()
        db = Database(url)
        try:
            files = list(referenced_files(db))
            assert len(files) > 10
            to_db = migrate(db, settings.storage_path, "database")
            assert (to_db.copied, to_db.problems) == (len(files), [])
            # Off the disk entirely: the database alone serves every file, verified.
            (tmp_path / "documents").rename(tmp_path / "documents-gone")
            store = open_store("database", settings.storage_path, db)
            assert all(store.verify(relative, sha) for relative, sha in files)
            again = migrate(db, settings.storage_path, "database")
            assert (again.copied, again.already) == (0, len(files))
            back = migrate(db, settings.storage_path, "filesystem")
            assert (back.copied, back.problems) == (len(files), [])
            plain = FileStore(settings.storage_path)
            assert all(plain.has(relative) and plain.verify(relative, sha) for relative, sha in files)
            # The command line says the same and exits 0.
            result = subprocess.run(
                [sys.executable, "-m", "postmottak", "--config", str(config), "storage", "migrate", "--to", "database"],
                capture_output=True,
                text=True,
                cwd=REPO,
                timeout=120,
            )
            assert result.returncode == 0, result.stderr
            assert f"Filer: {len(files)}" in result.stdout and "feil: 0" in result.stdout
        finally:
            db.dispose()


@pytest.mark.parametrize("kind", backends())
def test_during_a_migration_each_backend_reads_through_to_the_other(tmp_path: Path, kind: str) -> None:
    with database_url(kind, tmp_path) as url:
        db = Database(url)
        db.upgrade()
        try:
            root = tmp_path / "documents"
            on_disk = FileStore(root).put(b"written before the switch")
            in_db = DatabaseStore(db).put(b"written after the switch")
            for backend in ("filesystem", "database"):
                store = open_store(backend, root, db)
                assert store.read(on_disk[1]) == b"written before the switch"
                assert store.read(in_db[1]) == b"written after the switch"
        finally:
            db.dispose()
