"""The headless commands: users, list, show, review, export csv|xlsx (json untouched)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.casefile.storage import DocumentStore
from postmottak.casefile.users import authenticate
from postmottak.intake import cli
from tests.dashboard.seed import Seeded, seed_consultation


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "postmottak.toml"
    path.write_text(
        '[database]\nurl = "sqlite:///var/postmottak.db"\n[storage]\npath = "var/documents"\n'
        '[[cases]]\nnumber = "22/414"\ntitle = "Høring - Nasjonal e-helsestrategi for helse- og omsorgssektoren"\n'
        'deadline = "2022-10-01"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def cli_db(config: Path, monkeypatch):  # type: ignore[no-untyped-def]
    database = Database(f"sqlite:///{config.parent / 'var' / 'postmottak.db'}")
    database.upgrade()
    from datetime import date

    from postmottak.casefile import cases as case_store

    with database.session() as session:
        case_store.sync_cases(
            session,
            [
                (
                    "22/414",
                    "Høring - Nasjonal e-helsestrategi for helse- og omsorgssektoren",
                    date(2022, 10, 1),
                    "Europe/Oslo",
                    None,
                )
            ],
        )
    yield database
    database.dispose()


@pytest.fixture
def cli_seeded(cli_db: Database, config: Path) -> Seeded:
    return seed_consultation(cli_db, DocumentStore(config.parent / "var" / "documents"))


def run(config: Path, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli.app, ["--config", str(config), *args], input=input, env={"COLUMNS": "250"})
    return result


def test_users_add_reads_the_password_from_stdin_and_lists(config, cli_db):
    result = run(config, "users", "add", "kari", "--role", "archivist", input="hemmelig-passord\n")
    assert result.exit_code == 0, result.output
    assert "hemmelig-passord" not in result.output
    with cli_db.session() as session:
        assert authenticate(session, "kari", "hemmelig-passord").role == "archivist"
    assert run(config, "users", "add", "kari", "--role", "reader", input="annet-passord\n").exit_code == 2
    assert run(config, "users", "add", "per", "--role", "admin", input="annet-passord\n").exit_code == 2
    listing = run(config, "users", "list")
    assert "kari" in listing.output and "arkivar" in listing.output
    assert run(config, "users", "disable", "kari").exit_code == 0
    with cli_db.session() as session:
        assert authenticate(session, "kari", "hemmelig-passord") is None


def test_list_and_show(config, cli_seeded):
    listing = run(config, "list", "--status", "needs_review")
    assert listing.exit_code == 0, listing.output
    assert "Innspill til e-helsestrategien" in listing.output and "Bergen" not in listing.output
    late = run(config, "list", "--late")
    assert "pasientforeningen" in late.output and "bergen" not in late.output
    shown = run(config, "show", str(cli_seeded.ids["bergen"]))
    assert shown.exit_code == 0, shown.output
    for text in [
        "12.09.2022 10:15:00",
        "2022/414-1 (i tide)",
        "Høringssvar.pdf",
        "Kari Nordmann",
        "Kvittering: sendt til postmottak@bergen.kommune.no",
        "journalført som 2022/414-1",
    ]:
        assert text in shown.output, text
    assert run(config, "show", "99999").exit_code == 1


def test_review_commands_act_and_audit(config, cli_db, cli_seeded):
    ids = cli_seeded.ids
    queue = run(config, "review", "queue")
    assert "Til vurdering (3)" in queue.output
    assert run(config, "review", "register", str(ids["review"]), "--case", "22/414", "--user", "kari").exit_code == 0
    assert run(config, "review", "ignore", str(ids["newsletter"]), "--reason", "Reklame").exit_code == 0
    assert run(config, "review", "correct", str(ids["warned"]), "q1_choice", "ja").exit_code == 0
    assert run(config, "review", "correct", str(ids["warned"]), "q1_choice", "kanskje").exit_code == 1
    assert run(config, "review", "confirm-form", str(ids["warned"])).exit_code == 0
    assert run(config, "review", "resend-receipt", str(ids["bergen"])).exit_code == 0
    again = run(config, "review", "register", str(ids["review"]), "--case", "22/414")
    assert again.exit_code == 1 and "kan ikke registreres" in again.output
    assert "Til vurdering (0)" in run(config, "review", "queue").output
    with cli_db.session() as session:
        events = list(session.scalars(select(m.AuditEvent).order_by(m.AuditEvent.id)))
        assert [e.action for e in events] == ["register", "ignore", "correct_field", "form_checked", "resend_receipt"]
        assert events[0].actor == "kari" and events[1].actor.startswith("cli:")


def test_export_csv_xlsx_and_json(config, cli_seeded, tmp_path):
    csv_result = run(config, "export", "--format", "csv", "--case", "22/414")
    assert csv_result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(csv_result.stdout_bytes.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == 6 and rows[0]["Journalnummer"] == "2022/414-1"
    target = tmp_path / "svar.xlsx"
    assert run(config, "export", "--format", "xlsx", "-o", str(target)).exit_code == 0
    sheet = openpyxl.load_workbook(target).active
    assert sheet.max_row == 7
    assert run(config, "export", "--format", "xlsx").exit_code == 2
    assert run(config, "export", "--format", "pdf").exit_code == 2
    json_target = tmp_path / "alle.json"
    result = run(config, "export", "--format", "json", "-o", str(json_target))
    assert result.exit_code == 0, result.output
    assert len(json.loads(json_target.read_text(encoding="utf-8"))) == 9


def test_serve_runs_the_web_app_with_uvicorn(config, cli_db):
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "POSTMOTTAK_WEB__SECURE_COOKIES": "false"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from intake.cli import main; main()",
            "--config",
            str(config),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        status = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                status = 200
            except urllib.error.HTTPError as exc:
                status = exc.code
                body = exc.read()
            except OSError:
                time.sleep(0.1)
                continue
            break
        assert status == 503, "no poll has run yet: the app must report stale"
        assert b'"status":"stale"' in body
        opener = urllib.request.build_opener(
            type(
                "NoRedirect",
                (urllib.request.HTTPRedirectHandler,),
                {"redirect_request": lambda self, *args, **kwargs: None},
            )
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(f"http://127.0.0.1:{port}/intake", timeout=5)
        assert refused.value.code == 303 and refused.value.headers["location"].startswith("/login")
    finally:
        process.terminate()
        process.wait(timeout=20)
