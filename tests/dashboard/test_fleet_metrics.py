"""Per-mailbox and per-worker metrics: a held lease, a free one, a worker's heartbeat age and refusals."""

from __future__ import annotations

from postmottak.casefile import leases, mailboxes
from postmottak.casefile.db import Database
from postmottak.dashboard.metrics import metrics_registry, render


def test_metrics_show_lease_holders_heartbeats_and_last_polls(database: Database) -> None:
    with database.session() as session:
        leases.heartbeat(session, "host-a-1", "host-a", 1)
        leases.ensure_mailboxes(session, ["postmottak", "horing"])
    with database.session() as session:
        assert leases.try_acquire(session, "postmottak", "host-a-1", 60) == 1
        leases.record_rejection(session, "host-a-1")
        run = mailboxes.start_poll(session, "imap://horing@example.no:993/INBOX")
        mailboxes.finish_poll(session, run, ok=False, fetched=0, counts={}, error="login refused")
    text = render(metrics_registry(database)).decode()
    assert 'postmottak_mailbox_lease_held{mailbox="postmottak"} 1.0' in text
    assert 'postmottak_mailbox_lease_held{mailbox="horing"} 0.0' in text
    assert 'postmottak_mailbox_failing{source="imap://horing@example.no:993/INBOX"} 1.0' in text
    assert 'postmottak_worker_refused_registrations{host="host-a",worker="host-a-1"} 1.0' in text
    assert 'postmottak_worker_heartbeat_age_seconds{host="host-a",worker="host-a-1"}' in text
