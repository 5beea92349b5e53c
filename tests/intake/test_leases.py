"""Mailbox leases in the case database: taking, renewing, expiry, takeover and fencing (SQLite and PostgreSQL),
the even spread over live workers, and `[[mailboxes]]` settings."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from postmottak.casefile import leases
from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.casefile.leases import LeaseLost
from postmottak.config.settings import ConfigError, load_settings
from postmottak.intake.fleet import fair_share

LEASE_S = 1.0


def _take(db: Database, mailbox: str, worker: str, seconds: float = LEASE_S) -> int | None:
    with db.session() as session:
        leases.heartbeat(session, worker, "host", 1)
        leases.ensure_mailboxes(session, [mailbox])
    with db.session() as session:
        return leases.try_acquire(session, mailbox, worker, seconds)


def test_a_held_lease_is_not_taken_and_an_expired_one_is_with_a_new_token(database: Database) -> None:
    first = _take(database, "postmottak", "worker-a")
    assert first == 1
    assert _take(database, "postmottak", "worker-b") is None
    time.sleep(LEASE_S + 0.2)
    second = _take(database, "postmottak", "worker-b")
    assert second == 2
    with database.session() as session:
        grants = list(session.scalars(select(m.LeaseGrant).order_by(m.LeaseGrant.id)))
    assert [(g.worker_id, g.token, g.previous_holder) for g in grants] == [
        ("worker-a", 1, None),
        ("worker-b", 2, "worker-a"),
    ]


def test_the_old_holder_can_neither_renew_nor_commit_after_a_takeover(database: Database) -> None:
    old = _take(database, "postmottak", "worker-a")
    assert old is not None
    with database.session() as session:
        leases.fence(session, "postmottak", "worker-a", old)  # holds: passes
    time.sleep(LEASE_S + 0.2)
    with pytest.raises(LeaseLost):  # expired, even before anyone took it
        with database.session() as session:
            leases.fence(session, "postmottak", "worker-a", old)
    assert _take(database, "postmottak", "worker-b", seconds=30) == old + 1
    with database.session() as session:
        assert not leases.renew(session, "postmottak", "worker-a", old, LEASE_S)
    with pytest.raises(LeaseLost):
        with database.session() as session:
            session.add(m.Sequence(name="written-by-the-old-holder", value=1))
            leases.fence(session, "postmottak", "worker-a", old)
    with database.session() as session:
        assert session.get(m.Sequence, "written-by-the-old-holder") is None  # rolled back with the refusal
        grant = session.scalar(select(m.LeaseGrant).where(m.LeaseGrant.token == old))
        successor = session.scalar(select(m.LeaseGrant).where(m.LeaseGrant.token == old + 1))
        assert grant is not None and successor is not None and grant.commits == 1
        assert grant.last_commit_at is not None and grant.last_commit_at < successor.acquired_at


def test_renewal_keeps_a_lease_past_its_first_expiry(database: Database) -> None:
    token = _take(database, "postmottak", "worker-a")
    assert token is not None
    for _ in range(3):
        time.sleep(LEASE_S / 2)
        with database.session() as session:
            assert leases.renew(session, "postmottak", "worker-a", token, LEASE_S)
    assert _take(database, "postmottak", "worker-b") is None
    with database.session() as session:
        leases.fence(session, "postmottak", "worker-a", token)


def test_a_clean_stop_frees_the_leases_at_once(database: Database) -> None:
    token = _take(database, "postmottak", "worker-a", seconds=60)
    assert token is not None
    with database.session() as session:
        leases.stop_worker(session, "worker-a")
        now = leases.db_now(session)
        assert leases.live_workers(session, now, 60) == []
    assert _take(database, "postmottak", "worker-b") == token + 1


@pytest.mark.parametrize(
    ("workers", "mailboxes", "shares"),
    [(3, 4, [2, 1, 1]), (2, 4, [2, 2]), (1, 4, [4]), (4, 2, [1, 1, 0, 0]), (3, 3, [1, 1, 1])],
)
def test_fair_share_spreads_mailboxes_evenly(workers: int, mailboxes: int, shares: list[int]) -> None:
    live = [f"w{n}" for n in range(workers)]
    assert [fair_share(live, worker, mailboxes) for worker in live] == shares
    assert fair_share(live, "not-live", mailboxes) == 0


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "postmottak.toml"
    path.write_text(
        '[[cases]]\nnumber = "22/414"\ntitle = "Strategi"\ndeadline = "2022-10-01"\n'
        '[[cases]]\nnumber = "23/100"\ntitle = "Annen sak"\ndeadline = "2023-10-01"\n' + body,
        encoding="utf-8",
    )
    return path


def test_mailboxes_section_gives_one_settings_view_per_mailbox(tmp_path: Path) -> None:
    settings = load_settings(
        _config(
            tmp_path,
            """
