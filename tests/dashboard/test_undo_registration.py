"""Undoing a registration on a case from the review queue: within the window and only as the latest action; the
journal entry is kept as cancelled ("utgår"), its number never given again, a receipt still waiting is stopped, one
already sent is reported to staff. SQLite, and PostgreSQL when configured."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from postmottak.casefile import models as m
from postmottak.casefile import review
from postmottak.casefile.clock import utc_now
from tests.dashboard.seed import CASE


def _register(archivist, intake_id: int, *, receipt: bool) -> str:  # type: ignore[no-untyped-def]
    data = {"csrf_token": archivist.csrf, "case_number": CASE, **({"send_receipt": "1"} if receipt else {})}
    assert archivist.post(f"/intake/{intake_id}/register", data=data).status_code == 303
    page = archivist.get(f"/intake/{intake_id}").text
    assert "er registrert på sak" in page
    return page


def _undo(archivist, intake_id: int) -> str:  # type: ignore[no-untyped-def]
    """Undo through the confirmation page's form; returns the page shown after it (with its message)."""
    response = archivist.post(f"/intake/{intake_id}/undo", data={"csrf_token": archivist.csrf})
    assert response.status_code == 303
    return archivist.get(response.headers["location"]).text


def test_a_registration_undone_returns_to_review_cancels_the_number_and_stops_the_receipt(
    archivist, db, seeded
) -> None:  # type: ignore[no-untyped-def]
    intake_id = seeded.ids["review"]
    page = _register(archivist, intake_id, receipt=True)
    with db.session() as session:
        record = review.load_record(session, intake_id)
        first_number = record.journal_entry.journal_number
        first_sequence = record.journal_entry.journal_sequence
        assert record.receipt.status == "pending", record.receipt.reason
    assert f'action="/intake/{intake_id}/undo/confirm"' in page and "Kan angres til" in page

    confirm = archivist.get(f"/intake/{intake_id}/undo/confirm").text
    assert f"{first_number}</span> får status «utgår»" in confirm
    assert "Stoppes (den er ikke sendt ennå)." in confirm and "Bekreft: angre" in confirm
    with db.session() as session:  # the confirmation page changes nothing
        assert review.load_record(session, intake_id).status == m.REGISTERED

    after = _undo(archivist, intake_id)
    assert f"journalpost {first_number} utgår (nummeret brukes ikke igjen)" in after
    assert "Kvitteringen er stoppet før den ble sendt." in after
    assert "Utgått journalnummer" in after and first_number in after
    with db.session() as session:
        record = review.load_record(session, intake_id)
        assert (record.status, record.case_id, record.journal_entry) == (m.NEEDS_REVIEW, None, None)
        assert record.reason == "a consultation form without a case number"
        assert (record.receipt.status, record.receipt.reason) == ("suppressed", review.REGISTRATION_UNDONE)
        assert record in review.review_queue(session).needs_review
        undo = review.history(session, intake_id)[-1]
        assert undo.action == "undo" and undo.actor == "arkivar" and undo.case_id is not None
        assert undo.after["journal_number"] == first_number and undo.after["journal_status"] == "utgår"
        # The entry is kept as cancelled (the journals list it as "Utgår"), with the undo's actor.
        cancelled = session.scalars(select(m.CancelledJournalEntry)).all()
        assert [(c.journal_number, c.intake_id, c.cancelled_by) for c in cancelled] == [
            (first_number, intake_id, "arkivar")
        ]
        assert review.cancelled_journal_numbers(session, intake_id) == [first_number]

    # A second undo is refused, in Norwegian, and changes nothing.
    again = _undo(archivist, intake_id)
    assert "allerede angret; en angring kan ikke angres" in again
    assert archivist.get(f"/intake/{intake_id}/undo/confirm").text.count("Bekreft: angre") == 0

    # Registered again, it gets a new journal number: the cancelled one is never given again.
    _register(archivist, intake_id, receipt=True)
    with db.session() as session:
        record = review.load_record(session, intake_id)
        assert record.journal_entry.journal_number != first_number
        assert record.journal_entry.journal_sequence > first_sequence
        assert review.cancelled_journal_numbers(session, intake_id) == [first_number]  # still listed, once
        assert record.receipt.status == "pending", record.receipt.reason


def test_an_undo_after_the_window_or_after_another_action_is_refused(archivist, db, seeded) -> None:  # type: ignore[no-untyped-def]
    intake_id = seeded.ids["review"]
    _register(archivist, intake_id, receipt=False)
    with db.session() as session:
        event = review.history(session, intake_id)[-1]
        assert event.action == "register"
        late = utc_now() - timedelta(minutes=review.REGISTER_UNDO_MINUTES + 1)
        session.execute(update(m.AuditEvent).where(m.AuditEvent.id == event.id).values(at=late))
    page = archivist.get(f"/intake/{intake_id}").text
    assert 'id="undo"' not in page
    refused = _undo(archivist, intake_id)
    assert f"Registreringen kan bare angres i {review.REGISTER_UNDO_MINUTES} minutter" in refused
    with db.session() as session:
        record = review.load_record(session, intake_id)
        assert record.status == m.REGISTERED and record.journal_entry is not None

    # Another review action after the registration (a resent receipt) ends the window too.
    newsletter = seeded.ids["newsletter"]
    _register(archivist, newsletter, receipt=False)
    resent = archivist.post(f"/intake/{newsletter}/resend-receipt", data={"csrf_token": archivist.csrf})
    assert "Kvitteringen sendes på nytt" in archivist.get(resent.headers["location"]).text
    refused = _undo(archivist, newsletter)
    assert "(kvittering sendes på nytt) kan ikke angres" in refused
    with db.session() as session:
        assert review.load_record(session, newsletter).status == m.REGISTERED


def test_undoing_a_registration_whose_receipt_was_sent_tells_staff(archivist, db, seeded) -> None:  # type: ignore[no-untyped-def]
    intake_id = seeded.ids["review"]
    _register(archivist, intake_id, receipt=True)
    with db.session() as session:
        receipt = session.scalar(select(m.Receipt).where(m.Receipt.intake_id == intake_id))
        receipt.status, receipt.sent_at, receipt.attempts = "sent", utc_now(), 1
    confirm = archivist.get(f"/intake/{intake_id}/undo/confirm").text
    assert "<strong>Er allerede sendt</strong> til post@tromso.kommune.no" in confirm
    after = _undo(archivist, intake_id)
    assert "kvitteringen med journalnummeret var allerede sendt til avsenderen og kan ikke trekkes tilbake" in after
    with db.session() as session:
        record = review.load_record(session, intake_id)
        assert record.status == m.NEEDS_REVIEW and record.receipt.status == "sent"
        assert review.history(session, intake_id)[-1].after["receipt_outcome"] == "sent"
