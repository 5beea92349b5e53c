"""Per mailbox, in one read: who reads it (lease holder and that worker's heartbeat), its last poll and error, the
step the server refused, and its mail by status, waiting for a retry and waiting to be moved on the server.

For the dashboard's "Postkasser" page, `postmottak mailboxes list` and the per-mailbox metrics. Sources found in the
database that no configured mailbox names (a folder import, a mailbox taken out of the configuration) are listed
too, without a name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postmottak.casefile import leases
from postmottak.casefile import models as m
from postmottak.casefile.mailboxes import server_problems


@dataclass(frozen=True)
class MailboxStatus:
    name: str | None  # None: a source in the database that no configured mailbox names
    source_key: str
    holder: str | None  # the worker holding the lease now (None: no live lease, or no leases in use)
    holder_heartbeat_at: datetime | None
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    server_problem: str | None
    by_status: dict[str, int] = field(default_factory=dict)
    retrying: int = 0  # failed mails waiting for their next attempt
    moves_pending: int = 0  # registered mails whose move to the processed folder the server refused (last cycle)

    @property
    def failing(self) -> bool:
        return bool(self.last_error)


def mailbox_status(session: Session, sources: dict[str, str]) -> list[MailboxStatus]:
    """`sources`: configured mailbox name -> source key (Settings.mailbox_sources), in display order."""
    now = leases.db_now(session)
    holders = {
        row.mailbox: row.holder
        for row in leases.leases(session)
        if row.holder is not None and row.expires_at is not None and row.expires_at > now
    }
    heartbeats = {worker: beat for worker, beat in session.execute(select(m.Worker.id, m.Worker.heartbeat_at))}
    states = {state.source_key: state for state in session.scalars(select(m.MailboxState))}
    counts: dict[str, dict[str, int]] = {}
    for source_key, status, count in session.execute(
        select(m.IntakeRecord.source_key, m.IntakeRecord.status, func.count()).group_by(
            m.IntakeRecord.source_key, m.IntakeRecord.status
        )
    ):
        counts.setdefault(source_key, {})[status] = count
    retrying = {
        source_key: count
        for source_key, count in session.execute(
            select(m.ProcessingFailure.source_key, func.count())
            .where(m.ProcessingFailure.resolved_at.is_(None))
            .group_by(m.ProcessingFailure.source_key)
        )
    }
    problems = {problem.source_key: problem for problem in server_problems(session)}
    rows: list[tuple[str | None, str]] = list(sources.items())
    named = set(sources.values())
    rows += [(None, key) for key in sorted(set(states) | set(counts)) if key not in named]
    result = []
    for name, source_key in rows:
        state = states.get(source_key)
        holder = holders.get(name) if name is not None else None
        problem = problems.get(source_key)
        result.append(
            MailboxStatus(
                name=name,
                source_key=source_key,
                holder=holder,
                holder_heartbeat_at=heartbeats.get(holder) if holder else None,
                last_poll_at=state.last_poll_at if state else None,
                last_success_at=state.last_success_at if state else None,
                last_error=state.last_error if state else None,
                server_problem=problem.problem if problem else None,
                by_status=counts.get(source_key, {}),
                retrying=int(retrying.get(source_key, 0)),
                moves_pending=problem.moves_pending if problem else 0,
            )
        )
    return result
