"""The intake verdict for one mail: registered to a case, needs review, or ignored - and on time or late.

Pure: it sees the parsed envelope and the text of the attachments, never the database. Duplicates are decided
by the case database (they need to know what was seen before).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from postmottak.casefile.records import IGNORED, NEEDS_REVIEW, REGISTERED
from postmottak.parsers.case_refs import find_case_references
from postmottak.parsers.machine import is_weak_reason


@dataclass(frozen=True)
class CaseRule:
    number: str
    title: str
    deadline: date
    timezone: str
    keywords: tuple[str, ...] = ()
    closed: bool = False
    # The deadline's time of day (None: the end of the deadline day); set for consultations set up in the dashboard.
    deadline_time: time | None = None


@dataclass(frozen=True)
class Verdict:
    status: str
    reason: str | None
    case_number: str | None
    on_time: bool | None


def is_on_time(received_at: datetime, deadline: date, timezone: str, deadline_time: time | None = None) -> bool:
    """On time = received no later than 23:59:59 on the deadline day, in the case's own timezone; with a deadline
    time, no later than the end of that minute (16:00 = up to 16:00:59)."""
    if received_at.tzinfo is None:
        raise ValueError("received time must be timezone-aware")
    local = received_at.astimezone(ZoneInfo(timezone))
    if deadline_time is None:
        return local.date() <= deadline
    return (local.date(), local.time().replace(second=0, microsecond=0, tzinfo=None)) <= (
        deadline,
        deadline_time.replace(second=0, microsecond=0),
    )


def _mentions(text: str, keyword: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(keyword.casefold()) + r"(?!\w)", text.casefold()) is not None


def decide(
    *,
    subject: str,
    body: str,
    attachment_texts: Sequence[str],
    attachment_names: Sequence[str],
    machine_reason: str | None,
    reply_to_our_receipt: bool,
    has_form: bool,
    received_at: datetime,
    cases: Sequence[CaseRule],
) -> Verdict:
    haystack = "\n".join([subject, body, *attachment_names, *attachment_texts])
    numbers = [case.number for case in cases]
    referenced = find_case_references(haystack, numbers)
    if machine_reason:
        if is_weak_reason(machine_reason) and (referenced or has_form):
            about = ", ".join(sorted(referenced)) or "a consultation form"
            return Verdict(NEEDS_REVIEW, f"refers to {about} but may be automatic ({machine_reason})", None, None)
        return Verdict(IGNORED, f"machine mail: {machine_reason}", None, None)
    if reply_to_our_receipt:
        return Verdict(NEEDS_REVIEW, "reply to one of our receipts", None, None)
    if len(referenced) > 1:
        listed = ", ".join(sorted(referenced))
        return Verdict(NEEDS_REVIEW, f"refers to several cases: {listed}", None, None)
    if len(referenced) == 1:
        case = next(case for case in cases if case.number in referenced)
        on_time = is_on_time(received_at, case.deadline, case.timezone, case.deadline_time)
        if case.closed:
            return Verdict(NEEDS_REVIEW, f"case {case.number} is closed", None, None)
        return Verdict(REGISTERED, None, case.number, on_time)
    if has_form:
        return Verdict(NEEDS_REVIEW, "a consultation form without a case number", None, None)
    for case in cases:
        for keyword in (*case.keywords, case.title):
            if keyword and _mentions(haystack, keyword):
                return Verdict(NEEDS_REVIEW, f"mentions {keyword!r} but no case number", None, None)
    return Verdict(IGNORED, "no reference to a configured case", None, None)
