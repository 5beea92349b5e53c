"""The review flow with the keyboard only (WCAG 2.1.1 Keyboard, 2.4.7 Focus Visible), in a real Chromium: log in,
open the review queue and a mail in it, correct a field, register the mail on the case and confirm - Tab, Shift+Tab,
Enter and Space, never a mouse click - with a visible focus indicator on every control used."""

from __future__ import annotations

from postmottak.casefile import models as m
from postmottak.casefile import review
from tests.dashboard.conftest import PASSWORDS
from tests.dashboard.live import BROWSER_TEST_MARKS, chromium, live_server
from tests.dashboard.seed import CASE

pytestmark = BROWSER_TEST_MARKS

# The focused element: what it is, and whether it shows a focus indicator (an outline, as :focus-visible draws it).
FOCUSED = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {
    text: (el.innerText || el.value || el.getAttribute('aria-label') || '').trim(),
    selector: el.id ? '#' + el.id : el.tagName.toLowerCase(),
    href: el.getAttribute('href') || '',
    name: el.getAttribute('name') || '',
    visible: el.matches(':focus-visible') && style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
  };
}"""


def _tab_to(page, wanted, *, backwards: bool = False, limit: int = 250) -> dict:  # type: ignore[no-untyped-def]
    """Press Tab (or Shift+Tab) until `wanted(focused)` holds; the element must show its focus."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        focused = page.evaluate(FOCUSED)
        if wanted(focused):
            assert focused["visible"], f"no visible focus on {focused}"
            return focused
    raise AssertionError(f"the keyboard never reached the wanted control on {page.url}")


def _press_and_wait(page, key: str) -> None:  # type: ignore[no-untyped-def]
    with page.expect_navigation():
        page.keyboard.press(key)


def test_the_review_flow_works_with_the_keyboard_only(app, db, seeded) -> None:  # type: ignore[no-untyped-def]
    intake_id = seeded.ids["review"]
    with live_server(app) as base, chromium() as browser:
        page = browser.new_page(locale="nb-NO", viewport={"width": 1280, "height": 900})
        page.goto(base + "/login")
        _tab_to(page, lambda f: f["selector"] == "#username")
        page.keyboard.type("arkivar")
        _tab_to(page, lambda f: f["selector"] == "#password")
        page.keyboard.type(PASSWORDS["arkivar"])
        _press_and_wait(page, "Enter")
        assert page.url == base + "/"

        _tab_to(page, lambda f: f["href"] == "/review")
        _press_and_wait(page, "Enter")
        assert page.url == base + "/review"

        _tab_to(page, lambda f: f["href"] == f"/intake/{intake_id}")
        _press_and_wait(page, "Enter")
        assert page.url == f"{base}/intake/{intake_id}"

        # Correct the contact person: open the panel with Enter, type, save with Space.
        row = page.locator("tr", has=page.locator('[data-field="contact_person"]'))
        _tab_to(
            page,
            lambda f: (
                f["selector"] == "summary"
                and page.evaluate("document.activeElement.closest('tr').querySelector('[data-field]').dataset.field")
                == "contact_person"
            ),
        )
        page.keyboard.press("Enter")
        assert row.locator("details").evaluate("d => d.open")
        _tab_to(page, lambda f: f["name"] == "value")
        page.keyboard.press("Control+A")
        page.keyboard.type("Siri Moe-Hansen")
        _tab_to(page, lambda f: f["text"] == "Lagre korreksjon")
        _press_and_wait(page, "Space")
        assert "Korreksjonen er lagret." in page.inner_text("main")
        assert row.locator(".answer").inner_text() == "Siri Moe-Hansen"

        # Register it on the case: the form is above the form card the page returned to, so Shift+Tab up to it.
        _tab_to(page, lambda f: f["text"] == "Registrer på sak", backwards=True)
        checkbox = page.locator(f'form[action="/intake/{intake_id}/register/confirm"] input[name=send_receipt]')
        assert checkbox.is_checked()
        _press_and_wait(page, "Enter")
        assert "/register/confirm" in page.url and "Bekreft registrering på sak" in page.inner_text("main")
        _tab_to(page, lambda f: f["text"] == "Bekreft registrering")
        _press_and_wait(page, "Enter")
        assert f"Post {intake_id} er registrert på sak {CASE}." in page.inner_text("main")
        assert page.inner_text("#record-status").strip() == "Registrert"

    with db.session() as session:
        record = review.load_record(session, intake_id)
        assert record.status == m.REGISTERED and record.case.number == CASE and record.journal_entry is not None
        assert record.receipt.status == "pending"
        corrections = review.corrections_for(session, intake_id)
        assert [(c.field, c.corrected_value) for c in corrections] == [("contact_person", "Siri Moe-Hansen")]
