"""Delivery status reports (RFC 3464) read once, by the envelope parser: failed or only delayed, and why."""

from __future__ import annotations

from postmottak.parsers.envelope import parse_envelope
from tests import mailfactory as mf

RECEIPT_ID = "<kvittering.abc@ehelse.no>"


def test_failed_report_names_the_status_and_the_diagnostic() -> None:
    envelope = parse_envelope(mf.bounce(RECEIPT_ID, "borte@example.no", status="5.1.1"))
    assert envelope.is_report and envelope.dsn_original_message_id == RECEIPT_ID
    assert envelope.dsn_failed
    assert envelope.dsn_details.startswith("5.1.1 smtp; 550 5.1.1 <borte@example.no>")


def test_delayed_report_is_not_a_failure() -> None:
    envelope = parse_envelope(mf.bounce(RECEIPT_ID, "treg@example.no", status="4.4.1"))
    assert envelope.is_report and not envelope.dsn_failed and envelope.dsn_details == ""


def test_report_without_recipient_fields_counts_as_failed() -> None:
    raw = mf.bounce(RECEIPT_ID, "borte@example.no", status="5.1.1")
    without_status = raw.replace(b"message/delivery-status", b"text/plain")
    envelope = parse_envelope(without_status)
    assert envelope.is_report and envelope.dsn_failed and envelope.dsn_details == ""


def test_ordinary_mail_is_no_failure_report() -> None:
    envelope = parse_envelope(mf.response_mail(sender_addr="a@example.no"))
    assert not envelope.is_report and not envelope.dsn_failed
