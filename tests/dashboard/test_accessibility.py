"""WCAG 2.1 AA in a real Chromium: axe-core (bundled by axe-playwright-python) finds nothing on any page, in any
state (panels open, errors shown, empty lists), at 1280 px and at 320 px, where nothing scrolls sideways (1.4.10
Reflow); the first Tab reaches the skip link, and the active menu item carries aria-current."""

from __future__ import annotations

from pathlib import Path

from postmottak.casefile import models as m
from postmottak.casefile import review
from tests.dashboard.conftest import PASSWORDS
from tests.dashboard.live import BROWSER_TEST_MARKS, chromium, live_server
from tests.dashboard.seed import CASE, add_mail, add_scanned_response, oslo
from tests.forms import make_matrix_form

pytestmark = BROWSER_TEST_MARKS

WIDTHS = (1280, 320)
BAD_FORMS = Path(__file__).resolve().parents[1] / "fixtures" / "forms" / "bad"


def _violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"resultTypes": ["violations"]})
    found = []
    for violation in results.response["violations"]:
        targets = [", ".join(node["target"]) for node in violation["nodes"]][:3]
        found.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}")
    return found


def _no_sideways_scroll(page) -> bool:  # type: ignore[no-untyped-def]
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def _states(base: str, ids: dict[str, int]) -> list[tuple[str, str, str | None]]:
    """(name, address, what to do there before checking)."""
    return [
        ("overview", "/", None),
        ("intake list", "/intake", None),
        ("intake list, nothing found", "/intake?q=finnes-ikke-noe-sted", None),
        ("registered response, correction panels open", f"/intake/{ids['warned']}", "open-details"),
        ("response with a sent receipt", f"/intake/{ids['bergen']}", None),
        ("mail for review", f"/intake/{ids['review']}", None),
        ("scanned response: page images beside the OCR'd fields", f"/intake/{ids['scanned']}", None),
        ("ignored machine mail", f"/intake/{ids['ignored']}", None),
        ("review queue", "/review", None),
        ("error shown after a too long correction", f"/intake/{ids['warned']}", "too-long"),
        ("cases", "/cases", None),
        ("new consultation, empty", "/cases/new", None),
        ("new consultation, fields learned from the blank", "/cases/new", "learn-blank"),
        ("new consultation, not a form uploaded", "/cases/new", "not-a-form"),
        ("case summary", "/cases/22-414", None),
        ("audit log", "/audit", None),
        ("mailboxes, one read by a worker and one by none", "/mailboxes", None),
        ("audit log with a bad filter value", "/audit?since=igaar&action=register", None),
        ("confirm registration", f"/intake/{ids['review']}/register/confirm?case_number=22/414&send_receipt=1", None),
        ("confirm ignoring, reason missing", f"/intake/{ids['newsletter']}/ignore/confirm?reason=", None),
        ("confirm resending", f"/intake/{ids['bergen']}/resend-receipt/confirm", None),
        ("registration that can be undone", f"/intake/{ids['newsletter']}", None),
        ("confirm undoing a registration", f"/intake/{ids['newsletter']}/undo/confirm", None),
        ("registration undone, journal number cancelled", f"/intake/{ids['undone']}", None),
        ("undo refused, nothing to undo", f"/intake/{ids['undone']}/undo/confirm", None),
        ("page that does not exist", "/intake/999999", None),
        ("bad address", "/intake/abc", None),
        ("exemption from publication", f"/intake/{ids['bergen']}/exemption", None),
        ("publication overview", "/cases/22-414/publication", None),
        ("publication confirmation", "/cases/22-414/publication/confirm", None),
        ("publication of a case without responses", "/cases/23-100/publication", None),
        ("retention, no rules set", "/retention", "retention:none"),
        ("retention rules with a dry run", "/retention", "retention:0"),
        ("retention confirmation", "/retention/confirm", "retention:0"),
        ("retention, nothing due", "/retention", "retention:100000"),
        ("data subject requests", "/privacy", None),
        ("data subject found", "/privacy", "privacy:ingrid.berg@example.no"),
        ("data subject not found", "/privacy", "privacy:finnes.ikke@example.no"),
        ("data subject search too short", "/privacy", "privacy:ab"),
        ("erasure confirmation", "/privacy", "erase:noreply@example.com"),
    ]


# What shows that a state is the one named (the checks would pass on a wrong page too).
SHOWN = {
    "publication overview": "#publication-plan",
    "publication of a case without responses": "#publication-empty",
    "retention, no rules set": "#retention-unconfigured",
    "retention rules with a dry run": "#retention-due",
    "retention confirmation": "form[action='/retention/run']",
    "retention, nothing due": "#retention-nothing",
    "data subject found": "#privacy-hits",
    "data subject not found": "#privacy-none",
    "data subject search too short": ".flash.error",
    "erasure confirmation": "#privacy-erased",
}


def _retention_rules(app, days: str) -> None:  # type: ignore[no-untyped-def]
    """The live app's `[retention]` rules: none, or every kind after `days` days."""
    from postmottak.config.settings import RetentionSettings

    value = None if days == "none" else int(days)
    rules = RetentionSettings(ignored_days=value, duplicate_days=value, unrelated_days=value)
    app.state.settings = app.state.settings.model_copy(update={"retention": rules})


