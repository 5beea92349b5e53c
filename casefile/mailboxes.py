"""Per-folder fetch state (UIDVALIDITY, highest UID handled), pending server-side moves and cycle logs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postmottak.casefile import models as m


def get_state(session: Session, source_key: str) -> m.MailboxState:
    state = session.scalar(select(m.MailboxState).where(m.MailboxState.source_key == source_key))
    if state is None:
        state = m.MailboxState(source_key=source_key, uidvalidity=None, last_uid=0)
        session.add(state)
        session.flush()
    return state


def start_epoch(session: Session, source_key: str, uidvalidity: int) -> bool:
    """Record the folder's UIDVALIDITY; returns True when it changed (all UIDs must be looked at again)."""
    state = get_state(session, source_key)
    if state.uidvalidity == uidvalidity:
        return False
    changed = state.uidvalidity is not None
    state.uidvalidity = uidvalidity
    state.last_uid = 0
    session.flush()
    return changed


def pending_moves(session: Session, source_key: str, uidvalidity: int, limit: int = 1000) -> list[str]:
    return list(
        session.scalars(
            select(m.MailLocation.uid)
            .where(
                m.MailLocation.source_key == source_key,
                m.MailLocation.uidvalidity == uidvalidity,
                m.MailLocation.moved_at.is_(None),
            )
            .limit(limit)
        )
    )


def mark_moved(session: Session, source_key: str, uidvalidity: int, uids: list[str]) -> None:
    if not uids:
        return
    session.execute(
        update(m.MailLocation)
        .where(
            m.MailLocation.source_key == source_key,
            m.MailLocation.uidvalidity == uidvalidity,
            m.MailLocation.uid.in_(uids),
        )
        .values(moved_at=datetime.now(timezone.utc))
    )


def start_poll(session: Session, source_key: str) -> int:
    run = m.PollRun(source_key=source_key)
    session.add(run)
    state = get_state(session, source_key)
    state.last_poll_at = run.started_at = datetime.now(timezone.utc)
    session.flush()
    return run.id


def finish_poll(
    session: Session, run_id: int, *, ok: bool, fetched: int, counts: dict[str, Any], error: str | None
) -> None:
    run = session.get(m.PollRun, run_id)
    if run is None:
        return
    now = datetime.now(timezone.utc)
    run.finished_at, run.ok, run.fetched, run.counts, run.error = now, ok, fetched, counts, error
    state = get_state(session, run.source_key)
    state.last_error = error
    if ok:
        state.last_success_at = now


# A refused step after the commit (the move to the processed folder) rides in the cycle's counts: no new column.
SERVER_PROBLEM = "server_problem"
MOVES_PENDING = "moves_pending"


def with_server_problem(counts: dict[str, Any], problem: str | None, moves_pending: int) -> dict[str, Any]:
    if problem:
        counts[SERVER_PROBLEM] = problem
        counts[MOVES_PENDING] = moves_pending
    return counts


@dataclass(frozen=True)
class ServerProblem:
    source_key: str
    problem: str
    moves_pending: int
    since: datetime | None


def server_problems(session: Session) -> list[ServerProblem]:
    """Per source: the step the server refused in its latest finished cycle (none once a cycle got through)."""
    problems = []
    for source_key in session.scalars(select(m.MailboxState.source_key).order_by(m.MailboxState.source_key)):
        last = session.scalar(
            select(m.PollRun)
            .where(m.PollRun.source_key == source_key, m.PollRun.finished_at.is_not(None))
            .order_by(m.PollRun.id.desc())
            .limit(1)
        )
        counts = (last.counts or {}) if last is not None else {}
        if last is not None and counts.get(SERVER_PROBLEM):
            problems.append(
                ServerProblem(
                    source_key,
                    str(counts[SERVER_PROBLEM]),
                    int(counts.get(MOVES_PENDING, 0)),
                    last.finished_at,
                )
            )
    return problems
