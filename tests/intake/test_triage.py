from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from postmottak.intake.triage import CaseRule, decide, is_on_time

OSLO = ZoneInfo("Europe/Oslo")
CASE = CaseRule(
    "22/414",
    "Høring - Nasjonal e-helsestrategi for helse- og omsorgssektoren",
    date(2022, 10, 1),
    "Europe/Oslo",
    ("e-helsestrategi",),
)
OTHER = CaseRule("23/77", "Høring om noe annet", date(2023, 3, 1), "Europe/Oslo")


def verdict(
    subject: str = "",
    body: str = "",
    texts=(),
    machine=None,
    has_form=False,
    when=None,
    cases=(CASE, OTHER),
    reply=False,
):
    return decide(
        subject=subject,
        body=body,
        attachment_texts=list(texts),
        attachment_names=[],
        machine_reason=machine,
        reply_to_our_receipt=reply,
        has_form=has_form,
        received_at=when or datetime(2022, 9, 20, 10, 2, tzinfo=OSLO),
        cases=list(cases),
    )


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2022, 10, 1, 23, 30, tzinfo=OSLO), True),
        (datetime(2022, 10, 1, 23, 59, 59, tzinfo=OSLO), True),
        (datetime(2022, 10, 2, 0, 0, 0, tzinfo=OSLO), False),
        (datetime(2022, 10, 2, 0, 15, tzinfo=OSLO), False),  # still 1 October in UTC (22:15Z)
        (datetime(2022, 9, 30, 12, 0, tzinfo=OSLO), True),
    ],
)
def test_deadline_is_judged_in_the_case_timezone(local: datetime, expected: bool) -> None:
    as_utc = local.astimezone(timezone.utc)
    assert is_on_time(as_utc, date(2022, 10, 1), "Europe/Oslo") is expected


def test_late_in_oslo_though_first_of_october_in_utc() -> None:
    received = datetime(2022, 10, 1, 22, 15, tzinfo=timezone.utc)
    assert received.date() == date(2022, 10, 1)
    assert verdict(subject="Høringssvar sak 22/414", when=received).on_time is False


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError):
        is_on_time(datetime(2022, 10, 1, 12, 0), date(2022, 10, 1), "Europe/Oslo")


def test_case_number_in_subject_registers() -> None:
    result = verdict(subject="Høringssvar - sak 22/414")
    assert (result.status, result.case_number, result.on_time) == ("registered", "22/414", True)


def test_case_number_only_in_attachment_text_registers() -> None:
    result = verdict(subject="Innspill", texts=["Merk skjemaet med «Saksnummer 22/414»"])
    assert result.status == "registered" and result.case_number == "22/414"


def test_machine_mail_is_never_registered_even_with_the_number() -> None:
    result = verdict(subject="Automatisk svar: Høringssvar sak 22/414", machine="auto-submitted: auto-replied")
    assert result.status == "ignored" and "auto-submitted" in (result.reason or "")
    assert result.case_number is None and result.on_time is None


def test_mentions_consultation_without_number_needs_review() -> None:
    result = verdict(subject="Innspill til e-helsestrategi")
    assert result.status == "needs_review" and "e-helsestrategi" in (result.reason or "")


def test_form_without_number_needs_review() -> None:
    assert verdict(subject="Svar", has_form=True).status == "needs_review"


def test_two_cases_need_review() -> None:
    result = verdict(subject="Svar på 22/414 og 23/77")
    assert result.status == "needs_review" and "22/414" in (result.reason or "") and "23/77" in (result.reason or "")


def test_unrelated_mail_is_ignored() -> None:
    result = verdict(subject="Faktura 2022-118", body="Vedlagt faktura for september.")
    assert (result.status, result.reason) == ("ignored", "no reference to a configured case")


def test_reply_to_our_receipt_goes_to_review() -> None:
    assert verdict(subject="Re: Kvittering for mottatt høringssvar - sak 22/414", reply=True).status == "needs_review"


def test_closed_case_goes_to_review() -> None:
    closed = CaseRule(CASE.number, CASE.title, CASE.deadline, CASE.timezone, (), closed=True)
    result = verdict(subject="sak 22/414", cases=[closed])
    assert result.status == "needs_review" and "closed" in (result.reason or "")


@pytest.mark.parametrize("trap", ["122/4140", "22/4140", "22/415", "2211/4145"])
def test_case_number_traps(trap: str) -> None:
    assert verdict(subject=f"Vedrørende {trap}").status == "ignored"


@pytest.mark.parametrize("weak", ["sender is a no-reply address", "x-auto-response-suppress", "no sender address"])
def test_weak_machine_signal_with_a_case_number_goes_to_review(weak: str) -> None:
    """An archive system sending a municipality's response from ikke-svar@... must not be lost."""
    result = verdict(subject="Høringssvar sak 22/414", machine=weak)
    assert result.status == "needs_review" and weak in (result.reason or "")
    assert verdict(subject="Nyhetsbrev", machine=weak).status == "ignored"
