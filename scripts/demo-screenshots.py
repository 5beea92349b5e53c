"""Photograph the dashboard over the demo data for the README (used by scripts/screenshots).

Usage: demo-screenshots.py BASE_URL OUT_DIR. Logs in as the demo archivist, opens the main pages in Debian's
headless Chromium (/usr/bin/chromium) and writes PNGs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

base, out = sys.argv[1].rstrip("/"), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="nb-NO")
    page.goto(base + "/login")
    page.fill("#username", "arkivar")
    page.fill("#password", "demo-passord-1")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto(base + "/intake?status=registered")
    first = page.locator("#intake-table a[href^='/intake/']").first.get_attribute("href") or "/intake/1"
    shots = {
        "overview.png": "/",
        "review-queue.png": "/review",
        "detail.png": first,
        "consultation-summary.png": "/cases/22-414",
    }
    for name, path in shots.items():
        page.goto(base + path)
        page.screenshot(path=str(out / name), full_page=name != "consultation-summary.png")
        print(f"{out / name}: {path}")
    phone = browser.new_page(viewport={"width": 320, "height": 700}, locale="nb-NO")
    phone.goto(base + "/login")
    phone.fill("#username", "arkivar")
    phone.fill("#password", "demo-passord-1")
    phone.click("button[type=submit]")
    phone.wait_for_load_state()
    phone.goto(base + "/review")
    phone.screenshot(path=str(out / "review-queue-320px.png"))
    print(f"{out / 'review-queue-320px.png'}: /review at 320 px")
    assert re.match(r"^/intake/\d+$", first)
    browser.close()
