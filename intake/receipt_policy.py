"""Who gets a receipt: the sender of a registered response, never a machine, a loop or a duplicate.

Pure: decided from the envelope and the verdict. Duplicates are decided by the case database (which writes no
receipt for them), and the per-recipient rate limit is applied when sending (intake.receipts). Mail that is not
registered but is machine-made or part of a loop gets a `suppressed` receipt row with the reason, so the record
shows why nobody was answered; other unregistered mail gets none (staff may still register it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from postmottak.casefile.records import ReceiptPlan
from postmottak.intake.receipt_message import (
    RECEIPT_MESSAGE_ID_PREFIX,
    RECEIPT_SUBJECT,
    UnsendableAddress,
    ascii_domain,
)
from postmottak.intake.triage import Verdict
from postmottak.parsers.envelope import Address, Envelope
from postmottak.parsers.machine import is_no_reply_address

__all__ = [
    "RECEIPT_MESSAGE_ID_PREFIX",
    "RECEIPT_SUBJECT",
    "effective_sender",
    "is_own_receipt",
    "is_reply_to_receipt",
    "own_domain",
    "plan_receipt",
    "suppression_reason",
]

_DASHES = re.compile(r"[\u2010-\u2015\u2212]")
_AUTOMATIC_LOCAL_PARTS = {"mailer-daemon", "postmaster", "mailerdaemon", "bounce", "bounces", "listserv", "majordomo"}
_NO_REPLY_PREFIXES = ("noreply", "no-reply", "no_reply", "no.reply", "donotreply", "do-not-reply", "do_not_reply")


def _domain(address: str) -> str:
    domain = address.rsplit("@", 1)[-1].strip().rstrip(">").lower()
    try:
        return ascii_domain(domain)
    except UnsendableAddress:
        return domain


def own_domain(sender: str) -> str:
    """The domain of our sender address in A-label form (our receipts' Message-IDs use it)."""
    return _domain(sender)


def effective_sender(envelope: Envelope, own_domains: set[str]) -> Address | None:
    """The respondent: the From address, or for a response our own staff forwarded, the original sender."""
    sender = envelope.sender
    if sender and sender.addr and _domain(sender.addr) in own_domains:
        for nested in envelope.forwarded:
            if nested.sender and nested.sender.addr and _domain(nested.sender.addr) not in own_domains:
                return nested.sender
    return sender


def _is_our_receipt_id(message_id: str, own_domains: set[str]) -> bool:
    local, _, domain = message_id.strip().strip("<>").strip().rpartition("@")
    return local.lower().startswith(RECEIPT_MESSAGE_ID_PREFIX) and _domain(domain) in own_domains


def _normalised(text: str) -> str:
    return " ".join(_DASHES.sub("-", text).casefold().split())


def is_own_receipt(envelope: Envelope, own_domains: set[str]) -> bool:
    """One of our own receipts came back into the mailbox (e.g. sent to an address that forwards to us)."""
    return bool(envelope.message_id) and _is_our_receipt_id(envelope.message_id or "", own_domains)


def is_reply_to_receipt(envelope: Envelope, own_domains: set[str]) -> bool:
    """A reply to one of our receipts: it refers to a receipt's Message-ID, or its subject quotes the receipt's."""
    if any(_is_our_receipt_id(ref, own_domains) for ref in [*envelope.in_reply_to, *envelope.references]):
        return True
    return _normalised(RECEIPT_SUBJECT) in _normalised(envelope.subject or "")


def _header_values(envelope: Envelope, name: str) -> list[str]:
    headers: Any = getattr(envelope, "headers", None)
    if headers is None:
        return []
    wanted = name.lower()
    if hasattr(headers, "get_all"):
        return [str(v) for v in headers.get_all(name) or []]
    if hasattr(headers, "items"):
        items: Iterable[tuple[Any, Any]] = headers.items()
    else:
        items = headers
    values: list[str] = []
    for key, value in items:
        if str(key).lower() == wanted:
            values.extend(str(v) for v in value) if isinstance(value, (list, tuple)) else values.append(str(value))
    return values


def header_reason(envelope: Envelope) -> str | None:
    """Belt and braces next to parsers.machine: the headers by which automatic and bulk mail announce themselves."""
    for value in _header_values(envelope, "Auto-Submitted"):
        if value.strip().lower().split(";")[0].strip() not in ("", "no"):
            return f"Auto-Submitted: {value.strip()[:40]}"
    for value in _header_values(envelope, "Precedence"):
        if value.strip().lower() in ("bulk", "list", "junk", "auto_reply"):
            return f"Precedence: {value.strip()}"
    for name in ("List-Id", "List-Unsubscribe", "List-Post"):
        if _header_values(envelope, name):
            return f"mailing list ({name})"
    for value in _header_values(envelope, "X-Auto-Response-Suppress"):
        tokens = {token.strip().lower() for token in value.split(",")}
        if tokens & {"all", "autoreply", "oof"}:
            return f"the sender asked for no automatic replies (X-Auto-Response-Suppress: {value.strip()[:40]})"
    return_path = getattr(envelope, "return_path", None)
    if return_path is not None and not return_path.strip("<> "):
        return "null sender (Return-Path: <>)"
    for value in _header_values(envelope, "Return-Path"):
        if not value.strip("<> "):
            return "null sender (Return-Path: <>)"
    if getattr(envelope, "is_report", False):
        return f"delivery or disposition report ({getattr(envelope, 'report_type', None) or 'multipart/report'})"
    return None


def automatic_address_reason(address: str) -> str | None:
    """MAILER-DAEMON, postmaster, noreply/no-reply, *-request and owner-* addresses never get a receipt."""
    found = is_no_reply_address(address)
    if found:
        return found if isinstance(found, str) else f"automatic address {address}"
    local = address.rpartition("@")[0].lower().split("+", 1)[0]
    if (
        local in _AUTOMATIC_LOCAL_PARTS
        or local.startswith(_NO_REPLY_PREFIXES)
        or local.endswith(("-request", "-owner", "-bounces"))
        or local.startswith("owner-")
    ):
        return f"automatic address ({local})"
    return None


def suppression_reason(
    envelope: Envelope, machine_reason: str | None, own_domains: set[str], address: str | None
) -> str | None:
    """Why this mail must not be answered, or None."""
    if is_own_receipt(envelope, own_domains):
        return "one of our own receipts came back"
    if machine_reason:
        return f"machine mail: {machine_reason}"
    by_header = header_reason(envelope)
    if by_header:
        return f"machine mail: {by_header}"
    if is_reply_to_receipt(envelope, own_domains):
        return "reply to one of our receipts"
    if address:
        if _domain(address) in own_domains:
            return "sender is our own address"
        automatic = automatic_address_reason(address)
        if automatic:
            return automatic
    return None


def plan_receipt(
    envelope: Envelope, verdict: Verdict, machine_reason: str | None, own_domains: set[str]
) -> ReceiptPlan | None:
    """A pending receipt for a registered response, or a suppressed one with the reason; None when not relevant."""
    recipient = effective_sender(envelope, own_domains)
    address = recipient.addr if recipient and recipient.addr else None
    reason = suppression_reason(envelope, machine_reason, own_domains, address)
    if verdict.status != "registered":
        # Recorded so the record says why nobody was answered; plain unregistered mail gets no row (staff decide).
        return ReceiptPlan("suppressed", address, reason) if reason else None
    if reason:
        return ReceiptPlan("suppressed", address, reason)
    if not address:
        return ReceiptPlan("suppressed", None, "no sender address")
    return ReceiptPlan("pending", address, None)
