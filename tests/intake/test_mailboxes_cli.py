"""Several folder mailboxes on one host (SQLite): `run --once` reads each through its lease, each mailbox keeps its
own position and serves only its cases; `workers` and `mailboxes list` show who read what."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.intake import cli
from tests import mailfactory as mf


def _cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli.app, ["--config", str(config), *args], env={"COLUMNS": "250"})


def test_two_folder_mailboxes_are_read_once_each_and_listed(tmp_path: Path) -> None:
    folders = {"postmottak": tmp_path / "postmottak", "horing": tmp_path / "horing"}
    for seed, folder in enumerate(folders.values()):
        folder.mkdir()
        for index, item in enumerate(mf.realistic_mailbox_items(10, seed=40 + seed)):
            (folder / f"{index:03}.eml").write_bytes(item.raw)
    config = tmp_path / "postmottak.toml"
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[storage]\npath = "{tmp_path / "documents"}"\n'
        "[intake]\nparse_workers = 1\n"
        f'[[cases]]\nnumber = "22/414"\ntitle = "{mf.CASE_TITLE}"\ndeadline = "2022-10-01"\n'
        'keywords = ["e-helsestrategi"]\n'
        '[[cases]]\nnumber = "23/100"\ntitle = "Annen høring"\ndeadline = "2023-10-01"\n'
        '[[mailboxes]]\nname = "postmottak"\n[mailboxes.folder]\n'
        f'path = "{folders["postmottak"]}"\n'
        '[[mailboxes]]\nname = "horing"\ncases = ["23/100"]\n[mailboxes.folder]\n'
        f'path = "{folders["horing"]}"\n',
        encoding="utf-8",
    )
    first = _cli(config, "run", "--once")
    assert first.exit_code == 0, first.output[-3000:]
    again = _cli(config, "run", "--once")
    assert again.exit_code == 0, again.output[-3000:]

    db = Database(db_url)
    try:
        with db.session() as session:
            locations = session.execute(select(m.MailLocation.source_key, m.MailLocation.uid)).all()
            cases_by_source = {
                (source, number)
                for source, number in session.execute(
                    select(m.MailLocation.source_key, m.Case.number)
                    .join(m.IntakeRecord, m.IntakeRecord.id == m.MailLocation.intake_id)
                    .join(m.Case, m.Case.id == m.IntakeRecord.case_id)
                )
            }
            by_status = {
                (source, status): count
                for source, status, count in session.execute(
                    select(m.IntakeRecord.source_key, m.IntakeRecord.status, func.count()).group_by(
                        m.IntakeRecord.source_key, m.IntakeRecord.status
                    )
                )
            }
            grants = session.scalars(select(m.LeaseGrant)).all()
            workers = session.scalars(select(m.Worker)).all()
    finally:
        db.dispose()
    assert len(locations) == len(set(locations)) == 20, "each mail once, the second run registered nothing"
    assert {source for source, _uid in locations} == {f"folder://{path}" for path in folders.values()}
    # The høring mailbox serves only 23/100: the 22/414 responses in it are not registered to 22/414.
    assert (f"folder://{folders['horing']}", "22/414") not in cases_by_source
    assert (f"folder://{folders['postmottak']}", "22/414") in cases_by_source
    assert {grant.mailbox for grant in grants} == {"postmottak", "horing"} and len(grants) == 4
    assert len(workers) == 2 and all(worker.stopped_at is not None for worker in workers)

    listed = _cli(config, "workers", "--stopped")
    assert listed.exit_code == 0, listed.output
    assert "stoppet" in listed.output and "postmottak" in listed.output and "horing" in listed.output
    assert "Ingen arbeider leser: postmottak, horing" in listed.output.replace("\n", " ")
    boxes = _cli(config, "mailboxes", "list")
    assert boxes.exit_code == 0, boxes.output
    assert "23/100" in boxes.output and "horing" in boxes.output
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in boxes.output.splitlines()]
    by_name = {cells[0]: cells for cells in rows if len(cells) == 12 and cells[0] in folders}
    for name, folder in folders.items():
        cells = by_name[name]
        assert cells[3] == "ingen", "nobody reads the mailbox after run --once"
        counts = [by_status.get((f"folder://{folder}", status), 0) for status in (m.REGISTERED, m.NEEDS_REVIEW)]
        assert [int(cells[7]), int(cells[8])] == counts and sum(counts) > 0, "this mailbox's mail by status"
    # Per mailbox counts: the source keys the settings name are the ones the worker recorded.
    from postmottak.config.settings import load_settings

    assert set(load_settings(config).mailbox_sources().values()) == {source for source, _uid in locations}
