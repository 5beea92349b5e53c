"""Who gets a receipt: the sender of a registered response, never a machine, a loop or a duplicate.

Pure: decided from the envelope and the verdict. The per-recipient rate limit needs the database and is applied
when sending.
"""

from __future__ import annotations

from casefile.registry import ReceiptPlan
from intake.triage import Verdict
from parsers.envelope import Address, Envelope
from parsers.machine import is_no_reply_address

RECEIPT_SUBJECT = "Kvittering for mottatt høringssvar"
RECEIPT_MESSAGE_ID_PREFIX = "kvittering-"


def own_domain(sender: str) -> str:
    return sender.rsplit("@", 1)[-1].lower()


def effective_sender(envelope: Envelope, own_domains: set[str]) -> Address | None:
    """The respondent: the From address, or for a response our own staff forwarded, the original sender."""
    sender = envelope.sender
    if sender and sender.addr and sender.addr.rsplit("@", 1)[-1].lower() in own_domains:
        for nested in envelope.forwarded:
            if nested.sender and nested.sender.addr:
                return nested.sender
    return sender


def is_reply_to_receipt(envelope: Envelope, own_domains: set[str]) -> bool:
    for ref in [*envelope.in_reply_to, *envelope.references]:
        local, _, domain = ref.strip("<>").rpartition("@")
        if local.startswith(RECEIPT_MESSAGE_ID_PREFIX) and domain.lower() in own_domains:
            return True
    return RECEIPT_SUBJECT.casefold() in envelope.subject.casefold()


def plan_receipt(
    envelope: Envelope, verdict: Verdict, machine_reason: str | None, own_domains: set[str]
) -> ReceiptPlan | None:
    """A pending receipt for a registered response, or a suppressed one with the reason; None when not relevant."""
    if verdict.status != "registered":
        return None
    recipient = effective_sender(envelope, own_domains)
    address = recipient.addr if recipient else None
    if machine_reason:
        return ReceiptPlan("suppressed", address, f"machine mail: {machine_reason}")
    if not address:
        return ReceiptPlan("suppressed", None, "no sender address")
    if address.rsplit("@", 1)[-1].lower() in own_domains:
        return ReceiptPlan("suppressed", address, "sender is our own address")
    no_reply = is_no_reply_address(address)
    if no_reply:
        return ReceiptPlan("suppressed", address, no_reply)
    if is_reply_to_receipt(envelope, own_domains):
        return ReceiptPlan("suppressed", address, "reply to one of our receipts")
    return ReceiptPlan("pending", address, None)
