"""`postmottak parse FILE [--json]` on the files a user would have: PDF, Word, and bad files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FORMS = REPO / "tests" / "fixtures" / "forms"


def parse(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "postmottak", "parse", str(path), *extra],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


@pytest.mark.parametrize("path", [FORMS / "form_long_multipage.pdf", FORMS / "docx" / "form_long_multipage.docx"])
def test_parse_json_matches_the_expected_fields(path: Path) -> None:
    result = parse(path, "--json")
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)
    expected = json.loads((FORMS / "form_long_multipage.expected.json").read_text(encoding="utf-8"))
    for key in (
        "organisation_type",
        "organisation_name",
        "contact_person",
        "email",
        "q1_choice",
        "q1_text",
        "goal_1",
        "goal_2",
        "goal_3",
        "goal_4",
        "goal_5",
        "q3_text",
        "q4_text",
        "form_status",
    ):
        assert parsed[key] == expected[key], key


def test_parse_table_output_is_readable() -> None:
    result = parse(FORMS / "form_norwegian_letters.pdf")
    assert result.returncode == 0, result.stderr
    assert "organisation_name" in result.stdout and "parsed" in result.stdout


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("encrypted.pdf", "unreadable"),
        ("zero_bytes.pdf", "unreadable"),
        ("not_a_pdf.pdf", "unreadable"),
        ("letter_not_a_form.pdf", "not_a_form"),
    ],
)
def test_bad_files_give_a_status_not_a_crash(name: str, status: str) -> None:
    result = parse(FORMS / "bad" / name, "--json")
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)
    assert parsed["form_status"] == status and parsed["warnings"]
