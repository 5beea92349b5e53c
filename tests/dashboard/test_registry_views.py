"""Registry work in the dashboard: search that folds æøå and finds journal numbers, Norwegian error pages, security
headers, and exports and downloads in the audit trail. SQLite, and PostgreSQL when configured."""

from __future__ import annotations

from sqlalchemy import select

from postmottak.casefile import models as m
from postmottak.casefile import review
from tests.dashboard.seed import CASE, add_mail, form_data, oslo


def _search_ids(db, text: str) -> set[int]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return {r.id for r in review.search_intake(session, review.IntakeFilter(search=text)).records}


def test_search_folds_case_for_norwegian_letters_and_finds_journal_numbers(db, store, seeded) -> None:  # type: ignore[no-untyped-def]
    odegard = add_mail(
        db, store, key="odegard", seeded=seeded, sender="ase@odegard.no", sender_name="Åse Ødegård",
        subject=f"Høringssvar {CASE}", body="Vedlagt.", when=oslo(21, 9, 9, 0), status=m.REGISTERED, on_time=True,
        form=form_data(organisation_type="Privatperson", organisation_name="Ødegård Rådgivning",
                       q4_text="Pasientjournal må være tilgjengelig på SÆRSKILT vis."),
    )
    with db.session() as session:
        review.correct_field(session, odegard, "contact_person", "Øystein Ærø", "arkivar")
    for text in ("ødegård", "ØDEGÅRD", "Ødegård", "øDeGåRd rådgivning", "særskilt", "øystein ærø", "ØYSTEIN"):
        assert odegard in _search_ids(db, text), text
    with db.session() as session:
        journal = review.load_record(session, seeded.ids["helsevest"]).journal_entry.journal_number
    assert _search_ids(db, journal) == {seeded.ids["helsevest"]}
    assert _search_ids(db, journal.replace("2022/", "22/")) == {seeded.ids["helsevest"]}
    assert seeded.ids["legeforeningen"] in _search_ids(db, "LEGEFORENING")
    assert _search_ids(db, "ingen slik tekst") == set()


def test_bad_addresses_give_a_norwegian_page_not_json(archivist) -> None:  # type: ignore[no-untyped-def]
    for path, status in (("/intake/abc", 404), ("/intake?page=abc", 400), ("/intake/999999", 404)):
        response = archivist.get(path)
        assert response.status_code == status, path
        assert response.headers["content-type"].startswith("text/html"), path
        assert "Field required" not in response.text and "Input should be" not in response.text
        assert '<html lang="nb">' in response.text


def test_pages_carry_a_strict_content_security_policy(archivist) -> None:  # type: ignore[no-untyped-def]
    page = archivist.get("/intake")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "<style" not in page.text and " style=" not in page.text and "onclick" not in page.text
    assert archivist.get("/static/style.css").status_code == 200


def test_exports_and_downloads_are_in_the_audit_trail(archivist, db, seeded) -> None:  # type: ignore[no-untyped-def]
    assert archivist.get("/cases/22-414/export.xlsx").status_code == 200
    assert archivist.get("/cases/22-414/export.csv").status_code == 200
    bergen = seeded.ids["bergen"]
    assert archivist.get(f"/intake/{bergen}/raw.eml").status_code == 200
    with db.session() as session:
        doc = session.scalar(select(m.Document).where(m.Document.intake_id == bergen))
        assert doc is not None
        doc_id = doc.id
    assert archivist.get(f"/intake/{bergen}/documents/{doc_id}").status_code == 200
    with db.session() as session:
        events = list(session.scalars(select(m.AuditEvent).where(m.AuditEvent.action.in_(["export", "download"]))))
        rows = [(e.actor, e.action, e.intake_id, e.note) for e in events]
    assert sum(1 for actor, action, _, _ in rows if actor == "arkivar" and action == "export") == 2
    downloads = [row for row in rows if row[1] == "download"]
    assert {row[2] for row in downloads} == {bergen} and len(downloads) == 2
    audit = archivist.get("/audit").text
    assert "Eksport lastet ned" in audit and "Dokument lastet ned" in audit
