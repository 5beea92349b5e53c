"""Publication, retention and data subject requests in the dashboard: archivists act after a confirmation page,
readers are refused, and every action is in the audit trail."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from postmottak.casefile import exemptions
from postmottak.casefile import models as m
from postmottak.config.settings import RetentionSettings
from postmottak.dashboard.app import create_app
from tests.dashboard.conftest import login

INGRID = "ingrid.berg@example.no"


def _events(db, action: str) -> list[m.AuditEvent]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return list(session.scalars(select(m.AuditEvent).where(m.AuditEvent.action == action)))


def _words(html: str) -> str:
    """The page's text: tags dropped, white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.slow
def test_publication_overview_then_the_archivist_downloads_the_package_and_a_reader_cannot(  # type: ignore[no-untyped-def]
    db, seeded, archivist, reader
) -> None:
    with db.session() as session:
        exemptions.mark_exempt(session, seeded.ids["legeforeningen"], "Offl. § 13 jf. fvl. § 13", "arkivar")
    page = reader.get("/cases/22-414/publication")
    assert page.status_code == 200 and 'id="publication-start"' not in page.text  # readers see, do not act
    html = archivist.get("/cases/22-414/publication").text
    text = _words(html)
    assert "Nei, unntatt (Offl. § 13 jf. fvl. § 13)" in text and "Ingrid Berg Privatperson Ja" in text
    assert INGRID not in html and 'id="publication-start"' in html
    assert 'href="/cases/22-414/publication"' in archivist.get("/cases/22-414").text
    assert reader.get("/cases/22-414/publication/confirm").status_code == 403
    assert reader.post("/cases/22-414/publication", data={"csrf_token": reader.csrf}).status_code == 403
    assert archivist.post("/cases/22-414/publication", data={}).status_code == 403  # no CSRF token
    confirm = _words(archivist.get("/cases/22-414/publication/confirm").text)
    assert "Publiseres 5 Unntatt offentlighet 1" in confirm

    response = archivist.post("/cases/22-414/publication", data={"csrf_token": archivist.csrf})
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert "publisering-22-414.zip" in response.headers["content-disposition"]
    package = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(package.namelist())
    assert {"index.html", "hoeringssvar.csv"} <= names
    pdfs = sorted(n for n in names if n.startswith("svar/"))
    assert len(pdfs) == 5 and "svar/bergen-kommune.pdf" in pdfs and "svar/ingrid-berg.pdf" in pdfs
    listing = package.read("index.html").decode() + package.read("hoeringssvar.csv").decode("utf-8-sig")
    assert "Unntatt offentlighet (Offl. § 13 jf. fvl. § 13)" in listing and "Ingrid Berg" in listing
    assert INGRID not in listing and "legeforening.pdf" not in listing
    exports = _events(db, "export")
    assert len(exports) == 1 and exports[0].actor == "arkivar" and "publiseringspakke" in (exports[0].note or "")


def _retention_client(settings, db, web, days: int | None, username: str):  # type: ignore[no-untyped-def]
    configured = settings.model_copy(update={"retention": RetentionSettings(ignored_days=days, duplicate_days=days)})
    client = TestClient(create_app(configured, db, web), follow_redirects=False)
    client.csrf = login(client, username)  # type: ignore[attr-defined]
    return client


def test_retention_dry_run_then_run_now_by_an_archivist_and_a_reader_is_refused(  # type: ignore[no-untyped-def]
    settings, db, web, seeded, store
) -> None:
    with db.session() as session:
        ignored = session.get(m.IntakeRecord, seeded.ids["ignored"])
        files = [ignored.raw_path] + [d.storage_path for d in ignored.documents]
    with _retention_client(settings, db, web, None, "arkivar") as unconfigured:
        page = unconfigured.get("/retention")
        assert 'id="retention-unconfigured"' in page.text and 'id="retention-start"' not in page.text
        assert unconfigured.post("/retention/run", data={"csrf_token": unconfigured.csrf}).status_code == 303
    assert all(store.path_for(p).is_file() for p in files)  # no rules: nothing deleted

    with _retention_client(settings, db, web, 0, "leser") as reader:
        page = reader.get("/retention").text
        assert "Hvis reglene kjøres nå, slettes innholdet i 1 poster" in _words(page)
        assert 'id="retention-start"' not in page
        assert reader.get("/retention/confirm").status_code == 403
        assert reader.post("/retention/run", data={"csrf_token": reader.csrf}).status_code == 403
    assert all(store.path_for(p).is_file() for p in files)

    with _retention_client(settings, db, web, 0, "arkivar") as archivist:
        page = archivist.get("/retention").text
        assert 'href="/retention/confirm"' in page and "14.09.2022" in page  # the oldest due (received)
        confirm = _words(archivist.get("/retention/confirm").text)
        assert "vedleggene til 1 poster slettes for godt" in confirm
        done = archivist.post("/retention/run", data={"csrf_token": archivist.csrf})
        assert done.status_code == 303 and done.headers["location"] == "/retention"
        after = archivist.get("/retention").text
        assert "Innholdet er slettet for 1 poster" in _words(after) and 'id="retention-nothing"' in after
        assert "av arkivar: innholdet slettet i 1 poster" in _words(after)
        archivist.post("/retention/run", data={"csrf_token": archivist.csrf})  # a second run changes nothing
        assert "Innholdet er slettet for 0 poster" in _words(archivist.get("/retention").text)
    assert not any(store.path_for(p).exists() for p in files)
    with db.session() as session:
        tombstone = session.scalar(select(m.ContentTombstone).where(m.ContentTombstone.intake_id == ignored.id))
        assert tombstone.deleted_by == "arkivar" and tombstone.rule == "retention.ignored_days=0"
    runs = _events(db, "retention_run")
    assert [(e.actor, e.after["poster"]) for e in runs] == [("arkivar", 1), ("arkivar", 0)]