def _case_without_responses(db) -> None:  # type: ignore[no-untyped-def]
    from datetime import date

    from postmottak.casefile import cases as case_store

    with db.session() as session:
        case_store.sync_cases(session, [("23/100", "Høring uten svar", date(2023, 3, 1), "Europe/Oslo", None)])


def _registrations_to_undo(db, store, seeded) -> None:  # type: ignore[no-untyped-def]
    """One mail registered by staff a moment ago (undo offered) and one whose registration was undone."""
    undone = add_mail(
        db,
        store,
        key="undone",
        seeded=seeded,
        sender="post@alta.kommune.no",
        sender_name="Alta kommune",
        subject="Innspill til e-helsestrategien fra Alta",
        body="Vedlagt er innspillet vårt.",
        when=oslo(28, 9, 9, 0),
        status=m.NEEDS_REVIEW,
        reason="mentions 'e-helsestrategi' but no case number",
        receipt=None,
    )
    with db.session() as session:
        for intake_id in (seeded.ids["newsletter"], undone):
            review.register_to_case(session, intake_id, CASE, "arkivar", send_receipt=False)
    with db.session() as session:
        review.undo_last(session, undone, "arkivar")


def test_every_page_and_state_passes_axe_at_desktop_and_phone_width(app, db, store, seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _registrations_to_undo(db, store, seeded)
    add_scanned_response(db, store, seeded)
    problems: list[str] = []
    blank = tmp_path / "hoeringsskjema.docx"
    blank.write_bytes(make_matrix_form.build_docx(None))
    uploads = {"learn-blank": blank, "not-a-form": BAD_FORMS / "letter_not_a_form.pdf"}
    _case_without_responses(db)
    with live_server(app) as base, chromium() as browser:
        for width in WIDTHS:
            context = browser.new_context(locale="nb-NO", viewport={"width": width, "height": 800})
            page = context.new_page()
            page.goto(base + "/login")
            problems += [f"{width}px login: {v}" for v in _violations(page)]
            page.fill("#username", "arkivar")
            page.fill("#password", "feil")
            page.click("button[type=submit]")
            page.wait_for_load_state()
            problems += [f"{width}px login with error: {v}" for v in _violations(page)]
            page.fill("#username", "arkivar")
            page.fill("#password", PASSWORDS["arkivar"])
            page.click("button[type=submit]")
            page.wait_for_url(base + "/")
            for name, path, action in _states(base, seeded.ids):
                if action and action.startswith("retention:"):
                    _retention_rules(app, action.split(":", 1)[1])
                page.goto(base + path)
                if action and action.startswith(("privacy:", "erase:")):
                    page.fill("#query", action.split(":", 1)[1])
                    page.click("form[action='/privacy'] button[type=submit]")
                    page.wait_for_load_state()
                    if action.startswith("erase:"):
                        page.click("#privacy-erase")
                        page.wait_for_load_state()
                        assert "Bekreft: slett for godt" in page.inner_text("main")
                elif action == "open-details":
                    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
                elif action in uploads:
                    page.set_input_files("#setup-blank", str(uploads[action]))
                    page.click("button[name=step][value=learn]")
                    page.wait_for_load_state()
                    shown = "#learned-fields" if action == "learn-blank" else "#setup-error"
                    assert page.locator(shown).is_visible()
                elif action == "too-long":
                    row = page.locator("tr", has=page.locator('[data-field="contact_person"]'))
                    row.locator("summary").click()
                    row.locator("input[name=value]").evaluate("(el) => el.removeAttribute('maxlength')")
                    row.locator("input[name=value]").fill("x" * 20_001)
                    row.locator("button[type=submit]").click()
                    page.wait_for_load_state()
                    assert "for lang" in page.inner_text("main")
                if name in SHOWN:
                    assert page.locator(SHOWN[name]).count() == 1, name
                problems += [f"{width}px {name}: {v}" for v in _violations(page)]
                if not _no_sideways_scroll(page):
                    problems.append(f"{width}px {name}: the page scrolls sideways")
                if width == 320 and path == "/":
                    assert page.locator("button", has_text="Logg ut").is_visible()
            context.close()
    assert problems == [], "\n".join(problems)


def test_keyboard_reaches_the_skip_link_and_the_menu_marks_the_current_page(app, seeded) -> None:  # type: ignore[no-untyped-def]
    with live_server(app) as base, chromium() as browser:
        page = browser.new_page(locale="nb-NO", viewport={"width": 1280, "height": 800})
        page.goto(base + "/login")
        page.fill("#username", "arkivar")
        page.fill("#password", PASSWORDS["arkivar"])
        page.keyboard.press("Enter")
        page.wait_for_url(base + "/")
        page.goto(base + "/review")
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent.trim()")
        assert focused == "Gå til hovedinnholdet"
        page.keyboard.press("Enter")
        assert page.evaluate("location.hash") == "#main"
        current = page.locator("nav a[aria-current=page]")
        assert current.count() == 1 and current.inner_text().startswith("Til vurdering")
