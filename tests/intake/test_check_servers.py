"""`postmottak check` on Dovecot and Cyrus: the processed folder it will use, the rights, what the server offers.

check creates nothing; it predicts what `run` will meet (a folder under INBOX., a refused move) in plain words.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from postmottak.intake.check import Step, run_checks
from tests.intake.test_imap_intake import ImapServer
from tests.oauth2.helpers import settings_for
from tests.servers.cyrus import ADMIN_PASSWORD, ADMIN_USERNAME, CyrusServer


def check(
    tmp_path: Path, server: ImapServer, processed_folder: str = "Behandlet", idle: bool = True
) -> dict[str, Step]:
    settings = settings_for(
        tmp_path,
        imap=server,
        smtp=None,
        endpoint=None,
        imap_extra={
            "auth": "password",
            "password": server.password,
            "processed_folder": processed_folder,
            "idle": idle,
        },
    )
    return {step.name: step for step in run_checks(settings)}


@pytest.mark.parametrize("imap_server", ["dovecot", "cyrus-default", "cyrus-altnamespace"], indirect=True)
def test_check_names_the_processed_folder_it_will_use_and_creates_nothing(
    imap_server: ImapServer, tmp_path: Path
) -> None:
    steps = check(tmp_path, imap_server)
    target = imap_server.personal("Behandlet")
    folder = steps["Processed folder"]
    assert folder.ok and folder.warning, folder
    assert f"{target!r}" in folder.detail and "creates nothing" in folder.detail
    assert not imap_server.folder_exists(target), "check created the folder"
    offer = steps["IMAP server"].detail
    assert "MOVE for the processed folder" in offer and "IDLE for new mail" in offer
    idle = steps["IMAP IDLE"]
    if isinstance(imap_server, CyrusServer):
        assert "imapidlepoll" in idle.detail and idle.warning  # the IDLE delay is the server's
    else:
        assert "imapidlepoll" not in idle.detail

    imap_server.create_folder(target)
    again = check(tmp_path, imap_server)["Processed folder"]
    assert again.ok and not again.warning and "exists" in again.detail


def test_check_reports_missing_rights_in_plain_words(cyrus_server: CyrusServer, tmp_path: Path) -> None:
    target = cyrus_server.personal("Behandlet")
    cyrus_server.create_folder(target)
    admin = cyrus_server._login(ADMIN_USERNAME, ADMIN_PASSWORD)
    try:
        admin.setacl(f"user.{cyrus_server.username}.Behandlet", cyrus_server.username, "lrs")  # no insert
    finally:
        admin.logout()
    steps = check(tmp_path, cyrus_server, idle=False)
    folder = steps["Processed folder"]
    assert not folder.ok, folder
    assert "may not put mail into 'INBOX.Behandlet'" in folder.detail and "lack i" in folder.detail
    assert "stays in the inbox" in folder.hint
    assert "polling every" in steps["IMAP server"].detail


def test_check_predicts_a_refused_create_that_run_then_meets(cyrus_server: CyrusServer, tmp_path: Path) -> None:
    from postmottak.bootstrap import build_worker
    from tests import mailfactory as mf
    from tests.intake.test_imap_servers import WHEN

    folder = check(tmp_path, cyrus_server, processed_folder="user.arkiv.Behandlet", idle=False)["Processed folder"]
    assert not folder.ok and "outside the user's own folders" in folder.detail, folder
    cyrus_server.append(mf.response_mail(org="NITO", attachments=[]), WHEN)
    settings = settings_for(
        tmp_path,
        imap=cyrus_server,
        smtp=None,
        endpoint=None,
        imap_extra={"auth": "password", "password": cyrus_server.password, "processed_folder": "user.arkiv.Behandlet"},
    )
    intake = build_worker(settings)
    try:
        report = intake.run_cycle()
    finally:
        intake.close()
    assert report.ok and sum(report.counts.values()) == 1
    assert report.server_problem and "CREATE" in report.server_problem and "Permission denied" in report.server_problem