[imap]
host = "imap.example.no"
username = "postmottak@example.no"
[[mailboxes]]
name = "horing"
cases = ["23/100"]
[mailboxes.imap]
host = "imap.example.no"
username = "horing@example.no"
folder = "Innboks"
processed_folder = "Behandlet"
[[mailboxes]]
name = "eksport"
[mailboxes.folder]
path = "eksport"
""",
        )
    )
    assert settings.mailbox_names() == ["default", "horing", "eksport"]
    assert settings.uses_leases
    assert settings.for_mailbox("default") is settings
    horing = settings.for_mailbox("horing")
    assert (horing.imap.username, horing.imap.folder, horing.imap.processed_folder) == (
        "horing@example.no",
        "Innboks",
        "Behandlet",
    )
    assert [case.number for case in horing.cases] == ["23/100"]
    eksport = settings.for_mailbox("eksport")
    assert not eksport.imap.configured and eksport.folder_path == tmp_path / "eksport"
    assert [case.number for case in eksport.cases] == ["22/414", "23/100"]


def test_single_imap_section_is_one_mailbox_without_leases(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path, '[imap]\nhost = "imap.example.no"\n'))
    assert settings.mailbox_names() == ["default"]
    assert not settings.uses_leases


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[mailboxes]]\nname = "a"\n', "exactly one of"),
        ('[[mailboxes]]\nname = "a"\ncases = ["99/1"]\n[mailboxes.folder]\npath = "x"\n', "99/1"),
        (
            '[[mailboxes]]\nname = "a"\n[mailboxes.folder]\npath = "x"\n[[mailboxes]]\nname = "a"\n'
            '[mailboxes.folder]\npath = "y"\n',
            "configured twice",
        ),
    ],
)
def test_bad_mailboxes_are_named_in_the_error(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(_config(tmp_path, body))


def test_a_takeover_waits_for_the_holders_open_registering_transaction(tmp_path: Path) -> None:
    """PostgreSQL: while the holder's registering transaction has passed the fence, the lease row is locked; a
    takeover skips it (try again next round), and once the holder commits, its commit came before the takeover."""
    from tests.dbutil import PG_ENV, migrated_database

    if not os.environ.get(PG_ENV):
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{PG_ENV} must name a PostgreSQL in CI")
        pytest.skip(f"{PG_ENV} not set")
    with migrated_database("postgresql", tmp_path) as db:
        token = _take(db, "postmottak", "worker-a")
        assert token is not None
        with db.session() as holder:
            leases.fence(holder, "postmottak", "worker-a", token)
            time.sleep(LEASE_S + 0.2)  # expired meanwhile, but the row is locked by this open transaction
            with db.session() as other:
                leases.heartbeat(other, "worker-b", "host", 2)
            with db.session() as other:
                assert leases.try_acquire(other, "postmottak", "worker-b", 30) is None
        with db.session() as other:
            assert leases.try_acquire(other, "postmottak", "worker-b", 30) == token + 1
        with pytest.raises(LeaseLost):
            with db.session() as holder:
                leases.fence(holder, "postmottak", "worker-a", token)