def test_privacy_find_export_and_erase_for_archivists_only(db, seeded, archivist, reader, store) -> None:  # type: ignore[no-untyped-def]
    assert reader.get("/privacy").status_code == 403
    for path in ("/privacy", "/privacy/export", "/privacy/erase/confirm", "/privacy/erase"):
        assert reader.post(path, data={"query": INGRID, "csrf_token": reader.csrf}).status_code == 403, path
    assert 'href="/privacy"' in archivist.get("/").text and 'href="/privacy"' not in reader.get("/").text

    found = archivist.post("/privacy", data={"query": INGRID.upper(), "csrf_token": archivist.csrf})
    text = _words(found.text)
    assert found.status_code == 200 and f'href="/intake/{seeded.ids["privat"]}"' in found.text
    assert "avsenderadresse" in text and "Beholdes (arkivplikt)" in text
    assert INGRID.upper() not in found.request.url.path  # the person is in the POST body, not the address
    short = archivist.post("/privacy", data={"query": "ab", "csrf_token": archivist.csrf})
    assert short.status_code == 400 and "minst tre tegn" in short.text
    nobody = archivist.post("/privacy", data={"query": "finnes.ikke@example.no", "csrf_token": archivist.csrf})
    assert 'id="privacy-none"' in nobody.text

    export = archivist.post("/privacy/export", data={"query": INGRID, "csrf_token": archivist.csrf})
    assert export.status_code == 200 and export.headers["content-type"] == "application/zip"
    package = zipfile.ZipFile(io.BytesIO(export.content))
    held = json.loads(package.read("innsyn.json"))
    assert [r["intake_id"] for r in held["poster"]] == [seeded.ids["privat"]]
    assert all(name in package.namelist() for name in held["poster"][0]["filer"])

    confirm = _words(
        archivist.post("/privacy/erase/confirm", data={"query": INGRID, "csrf_token": archivist.csrf}).text
    )
    assert "Slettes (0)" in confirm and f"Post {seeded.ids['privat']}: Journalført som" in confirm
    assert "art. 17 nr. 3 bokstav b" in confirm and "Bekreft: slett for godt" not in confirm

    with db.session() as session:
        ignored = session.get(m.IntakeRecord, seeded.ids["ignored"])
        files = [ignored.raw_path] + [d.storage_path for d in ignored.documents]
    machine = "noreply@example.com"
    confirm = _words(
        archivist.post("/privacy/erase/confirm", data={"query": machine, "csrf_token": archivist.csrf}).text
    )
    assert "Slettes (1)" in confirm and "Beholdes (0)" in confirm and "Bekreft: slett for godt" in confirm
    with db.session() as session:
        assert session.get(m.IntakeRecord, seeded.ids["ignored"]).sender_address == machine  # nothing changed yet
    erased = archivist.post("/privacy/erase", data={"query": machine, "csrf_token": archivist.csrf})
    assert erased.status_code == 303
    assert "Personopplysningene er slettet i 1 poster" in _words(archivist.get("/privacy").text)
    with db.session() as session:
        record = session.get(m.IntakeRecord, seeded.ids["ignored"])
        assert (record.sender_address, record.sender_name, record.body_text) == (None, None, "")
    assert not any(store.path_for(p).exists() for p in files)
    assert [e.actor for e in _events(db, "privacy_find")] == ["arkivar", "arkivar"]  # the short query is refused
    assert len(_events(db, "privacy_export")) == 1 and len(_events(db, "privacy_erase")) == 2
    assert all(INGRID not in json.dumps(e.after) + (e.note or "") for e in _events(db, "privacy_find"))
