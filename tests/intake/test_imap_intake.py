"""End to end against real IMAP servers (Dovecot; Cyrus in its default namespace and with altnamespace):
`postmottak run --once` and the export contract."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from postmottak.bootstrap import build_worker
from postmottak.casefile import models as m
from postmottak.config.settings import load_settings
from tests import mailfactory as mf
from tests.dbutil import backends, database_url
from tests.servers.cyrus import CyrusServer
from tests.servers.dovecot import DovecotServer
from tests.servers.fixtures import servers_by_database

ImapServer = DovecotServer | CyrusServer

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, server: ImapServer, db_url: str, processed_folder: str = "") -> Path:
    path = tmp_path / "postmottak.toml"
    path.write_text(
        f"""
[database]
url = "{db_url}"
[storage]
path = "{tmp_path / "documents"}"
[imap]
host = "{server.host}"
port = {server.port}
security = "none"
username = "{server.username}"
folder = "INBOX"
processed_folder = "{processed_folder}"
batch_size = 7
[smtp]
sender = "postmottak@ehelse.no"
[[cases]]
number = "22/414"
title = "{mf.CASE_TITLE}"
deadline = "2022-10-01"
timezone = "Europe/Oslo"
keywords = ["e-helsestrategi", "e-helsestrategien"]
""",
        encoding="utf-8",
    )
    return path


def cli(config: Path, *args: str, password: str) -> subprocess.CompletedProcess[str]:
    env = {"POSTMOTTAK_IMAP__PASSWORD": password, "PATH": "/usr/bin:/bin", "HOME": str(config.parent)}
    return subprocess.run(
        [sys.executable, "-m", "postmottak", "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


def export(config: Path, password: str) -> list[dict]:
    result = cli(config, "export", "--format", "json", password=password)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


EXPECTED_STATUS = {
    mf.KIND_ON_TIME: "registered",
    mf.KIND_LATE: "registered",
    mf.KIND_FORWARDED: "registered",
    mf.KIND_NEEDS_REVIEW: "needs_review",
    mf.KIND_AUTO_REPLY: "ignored",
    mf.KIND_BOUNCE: "ignored",
    mf.KIND_UNRELATED: "ignored",
    mf.KIND_DUPLICATE: "duplicate",
}


@pytest.fixture(params=backends())
def db_url(request: pytest.FixtureRequest, tmp_path: Path):
    with database_url(request.param, tmp_path) as url:
        yield url


@pytest.mark.parametrize(
    ("imap_server", "db_url"), servers_by_database("cyrus-default", "cyrus-altnamespace"), indirect=True
)
def test_realistic_mailbox_end_to_end(imap_server: ImapServer, tmp_path: Path, db_url: str) -> None:
    items = mf.realistic_mailbox_items(40, seed=7)
    for item in items:
        imap_server.append(item.raw, item.internaldate)
    config = write_config(tmp_path, imap_server, db_url)

    first = cli(config, "run", "--once", password=imap_server.password)
    assert first.returncode == 0, first.stderr
    assert imap_server.password not in first.stderr + first.stdout

    rows = export(config, imap_server.password)
    assert len(rows) == len(items)
    by_mid: dict[str, list[dict]] = {}
    for row in rows:
        by_mid.setdefault(row["message_id"], []).append(row)
    for item in items:
        candidates = by_mid[item.message_id]
        statuses = sorted(r["status"] for r in candidates)
        if item.kind == mf.KIND_DUPLICATE or item.message_id in {i.duplicate_of for i in items if i.duplicate_of}:
            assert statuses == ["duplicate", "registered"], item
            continue
        row = candidates[0]
        assert row["status"] == EXPECTED_STATUS[item.kind], (item.kind, row)
        received = datetime.fromisoformat(row["received_at"])
        assert received == item.internaldate, "received time is the server's INTERNALDATE"
        assert received.utcoffset() == item.internaldate.astimezone(mf.OSLO).utcoffset()
        if row["status"] == "registered":
            assert row["case_number"] == "22/414"
            assert row["on_time"] is (item.kind != mf.KIND_LATE)
            assert row["journal_number"].startswith("2022/414-")
            assert row["documents"] and all(len(d["sha256"]) == 64 for d in row["documents"])
            assert row["receipt"]["status"] == "pending"
            if item.kind == mf.KIND_FORWARDED:
                assert item.sender_addr.endswith("@ehelse.no")  # forwarded by our own staff
                assert not row["sender"].endswith("@ehelse.no"), "the original sender, not our own staff"
                assert row["receipt"]["to"] == row["sender"]
        else:
            assert row["case_number"] is None and row["on_time"] is None and row["journal_number"] is None
            assert row["reason"]
        if item.has_pdf:
            assert any(d["content_type"] == "application/pdf" for d in row["documents"])

    journal_numbers = [r["journal_number"] for r in rows if r["journal_number"]]
    assert len(journal_numbers) == len(set(journal_numbers))

    second = cli(config, "run", "--once", password=imap_server.password)
    assert second.returncode == 0, second.stderr
    assert export(config, imap_server.password) == rows, "a second run changes nothing"

    status = cli(config, "status", password=imap_server.password)
    assert status.returncode == 0 and "22/414" in status.stdout and "Til vurdering" in status.stdout


# Folder-independent behaviour: Dovecot and Cyrus's default namespace suffice (altnamespace changes only folders).
FOLDER_NEUTRAL = pytest.mark.parametrize("imap_server", ["dovecot", "cyrus-default"], indirect=True)


@FOLDER_NEUTRAL
def test_deadline_edge_and_export_keys(imap_server: ImapServer, tmp_path: Path) -> None:
    on_time = mf.response_mail(org="Tromsø kommune", sender_name="Øyvind Åsheim", attachments=[])
    late = mf.response_mail(org="Kreftforeningen", sender_name="Kari Nordmann", attachments=[])
    imap_server.append(on_time, datetime(2022, 10, 1, 23, 30, tzinfo=mf.OSLO))
    imap_server.append(late, datetime(2022, 10, 1, 22, 15, tzinfo=timezone.utc))  # 00:15 in Oslo, 2 Oct
    config = write_config(tmp_path, imap_server, f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert cli(config, "run", "--once", password=imap_server.password).returncode == 0
    rows = export(config, imap_server.password)
    assert [(r["received_at"], r["on_time"]) for r in rows] == [
        ("2022-10-01T23:30:00+02:00", True),
        ("2022-10-02T00:15:00+02:00", False),
    ]
    for key in (
        "message_id",
        "received_at",
        "sender",
        "subject",
        "status",
        "case_number",
        "on_time",
        "journal_number",
        "documents",
        "form",
        "receipt",
    ):
        assert key in rows[0]
    # A body-only response is kept as a text document.
    assert rows[0]["documents"][0]["content_type"].startswith("text/plain")


@FOLDER_NEUTRAL
def test_uidvalidity_change_neither_skips_nor_repeats(imap_server: ImapServer, tmp_path: Path) -> None:
    old = [mf.response_mail(org=org, attachments=[]) for org in ("Bærum kommune", "Helse Sør-Øst RHF")]
    for raw in old:
        imap_server.append(raw, datetime(2022, 9, 10, 9, 0, tzinfo=mf.OSLO))
    config = write_config(tmp_path, imap_server, f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert cli(config, "run", "--once", password=imap_server.password).returncode == 0

    before = imap_server.uidvalidity()
    after = imap_server.recreate_folder_with_new_uidvalidity("INBOX")
    assert after != before
    for raw in old:  # the folder is rebuilt from a backup: the old mail comes back under new UIDs
        imap_server.append(raw, datetime(2022, 9, 10, 9, 0, tzinfo=mf.OSLO))
    new = mf.response_mail(org="Norsk Sykepleierforbund", attachments=[])
    imap_server.append(new, datetime(2022, 9, 28, 14, 0, tzinfo=mf.OSLO))

    result = cli(config, "run", "--once", password=imap_server.password)
    assert result.returncode == 0, result.stderr
    rows = export(config, imap_server.password)
    assert [r["status"] for r in rows] == ["registered", "registered", "registered"]
    assert sorted(r["journal_number"] for r in rows) == ["2022/414-1", "2022/414-2", "2022/414-3"]


def test_crash_between_commit_and_move_is_repaired(imap_server: ImapServer, tmp_path: Path) -> None:
    raws = [mf.response_mail(org=org, attachments=[]) for org in ("Bærum kommune", "Ålesund kommune", "NITO")]
    for raw in raws:
        imap_server.append(raw, datetime(2022, 9, 15, 12, 0, tzinfo=mf.OSLO))
    config = write_config(tmp_path, imap_server, f"sqlite:///{tmp_path / 'db.sqlite'}", processed_folder="Behandlet")
    settings = load_settings(config, imap={"password": imap_server.password})

    class Crash(BaseException):
        pass

    def crash_after_second_commit(stage: str, uid: str) -> None:
        if stage == "committed" and uid == "2":
            raise Crash()

    intake = build_worker(settings)
    intake.checkpoint = crash_after_second_commit
    with pytest.raises(Crash):
        intake.run_cycle()
    assert imap_server.list_uids("INBOX") == [1, 2, 3], "nothing moved before the crash"
    intake.db.dispose()

    restarted = build_worker(settings)
    report = restarted.run_cycle()
    assert report.ok, report.errors
    assert imap_server.list_uids("INBOX") == []
    assert len(imap_server.list_uids(imap_server.personal("Behandlet"))) == 3, "Behandlet of the personal namespace"
    with restarted.db.session() as session:
        assert session.scalar(select(func.count()).select_from(m.IntakeRecord)) == 3
        assert session.scalar(select(func.count()).select_from(m.JournalEntry)) == 3
    # Nothing more happens on a further cycle.
    assert restarted.run_cycle().fetched == 0
