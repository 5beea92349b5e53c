"""WCAG 2.1 AA in a real Chromium: axe-core (bundled by axe-playwright-python) finds nothing on any page, in any
state (panels open, errors shown, empty lists), at 1280 px and at 320 px, where nothing scrolls sideways (1.4.10
Reflow); the first Tab reaches the skip link, and the active menu item carries aria-current."""

from __future__ import annotations

import os

import pytest

from tests.dashboard.conftest import PASSWORDS
from tests.dashboard.live import CHROMIUM, chromium, live_server
from tests.dashboard.seed import add_scanned_response

pytestmark = [
    pytest.mark.slow,
    # With CI set a missing browser is a failure (the test runs and fails), not a skip.
    pytest.mark.skipif(
        not CHROMIUM.exists() and os.environ.get("CI", "").lower() not in {"1", "true", "yes"},
        reason="Debian chromium is not installed (apt-get install chromium)",
    ),
]

WIDTHS = (1280, 320)


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
        ("case summary", "/cases/22-414", None),
        ("audit log", "/audit", None),
        ("audit log with a bad filter value", "/audit?since=igaar&action=register", None),
        ("confirm registration", f"/intake/{ids['review']}/register/confirm?case_number=22/414&send_receipt=1", None),
        ("confirm ignoring, reason missing", f"/intake/{ids['newsletter']}/ignore/confirm?reason=", None),
        ("confirm resending", f"/intake/{ids['bergen']}/resend-receipt/confirm", None),
        ("page that does not exist", "/intake/999999", None),
        ("bad address", "/intake/abc", None),
    ]


def test_every_page_and_state_passes_axe_at_desktop_and_phone_width(app, db, store, seeded) -> None:  # type: ignore[no-untyped-def]
    add_scanned_response(db, store, seeded)
    problems: list[str] = []
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
                page.goto(base + path)
                if action == "open-details":
                    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
                elif action == "too-long":
                    row = page.locator("tr", has=page.locator('[data-field="contact_person"]'))
                    row.locator("summary").click()
                    row.locator("input[name=value]").evaluate("(el) => el.removeAttribute('maxlength')")
                    row.locator("input[name=value]").fill("x" * 20_001)
                    row.locator("button[type=submit]").click()
                    page.wait_for_load_state()
                    assert "for lang" in page.inner_text("main")
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
