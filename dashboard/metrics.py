"""Prometheus metrics, read from the case database at scrape time (the worker and the web app share nothing else)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.casefile.mailboxes import server_problems
from postmottak.casefile.summary import metrics_snapshot
from postmottak.dashboard.fleet_metrics import FleetCollector


class CaseDatabaseCollector(Collector):
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        with self.db.session() as session:
            snap = metrics_snapshot(session)
        records = GaugeMetricFamily("postmottak_intake_records", "Intake records by status.", labels=["status"])
        for status in m.INTAKE_STATUSES:
            records.add_metric([status], snap.records_by_status.get(status, 0))
        yield records
        registered = GaugeMetricFamily(
            "postmottak_registered_responses",
            "Registered responses by case and timeliness.",
            labels=["case", "on_time"],
        )
        for case, on_time, count in snap.registered_by_case:
            registered.add_metric([case, "true" if on_time else "false"], count)
        yield registered
        receipts = GaugeMetricFamily("postmottak_receipts", "Receipts by status.", labels=["status"])
        for status in m.RECEIPT_STATUSES:
            receipts.add_metric([status], snap.receipts_by_status.get(status, 0))
        yield receipts
        cycles = CounterMetricFamily("postmottak_poll_cycles", "Finished worker cycles by outcome.", labels=["outcome"])
        cycles.add_metric(["ok"], snap.cycles_by_outcome.get(True, 0))
        cycles.add_metric(["failed"], snap.cycles_by_outcome.get(False, 0))
        yield cycles
        yield CounterMetricFamily(
            "postmottak_mails_fetched", "Mails fetched by all worker cycles.", value=snap.fetched_total
        )
        if snap.last_cycle_duration_s is not None:
            yield GaugeMetricFamily(
                "postmottak_last_cycle_duration_seconds",
                "Duration of the last finished worker cycle.",
                value=snap.last_cycle_duration_s,
            )
        if snap.last_success_at is not None:
            yield GaugeMetricFamily(
                "postmottak_last_success_timestamp_seconds",
                "Unix time of the last successful poll.",
                value=snap.last_success_at.timestamp(),
            )
        yield GaugeMetricFamily(
            "postmottak_processing_failures_pending", "Mails that failed and wait for a retry.", value=snap.retrying
        )
        yield GaugeMetricFamily("postmottak_review_pending", "Mails waiting for a human.", value=snap.review_queue)
        with self.db.session() as session:
            problems = server_problems(session)
        pending = GaugeMetricFamily(
            "postmottak_server_moves_pending",
            "Registered mails whose move to the processed folder the server refused in the last cycle.",
            labels=["source"],
        )
        for problem in problems:
            pending.add_metric([problem.source_key], problem.moves_pending)
        yield pending
        yield GaugeMetricFamily(
            "postmottak_server_problems",
            "Sources whose server refused a step after registration in the last cycle.",
            value=len(problems),
        )


def metrics_registry(db: Database, mailboxes: dict[str, str] | None = None) -> CollectorRegistry:
    """`mailboxes`: configured mailbox name -> source key (Settings.mailbox_sources), for the per-mailbox counts."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CaseDatabaseCollector(db))
    registry.register(FleetCollector(db, mailboxes))  # per mailbox and per worker
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
