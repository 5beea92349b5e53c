"""Pages, files, exports and actions over HTTP, as a logged-in archivist (and reader where reading is the point)."""

from __future__ import annotations

import csv
import io
import re

import openpyxl
from fastapi.testclient import TestClient
from sqlalchemy import select

from postmottak.casefile import models as m
from postmottak.dashboard.app import create_app
from postmottak.dashboard.web_settings import WebSettings
from tests.dashboard.conftest import login
from tests.dashboard.seed import add_mail, oslo, seed_consultation


def intake_ids(html: str) -> list[int]:
    """The record ids listed in the intake table, in order."""
    table = html.split('id="intake-table"', 1)[1].split("</table>", 1)[0]
    return [int(n) for n in re.findall(r'<td><a href="/intake/(\d+)">\1</a></td>', table)]


def test_overview_shows_counts_cases_receipts_worker_and_chart(reader, seeded):
    page = reader.get("/")
    assert page.status_code == 200
    html = page.text
    assert "Innhentingen går som normalt" in html
    assert re.search(r'<span class="n">6</span>Registrert', html)
    assert re.search(r'<span class="n">2</span>Til vurdering', html)
    assert re.search(r'<span class="n">1</span>Ignorert', html)
    assert 'href="/intake?case=22/414&timeliness=late">1</a>' in html
    assert 'href="/intake?case=22/414&timeliness=on_time">5</a>' in html
    assert 'href="/intake?receipt=sent">1</a>' in html
    assert "<svg" in html and "Frist 01.10.2022" in html
    # 3 in the review queue: 2 needs_review mails + 1 form with warnings.
    assert "antall som venter: </span>3</span>" in html


def test_overview_makes_a_stalled_failing_worker_obvious(settings, db, store, web):
    seed_consultation(db, store, healthy_worker=False)
    with TestClient(create_app(settings, db, web), follow_redirects=False) as client:
        login(client, "leser")
        html = client.get("/").text
    assert 'class="banner bad" id="worker-status">Innhentingen står stille' in html
    assert "IMAP-tjeneren svarer ikke: connection refused" in html
    assert "Feil i innhentingen" in html


def test_intake_list_filters(reader, seeded):
    ids = seeded.ids
    assert sorted(intake_ids(reader.get("/intake?status=needs_review").text)) == sorted(
        [ids["review"], ids["newsletter"]]
    )
    assert intake_ids(reader.get("/intake?case=22/414&timeliness=late").text) == [ids["sent"]]
    assert intake_ids(reader.get("/intake?receipt=sent").text) == [ids["bergen"]]
    kommune = reader.get("/intake", params={"org_type": "Kommune/KS"}).text
    assert sorted(intake_ids(kommune)) == sorted([ids["bergen"], ids["review"]])
    everything = intake_ids(reader.get("/intake").text)
    assert len(everything) == 9
    # Newest first.
    assert everything[0] == ids["sent"]


def test_intake_search_covers_sender_organisation_subject_and_answers(reader, seeded):
    ids = seeded.ids
    assert intake_ids(reader.get("/intake?q=legeforeningen.no").text) == [ids["legeforeningen"]]
    assert intake_ids(reader.get("/intake", params={"q": "Helse Vest"}).text) == [ids["helsevest"]]
    assert intake_ids(reader.get("/intake?q=Nyhetsbrev").text) == [ids["newsletter"]]
    # Answer text: goal 3 of two responses mentions research ("forskning").
    found = intake_ids(reader.get("/intake", params={"q": "til forskning"}).text)
    assert sorted(found) == sorted([ids["helsevest"]])
    assert intake_ids(reader.get("/intake", params={"q": "journalsystemer"}).text) == [ids["legeforeningen"]]
    # LIKE wildcards typed by a user are literal.
    assert intake_ids(reader.get("/intake", params={"q": "%"}).text) == []


