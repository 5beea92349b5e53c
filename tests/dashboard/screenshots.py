"""Screenshots of the main pages for the README: `python -m tests.dashboard.screenshots docs/screenshots`.

Builds the same small consultation the tests use, serves it with uvicorn on 127.0.0.1 and photographs it in
Debian's headless Chromium.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import date
from pathlib import Path

from postmottak.casefile import cases as case_store
from postmottak.casefile.db import Database
from postmottak.casefile.storage import DocumentStore
from postmottak.casefile.users import add_user
from postmottak.config.settings import CaseSettings, DatabaseSettings, Settings, StorageSettings
from postmottak.dashboard.app import create_app
from postmottak.dashboard.web_settings import WebSettings
from tests.dashboard.live import chromium, live_server
from tests.dashboard.seed import CASE, CASE_TITLE, seed_consultation

PASSWORD = "skjermbilde-passord"


def build(tmp: Path, healthy: bool):  # type: ignore[no-untyped-def]
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite:///{tmp / 'postmottak.db'}"),
        storage=StorageSettings(path=str(tmp / "documents")),
        cases=[CaseSettings(number=CASE, title=CASE_TITLE, deadline=date(2022, 10, 1))],
        base_dir=tmp,
    )
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as session:
        case_store.sync_cases(session, [(c.number, c.title, c.deadline, c.timezone, c.form) for c in settings.cases])
        add_user(session, "kari.arkivar", PASSWORD, "archivist")
    seeded = seed_consultation(db, DocumentStore(settings.storage_path), healthy_worker=healthy)
    return create_app(settings, db, WebSettings(secure_cookies=False, secret_key="screenshots-" * 4)), seeded


def shoot(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as healthy_dir, tempfile.TemporaryDirectory() as stale_dir:
        for folder, healthy in ((healthy_dir, True), (stale_dir, False)):
            app, seeded = build(Path(folder), healthy)
            with live_server(app) as base, chromium() as browser:
                page = browser.new_page(viewport={"width": 1280, "height": 860}, locale="nb-NO")
                page.goto(base + "/")
                if healthy:
                    page.screenshot(path=str(out / "login.png"))
                page.fill("#username", "kari.arkivar")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(base + "/")
                if not healthy:
                    page.screenshot(path=str(out / "overview-worker-stalled.png"))
                    continue
                pages = [
                    ("overview", "/"),
                    ("intake-list", "/intake"),
                    ("detail", f"/intake/{seeded.ids['bergen']}"),
                    ("detail-with-warnings", f"/intake/{seeded.ids['warned']}"),
                    ("review-queue", "/review"),
                    ("consultation-summary", "/cases/22-414"),
                ]
                for name, path in pages:
                    page.goto(base + path)
                    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
                page.goto(base + "/cases/22-414")
                page.emulate_media(media="print")
                page.screenshot(path=str(out / "consultation-summary-print.png"), full_page=True)


if __name__ == "__main__":
    shoot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
