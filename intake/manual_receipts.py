"""The worker's receipt policy for mail that staff register by hand (dashboard, `review register`).

The stored original is parsed again and judged by `plan_receipt`, exactly as the worker judged it, as if the mail
had been registered automatically: machine mail, bounces, mailing lists, our own receipts, replies to receipts and
automatic addresses get no receipt. The per-recipient rate limit is checked too, so staff see before registering
that the receipt would be held back. casefile.review takes this as a plain function (it never imports intake).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy.orm import Session

from postmottak.casefile import models as m
from postmottak.casefile import outbox
from postmottak.casefile.records import ReceiptPlan
from postmottak.casefile.storage import DocumentStore
from postmottak.config.settings import Settings
from postmottak.intake.receipt_policy import automatic_address_reason, own_domain, plan_receipt
from postmottak.intake.triage import Verdict
from postmottak.parsers.envelope import parse_envelope
from postmottak.parsers.machine import machine_reason

log = logging.getLogger(__name__)

ReceiptCheck = Callable[[Session, m.IntakeRecord], ReceiptPlan]


def _from_stored_fields(record: m.IntakeRecord, own_domains: set[str]) -> ReceiptPlan:
    """When the original cannot be read: what the record itself says about the sender."""
    address = record.sender_address
    if record.machine_reason:
        return ReceiptPlan("suppressed", address, f"machine mail: {record.machine_reason}")
    if not address:
        return ReceiptPlan("suppressed", None, "no sender address")
    if own_domain(address) in own_domains:
        return ReceiptPlan("suppressed", address, "sender is our own address")
    automatic = automatic_address_reason(address)
    if automatic:
        return ReceiptPlan("suppressed", address, automatic)
    return ReceiptPlan("pending", address, None)


def receipt_check(settings: Settings, store: DocumentStore) -> ReceiptCheck:
    """The check `casefile.review.register_to_case` applies before it queues a receipt."""
    own_domains = {own_domain(settings.smtp.sender)}

    def check(session: Session, record: m.IntakeRecord) -> ReceiptPlan:
        try:
            envelope = parse_envelope(store.read(record.raw_path))
        except (OSError, ValueError) as exc:
            log.warning("intake #%d: original not readable for the receipt check (%s)", record.id, exc)
            plan = _from_stored_fields(record, own_domains)
        else:
            verdict = Verdict("registered", None, record.case.number if record.case else None, record.on_time)
            plan = plan_receipt(envelope, verdict, machine_reason(envelope), own_domains) or ReceiptPlan(
                "suppressed", record.sender_address, "no sender address"
            )
        if plan.status != "pending" or not plan.to_address:
            return plan
        config = settings.receipts
        since = datetime.now(timezone.utc) - timedelta(hours=config.rate_limit_hours)
        recent = outbox.sent_recently(session, plan.to_address, since)
        if recent >= config.rate_limit_count:
            return ReceiptPlan(
                "suppressed",
                plan.to_address,
                f"rate limit: {recent} receipts already sent to this address in the last "
                f"{config.rate_limit_hours:g} hours (limit {config.rate_limit_count})",
            )
        return plan

    return check
