"""Prometheus metrics per mailbox and per worker: last successful poll, lease holders, heartbeat ages, and (given the
configured mailboxes' sources) mail per mailbox by status and waiting for a retry."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from postmottak.casefile import leases
from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.casefile.fleet_status import mailbox_status


class FleetCollector(Collector):
    def __init__(self, db: Database, mailboxes: dict[str, str] | None = None) -> None:
        self.db = db
        self.mailboxes = mailboxes or {}

    def collect(self) -> Iterator[Metric]:
        with self.db.session() as session:
            now = leases.db_now(session)
            workers, rows = leases.overview(session)
            polls = leases.mailbox_polls(session)
            boxes = [box for box in mailbox_status(session, self.mailboxes) if box.name is not None]
        success = GaugeMetricFamily(
            "postmottak_mailbox_last_success_timestamp_seconds",
            "Unix time of the last successful poll, per source.",
            labels=["source"],
        )
        failing = GaugeMetricFamily(
            "postmottak_mailbox_failing", "1 when the last poll of the source failed.", labels=["source"]
        )
        for poll in polls:
            if poll.last_success_at is not None:
                success.add_metric([poll.source_key], poll.last_success_at.timestamp())
            failing.add_metric([poll.source_key], 1 if poll.failing else 0)
        yield success
        yield failing
        held = GaugeMetricFamily(
            "postmottak_mailbox_lease_held", "1 when a worker holds the mailbox's lease now.", labels=["mailbox"]
        )
        for row in rows:
            live = row.holder is not None and row.expires_at is not None and row.expires_at > now
            held.add_metric([row.mailbox], 1 if live else 0)
        yield held
        age = GaugeMetricFamily(
            "postmottak_worker_heartbeat_age_seconds",
            "Seconds since each running worker's last heartbeat.",
            labels=["worker", "host"],
        )
        refused = GaugeMetricFamily(
            "postmottak_worker_refused_registrations",
            "Registrations the lease fence refused, per worker.",
            labels=["worker", "host"],
        )
        for worker in workers:
            if worker.stopped_at is None:
                age.add_metric([worker.id, worker.host], (now - worker.heartbeat_at).total_seconds())
                refused.add_metric([worker.id, worker.host], worker.rejected)
        yield age
        yield refused
        source = GaugeMetricFamily(
            "postmottak_mailbox_source_info", "The source each configured mailbox reads.", labels=["mailbox", "source"]
        )
        records = GaugeMetricFamily(
            "postmottak_mailbox_records", "Intake records by mailbox and status.", labels=["mailbox", "status"]
        )
        retrying = GaugeMetricFamily(
            "postmottak_mailbox_retrying", "Failed mails waiting for a retry, per mailbox.", labels=["mailbox"]
        )
        for box in boxes:
            assert box.name is not None
            source.add_metric([box.name, box.source_key], 1)
            for status in m.INTAKE_STATUSES:
                records.add_metric([box.name, status], box.by_status.get(status, 0))
            retrying.add_metric([box.name], box.retrying)
        yield source
        yield records
        yield retrying