def test_organisation_type_filter_follows_corrections(archivist, seeded):
    ids = seeded.ids
    response = archivist.post(
        f"/intake/{ids['helsevest']}/correct",
        data={"csrf_token": archivist.csrf, "field": "organisation_type", "value": "Kommune/KS"},
    )
    assert response.status_code == 303
    kommune = intake_ids(archivist.get("/intake", params={"org_type": "Kommune/KS"}).text)
    assert sorted(kommune) == sorted([ids["bergen"], ids["review"], ids["helsevest"]])
    assert intake_ids(archivist.get("/intake", params={"org_type": "RHF/Helseforetak"}).text) == []


def test_intake_list_is_paginated(settings, db, seeded):
    app = create_app(settings, db, WebSettings(secret_key="k" * 40, secure_cookies=False, page_size=4))
    with TestClient(app, follow_redirects=False) as client:
        login(client, "leser")
        first = client.get("/intake")
        assert "side 1 av 3" in first.text and len(intake_ids(first.text)) == 4
        assert 'href="/intake?page=2"' in first.text
        third = client.get("/intake?page=3")
        assert len(intake_ids(third.text)) == 1
        filtered = client.get("/intake?status=registered")
        assert 'href="/intake?status=registered&amp;page=2"' in filtered.text
        seen = intake_ids(first.text) + intake_ids(client.get("/intake?page=2").text) + intake_ids(third.text)
        assert sorted(seen) == sorted(seeded.ids.values())


def test_detail_shows_envelope_verdict_documents_form_receipt_and_history(reader, seeded, db):
    page = reader.get(f"/intake/{seeded.ids['bergen']}")
    html = page.text
    assert "Bergen kommune &lt;postmottak@bergen.kommune.no&gt;" in html
    assert "<strong>12.09.2022 10:15:00</strong> (norsk tid)" in html
    assert "2022/414-1" in html and '<span class="status ontime">I tide</span>' in html
    assert "Høringssvar.pdf" in html and f"/intake/{seeded.ids['bergen']}/raw.eml" in html
    assert "Innbyggerne må få bedre tilgang til egne helseopplysninger" in html
    assert "Kvittering for mottatt høringssvar – sak 22/414" in html
    assert "journalført som 2022/414-1" in html
    assert "Mottatt og vurdert automatisk" in html
    late = reader.get(f"/intake/{seeded.ids['sent']}").text
    assert '<span class="status late">For sent</span>' in late
    warned = reader.get(f"/intake/{seeded.ids['warned']}").text
    assert "Ingen avkrysning for spørsmål 1" in warned
    assert "Flere avkrysset: Forskning- og utdanningsorganisasjon, Statlig etat, ombud eller fagråd" in warned
    review = reader.get(f"/intake/{seeded.ids['review']}").text
    assert "et høringsskjema uten saksnummer" in review


def test_unknown_record_is_404(reader):
    assert reader.get("/intake/99999").status_code == 404
    assert reader.get("/intake/99999/raw.eml").status_code == 404
    assert reader.get("/cases/99-999").status_code == 404


