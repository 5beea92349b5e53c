"""A response read by OCR: its page images beside the OCR'd fields, served only to staff, and its searchable PDF
as an audit-logged download."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import select

from postmottak.casefile import models as m
from tests.dashboard.seed import add_scanned_response


@pytest.fixture
def scanned(db, store, seeded) -> int:  # type: ignore[no-untyped-def]
    return add_scanned_response(db, store, seeded)


def _document_id(db, intake_id: int) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.scalar(select(m.Document.id).where(m.Document.intake_id == intake_id))


def test_detail_page_shows_each_ocr_page_beside_the_fields_with_their_confidence(reader, db, scanned) -> None:  # type: ignore[no-untyped-def]
    document_id = _document_id(db, scanned)
    html = reader.get(f"/intake/{scanned}").text
    assert f'src="/intake/{scanned}/documents/{document_id}/pages/1.png"' in html
    assert 'alt="Side 1 av skanning.pdf, slik den ble skannet' in html
    assert "Felt lest med OCR" in html and "94 %" in html and "61 %" in html
    assert html.count("Lav sikkerhet – kontroller mot bildet") == 1  # contact person only
    assert f"/intake/{scanned}/documents/{document_id}/searchable.pdf" in html
    # A born-digital response has no scan section.
    other = reader.get("/intake/1").text
    assert "Felt lest med OCR" not in other and "pages/1.png" not in other


def test_page_image_is_a_png_for_staff_and_needs_a_login(reader, anon, db, scanned) -> None:  # type: ignore[no-untyped-def]
    document_id = _document_id(db, scanned)
    url = f"/intake/{scanned}/documents/{document_id}/pages/1.png"
    response = reader.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG" and abs(image.width - 1000) <= 2 and image.height > image.width
    assert "default-src 'none'" in response.headers["content-security-policy"]
    refused = anon.get(url)
    assert refused.status_code in (303, 401, 403) and not refused.content.startswith(b"\x89PNG")
    assert reader.get(f"/intake/{scanned}/documents/{document_id}/pages/2.png").status_code == 404  # not OCR'd
    assert reader.get(f"/intake/1/documents/{document_id}/pages/1.png").status_code == 404  # another mail's id


def test_searchable_pdf_download_is_in_the_audit_trail(reader, anon, db, scanned) -> None:  # type: ignore[no-untyped-def]
    document_id = _document_id(db, scanned)
    url = f"/intake/{scanned}/documents/{document_id}/searchable.pdf"
    assert anon.get(url).status_code in (303, 401, 403)
    response = reader.get(url)
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    assert (
        "attachment" in response.headers["content-disposition"]
        and "s%C3%B8kbar" in response.headers["content-disposition"]
    )
    with db.session() as session:
        notes = list(
            session.scalars(
                select(m.AuditEvent.note).where(m.AuditEvent.intake_id == scanned, m.AuditEvent.action == "download")
            )
        )
    assert notes == [f"søkbar PDF (OCR) av dokument {document_id}: skanning.pdf"]


def test_search_finds_a_scan_by_its_ocr_text(reader, scanned) -> None:  # type: ignore[no-untyped-def]
    # "Fjellheim" is only in the text layer (the form's contact person was read as "Fjelheim").
    page = reader.get("/intake", params={"q": "fjellheim"}).text
    assert f'href="/intake/{scanned}"' in page
    assert f'href="/intake/{scanned}"' not in reader.get("/intake", params={"q": "finnes-ikke-noe-sted"}).text
