"""Access control over HTTP: login, anonymous refusal of every route, roles, CSRF, sessions, throttling."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from postmottak.casefile import models as m
from postmottak.casefile.users import set_disabled
from postmottak.dashboard.app import create_app
from postmottak.dashboard.web_settings import WebSettings
from tests.dashboard.conftest import METRICS_TOKEN, PASSWORDS, csrf_from, login

PUBLIC = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/healthz"),
    ("GET", "/static/style.css"),
    ("GET", "/static/print.js"),
}
ACTION_ROUTES = [
    "/intake/{intake_id}/register",
    "/intake/{intake_id}/ignore",
    "/intake/{intake_id}/correct",
    "/intake/{intake_id}/resend-receipt",
    "/intake/{intake_id}/confirm-form",
]


def api_routes(routes):  # type: ignore[no-untyped-def]
    """Every APIRoute, also inside included routers (newer FastAPI keeps them nested; no prefixes are used)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)


def concrete_routes(app, seeded, db) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """(method, template, concrete path) for every route of the app, with real ids filled in."""
    with db.session() as session:
        document_id = session.scalar(
            select(m.Document.id).where(m.Document.intake_id == seeded.ids["bergen"], m.Document.is_form.is_(True))
        )
    values = {"intake_id": str(seeded.ids["bergen"]), "document_id": str(document_id), "key": "22-414", "page": "1"}
    routes = []
    for route in api_routes(app.routes):
        names = re.findall(r"{(\w+)}", route.path)
        unknown = [n for n in names if n not in values]
        assert not unknown, f"test does not know how to fill {unknown} in {route.path}"
        path = route.path
        for name in names:
            path = path.replace("{" + name + "}", values[name])
        for method in sorted(route.methods):
            routes.append((method, route.path, path))
    return routes


def test_every_route_refuses_anonymous_access(app, anon, seeded, db):
    routes = concrete_routes(app, seeded, db)
    templates = {(method, template) for method, template, _ in routes}
    # Guard: the routes this test must cover are really there (a renamed route cannot slip through untested).
    for expected in [
        ("GET", "/"),
        ("GET", "/intake"),
        ("GET", "/intake/{intake_id}"),
        ("GET", "/review"),
        ("GET", "/cases/{key}"),
        ("GET", "/cases/{key}/export.xlsx"),
        ("GET", "/cases/{key}/export.csv"),
        ("GET", "/intake/{intake_id}/documents/{document_id}"),
        ("GET", "/intake/{intake_id}/raw.eml"),
        ("GET", "/metrics"),
        ("POST", "/logout"),
        *[("POST", r) for r in ACTION_ROUTES],
        ("GET", "/cases/{key}/publication"),
        ("POST", "/cases/{key}/publication"),
        ("GET", "/retention"),
        ("POST", "/retention/run"),
        ("GET", "/privacy"),
        ("POST", "/privacy"),
        ("POST", "/privacy/export"),
        ("POST", "/privacy/erase"),
    ]:
        assert expected in templates, expected
    checked = 0
    for method, template, path in routes:
        if (method, template) in PUBLIC:
            continue
        response = anon.request(
            method,
            path,
            data={"csrf_token": "x", "case_number": "22/414", "reason": "x", "field": "email", "value": "x"}
            if method == "POST"
            else None,
        )
        if method == "GET":
            if template == "/metrics":
                assert response.status_code == 401, path
            else:
                assert response.status_code == 303, (path, response.status_code)
                assert response.headers["location"].startswith("/login?next="), path
        else:
            assert response.status_code == 401, (method, path, response.status_code)
        assert "Bergen" not in response.text and "%PDF" not in response.text
        checked += 1
    assert checked >= 16
    # Nothing changed: anonymous posts did not act.
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(m.AuditEvent).where(m.AuditEvent.action != "login")) == 0


