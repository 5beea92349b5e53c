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


# --- putting the layer together (no Tesseract: a Pillow PDF page stands in for Tesseract's) ------------------


def _ocr_page(pdf: bytes | None, error: str | None = None):  # type: ignore[no-untyped-def]
    import numpy as np

    from postmottak.parsers.forms.ocr import OcrPage, OcrWord

    pixels = np.full((1100, 850), 255, dtype=np.uint8)
    pixels[100:110, 100:400] = 0
    words = [
        OcrWord("Kari", 91.0, 100, 100, 160, 110, (1, 1, 1)),
        OcrWord("Fjellheim", 88.0, 170, 100, 300, 110, (1, 1, 1)),
    ]
    return OcrPage(words, pixels, 100.0, 0.0, pdf, error)


def _pillow_pdf(pages: int, size: tuple[int, int] = (850, 1100)) -> bytes:
    from PIL import Image

    images = [Image.new("L", size, 255) for _ in range(pages)]
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", resolution=100, save_all=True, append_images=images[1:])
    return buffer.getvalue()


def test_layer_replaces_only_the_scanned_page_and_stores_its_image_as_jpeg() -> None:
    import pikepdf

    from postmottak.parsers.forms.text_layer import build_text_layer

    original = _pillow_pdf(2, size=(600, 800))
    layer = build_text_layer([(1, _ocr_page(_pillow_pdf(1)))], original)
    assert layer.error is None and layer.pdf is not None and layer.ocr_pages == [1]
    assert layer.text == "Kari Fjellheim"
    with pikepdf.open(io.BytesIO(layer.pdf)) as pdf, pikepdf.open(io.BytesIO(original)) as source:
        assert len(pdf.pages) == 2
        assert pdf.pages[0].MediaBox == source.pages[0].MediaBox  # the page that was not scanned, as it was
        images = [image for image in pdf.pages[1].Resources.XObject.values() if image.Subtype == "/Image"]
        assert [str(image.Filter) for image in images] == ["/DCTDecode"]


def test_a_layer_that_cannot_be_made_is_recorded_not_raised() -> None:
    from postmottak.parsers.forms.documents import ReadDocument, form_from_document
    from postmottak.parsers.forms.profile import resolve_profile
    from postmottak.parsers.forms.text_layer import build_text_layer

    missing = build_text_layer([(0, _ocr_page(None, "Tesseract kunne ikke lage PDF"))])
    assert missing.pdf is None and missing.error == "Tesseract kunne ikke lage PDF" and missing.text
    broken = build_text_layer([(0, _ocr_page(b"%PDF-1.4 not really"))])
    assert broken.pdf is None and broken.error
    document = ReadDocument("image", "ok", [], text_layer=missing)
    form = form_from_document(document, b"", resolve_profile(None))
    assert "ocr.text_layer_failed" in form.warning_codes
    assert any(w.startswith("Søkbar PDF (tekstlag) kunne ikke lages") for w in form.warnings)


def test_a_failed_layer_is_recorded_with_its_reason_and_the_mail_registered(tmp_path: Path) -> None:
    from datetime import date, datetime, timezone

    from postmottak.casefile import cases as case_store
    from postmottak.casefile.records import TextLayerIn
    from postmottak.casefile.storage import DocumentStore
    from postmottak.dashboard.scans import scan_pages
    from tests.dashboard.seed import CASE, CASE_TITLE, Seeded, add_mail, form_data

    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.upgrade()
    with db.session() as session:
        case_store.sync_cases(session, [(CASE, CASE_TITLE, date(2022, 10, 1), "Europe/Oslo", None)])
    failed = TextLayerIn("failed", [1], "Kari Fjellheim", tool="Tesseract (nor+eng)", error="ingen PDF fra Tesseract")
    intake_id = add_mail(
        db,
        DocumentStore(tmp_path / "documents"),
        key="scan",
        seeded=Seeded(),
        sender="kari@example.no",
        sender_name="Kari Fjellheim",
        subject=f"Høringssvar {CASE}",
        body="Skannet skjema vedlagt.",
        when=datetime(2022, 9, 20, 9, 0, tzinfo=timezone.utc),
        status=m.REGISTERED,
        on_time=True,
        form=form_data(contact_person="Kari Fjellheim"),
        text_layer=failed,
    )
    try:
        with db.session() as session:
            record = review.load_record(session, intake_id)
            row = session.scalars(select(m.SearchableVersion)).one()
            assert record.status == m.REGISTERED and row.document_id == record.documents[0].id
            assert (row.status, row.error, row.storage_path, row.ocr_pages) == (
                "failed",
                "ingen PDF fra Tesseract",
                None,
                [1],
            )
            assert scan_pages(session, record, {}) == []  # no page images without a stored layer
    finally:
        db.dispose()
