"""End to end in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against uvicorn."""

from __future__ import annotations

import io
from datetime import datetime

import openpyxl

from tests.dashboard.conftest import PASSWORDS
from tests.dashboard.live import BROWSER_TEST_MARKS, chromium, live_server

pytestmark = BROWSER_TEST_MARKS


def test_staff_follow_the_intake_resolve_the_queue_and_download_the_spreadsheet(app, seeded, tmp_path):
    ids = seeded.ids
    with live_server(app) as base, chromium() as browser:
        context = browser.new_context(accept_downloads=True, locale="nb-NO", viewport={"width": 1280, "height": 900})
        page = context.new_page()

        # Anonymous: sent to the login page.
        page.goto(base + "/intake")
        assert page.url.startswith(base + "/login")
        page.fill("#username", "arkivar")
        page.fill("#password", "feil-passord")
        page.click("button[type=submit]")
        assert "Feil brukernavn eller passord" in page.inner_text("main")
        page.fill("#username", "arkivar")
        page.fill("#password", PASSWORDS["arkivar"])
        page.click("button[type=submit]")
        page.wait_for_url(base + "/intake")

        # A registered response in the list, and its detail page.
        row = page.locator("#intake-table tr", has_text="Bergen kommune")
        assert "Registrert" in row.inner_text() and "2022/414-1" in row.inner_text()
        row.locator("a", has_text="Høringssvar 22/414").click()
        page.wait_for_url(f"{base}/intake/{ids['bergen']}")
        assert "12.09.2022 10:15:00" in page.inner_text("main")

        # Open its PDF (a new tab): the real file, served to the logged-in browser.
        with page.expect_popup() as popup_info:
            page.click("text=Vis")
        pdf_tab = popup_info.value
        pdf_tab.wait_for_load_state()
        pdf = context.request.get(pdf_tab.url)
        assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.body().startswith(b"%PDF")
        pdf_tab.close()

        # Resolve the review queue: register Tromsø's mail, ignore the newsletter, correct and confirm the warned form.
        page.click("text=Til vurdering")
        page.wait_for_url(base + "/review")
        item = page.locator(f"#item-{ids['review']}")
        item.locator("select[name=case_number]").select_option("22/414")
        item.locator("button", has_text="Registrer på sak").click()
        page.wait_for_url(f"{base}/intake/{ids['review']}/register/confirm*")
        assert "Sendes til post@tromso.kommune.no" in page.inner_text("#confirm-receipt")
        page.click("button:has-text('Bekreft registrering')")
        page.wait_for_url(base + "/review")
        assert f"Post {ids['review']} er registrert på sak 22/414." in page.inner_text("main")
        newsletter = page.locator(f"#item-{ids['newsletter']}")
        newsletter.locator("input[name=reason]").fill("Reklame, ikke et høringssvar")
        newsletter.locator("button", has_text="Marker som ignorert").click()
        page.wait_for_url(f"{base}/intake/{ids['newsletter']}/ignore/confirm*")
        page.click("button:has-text('Bekreft: marker som ignorert')")
        page.wait_for_url(base + "/review")

        page.locator(f"#item-{ids['warned']}").locator("a", has_text="Åpne og korriger felt").click()
        page.wait_for_url(f"{base}/intake/{ids['warned']}#form")
        name_row = page.locator("tr", has=page.locator('[data-field="organisation_name"]'))
        name_row.locator("summary", has_text="Korriger").click()
        name_row.locator("input[name=value]").fill("Universitetet i Oslo")
        name_row.locator("button", has_text="Lagre korreksjon").click()
        page.wait_for_load_state()
        assert page.locator('[data-field="organisation_name"]').inner_text() == "Universitetet i Oslo"
        assert "Korrigert av arkivar" in page.inner_text("#form")
        page.locator("button", has_text="Skjemaet er kontrollert").click()
        page.wait_for_load_state()
        page.goto(base + "/review")
        assert page.locator("#queue-empty").is_visible()

        # The summary spreadsheet, downloaded by the browser.
        page.goto(base + "/cases/22-414")
        with page.expect_download() as download_info:
            page.click("#download-xlsx")
        download = download_info.value
        assert download.suggested_filename == "hoeringssvar-22-414.xlsx"
        target = tmp_path / download.suggested_filename
        download.save_as(target)
        context.close()

    sheet = openpyxl.load_workbook(io.BytesIO(target.read_bytes())).active
    rows = list(sheet.iter_rows(values_only=True))
    header, data = rows[0], [dict(zip(rows[0], r, strict=False)) for r in rows[1:]]
    assert "Navn på virksomheten" in header and "Mål 3: Helsedata til fornying og forbedring" in header
    assert len(data) == 7  # six responses plus Tromsø's, registered from the queue
    by_sender = {row["Avsender"]: row for row in data}
    assert by_sender["post@uio.no"]["Navn på virksomheten"] == "Universitetet i Oslo"
    assert by_sender["post@uio.no"]["Korrigerte felt"] == "Navn på virksomheten"
    assert by_sender["post@tromso.kommune.no"]["Journalnummer"] == "2022/414-7"
    assert by_sender["post@pasientforeningen.no"]["I tide"] == "nei"
    assert isinstance(by_sender["post@pasientforeningen.no"]["Mottatt"], datetime)  # a date cell, not text
    assert by_sender["post@uio.no"]["Skjemastatus"] == "delvis tolket"
    assert by_sender["postmottak@bergen.kommune.no"]["1) Stiller seg bak målene"] == "Ja"
    assert "nyhetsbrev@leverandor.no" not in by_sender


