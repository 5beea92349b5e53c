"""Crash safety of start-up: `postmottak db upgrade` and `postmottak run --once` SIGKILLed while they migrate.

Stop points come from the migration checkpoint hook (POSTMOTTAK_MIGRATION_KILL_AFTER=N: the process SIGKILLs
itself right after its N-th schema or data statement, see casefile/migrate.py), spread over every migration, and
from a seeded RNG (kills at random moments of a start). After each kill the database is exactly at one revision
(never between two) and the next start works; at the end the schema equals a cleanly migrated database's and
the data of the previous revision is intact (row counts, journal numbers, every stored file against its SHA-256).

Also: a table-rewriting migration (SQLite batch copy plus a data move, in a test-only script location) killed at
every few statements, with the backup copy it triggers; databases bricked by the older, non-transactional
migration (tables without a version row) repaired or explained in one line with exit status 3, also by `run`
(no loop of failed starts); three processes (two workers and the dashboard) starting together on an empty
database.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.pool import NullPool

from postmottak.casefile import migrate, schema_state
from postmottak.casefile.db import Database, DatabaseNeedsRepair
from tests import mailfactory as mf
from tests.dbutil import database_url
from tests.servers.smtp import SmtpSink

from .helpers import REPO, run_cli, start_cli, worker_env, write_config
from .schemas import data_digest, migrate_to, old_style_upgrade, schema_snapshot, seed_revision_0001

SOAK = os.environ.get("POSTMOTTAK_SOAK", "") not in ("", "0")  # every checkpoint, more random kills
SEED = 20221001
MAILS = 4  # in the folder the worker reads, so `run --once` also registers mail after migrating
KILL_STARTS_FIRST = 1000 if SOAK else 4  # stop points among the checkpoints of the first start
RANDOM_KILLS = 5 if SOAK else 1  # kills at random moments of a start
START_LIMIT = 120  # seconds a start may take before the test gives up on it
REPAIR_EXIT = 3
# The test-only migrations below come after the newest real one.
HEAD = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()

TEST_MIGRATION = '''"""test-only: rewrite a table (batch copy on SQLite) and move data

Revision ID: 0999
Revises: {head}
"""
from alembic import op
import sqlalchemy as sa

revision = "0999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("intake_records") as batch_op:
        batch_op.add_column(sa.Column("sender_lower", sa.String(length=512), nullable=True))
        batch_op.alter_column("subject", existing_type=sa.Text(), type_=sa.String(length=2000))
    op.execute("UPDATE intake_records SET sender_lower = lower(sender_address)")


def downgrade() -> None:
    with op.batch_alter_table("intake_records") as batch_op:
        batch_op.drop_column("sender_lower")
'''


def _kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


@contextmanager
def _clean_schema(url: str, tmp_path: Path, migrations: Path | None = None):  # type: ignore[no-untyped-def]
    """The schema of a database migrated without interruption (same backend)."""
    folder = tmp_path / "clean"
    folder.mkdir(exist_ok=True)
    with database_url(_kind(url), folder) as clean_url:
        Database(clean_url, migrations=migrations).upgrade()
        yield schema_snapshot(clean_url)


def _count_checkpoints(url: str, tmp_path: Path, migrations: Path | None = None, start: str | None = None) -> int:
    """Schema/data statements of a clean migration (from `start`), on a scratch database of the same backend."""
    folder = tmp_path / f"count-{start or 'base'}"
    folder.mkdir(exist_ok=True)
    with database_url(_kind(url), folder) as scratch:
        if start:
            migrate_to(scratch, start)
        return Database(scratch, migrations=migrations).upgrade().statements


def _spread(total: int, count: int) -> list[int]:
    """`count` stop points from 1 to `total`, evenly spread, first and last included."""
    if total <= count:
        return list(range(1, total + 1))
    return sorted({1, total, *(round(1 + i * (total - 1) / (count - 1)) for i in range(count))})


def _assert_at_a_revision(url: str, migrations: Path | None = None) -> str | None:
    """After a kill: the schema is exactly some revision's and the version row says which - nothing to repair."""
    diagnosis = migrate.plan(url, migrations).diagnosis
    assert diagnosis.kind in (schema_state.PENDING, schema_state.CURRENT), diagnosis.describe()
    return diagnosis.version


