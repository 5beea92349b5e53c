"""Leases on mailboxes in the case database: each mailbox is read by exactly one live worker.

A worker heartbeats; it holds a mailbox through a lease row that it renews before `expires_at`. A lease that is
not renewed expires, and any worker may then take it: the row's `token` grows with every grant. Every registering
transaction calls `fence`, which updates the lease row only while this worker still holds that very token and
the lease has not expired. The row lock taken there makes a takeover wait for the commit (or the commit fail
after the takeover), so a worker that was paused past its lease can never commit afterwards.

Time is the database's clock (PostgreSQL: clock_timestamp()), the one clock every host shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from sqlalchemy import CursorResult, event, func, or_, select, text, update
from sqlalchemy.orm import Session

from postmottak.casefile import models as m
from postmottak.casefile.db import Database


class LeaseLost(Exception):
    """This worker no longer holds the mailbox's lease: the transaction is refused and the worker must stop."""


@dataclass(frozen=True)
class WorkerRow:
    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    commits: int
    rejected: int
    mailboxes: tuple[str, ...]


@dataclass(frozen=True)
class LeaseRow:
    mailbox: str
    holder: str | None
    token: int
    acquired_at: datetime | None
    expires_at: datetime | None


def db_now(session: Session) -> datetime:
    """The database's current time (not the transaction's start): one clock for every host."""
    if session.get_bind().dialect.name == "postgresql":
        stamp = session.scalar(text("SELECT clock_timestamp()"))
        assert isinstance(stamp, datetime)
        return stamp.astimezone(timezone.utc)
    return datetime.now(timezone.utc)


def heartbeat(session: Session, worker_id: str, host: str, pid: int) -> datetime:
    now = db_now(session)
    worker = session.get(m.Worker, worker_id)
    if worker is None:
        session.add(m.Worker(id=worker_id, host=host, pid=pid, started_at=now, heartbeat_at=now, rejected=0))
    else:
        worker.heartbeat_at = now
    session.flush()
    return now


def ensure_mailboxes(session: Session, names: list[str]) -> None:
    """A lease row for every configured mailbox (free until a worker takes it)."""
    existing = set(session.scalars(select(m.MailboxLease.mailbox).where(m.MailboxLease.mailbox.in_(names))))
    for name in names:
        if name not in existing:
            with session.begin_nested():
                session.add(m.MailboxLease(mailbox=name, holder=None, token=0))
            # A racing worker may add the same row: the primary key keeps one (see the caller's retry).


def live_workers(session: Session, now: datetime, within_seconds: float) -> list[str]:
    """Workers that heartbeat within the lease time and have not said they stopped, ordered by id."""
    since = now - timedelta(seconds=within_seconds)
    return list(
        session.scalars(
            select(m.Worker.id)
            .where(m.Worker.heartbeat_at > since, m.Worker.stopped_at.is_(None))
            .order_by(m.Worker.id)
        )
    )


def leases(session: Session) -> list[LeaseRow]:
    return [
        LeaseRow(row.mailbox, row.holder, row.token, row.acquired_at, row.expires_at)
        for row in session.scalars(select(m.MailboxLease).order_by(m.MailboxLease.mailbox))
    ]


def renew(session: Session, mailbox: str, worker_id: str, token: int, seconds: float) -> bool:
    """Extend a lease this worker still holds (unexpired, same token); False means it is lost."""
    now = db_now(session)
    result = session.execute(
        update(m.MailboxLease)
        .where(
            m.MailboxLease.mailbox == mailbox,
            m.MailboxLease.holder == worker_id,
            m.MailboxLease.token == token,
            m.MailboxLease.expires_at > now,
        )
        .values(expires_at=now + timedelta(seconds=seconds))
    )
    return bool(cast(CursorResult[Any], result).rowcount)  # an UPDATE executes to a CursorResult (with rowcount)


