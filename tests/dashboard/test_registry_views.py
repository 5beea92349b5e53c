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
        db,
        store,
        key="odegard",
        seeded=seeded,
        sender="ase@odegard.no",
        sender_name="Åse Ødegård",
        subject=f"Høringssvar {CASE}",
        body="Vedlagt.",
        when=oslo(21, 9, 9, 0),
        status=m.REGISTERED,
        on_time=True,
        form=form_data(
            organisation_type="Privatperson",
            organisation_name="Ødegård Rådgivning",
            q4_text="Pasientjournal må være tilgjengelig på SÆRSKILT vis.",
        ),
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


def test_bad_addresses_give_a_norwegian_page_not_json(archivist, seeded) -> None:  # type: ignore[no-untyped-def]
    bergen = seeded.ids["bergen"]
    assert archivist.get("/intake?page=abc").status_code == 200  # read as page 1
    for path, status in (
        ("/intake/abc", 404),
        (f"/intake/{bergen}/documents/1?download=kanskje", 400),
        ("/intake/999999", 404),
    ):
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


def test_audit_log_filters_pages_and_exports(archivist, db, seeded) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime, timedelta, timezone

    with db.session() as session:
        review.register_to_case(session, seeded.ids["review"], CASE, "kari", note="Tromsø, journal")
        review.mark_ignored(session, seeded.ids["newsletter"], "Reklame", "ola")
        for n in range(60):
            review.record_login(session, actor="leser", ok=True, client=f"10.0.0.{n}")
        old = m.AuditEvent(at=datetime.now(timezone.utc) - timedelta(days=40), actor="gammel", action="login")
        session.add(old)

    def table(path: str) -> str:
        return archivist.get(path).text.split('id="audit-table"')[1]

    page = table("/audit?actor=kari")
    assert "Registrert på sak" in page and "journalnummer: 2022/414-7" in page and "Markert som ignorert" not in page
    page = table("/audit?action=ignore")
    assert "Markert som ignorert" in page and "Reklame" in page and "Registrert på sak" not in page
    assert "1 hendelse." in archivist.get(f"/audit?case={CASE}&action=register").text
    assert f"/intake/{seeded.ids['newsletter']}" in archivist.get(f"/audit?intake={seeded.ids['newsletter']}").text
    first = archivist.get("/audit?actor=leser").text
    assert "60 hendelser, side 1 av 2" in first and "Neste »" in first
    assert "side 2 av 2" in archivist.get("/audit?actor=leser&page=2").text
    today = datetime.now(timezone.utc).date()
    since = (today - timedelta(days=2)).isoformat()
    assert "0 hendelser" in archivist.get(f"/audit?actor=gammel&since={since}").text
    assert "1 hendelse." in archivist.get(f"/audit?actor=gammel&until={since}").text
    bad = archivist.get("/audit?since=igår&page=abc")
    assert bad.status_code == 200 and "er ikke en dato" in bad.text
    export = archivist.get("/audit/export.csv?action=ignore")
    assert export.status_code == 200 and "Markert som ignorert" in export.content.decode("utf-8-sig")
    assert "Registrert på sak" not in export.content.decode("utf-8-sig")
    assert "logg som CSV, 1 rader" in table("/audit?action=export")


def test_register_ignore_and_resend_are_confirmed_first(archivist, db, seeded) -> None:  # type: ignore[no-untyped-def]
    review_id, newsletter = seeded.ids["review"], seeded.ids["newsletter"]
    detail = archivist.get(f"/intake/{review_id}").text
    assert f'action="/intake/{review_id}/register/confirm"' in detail and 'method="get"' in detail
    page = archivist.get(f"/intake/{review_id}/register/confirm?case_number={CASE}&send_receipt=1")
    assert page.status_code == 200 and "Bekreft registrering" in page.text and "post@tromso.kommune.no" in page.text
    page = archivist.get(f"/intake/{newsletter}/ignore/confirm?reason=")
    assert "Oppgi en begrunnelse." in page.text and "Bekreft: marker" not in page.text
    page = archivist.get(f"/intake/{seeded.ids['bergen']}/resend-receipt/confirm")
    assert "Bekreft: send kvittering" in page.text
    with db.session() as session:  # looking at a confirmation page changes nothing
        assert review.load_record(session, review_id).status == m.NEEDS_REVIEW
        assert review.load_record(session, newsletter).status == m.NEEDS_REVIEW


def test_the_last_ignore_or_correction_can_be_undone(archivist, db, seeded) -> None:  # type: ignore[no-untyped-def]
    newsletter, warned = seeded.ids["newsletter"], seeded.ids["warned"]
    archivist.post(f"/intake/{newsletter}/ignore", data={"csrf_token": archivist.csrf, "reason": "Reklame"})
    assert "Angre siste beslutning (markert som ignorert" in archivist.get(f"/intake/{newsletter}").text
    response = archivist.post(f"/intake/{newsletter}/undo", data={"csrf_token": archivist.csrf})
    assert response.status_code == 303
    with db.session() as session:
        record = review.load_record(session, newsletter)
        assert record.status == m.NEEDS_REVIEW and record.reason == "mentions 'e-helsestrategi' but no case number"
    assert 'id="undo"' not in archivist.get(f"/intake/{newsletter}").text

    archivist.post(
        f"/intake/{warned}/correct",
        data={"csrf_token": archivist.csrf, "field": "organisation_name", "value": "Universitetet i Oslo"},
    )
    archivist.post(f"/intake/{warned}/undo", data={"csrf_token": archivist.csrf})
    with db.session() as session:
        from postmottak.casefile.queries import corrected_form

        record = review.load_record(session, warned)
        corrected = corrected_form(record, review.corrections_for(session, warned))
        assert corrected["organisation_name"] == "Universitetet i Olso"
        assert [e.action for e in review.history(session, warned)][-2:] == ["correct_field", "undo"]

    page = archivist.get(f"/intake/{warned}")
    assert 'id="undo"' not in page.text  # an undo is not undone again

    too_long = archivist.post(
        f"/intake/{warned}/correct",
        data={"csrf_token": archivist.csrf, "field": "organisation_name", "value": "x" * 100_000},
    )
    assert too_long.status_code == 303
    assert "for lang" in archivist.get(f"/intake/{warned}").text


def test_intake_list_sorts_by_column_and_says_so(archivist, seeded) -> None:  # type: ignore[no-untyped-def]
    import re

    def ids(path: str) -> list[int]:
        table = archivist.get(path).text.split('id="intake-table"')[1]
        return [int(n) for n in re.findall(r'<td><a href="/intake/(\d+)">', table)]

    newest_first = ids("/intake")
    assert ids("/intake?sort=received&order=asc") == list(reversed(newest_first))
    assert ids("/intake?sort=id&order=asc") == sorted(newest_first)
    page = archivist.get("/intake?sort=sender&order=asc").text
    assert 'aria-sort="ascending"' in page
    senders = re.findall(r'<span class="muted">([^<]+@[^<]+)</span>', page.split('id="intake-table"')[1])
    assert senders == sorted(senders)
    assert ids("/intake?sort=hacker&order=x") == newest_first