def _mail_folder(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "mail"
    folder.mkdir(exist_ok=True)
    for n in range(count):  # plain-text responses: no form to parse, the start-up is what is tested here
        message = EmailMessage()
        message["From"] = f"Svar {n} <svar{n}@example.no>"
        message["To"] = "postmottak@ehelse.no"
        message["Subject"] = f"Høringssvar 22/414 {mf.CASE_TITLE}"
        message["Message-ID"] = f"<oppstart-{n}@example.no>"
        message["Date"] = "Tue, 20 Sep 2022 10:00:00 +0200"
        message.set_content(f"Høringssvar nummer {n} til sak 22/414.")
        (folder / f"{n:03d}.eml").write_bytes(bytes(message))
    return folder


def _config(tmp_path: Path, url: str, smtp: SmtpSink, mails: int = MAILS) -> Path:
    folder = _mail_folder(tmp_path, mails)
    return write_config(tmp_path, db_url=url, smtp=smtp, extra=f'[folder]\npath = "{folder}"\nformat = "eml"\n')


def _start(config: Path, args: list[str], env: dict[str, str], log: Path, *, delay: float | None = None) -> int:
    """One start of the CLI; killed after `delay` seconds if given (and still running). Returns its exit status
    (-9 when killed)."""
    process = start_cli(config, *args, env=env, log=log)
    try:
        process.wait(timeout=delay if delay is not None else START_LIMIT)
    except subprocess.TimeoutExpired:
        if delay is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise AssertionError(f"`{' '.join(args)}` did not finish in {START_LIMIT} s") from None
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    _reap(process)
    return process.returncode


def _reap(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # form readers a killed worker may have left
    except ProcessLookupError:
        pass


def _env(tmp_path: Path, kill_after: int | None = None) -> dict[str, str]:
    env = worker_env(tmp_path)
    if kill_after:
        env[migrate.KILL_AFTER_ENV] = str(kill_after)
    return env


def _tail(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-3000:]


def test_kill_at_every_stage_of_the_first_start_never_bricks_the_database(
    db_url: str, tmp_path: Path, smtp_sink: SmtpSink, figures
) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(SEED)
    config = _config(tmp_path, db_url, smtp_sink)
    log = tmp_path / "starts.log"
    total = _count_checkpoints(db_url, tmp_path)
    points = _spread(total, KILL_STARTS_FIRST)
    # The first half of the stop points for `db upgrade`, the rest for `run --once` (the worker's start-up).
    plan = [("db upgrade" if i < len(points) // 2 else "run --once", point) for i, point in enumerate(points)]
    killed, revisions_seen = 0, set()
    for command, point in plan:
        status = _start(config, command.split(), _env(tmp_path, point), log)
        assert status in (-signal.SIGKILL, 0), f"{command} (kill after {point}) failed:\n{_tail(log)}"
        killed += status == -signal.SIGKILL
        revisions_seen.add(_assert_at_a_revision(db_url))
    for _ in range(RANDOM_KILLS):
        status = _start(config, ["run", "--once"], _env(tmp_path), log, delay=rng.uniform(0.5, 3.0))
        assert status in (-signal.SIGKILL, 0), _tail(log)
        killed += status == -signal.SIGKILL
        revisions_seen.add(_assert_at_a_revision(db_url))

    final = run_cli(config, "run", "--once", env=_env(tmp_path), timeout=START_LIMIT)
    assert final.returncode == 0, final.stderr[-3000:]
    with _clean_schema(db_url, tmp_path) as clean:
        assert schema_snapshot(db_url) == clean
    assert "Traceback" not in log.read_text(encoding="utf-8", errors="replace")
    figures(
        backend=_kind(db_url),
        checkpoints=total,
        stop_points=points,
        kills=killed,
        revisions_after_kills=sorted(str(r) for r in revisions_seen),
    )


def test_kill_during_an_upgrade_from_the_previous_revision_keeps_every_row_and_file(
    db_url: str, tmp_path: Path, smtp_sink: SmtpSink, figures
) -> None:  # type: ignore[no-untyped-def]
    storage = tmp_path / "documents"
    seed_revision_0001(db_url, storage)
    before = data_digest(db_url, storage)
    config = _config(tmp_path, db_url, smtp_sink, mails=0)
    log = tmp_path / "starts.log"
    total = _count_checkpoints(db_url, tmp_path, start="0001")
    points = _spread(total, 1000 if SOAK else 3)
    killed = 0
    for i, point in enumerate(points):
        command = ["db", "upgrade"] if i % 2 == 0 else ["run", "--once"]
        status = _start(config, command, _env(tmp_path, point), log)
        assert status in (-signal.SIGKILL, 0), _tail(log)
        killed += status == -signal.SIGKILL
        _assert_at_a_revision(db_url)
        assert data_digest(db_url, storage, before["counts"]) == before

    final = run_cli(config, "run", "--once", env=_env(tmp_path), timeout=START_LIMIT)
    assert final.returncode == 0, final.stderr[-3000:]
    after = data_digest(db_url, storage, before["counts"])
    assert after == before
    assert after["files_matching"] == len(after["files"]) == 18
    with _clean_schema(db_url, tmp_path) as clean:
        assert schema_snapshot(db_url) == clean
    figures(
        backend=_kind(db_url),
        checkpoints=total,
        stop_points=points,
        kills=killed,
        rows=sum(before["counts"].values()),
        files_verified=after["files_matching"],
    )


def _drop_everything(url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    metadata = MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)
    engine.dispose()


def _test_script_location(tmp_path: Path) -> Path:
    location = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, location, ignore=shutil.ignore_patterns("__pycache__"))
    (location / "versions" / "0999_test_rewrite.py").write_text(
        TEST_MIGRATION.replace("{head}", HEAD), encoding="utf-8"
    )
    return location


def _open_in_process_of_its_own(url: str, migrations: Path, env: dict[str, str], log: Path) -> int:
    """Start-up's migration (Database.open) in a process of its own, with logging as the CLI sets it up."""
    code = (
        "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stderr); "
        "from postmottak.casefile.db import Database; Database.open(sys.argv[1], migrations=sys.argv[2])"
    )
    with log.open("ab") as handle:
        return subprocess.run(
            [sys.executable, "-c", code, url, str(migrations)],
            cwd=REPO,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            timeout=START_LIMIT,
        ).returncode


def test_table_rewrite_killed_midway_keeps_data_and_is_backed_up_first(db_url: str, tmp_path: Path, figures) -> None:  # type: ignore[no-untyped-def]
    migrations = _test_script_location(tmp_path)
    storage = tmp_path / "documents"
    seed_revision_0001(db_url, storage)
    migrate_to(db_url, HEAD)
    before = data_digest(db_url, storage)
    total = _count_checkpoints(db_url, tmp_path, migrations, start=HEAD)
    points = _spread(total, 3)
    log = tmp_path / "rewrite.log"
    for point in points:
        status = _open_in_process_of_its_own(db_url, migrations, _env(tmp_path, point), log)
        assert status in (-signal.SIGKILL, 0), _tail(log)
        assert _assert_at_a_revision(db_url, migrations) in (HEAD, "0999")
        assert data_digest(db_url, storage)["counts"] == before["counts"]
    assert _open_in_process_of_its_own(db_url, migrations, _env(tmp_path), log) == 0, _tail(log)

    after = data_digest(db_url, storage)
    assert after == before
    with _clean_schema(db_url, tmp_path, migrations) as clean:
        assert schema_snapshot(db_url)["tables"] == clean["tables"]
    engine = create_engine(db_url, poolclass=NullPool)
    with engine.connect() as connection:
        moved = connection.execute(text("SELECT count(*) FROM intake_records WHERE sender_lower LIKE '%@example.no'"))
        assert moved.scalar_one() == before["counts"]["intake_records"]
    engine.dispose()
    backups: list[str] = []
    if _kind(db_url) == "sqlite":
        # Every start that reached the rewrite made a copy first (killed ones too); the path is in the log.
        backups = re.findall(r"backup of the case database before migrating: (\S+)", log.read_text())
        assert backups and all(Path(b).is_file() for b in backups)
        with sqlite3.connect(backups[-1]) as copy:
            assert copy.execute("SELECT version_num FROM alembic_version").fetchone()[0] == HEAD
            copied = copy.execute("SELECT count(*) FROM intake_records").fetchone()[0]
        assert copied == before["counts"]["intake_records"]
    figures(backend=_kind(db_url), checkpoints=total, stop_points=points, backups=len(backups))


def test_database_bricked_by_an_older_version_is_repaired_or_explained(
    db_url: str, tmp_path: Path, smtp_sink: SmtpSink, figures
) -> None:  # type: ignore[no-untyped-def]
    config = _config(tmp_path, db_url, smtp_sink, mails=0)
    env = _env(tmp_path)
    if _kind(db_url) == "sqlite":
        # The old migration, stopped after 20 statements: some tables committed, no version row.
        old_style_upgrade(db_url, stop_after=20)
    else:
        # PostgreSQL's DDL was always transactional; tables without a version row come from elsewhere (create_all).
        migrate_to(db_url, "0001")
        _execute(db_url, "DROP TABLE alembic_version")
    assert migrate.plan(db_url).diagnosis.kind in (schema_state.ROLL_BACK, schema_state.STAMP)
    repaired = run_cli(config, "run", "--once", env=env, timeout=START_LIMIT)
    assert repaired.returncode == 0, repaired.stderr[-3000:]
    assert "repaired a half-migrated case database" in repaired.stderr
    with _clean_schema(db_url, tmp_path) as clean:
        assert schema_snapshot(db_url) == clean

    # Someone worked in a half-created table: start-up will not drop rows by itself. `run` (the service) stops with
    # one line and status 3 instead of retrying; `db repair` backs up (SQLite), rolls back and migrates.
    # The older version's database was at revision 0002.
    _drop_everything(db_url)
    migrate_to(db_url, "0002")
    _execute(db_url, "DROP TABLE alembic_version")
    _execute(db_url, "DROP INDEX ix_mail_locations_pending_move")
    _execute(db_url, "DROP INDEX ix_receipts_to_address_lower")
    _execute(db_url, "DROP TABLE form_results")
    _execute(
        db_url,
        "INSERT INTO users (username, password_hash, role, created_at, disabled) "
        "VALUES ('arkivar', 'x', 'archivist', '2022-09-20 10:00:00', false)",
    )
    started = time.monotonic()
    stopped = run_cli(config, "run", env=env, timeout=START_LIMIT)
    waited = time.monotonic() - started
    lines = [line for line in stopped.stderr.splitlines() if line.startswith("postmottak:")]
    assert stopped.returncode == REPAIR_EXIT, stopped.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in stopped.stderr
    assert "postmottak db repair" in lines[0] and "migrering 0001 ble avbrutt" in lines[0]
    plan = run_cli(config, "db", "upgrade", "--dry-run", env=env, timeout=START_LIMIT)
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "tabell form_results" not in plan.stdout and "i tillegg: tabell users" in plan.stdout
    assert "vil fjerne det den avbrutte migreringen laget" in plan.stdout and "vil kjøre 0001" in plan.stdout
    fixed = run_cli(config, "db", "repair", env=env, timeout=START_LIMIT)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    if _kind(db_url) == "sqlite":
        assert "sikkerhetskopi:" in fixed.stdout
    assert migrate.plan(db_url).diagnosis.kind == schema_state.CURRENT
    with _clean_schema(db_url, tmp_path) as clean:
        assert schema_snapshot(db_url) == clean
    figures(
        backend=_kind(db_url),
        repaired_at_start=1,
        explained_exit_status=stopped.returncode,
        seconds_until_run_stopped=round(waited, 1),
    )


def _execute(url: str, statement: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(text(statement))
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_three_processes_starting_together_migrate_once(
    db_url: str, tmp_path: Path, smtp_sink: SmtpSink, figures
) -> None:  # type: ignore[no-untyped-def]
    config = _config(tmp_path, db_url, smtp_sink)
    env = _env(tmp_path)
    port = _free_port()
    logs = [tmp_path / f"process{n}.log" for n in (1, 2, 3)]
    workers = [start_cli(config, "run", "--once", env=env, log=log) for log in logs[:2]]
    dashboard = start_cli(config, "serve", "--port", str(port), env=env, log=logs[2])
    try:
        for worker, log in zip(workers, logs[:2], strict=True):
            assert worker.wait(timeout=START_LIMIT) == 0, _tail(log)
        assert _healthy(port, dashboard, timeout=START_LIMIT), _tail(logs[2])
    finally:
        for process in [*workers, dashboard]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
            _reap(process)
    texts = [log.read_text(encoding="utf-8", errors="replace") for log in logs]
    migrated = sum("migrated the case database" in t for t in texts)
    assert migrated == 1, texts
    assert not any("Traceback" in t or "postmottak: " in t for t in texts), texts
    with _clean_schema(db_url, tmp_path) as clean:
        assert schema_snapshot(db_url) == clean
    figures(
        backend=_kind(db_url),
        processes=3,
        migrated_by=migrated,
        waited_for_the_lock=sum("another process is migrating" in t for t in texts),
    )


def _healthy(port: int, process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            time.sleep(0.2)
    return False


FAILING_MIGRATION = '''"""test-only: creates a table, then fails

Revision ID: 0999
Revises: {head}
"""
from alembic import op
import sqlalchemy as sa

revision = "0999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer(), primary_key=True))
    op.add_column("cases", sa.Column("half_done_note", sa.Text(), nullable=True))
    raise RuntimeError("the data move found a row it cannot convert")


def downgrade() -> None:
    pass
'''


def test_a_failing_migration_is_rolled_back_whole_and_reported_in_one_line(db_url: str, tmp_path: Path) -> None:
    location = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, location, ignore=shutil.ignore_patterns("__pycache__"))
    (location / "versions" / "0999_test_fails.py").write_text(
        FAILING_MIGRATION.replace("{head}", HEAD), encoding="utf-8"
    )
    migrate_to(db_url, HEAD)
    before = schema_snapshot(db_url)
    db = Database(db_url, migrations=location)
    try:
        db.upgrade()
        raise AssertionError("the failing migration was not reported")
    except DatabaseNeedsRepair as exc:
        message = str(exc)
    finally:
        db.dispose()
    assert "\n" not in message and DatabaseNeedsRepair.exit_code == REPAIR_EXIT
    assert "migrering 0999" in message and f"revisjon {HEAD}" in message and "cannot convert" in message
    assert schema_snapshot(db_url) == before  # neither the table nor the column of the failed migration remain
