"""The isolated runner: limits hold, a bomb never costs the form beside it, nothing raises."""

from __future__ import annotations

import pytest

from postmottak.intake.form_worker import FormWorkerPool, analyse_documents_isolated, parse_form_isolated
from postmottak.parsers.forms import DocumentInput, analyse_documents
from tests.forms.corpus import BAD, FIXTURES


def _doc(path) -> DocumentInput:
    return DocumentInput(path.name, "application/pdf", path.read_bytes())


def test_isolated_matches_in_process() -> None:
    docs = [
        _doc(BAD / "letter_not_a_form.pdf"),
        _doc(FIXTURES / "form_long_multipage.pdf"),
        _doc(BAD / "encrypted.pdf"),
    ]
    assert analyse_documents_isolated(docs) == analyse_documents(docs)


@pytest.mark.slow
def test_content_bomb_times_out_and_the_form_still_parses() -> None:
    docs = [_doc(BAD / "bomb_content_stream.pdf"), _doc(FIXTURES / "form_org04_ja.pdf")]
    analysis = analyse_documents_isolated(docs, timeout_s=1.5, memory_mb=4096)
    assert analysis.document_statuses == ["timeout", "form"]
    assert "tok for lang tid" in analysis.document_warnings[0][0]
    assert analysis.form is not None and analysis.form.organisation_type == "RHF/Helseforetak"


@pytest.mark.slow
def test_content_bomb_hits_the_memory_limit() -> None:
    analysis = analyse_documents_isolated([_doc(BAD / "bomb_content_stream.pdf")], timeout_s=60, memory_mb=400)
    assert analysis.document_statuses == ["too_large"]
    assert analysis.form is None


def test_page_tree_bomb_is_bounded() -> None:
    analysis = analyse_documents_isolated([_doc(BAD / "bomb_page_tree.pdf")], timeout_s=10)
    assert analysis.document_statuses[0] in ("unreadable", "timeout", "too_large")


def test_parse_form_isolated() -> None:
    form = parse_form_isolated((FIXTURES / "form_vector_boxes.pdf").read_bytes(), "skjema.pdf")
    assert form.organisation_type == "Pasient- og brukerorganisasjon" and form.q1_choice == "ja"
    assert parse_form_isolated(b"", "tom.pdf").form_status == "unreadable"
    assert parse_form_isolated((BAD / "letter_not_a_form.pdf").read_bytes()).form_status == "not_a_form"
    slow = parse_form_isolated((BAD / "bomb_content_stream.pdf").read_bytes(), timeout_s=1, memory_mb=4096)
    assert slow.form_status == "unreadable" and "document.timeout" in slow.warning_codes


def test_pool_replaces_a_worker_that_timed_out() -> None:
    with FormWorkerPool(size=1, timeout_s=1.5, memory_mb=4096) as pool:
        bomb = pool.submit([_doc(BAD / "bomb_content_stream.pdf")])
        form = pool.submit([_doc(FIXTURES / "form_org02_nei.pdf"), _doc(BAD / "letter_not_a_form.pdf")])
        assert bomb.result(timeout=60).document_statuses == ["timeout"]
        analysis = form.result(timeout=60)
    assert analysis.form_index == 0 and analysis.form.q1_choice == "nei"
    assert analysis.document_statuses == ["form", "other"]


def test_pool_reads_every_fixture_form() -> None:
    pdfs = sorted(FIXTURES.glob("*.pdf"))
    with FormWorkerPool() as pool:
        results = [f.result(timeout=120) for f in [pool.submit([_doc(p)]) for p in pdfs]]
    assert all(r.form is not None and r.form.form_status in ("parsed", "partial") for r in results)