def try_acquire(session: Session, mailbox: str, worker_id: str, seconds: float) -> int | None:
    """Take a free or expired lease; returns the new token, or None when someone else holds it.

    On PostgreSQL a row locked by a registering transaction is skipped rather than waited for (the next round
    tries again), so one stuck transaction elsewhere cannot stall this worker's renewals."""
    postgres = session.get_bind().dialect.name == "postgresql"
    query = select(m.MailboxLease).where(m.MailboxLease.mailbox == mailbox)
    if postgres:
        query = query.with_for_update(skip_locked=True)
    lease = session.scalar(query)
    if lease is None:
        return None
    now = db_now(session)
    if lease.holder is not None and lease.expires_at is not None and lease.expires_at > now:
        return None
    previous, previous_expiry = lease.holder, lease.expires_at
    result = session.execute(
        update(m.MailboxLease)
        .where(
            m.MailboxLease.mailbox == mailbox,
            m.MailboxLease.token == lease.token,
            or_(m.MailboxLease.holder.is_(None), m.MailboxLease.expires_at <= now),
        )
        .values(holder=worker_id, token=lease.token + 1, acquired_at=now, expires_at=now + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    )
    if not cast(CursorResult[Any], result).rowcount:  # an UPDATE executes to a CursorResult (with rowcount)
        return None
    session.add(
        m.LeaseGrant(
            mailbox=mailbox,
            token=lease.token + 1,
            worker_id=worker_id,
            previous_holder=previous,
            previous_expired_at=previous_expiry if previous else None,
            acquired_at=now,
            commits=0,
        )
    )
    return lease.token + 1


def release(session: Session, mailbox: str, worker_id: str, token: int) -> None:
    """Give a lease back at once (a clean stop, or rebalancing): another worker may take it without waiting."""
    session.execute(
        update(m.MailboxLease)
        .where(m.MailboxLease.mailbox == mailbox, m.MailboxLease.holder == worker_id, m.MailboxLease.token == token)
        .values(holder=None, expires_at=db_now(session))
    )


def fence(session: Session, mailbox: str, worker_id: str, token: int) -> None:
    """Inside a registering transaction: go on only while this worker holds the lease with this token.

    The UPDATE locks the lease row until the transaction ends; a takeover (try_acquire) cannot slip in between
    this check and the commit. Raises LeaseLost otherwise (the caller's transaction rolls back)."""
    now = db_now(session)
    result = session.execute(
        update(m.MailboxLease)
        .where(
            m.MailboxLease.mailbox == mailbox,
            m.MailboxLease.holder == worker_id,
            m.MailboxLease.token == token,
            m.MailboxLease.expires_at > now,
        )
        .values(holder=worker_id)
        .execution_options(synchronize_session=False)
    )
    if not cast(CursorResult[Any], result).rowcount:  # an UPDATE executes to a CursorResult (with rowcount)
        raise LeaseLost(f"the lease on mailbox {mailbox!r} (token {token}) is no longer held by this worker")
    session.execute(
        update(m.LeaseGrant)
        .where(m.LeaseGrant.mailbox == mailbox, m.LeaseGrant.token == token)
        .values(commits=m.LeaseGrant.commits + 1, last_commit_at=now)
        .execution_options(synchronize_session=False)
    )


def record_rejection(session: Session, worker_id: str) -> None:
    session.execute(update(m.Worker).where(m.Worker.id == worker_id).values(rejected=m.Worker.rejected + 1))


def stop_worker(session: Session, worker_id: str) -> None:
    """A clean stop: the worker is no longer live and its leases are free at once."""
    now = db_now(session)
    session.execute(
        update(m.MailboxLease).where(m.MailboxLease.holder == worker_id).values(holder=None, expires_at=now)
    )
    session.execute(update(m.Worker).where(m.Worker.id == worker_id).values(stopped_at=now))


def overview(session: Session, *, since: datetime | None = None) -> tuple[list[WorkerRow], list[LeaseRow]]:
    """Workers (those not stopped, and stopped ones since `since`) with the mailboxes they hold, and every lease."""
    now = db_now(session)
    rows = leases(session)
    held: dict[str, list[str]] = {}
    for lease in rows:
        if lease.holder is not None and lease.expires_at is not None and lease.expires_at > now:
            held.setdefault(lease.holder, []).append(lease.mailbox)
    commits = {
        worker: total
        for worker, total in session.execute(
            select(m.LeaseGrant.worker_id, func.sum(m.LeaseGrant.commits)).group_by(m.LeaseGrant.worker_id)
        )
    }
    query = select(m.Worker).order_by(m.Worker.host, m.Worker.started_at)
    if since is not None:
        query = query.where(or_(m.Worker.stopped_at.is_(None), m.Worker.stopped_at > since))
    workers = [
        WorkerRow(
            w.id,
            w.host,
            w.pid,
            w.started_at,
            w.heartbeat_at,
            w.stopped_at,
            int(commits.get(w.id) or 0),
            w.rejected,
            tuple(held.get(w.id, ())),
        )
        for w in session.scalars(query)
    ]
    return workers, rows


def limit_idle_transactions(db: Database, seconds: float) -> None:
    """PostgreSQL ends a transaction of this worker that idles longer than a lease (a paused or hung process),
    so the lease row it locked in `fence` is free for the takeover; its commit then fails, as it must."""
    if db.engine.dialect.name != "postgresql":
        return
    milliseconds = max(1000, int(seconds * 1000))

    @event.listens_for(db.engine, "connect")
    def _limit(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET idle_in_transaction_session_timeout = {milliseconds}")
        cursor.close()
        dbapi_connection.commit()

    db.engine.dispose()  # connections made before carry no limit


@dataclass(frozen=True)
class MailboxPoll:
    source_key: str
    last_poll_at: datetime | None
    last_success_at: datetime | None
    failing: bool


def mailbox_polls(session: Session) -> list[MailboxPoll]:
    """Each source folder's last poll and last successful poll (per mailbox monitoring)."""
    return [
        MailboxPoll(state.source_key, state.last_poll_at, state.last_success_at, bool(state.last_error))
        for state in session.scalars(select(m.MailboxState).order_by(m.MailboxState.source_key))
    ]
