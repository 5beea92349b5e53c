"""What the worker hands to the case database to register, and what it gets back: plain data, no SQL.

The intake layer builds these (intake/pipeline.py, intake/receipt_policy.py) without importing the database code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Intake statuses: what became of a mail.
REGISTERED = "registered"
NEEDS_REVIEW = "needs_review"
IGNORED = "ignored"
DUPLICATE = "duplicate"
FAILED = "failed"
INTAKE_STATUSES = (REGISTERED, NEEDS_REVIEW, IGNORED, DUPLICATE, FAILED)

# Receipt statuses
RECEIPT_STATUSES = ("pending", "sent", "failed", "suppressed", "bounced")


@dataclass
class TextLayerIn:
    """The searchable PDF of a document read by OCR, stored already (or why it could not be made)."""

    status: str  # made | failed
    ocr_pages: list[int]  # 1-based
    text: str = ""
    sha256: str | None = None
    size: int | None = None
    storage_path: str | None = None
    tool: str | None = None
    error: str | None = None


@dataclass
class DocumentIn:
    filename: str | None
    content_type: str
    size: int
    sha256: str
    storage_path: str
    title: str
    kind: str = "file"  # file | body
    is_form: bool = False
    depth: int = 0
    text_layer: TextLayerIn | None = None


@dataclass
class ReceiptPlan:
    status: str  # pending | suppressed
    to_address: str | None
    reason: str | None = None


@dataclass
class IncomingMail:
    source_key: str
    uidvalidity: int
    uid: str
    raw_sha256: str
    raw_size: int
    raw_path: str
    message_id: str | None
    received_at: datetime
    received_at_source: str
    date_header: datetime | None
    sender_name: str | None
    sender_address: str | None
    subject: str
    body_text: str
    in_reply_to: list[str]
    references: list[str]
    machine_reason: str | None
    parse_defects: list[str]
    status: str
    reason: str | None
    case_number: str | None
    on_time: bool | None
    documents: list[DocumentIn] = field(default_factory=list)
    form: dict[str, Any] | None = None  # FormResult.model_dump()
    form_document_index: int | None = None
    receipt: ReceiptPlan | None = None
    sender_is_private_person: bool | None = None


@dataclass(frozen=True)
class Outcome:
    kind: str  # new | seen (this location was handled before) | relocated (same mail after UIDVALIDITY change)
    intake_id: int
    status: str