def test_archivist_sets_up_a_consultation_and_the_worker_registers_a_response_to_it(db, web, tmp_path):
    """Upload the blank form, see its fields, save; one `run --once` of the worker (started after the save, as a
    running worker's next cycle would) registers a filled response citing the new case number to it, on time, with
    every field of the form parsed."""
    import subprocess
    import sys
    from email.message import EmailMessage
    from pathlib import Path

    from sqlalchemy import select

    from postmottak.casefile import models as m
    from postmottak.casefile.queries import export_records
    from postmottak.config.settings import load_settings
    from postmottak.dashboard.app import create_app
    from tests.forms import make_matrix_form as mm

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = tmp_path / "setup.toml"
    config.write_text(
        f"""
[database]
url = "{db.url}"
[storage]
path = "{tmp_path / "documents"}"
[folder]
path = "{inbox}"
[intake]
parse_workers = 1
[[cases]]
number = "22/414"
title = "Høring om e-helsestrategi"
deadline = "2022-10-01"
""",
        encoding="utf-8",
    )
    settings = load_settings(config)
    blank = tmp_path / "hoeringsskjema-23-1234.docx"
    blank.write_bytes(mm.build_docx(None))

    with live_server(create_app(settings, db, web)) as base, chromium() as browser:
        page = browser.new_page(locale="nb-NO", viewport={"width": 1280, "height": 900})
        page.goto(base + "/login")
        page.fill("#username", "arkivar")
        page.fill("#password", PASSWORDS["arkivar"])
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
        page.goto(base + "/cases")
        page.click("#new-consultation")
        page.wait_for_url(base + "/cases/new")
        page.set_input_files("#setup-blank", str(blank))
        page.fill("#setup-number", "23/1234")
        page.fill("#setup-deadline", "2023-03-15")
        page.fill("#setup-deadline-time", "12:00")
        page.fill("#setup-keywords", "pasientjournalforskriften")
        page.click("button[name=step][value=learn]")
        page.wait_for_load_state()
        learned = page.inner_text("#learned-fields")
        for label in [*mm.CONTACT, mm.ROLES_QUESTION, mm.JA_NEI_QUESTION, mm.MATRIX_QUESTION, mm.LAST_QUESTION]:
            assert label in learned
        assert "Rader: " + "; ".join(mm.PROPOSALS) in learned
        with db.session() as session:
            assert session.scalar(select(m.Case).where(m.Case.number == "23/1234")) is None  # shown, not saved
        page.click("#setup-save")
        page.wait_for_url(base + "/cases/23-1234")
        assert "Høringen 23/1234 er opprettet" in page.inner_text("main")

        mail = EmailMessage()
        mail["From"] = "Helse Bergen <post@helse-bergen.no>"
        mail["To"] = "postmottak@ehelse.no"
        mail["Subject"] = "Høringssvar sak 23/1234"
        mail["Date"] = "Wed, 15 Mar 2023 11:45:00 +0100"  # 11:45 in Oslo: before the deadline at 12:00
        mail["Message-ID"] = "<svar-23-1234@helse-bergen.no>"
        mail.set_content("Vedlagt er høringssvaret vårt.")
        mail.add_attachment(
            mm.build_docx(mm.FILLED["bergen"]),
            maintype="application",
            subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
            filename="hoeringssvar.docx",
        )
        (inbox / "svar.eml").write_bytes(mail.as_bytes())
        worker = subprocess.run(
            [sys.executable, "-m", "postmottak", "--config", str(config), "run", "--once"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            timeout=300,
        )
        assert worker.returncode == 0, worker.stderr

        page.goto(base + "/")
        row = page.locator("#open-consultations tr", has_text="23/1234")
        cells = [c.strip() for c in row.locator("td").all_inner_texts()]
        assert cells[1] == "15.03.2023 kl. 12:00" and cells[2:6] == ["1", "1", "0", "0"]

    with db.session() as session:
        (record,) = export_records(session, case_number="23/1234")
    assert (record["status"], record["case_number"], record["on_time"]) == ("registered", "23/1234", True)
    assert [(f["label"], f["kind"], f["value"]) for f in record["form"]["fields"]] == mm.expected(mm.FILLED["bergen"])
