"""The exemption page: archivists exempt a response with a legal basis and lift it again; readers only look."""

from __future__ import annotations

from sqlalchemy import select

from postmottak.casefile import models as m


def _registered(db) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.scalar(select(m.IntakeRecord.id).where(m.IntakeRecord.status == m.REGISTERED).limit(1))


def test_archivist_exempts_and_lifts_and_reader_cannot(db, seeded, archivist, reader):  # type: ignore[no-untyped-def]
    intake_id = _registered(db)
    assert f'href="/intake/{intake_id}/exemption"' in archivist.get(f"/intake/{intake_id}").text
    page = archivist.get(f"/intake/{intake_id}/exemption")
    assert page.status_code == 200 and "Svaret er ikke unntatt offentlighet" in page.text
    denied = reader.post(f"/intake/{intake_id}/exemption", data={"basis": "Offl. § 13", "csrf_token": reader.csrf})
    assert denied.status_code == 403
    empty = archivist.post(f"/intake/{intake_id}/exemption", data={"basis": " ", "csrf_token": archivist.csrf})
    assert empty.status_code == 303 and "Oppgi hjemmel" in archivist.get(f"/intake/{intake_id}/exemption").text
    saved = archivist.post(
        f"/intake/{intake_id}/exemption",
        data={"basis": "Offl. § 13 jf. fvl. § 13", "screen_names": "1", "csrf_token": archivist.csrf},
    )
    assert saved.status_code == 303
    text = archivist.get(f"/intake/{intake_id}/exemption").text
    assert "Offl. § 13 jf. fvl. § 13" in text and "<td>13</td>" in text
    with db.session() as session:
        row = session.scalar(select(m.PublicationExemption).where(m.PublicationExemption.intake_id == intake_id))
        assert row.screen_names and row.decided_by == "arkivar" and row.document_id is None
    lifted = archivist.post(f"/intake/{intake_id}/exemption/lift", data={"document": "", "csrf_token": archivist.csrf})
    assert lifted.status_code == 303
    with db.session() as session:
        assert session.scalar(select(m.PublicationExemption.id)) is None
        actions = [e.action for e in session.scalars(select(m.AuditEvent).where(m.AuditEvent.intake_id == intake_id))]
    assert "exempt_from_publication" in actions and "exemption_lifted" in actions