def test_documents_and_raw_mail_are_served_from_the_store(reader, seeded, db, store):
    with db.session() as session:
        record = session.get(m.IntakeRecord, seeded.ids["bergen"])
        document = next(d for d in record.documents if d.is_form)
        doc_id, raw_path, doc_path = document.id, record.raw_path, document.storage_path
    response = reader.get(f"/intake/{seeded.ids['bergen']}/documents/{doc_id}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith("inline;")
    assert "filename*=UTF-8''H%C3%B8ringssvar.pdf" in response.headers["content-disposition"]
    assert response.content.startswith(b"%PDF") and response.content == store.read(doc_path)
    download = reader.get(f"/intake/{seeded.ids['bergen']}/documents/{doc_id}?download=1")
    assert download.headers["content-disposition"].startswith("attachment;")
    raw = reader.get(f"/intake/{seeded.ids['bergen']}/raw.eml")
    assert raw.headers["content-type"] == "message/rfc822"
    assert raw.headers["content-disposition"].startswith("attachment;")
    assert raw.content == store.read(raw_path) and b"Subject:" in raw.content
    # A document id is only found through its own mail.
    assert reader.get(f"/intake/{seeded.ids['helsevest']}/documents/{doc_id}").status_code == 404


def test_a_senders_html_attachment_is_never_rendered_on_our_origin(reader, seeded, db, store):
    html = b"<html><script>alert(document.cookie)</script></html>"
    sha, path = store.put(html)
    with db.session() as session:
        record = session.get(m.IntakeRecord, seeded.ids["newsletter"])
        record.documents.append(
            m.Document(
                number=2,
                role="attachment",
                title="tilbud.html",
                filename="tilbud.html",
                content_type="text/html",
                size=len(html),
                sha256=sha,
                storage_path=path,
            )
        )
        session.flush()
        doc_id = record.documents[-1].id
    response = reader.get(f"/intake/{seeded.ids['newsletter']}/documents/{doc_id}")
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"


def test_text_documents_are_sandboxed(reader, seeded, db):
    with db.session() as session:
        doc = session.scalar(select(m.Document).where(m.Document.intake_id == seeded.ids["newsletter"]))
    response = reader.get(f"/intake/{seeded.ids['newsletter']}/documents/{doc.id}")
    assert response.headers["content-type"].startswith("text/plain")
    assert "sandbox" in response.headers["content-security-policy"]
    assert "Se våre nye produkter" in response.text


def test_review_page_lists_both_kinds_of_items(reader, seeded):
    html = reader.get("/review").text
    assert f'id="item-{seeded.ids["review"]}"' in html and f'id="item-{seeded.ids["newsletter"]}"' in html
    assert f'id="item-{seeded.ids["warned"]}"' in html
    assert "Ingen avkrysning for spørsmål 1" in html
    assert f'id="item-{seeded.ids["bergen"]}"' not in html


def test_resolving_every_review_item_over_http(archivist, seeded, db):
    ids = seeded.ids
    token = archivist.csrf
    r = archivist.post(
        f"/intake/{ids['review']}/register",
        data={"csrf_token": token, "case_number": "22/414", "send_receipt": "1", "next": "/review"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/review"
    assert "Post 7 er registrert på sak 22/414." in archivist.get("/review").text
    r = archivist.post(
        f"/intake/{ids['newsletter']}/ignore",
        data={"csrf_token": token, "reason": "Reklame, ikke et høringssvar", "next": "/review"},
    )
    assert r.status_code == 303
    r = archivist.post(
        f"/intake/{ids['warned']}/correct", data={"csrf_token": token, "field": "q1_choice", "value": "ja"}
    )
    assert r.status_code == 303 and r.headers["location"] == f"/intake/{ids['warned']}"
    r = archivist.post(f"/intake/{ids['warned']}/confirm-form", data={"csrf_token": token, "next": "/review"})
    assert r.status_code == 303
    html = archivist.get("/review").text
    assert 'id="queue-empty"' in html
    assert "Poster som venter" not in html
    with db.session() as session:
        tromso = session.get(m.IntakeRecord, ids["review"])
        assert tromso.status == "registered" and tromso.on_time is True
        assert tromso.journal_entry.journal_number == "2022/414-7"
        assert tromso.journal_entry.created_by == "arkivar"
        assert tromso.receipt.status == "pending" and tromso.receipt.to_address == "post@tromso.kommune.no"
        actions = [
            e.action
            for e in session.scalars(
                select(m.AuditEvent).where(m.AuditEvent.intake_id.is_not(None)).order_by(m.AuditEvent.id)
            )
        ]
        assert actions == ["register", "ignore", "correct_field", "form_checked"]
    detail = archivist.get(f"/intake/{ids['warned']}").text
    assert "Korrigert av arkivar" in detail and "(tolket: «–»)" in detail
    assert "Skjema kontrollert" in detail
    audit = archivist.get("/audit").text
    assert "Reklame, ikke et høringssvar" in audit and "Registrert på sak" in audit


def test_a_refused_action_is_reported_not_applied(archivist, seeded, db):
    # Ignoring a registered response is not allowed; the page says why.
    r = archivist.post(f"/intake/{seeded.ids['bergen']}/ignore", data={"csrf_token": archivist.csrf, "reason": "x"})
    assert r.status_code == 303
    page = archivist.get(r.headers["location"]).text
    assert "kan ikke markeres som ignorert" in page
    r = archivist.post(f"/intake/{seeded.ids['review']}/ignore", data={"csrf_token": archivist.csrf, "reason": "  "})
    assert "Oppgi en begrunnelse" in archivist.get(r.headers["location"]).text
    with db.session() as session:
        assert session.get(m.IntakeRecord, seeded.ids["bergen"]).status == "registered"
        assert session.get(m.IntakeRecord, seeded.ids["review"]).status == "needs_review"
    assert archivist.post("/intake/99999/ignore", data={"csrf_token": archivist.csrf, "reason": "x"}).status_code == 404


def test_an_action_never_redirects_off_site(archivist, seeded):
    r = archivist.post(
        f"/intake/{seeded.ids['newsletter']}/ignore",
        data={"csrf_token": archivist.csrf, "reason": "Reklame", "next": "https://evil.example/"},
    )
    assert r.headers["location"] == f"/intake/{seeded.ids['newsletter']}"


def test_resend_receipt_over_http(archivist, seeded, db):
    r = archivist.post(f"/intake/{seeded.ids['bergen']}/resend-receipt", data={"csrf_token": archivist.csrf})
    assert r.status_code == 303
    with db.session() as session:
        receipt = session.scalar(select(m.Receipt).where(m.Receipt.intake_id == seeded.ids["bergen"]))
        assert receipt.status == "pending" and receipt.sent_at is None and receipt.attempts == 0
        # The same text goes out again.
        assert receipt.body and "2022/414-1" in receipt.body


def test_case_summary_page(reader, seeded):
    html = reader.get("/cases/22-414").text
    assert "Oppsummering av høringen 22/414" in html
    assert re.search(r'<span class="n">6</span>høringssvar', html)
    assert re.search(r'<span class="n">1</span>for sent', html)
    assert "Kom inn etter fristen (1)" in html and "Pasientforeningen – mottatt 03.10.2022 08:05" in html
    assert html.count("<svg") == 2
    assert "Enklere arbeidshverdag krever bedre journalsystemer" in html
    assert "@media print" in reader.get("/static/style.css").text
    assert 'href="/cases/22-414/export.xlsx"' in html
    cases = reader.get("/cases").text
    assert 'href="/cases/22-414"' in cases


def test_csv_and_xlsx_exports_have_one_row_per_response_with_corrections(archivist, seeded):
    archivist.post(
        f"/intake/{seeded.ids['warned']}/correct",
        data={"csrf_token": archivist.csrf, "field": "organisation_name", "value": "Universitetet i Oslo"},
    )
    response = archivist.get("/cases/22-414/export.csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="hoeringssvar-22-414.csv"')
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == 6
    uio = next(r for r in rows if r["Avsender"] == "post@uio.no")
    assert uio["Navn på virksomheten"] == "Universitetet i Oslo"
    assert uio["Korrigerte felt"] == "Navn på virksomheten"
    xlsx = archivist.get("/cases/22-414/export.xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    values = list(sheet.iter_rows(values_only=True))
    header, data = values[0], values[1:]
    assert len(data) == 6
    row = dict(zip(header, next(r for r in data if r[header.index("Avsender")] == "post@uio.no"), strict=False))
    assert row["Navn på virksomheten"] == "Universitetet i Oslo"
    assert dict(zip(header, data[-1], strict=False))["I tide"] == "nei"


def test_html_is_escaped(archivist, seeded, db, store):
    add_mail(
        db,
        store,
        key="xss",
        seeded=seeded,
        sender="x@example.no",
        sender_name="<b>Navn</b>",
        subject="<script>alert(1)</script>",
        body="tekst",
        when=oslo(20, 9, 12),
        status="needs_review",
        reason="x",
        receipt=None,
    )
    html = archivist.get(f"/intake/{seeded.ids['xss']}").text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    listing = archivist.get("/intake").text
    assert "<b>Navn</b>" not in listing
