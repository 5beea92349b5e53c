"""IMAP servers other than Dovecot: folder names through NAMESPACE, and a server that refuses a step after the commit.

Real servers: Dovecot, Cyrus in its default namespace (personal folders under `INBOX.`) and with altnamespace,
Cyrus with unixhierarchysep. The worker runs in-process (one cycle = one `run --once`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from sqlalchemy import func, select

from postmottak.bootstrap import build_worker
from postmottak.casefile import models as m
from postmottak.casefile.queries import status_summary
from postmottak.config.settings import load_settings
from postmottak.intake.cli.commands import print_status
from postmottak.intake.cli.context import console
from postmottak.intake.sources.imap_server import (
    Namespace,
    ServerOffer,
    missing_rights,
    parse_namespace,
    resolve_folder,
)
from tests import mailfactory as mf
from tests.intake.test_imap_intake import ImapServer, write_config
from tests.servers.fixtures import running_imap_server

WHEN = datetime(2022, 9, 15, 12, 0, tzinfo=mf.OSLO)
CYRUS_DEFAULT = Namespace("INBOX.", ".", ("user.",))
CYRUS_UNIXSEP = Namespace("INBOX/", "/", ("user/",))
CYRUS_ALT = Namespace("", ".", ("Other Users.", "Shared Folders."))
DOVECOT = Namespace("", "/")


# ------------------------------------------------------------------------------ pure: names, rights, capabilities


@pytest.mark.parametrize(
    ("configured", "namespace", "expected"),
    [
        ("Behandlet", CYRUS_DEFAULT, "INBOX.Behandlet"),
        ("Behandlet", CYRUS_UNIXSEP, "INBOX/Behandlet"),
        ("Behandlet", CYRUS_ALT, "Behandlet"),
        ("Behandlet", DOVECOT, "Behandlet"),
        ("Behandlet/Høring", CYRUS_DEFAULT, "INBOX.Behandlet.Høring"),
        ("Behandlet/Høring", CYRUS_ALT, "Behandlet.Høring"),
        ("Behandlet/Høring", DOVECOT, "Behandlet/Høring"),
        ("INBOX.Behandlet", CYRUS_DEFAULT, "INBOX.Behandlet"),  # an explicit full name is kept
        ("inbox.Behandlet", CYRUS_DEFAULT, "inbox.Behandlet"),
        ("INBOX/Behandlet", DOVECOT, "INBOX/Behandlet"),
        ("user.arkiv.Behandlet", CYRUS_DEFAULT, "user.arkiv.Behandlet"),  # another namespace: as written
        ("Shared Folders.Arkiv", CYRUS_ALT, "Shared Folders.Arkiv"),
        ("INBOX", CYRUS_DEFAULT, "INBOX"),
    ],
)
def test_folder_names_resolve_in_the_personal_namespace(configured: str, namespace: Namespace, expected: str) -> None:
    assert resolve_folder(configured, namespace) == expected


def test_namespace_answer_is_parsed_with_empty_shared_prefix_ignored() -> None:
    answer = ((("INBOX.", "."),), (("user.", "."),), (("", "."),))  # Cyrus defaults: shared folders at the top
    assert parse_namespace(answer) == CYRUS_DEFAULT
    assert parse_namespace((None, None, None)) is None


def test_rights_missing_accept_rfc2086_letters() -> None:
    assert missing_rights("lrswipkxte", "kite") == []
    assert missing_rights("lrswipcd", "kite") == []  # RFC 2086: c = create, d = delete + expunge
    assert missing_rights("lrs", "kit") == ["k", "i", "t"]


def test_move_method_follows_the_capabilities() -> None:
    assert ServerOffer.from_capabilities([b"IMAP4rev1", b"MOVE"]).move_method == "MOVE"
    assert ServerOffer.from_capabilities([b"UIDPLUS"]).move_method.endswith("UID EXPUNGE")
    assert "nothing is expunged" in ServerOffer.from_capabilities([b"IMAP4rev1"]).move_method


# ------------------------------------------------------------------------------ real servers


def _settings(tmp_path: Path, server: ImapServer, processed_folder: str):  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, server, f"sqlite:///{tmp_path / 'db.sqlite'}", processed_folder=processed_folder)
    return load_settings(config, imap={"password": server.password})


@pytest.mark.parametrize("kind", ["dovecot", "cyrus-default", "cyrus-altnamespace", "cyrus-unixsep"])
def test_processed_folder_with_norwegian_letters_round_trips(kind: str, tmp_path: Path) -> None:
    for server in running_imap_server(kind):
        server.append(mf.response_mail(org="Tromsø kommune", attachments=[]), WHEN)
        intake = build_worker(_settings(tmp_path, server, "Behandlet/Høring"))
        try:
            report = intake.run_cycle()
        finally:
            intake.close()
        assert report.ok and report.server_problem is None, report.summary()
        target = server.personal("Behandlet/Høring")  # e.g. INBOX.Behandlet.Høring (modified UTF-7 on the wire)
        assert server.list_uids("INBOX") == []
        assert len(server.list_uids(target)) == 1
        names = [entry[2] for entry in server.connect().list_folders()]
        assert target in names, names


@pytest.mark.parametrize("imap_server", ["dovecot", "cyrus-default"], indirect=True)
def test_refused_folder_leaves_intake_running_and_shows_one_line(imap_server: ImapServer, tmp_path: Path) -> None:
    imap_server.append(mf.response_mail(org="Bærum kommune", attachments=[]), WHEN)
    imap_server.refuse_new_folders()
    settings = _settings(tmp_path, imap_server, "Behandlet")
    intake = build_worker(settings)
    try:
        first = intake.run_cycle()
        assert first.ok, first.errors  # `run --once` exits 0; the scheduler does not back off
        assert first.counts["registered"] == 1
        assert first.server_problem and "CREATE" in first.server_problem
        assert imap_server.personal("Behandlet") in first.server_problem
        assert first.moves_pending == 1
        assert imap_server.list_uids("INBOX") == [1], "not moved, not lost"

        imap_server.append(mf.response_mail(org="Ålesund kommune", attachments=[]), WHEN)
        second = intake.run_cycle()
        assert second.ok and second.counts["registered"] == 1, "registration goes on"
        assert second.moves_pending == 2
        with intake.db.session() as session:
            summary = status_summary(session)
            assert session.scalar(select(func.count()).select_from(m.IntakeRecord)) == 2
        assert len(summary.server_problems) == 1
        assert "2 e-post venter på flytting" in summary.server_problems[0]
        assert "CREATE" in summary.server_problems[0]
        assert summary.last_error is None, "a refused move is not a failed cycle"
        with console.capture() as captured:  # `postmottak status`
            print_status(summary)
        printed = " ".join(captured.get().split())
        assert printed.count("Serveren: ") == 1 and "2 e-post venter på flytting" in printed

        from postmottak.dashboard.metrics import metrics_registry

        metrics = generate_latest(metrics_registry(intake.db)).decode()
        assert "postmottak_server_problems 1.0" in metrics
        assert 'postmottak_server_moves_pending{source="' in metrics

        imap_server.allow_new_folders()  # the administrator fixes it: the pending moves go through
        third = intake.run_cycle()
        assert third.ok and third.server_problem is None, third.summary()
        assert imap_server.list_uids("INBOX") == []
        assert len(imap_server.list_uids(imap_server.personal("Behandlet"))) == 2
        with intake.db.session() as session:
            assert status_summary(session).server_problems == []
    finally:
        intake.close()


@pytest.mark.parametrize("uidplus", [True, False], ids=["uidplus", "no-uidplus"])
def test_without_move_copy_store_and_uid_expunge_only_with_uidplus(uidplus: bool, tmp_path: Path) -> None:
    capability = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT" + (" UIDPLUS" if uidplus else "")
    for server in running_imap_server("dovecot", imap_capability=capability):
        server.append(mf.response_mail(org="Tromsø kommune", attachments=[]), WHEN)
        server.append(mf.response_mail(org="NITO", attachments=[]), WHEN)
        intake = build_worker(_settings(tmp_path, server, "Behandlet"))
        try:
            report = intake.run_cycle()
            assert report.ok and report.server_problem is None, report.summary()
            assert intake.run_cycle().moves_pending == 0, "the move is recorded as done"
        finally:
            intake.close()
        assert len(server.list_uids("Behandlet")) == 2
        client = server.connect()
        client.select_folder("INBOX", readonly=True)
        left = client.search(["ALL"])
        deleted = client.search(["DELETED"])
        client.logout()
        if uidplus:
            assert left == [], left  # UID EXPUNGE of exactly the moved mails
        else:
            assert sorted(left) == sorted(deleted) and len(left) == 2, "copied and marked, nothing expunged"
