"""A scan read by OCR is stored twice: the original bytes as received (what is archived) and beside them a
searchable PDF made from the same Tesseract run, whose text a PDF reader (and the intake search) finds."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pdfplumber
import pytest
from sqlalchemy import select

from postmottak.casefile import models as m
from postmottak.casefile import review
from postmottak.casefile.blobstore import DatabaseStore
from postmottak.casefile.db import Database
from tests import mailfactory as mf
from tests.forms.test_ocr_scans import expected, first_page_scan, needs_tesseract

REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, folder: Path) -> Path:
    """The worker's settings with documents kept in the case database (the filesystem store is the default)."""
    config = tmp_path / "postmottak.toml"
    config.write_text(
        f"""
[database]
url = "sqlite:///{tmp_path / "db.sqlite"}"
[storage]
path = "{tmp_path / "documents"}"
backend = "database"
[intake]
parse_workers = 1
parse_timeout_seconds = 240
[folder]
path = "{folder}"
[[cases]]
number = "22/414"
title = "{mf.CASE_TITLE}"
deadline = "2022-10-01"
keywords = ["e-helsestrategi"]
""",
        encoding="utf-8",
    )
    return config


@pytest.mark.slow
@needs_tesseract
def test_worker_stores_a_searchable_pdf_beside_the_unchanged_original(tmp_path: Path) -> None:
    scan = first_page_scan("form_org01_ja", "grey_150")
    folder = tmp_path / "innboks"
    folder.mkdir()
    (folder / "1.eml").write_bytes(
        mf.response_mail(org="Bærum kommune", attachments=[("skanning.pdf", "application/pdf", scan)])
    )
    config = _config(tmp_path, folder)
    run = subprocess.run(
        [sys.executable, "-m", "postmottak", "--config", str(config), "run", "--once"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store = DatabaseStore(db)
    try:
        with db.session() as session:
            record = session.scalars(select(m.IntakeRecord)).one()
            assert record.status == "registered"
            document = next(d for d in record.documents if d.is_form)
            version = session.scalars(select(m.SearchableVersion)).one()
            form = session.scalars(select(m.FormResultRow)).one()
            found = review.search_intake(session, review.IntakeFilter(search="strategisk styring og oppfølging"))
        assert version.document_id == document.id and version.status == "made" and version.ocr_pages == [1]
        # The original: the attachment's bytes exactly, in the store under their own hash.
        original = hashlib.sha256(scan).hexdigest()
        assert document.sha256 == version.source_sha256 == original
        assert hashlib.sha256(store.read(document.storage_path)).hexdigest() == original
        # The searchable version: another file, in the database store, with a text layer a PDF reader finds.
        searchable = store.read(version.storage_path)
        assert hashlib.sha256(searchable).hexdigest() == version.sha256 != original
        assert not (tmp_path / "documents" / version.storage_path).exists()
        with pdfplumber.open(io.BytesIO(searchable)) as pdf:
            assert len(pdf.pages) == 1
            text = pdf.pages[0].extract_text()
        contact = expected("form_org01_ja")["contact_person"]
        assert contact in text and contact in version.text
        assert form.form_status in ("parsed", "partial") and "ocr.text_layer_failed" not in form.data["warning_codes"]
        # Printed text of the form (no answer, not in the mail) is found through the OCR'd text.
        assert [row.id for row in found.records] == [record.id]
    finally:
        db.dispose()
