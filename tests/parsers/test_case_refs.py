"""Case numbers in free text: exactly which spellings refer to case 22/414."""

from __future__ import annotations

import pytest

from postmottak.parsers.case_refs import find_case_references, normalise_case_number

CASE = ["22/414"]


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("22/414", (22, 414)),
        ("2022/414", (22, 414)),
        ("22/00414", (22, 414)),
        (" 22 / 414 ", (22, 414)),
        ("05/7", (5, 7)),
        ("1999/12", (99, 12)),
    ],
)
def test_normalise_case_number(number: str, expected: tuple[int, int]) -> None:
    assert normalise_case_number(number) == expected


@pytest.mark.parametrize(
    "number", ["", "22", "22/", "/414", "2/414", "022/414", "22/0", "22-414", "sak 22/414", "22/414-3", "ab/cd"]
)
def test_normalise_case_number_rejects(number: str) -> None:
    with pytest.raises(ValueError):
        normalise_case_number(number)


@pytest.mark.parametrize(
    "text",
    [
        "22/414",
        "sak 22/414",
        "Sak 22/414",
        "(22/414)",
        "[22/414]",
        "22/00414",
        "22/414-3",
        "22/00414-12",
        "Saksnummer 22/414",
        "Saksnummer: 22/414",
        "saksnr. 22/414",
        "saksnr.22/414",
        "sak22/414",
        "Deres ref. 22/414 - Høringssvar",
        "2022/414",
        "2022/00414-7",
        "Høring - sak 22/414.",
        "jf. 22/414, 21/13 og 20/7",
        "«22/414»",
        "sak\u00a022/414",
        "22/414\n",
        "https://www.regjeringen.example.no/sak/22/414",
        "https://example.no/dok/2022/414/",
        "22/414-",
        "22/414–3",  # en dash before the document number
        "22/414/ slutt",
        "Ref: 22/414-3/ABC",
    ],
)
def test_matches_case(text: str) -> None:
    assert find_case_references(text, CASE) == {"22/414"}


@pytest.mark.parametrize(
    "text",
    [
        "122/4140",
        "22/4140",
        "22/415",
        "22/41",
        "2211/4145",
        "022/414",
        "1922/414",
        "2122/414",
        "22 / 414",
        "22 /414",
        "22/ 414",
        "22-414",
        "22.414",
        "22/4/2022",
        "22/04/2022",
        "1/22/414",
        "22/414/7",
        "22/414/2022",
        "5/22/414",
        "tlf. 22 41 44 14",
        "+47 22414000",
        "22414",
        "23/414",
        "21/414",
        "A22/4140",
        "22/414\u0661",  # an Arabic-Indic digit: still a longer number
        "",
    ],
)
def test_does_not_match_case(text: str) -> None:
    assert find_case_references(text, CASE) == set()


def test_returns_configured_spellings() -> None:
    configured = ["2022/414", "21/13", "22/00415"]
    text = "Svar i sak 22/414 og 22/415, ikke 21/14."
    assert find_case_references(text, configured) == {"2022/414", "22/00415"}


def test_two_spellings_of_the_same_case_both_returned() -> None:
    assert find_case_references("sak 2022/00414-2", ["22/414", "2022/414"]) == {"22/414", "2022/414"}


def test_several_cases_in_one_text() -> None:
    text = "Gjelder 22/414 (e-helse) og 21/1033 (personvern), ikke 20/1."
    assert find_case_references(text, ["22/414", "21/1033", "19/5"]) == {"22/414", "21/1033"}


def test_invalid_configured_numbers_ignored() -> None:
    assert find_case_references("22/414", ["not-a-case", "", "22/414"]) == {"22/414"}


def test_no_configured_numbers() -> None:
    assert find_case_references("22/414", []) == set()


def test_generator_of_case_numbers_accepted() -> None:
    assert find_case_references("22/414", (n for n in ["22/414"])) == {"22/414"}


def test_long_text_with_many_numbers() -> None:
    text = " ".join(f"{y}/{n}" for y in range(10, 30) for n in range(400, 430)) + " 22/414"
    assert find_case_references(text, ["22/414", "99/1"]) == {"22/414"}


def test_huge_digit_runs_do_not_crash() -> None:
    text = "22/" + "0" * 100_000 + "414 " + "9" * 50_000 + "/" + "1" * 50_000
    assert find_case_references(text, CASE) == set()