def test_unknown_paths_do_not_reveal_anything_to_anonymous(anon):
    response = anon.get("/does-not-exist")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_login_page_and_successful_login_redirects_to_next(anon, seeded):
    page = anon.get("/login?next=/review")
    assert page.status_code == 200 and "Brukernavn" in page.text
    token = csrf_from(page.text)
    response = anon.post(
        "/login", data={"username": "arkivar", "password": PASSWORDS["arkivar"], "csrf_token": token, "next": "/review"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/review"
    assert anon.get("/review").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_login_never_redirects_off_site(anon, seeded, target):
    token = csrf_from(anon.get("/login").text)
    response = anon.post(
        "/login", data={"username": "leser", "password": PASSWORDS["leser"], "csrf_token": token, "next": target}
    )
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_failed_logins_are_logged_without_password_and_rate_limited(anon, seeded, db, caplog):
    caplog.set_level(logging.INFO, logger="postmottak.dashboard.auth")
    token = csrf_from(anon.get("/login").text)
    for attempt in range(5):
        response = anon.post(
            "/login", data={"username": "arkivar", "password": f"feil-passord-{attempt}", "csrf_token": token}
        )
        assert response.status_code == 401
        assert "Feil brukernavn eller passord" in response.text
    # The sixth try is refused even with the right password.
    response = anon.post("/login", data={"username": "arkivar", "password": PASSWORDS["arkivar"], "csrf_token": token})
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert "For mange mislykkede forsøk" in response.text
    assert anon.get("/").status_code == 303
    log_text = "\n".join(r.getMessage() for r in caplog.records)
    assert "failed login for user 'arkivar'" in log_text
    assert "feil-passord" not in log_text and PASSWORDS["arkivar"] not in log_text
    with db.session() as session:
        failed = session.scalar(
            select(func.count()).select_from(m.AuditEvent).where(m.AuditEvent.action == "login_failed")
        )
    assert failed == 5
    # Another user is not locked out by someone guessing at "arkivar".
    response = anon.post("/login", data={"username": "leser", "password": PASSWORDS["leser"], "csrf_token": token})
    assert response.status_code == 303


def test_unknown_user_is_refused_like_a_wrong_password(anon, seeded):
    token = csrf_from(anon.get("/login").text)
    response = anon.post("/login", data={"username": "ukjent", "password": "hva-som-helst", "csrf_token": token})
    assert response.status_code == 401 and "Feil brukernavn eller passord" in response.text


def test_login_itself_needs_the_csrf_token(anon, seeded):
    anon.get("/login")
    response = anon.post("/login", data={"username": "arkivar", "password": PASSWORDS["arkivar"]})
    assert response.status_code == 403
    assert anon.get("/").status_code == 303


def test_session_cookie_is_secure_httponly_and_samesite(settings, db, seeded):
    app = create_app(settings, db, WebSettings(secret_key="s" * 40, secure_cookies=True))
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        page = client.get("/login")
        cookie = page.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
        token = csrf_from(page.text)
        response = client.post(
            "/login", data={"username": "arkivar", "password": PASSWORDS["arkivar"], "csrf_token": token}
        )
        assert response.status_code == 303
        assert client.get("/").status_code == 200


def test_session_secret_is_generated_once_and_kept_private(settings, db, seeded):
    app_one = create_app(settings, db, WebSettings(secure_cookies=False))
    secret_file = settings.storage_path.parent / "dashboard-session-secret"
    assert secret_file.is_file() and (secret_file.stat().st_mode & 0o077) == 0
    with TestClient(app_one, follow_redirects=False) as client:
        login(client, "leser")
        cookies = dict(client.cookies)
    # A restarted app (same data folder) accepts the session cookie from before.
    app_two = create_app(settings, db, WebSettings(secure_cookies=False))
    with TestClient(app_two, follow_redirects=False, cookies=cookies) as client:
        assert client.get("/").status_code == 200


def test_logout_ends_the_session(archivist):
    response = archivist.post("/logout", data={"csrf_token": archivist.csrf})
    assert response.status_code == 303
    assert archivist.get("/").status_code == 303


def test_a_disabled_user_is_logged_out_at_the_next_request(reader, db):
    assert reader.get("/").status_code == 200
    with db.session() as session:
        set_disabled(session, "leser", True)
    response = reader.get("/")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def _state(db, intake_id):  # type: ignore[no-untyped-def]
    with db.session() as session:
        record = session.get(m.IntakeRecord, intake_id)
        events = session.scalar(
            select(func.count()).select_from(m.AuditEvent).where(m.AuditEvent.intake_id == intake_id)
        )
        corrections = session.scalar(select(func.count()).select_from(m.FieldCorrection))
        receipt = session.scalar(select(m.Receipt.status).where(m.Receipt.intake_id == intake_id))
        return record.status, events, corrections, receipt


@pytest.mark.parametrize("route", ACTION_ROUTES)
def test_a_reader_cannot_act(reader, seeded, db, route):
    target = seeded.ids["review"] if route.endswith(("register", "ignore")) else seeded.ids["bergen"]
    before = _state(db, target)
    response = reader.post(
        route.replace("{intake_id}", str(target)),
        data={
            "csrf_token": reader.csrf,
            "case_number": "22/414",
            "send_receipt": "1",
            "reason": "test",
            "field": "organisation_name",
            "value": "Endret navn",
        },
    )
    assert response.status_code == 403
    assert "Bare arkivarer" in response.text
    assert _state(db, target) == before


def test_a_reader_sees_no_action_forms(reader, seeded):
    page = reader.get(f"/intake/{seeded.ids['review']}")
    assert page.status_code == 200 and "Tromsø kommune" in page.text
    assert "/register" not in page.text and "/ignore" not in page.text and "Lagre korreksjon" not in page.text
    review = reader.get("/review")
    assert "Innspill til e-helsestrategien" in review.text and "Registrer på sak" not in review.text


@pytest.mark.parametrize("route", ACTION_ROUTES)
@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_csrf_is_enforced_on_every_action(archivist, seeded, db, route, token):
    target = seeded.ids["review"] if route.endswith(("register", "ignore")) else seeded.ids["warned"]
    before = _state(db, target)
    data = {
        "case_number": "22/414",
        "send_receipt": "1",
        "reason": "test",
        "field": "organisation_name",
        "value": "Endret navn",
    }
    if token is not None:
        data["csrf_token"] = token
    response = archivist.post(route.replace("{intake_id}", str(target)), data=data)
    assert response.status_code == 403
    assert "Skjemaet var utløpt eller ugyldig" in response.text
    assert _state(db, target) == before


def test_csrf_token_in_a_header_is_accepted(archivist, seeded, db):
    response = archivist.post(
        f"/intake/{seeded.ids['newsletter']}/ignore",
        data={"reason": "Reklame"},
        headers={"X-CSRF-Token": archivist.csrf},
    )
    assert response.status_code == 303
    assert _state(db, seeded.ids["newsletter"])[0] == "ignored"


def test_logout_needs_the_csrf_token(archivist):
    assert archivist.post("/logout").status_code == 403
    assert archivist.get("/").status_code == 200


def test_the_csrf_token_of_another_session_is_refused(app, archivist, seeded, db):
    with TestClient(app, follow_redirects=False) as other:
        other_token = login(other, "arkivar")
    assert other_token != archivist.csrf
    response = archivist.post(
        f"/intake/{seeded.ids['newsletter']}/ignore", data={"reason": "Reklame", "csrf_token": other_token}
    )
    assert response.status_code == 403


def test_healthz_is_public_and_says_only_ok_and_the_poll_time(anon, seeded):
    response = anon.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "last_poll_at"}
    assert body["status"] == "ok" and body["last_poll_at"]


def test_healthz_is_stale_when_the_worker_stopped(settings, db, store, web):
    from tests.dashboard.seed import seed_consultation

    seed_consultation(db, store, healthy_worker=False)
    with TestClient(create_app(settings, db, web)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "stale"


def test_healthz_without_any_poll_is_stale(settings, db, web):
    with TestClient(create_app(settings, db, web)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503 and response.json() == {"status": "stale", "last_poll_at": None}


def test_metrics_need_a_login_or_the_bearer_token(anon, reader, seeded):
    assert anon.get("/metrics").status_code == 401
    assert anon.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = anon.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    text = response.text
    assert 'postmottak_intake_records{status="registered"} 6.0' in text
    assert 'postmottak_intake_records{status="needs_review"} 2.0' in text
    assert 'postmottak_receipts{status="sent"} 1.0' in text
    assert 'postmottak_registered_responses{case="22/414",on_time="false"} 1.0' in text
    assert 'postmottak_poll_cycles_total{outcome="ok"} 1.0' in text
    assert "postmottak_last_cycle_duration_seconds" in text
    assert "postmottak_review_pending 2.0" in text
    assert reader.get("/metrics").status_code == 200
