"""Case numbers (saksnummer) in free text.

A case number is ``YY/SEQ`` or ``YYYY/SEQ`` (Noark: saksår/sekvensnummer), optionally followed by a document
number ``-N`` (journalpost in the case: ``22/414-3``). What counts as a reference to case 22/414:

* matched: ``22/414``, ``sak 22/414``, ``(22/414)``, ``Saksnummer 22/414``, ``saksnr.22/414``, ``22/00414``
  (leading zeros in the sequence number), ``22/414-3``, ``22/00414-12``, ``2022/414``, ``2022/414-3``,
  inside URLs (``https://x.no/sak/22/414``) and after letters (``sak22/414``).
* not matched: ``122/4140``, ``22/4140``, ``22/415``, ``2211/4145``, ``022/414`` (a three-digit year is no
  year), ``1922/414`` (a four-digit year must be the same year: 22 means 2022), ``1/22/414`` and
  ``22/414/7`` (part of a longer slash-separated number, e.g. a date), ``22 / 414`` (spaces around the
  slash: too easily arithmetic or a page count; such mails go to manual handling), phone numbers.

Boundaries: no digit (any script) and no "digit/" directly before the year; no digit and no "/digit" directly
after the sequence number (or after the document suffix).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_CONFIGURED = re.compile(r"\s*([0-9]{2}|[0-9]{4})\s*/\s*([0-9]{1,12})\s*")
_REFERENCE = re.compile(
    # Numbers themselves are ASCII digits; the boundaries reject any Unicode digit (\d) as a neighbour.
    r"(?<!\d)(?<!\d/)"  # not glued to a preceding number or "n/"
    r"([0-9]{4}|[0-9]{2})/([0-9]{1,12})"
    r"(?:-[0-9]{1,6})?"  # document number within the case
    r"(?!\d)(?!/\d)"
)


def _four_digit_year(two_digit: int) -> int:
    """Two-digit saksår -> calendar year (00-68 -> 2000s, 69-99 -> 1900s, as strptime's %y)."""
    return 2000 + two_digit if two_digit < 69 else 1900 + two_digit


def normalise_case_number(number: str) -> tuple[int, int]:
    """``"22/414"`` -> ``(22, 414)``; ``"2022/00414"`` -> ``(22, 414)``. Years as two digits (year % 100).
    Raises ValueError for anything else (one- or three-digit years, missing sequence number)."""
    match = _CONFIGURED.fullmatch(number)
    if match is None:
        raise ValueError(f"not a case number (YY/N or YYYY/N): {number!r}")
    year, sequence = int(match.group(1)), int(match.group(2))
    if sequence == 0:
        raise ValueError(f"case sequence number must be positive: {number!r}")
    return year % 100, sequence


def _full_key(number: str) -> tuple[int, int]:
    """(four-digit year, sequence) for a configured case number."""
    match = _CONFIGURED.fullmatch(number)
    if match is None:
        raise ValueError(f"not a case number (YY/N or YYYY/N): {number!r}")
    year_text, sequence = match.group(1), int(match.group(2))
    year = int(year_text)
    return (year if len(year_text) == 4 else _four_digit_year(year)), sequence


def find_case_references(text: str, case_numbers: Iterable[str]) -> set[str]:
    """Which of the configured case numbers (e.g. "22/414") the text refers to. Returned values are the
    configured spellings. Configured values that are not case numbers are ignored."""
    wanted: dict[tuple[int, int], list[str]] = {}
    for number in case_numbers:
        try:
            wanted.setdefault(_full_key(number), []).append(number)
        except ValueError:
            continue
    if not wanted or not text:
        return set()
    found: set[str] = set()
    for match in _REFERENCE.finditer(text):
        year_text, sequence = match.group(1), int(match.group(2))
        year = int(year_text) if len(year_text) == 4 else _four_digit_year(int(year_text))
        spellings = wanted.get((year, sequence))
        if spellings:
            found.update(spellings)
            if len(found) == sum(len(s) for s in wanted.values()):
                break
    return found
