"""casefile.review, casefile.users, casefile.summary and casefile.spreadsheet against a real SQLite case database."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import select

from postmottak.casefile import models as m
from postmottak.casefile import review, spreadsheet, summary
from postmottak.casefile.form_values import form_layout
from postmottak.casefile.users import UserError, add_user, authenticate, set_disabled
from tests.dashboard.seed import add_mail, form_data, oslo


def test_register_allocates_the_next_journal_numbers_and_audits(db, seeded):
    with db.session() as session:
        year = datetime.now(ZoneInfo("Europe/Oslo")).year  # journalaar: the year it is journalled
        last_sequence = session.scalar(select(m.Sequence.value).where(m.Sequence.name == f"journal:{year}"))
        record = review.register_to_case(session, seeded.ids["review"], "22/414", "arkivar")
        entry = record.journal_entry
        assert (entry.journal_year, entry.journal_sequence, entry.document_number) == (year, last_sequence + 1, 7)
        assert entry.correspondent_email == "post@tromso.kommune.no" and entry.on_time is True
        assert entry.correspondent_is_private_person is False
        assert record.status == "registered" and record.reason is None
        assert record.receipt.status == "pending"
        event = session.scalar(select(m.AuditEvent).where(m.AuditEvent.intake_id == record.id))
        assert event.actor == "arkivar" and event.action == "register"
        assert event.before["status"] == "needs_review" and event.before["case"] is None
        assert event.after["status"] == "registered" and event.after["case"] == "22/414"
        assert event.after["receipt"]["status"] == "pending"


def test_register_computes_lateness_in_the_case_timezone(db, store, seeded):
    # 00:30 on 2 October in Oslo is 22:30 UTC on 1 October: late.
    add_mail(
        db,
        store,
        key="midnight",
        seeded=seeded,
        sender="a@example.no",
        sender_name="A",
        subject="Innspill",
        body="x",
        when=oslo(2, 10, 0, 30),
        status="needs_review",
        reason="x",
        receipt=None,
    )
    add_mail(
        db,
        store,
        key="last-minute",
        seeded=seeded,
        sender="b@example.no",
        sender_name="B",
        subject="Innspill",
        body="y",
        when=oslo(1, 10, 23, 59),
        status="needs_review",
        reason="x",
        receipt=None,
    )
    with db.session() as session:
        assert review.register_to_case(session, seeded.ids["midnight"], "22/414", "arkivar").on_time is False
        assert review.register_to_case(session, seeded.ids["last-minute"], "22/414", "arkivar").on_time is True


def test_register_without_receipt_and_refusals(db, seeded):
    with db.session() as session:
        record = review.register_to_case(session, seeded.ids["review"], "22/414", "arkivar", send_receipt=False)
        assert record.receipt is None
    with db.session() as session, pytest.raises(review.ReviewError, match="kan ikke registreres"):
        review.register_to_case(session, seeded.ids["review"], "22/414", "arkivar")
    with db.session() as session, pytest.raises(review.ReviewError, match="finnes ikke"):
        review.register_to_case(session, seeded.ids["newsletter"], "99/999", "arkivar")
    with pytest.raises(LookupError):
        with db.session() as session:
            review.register_to_case(session, 99999, "22/414", "arkivar")


def test_two_staff_registering_the_same_mail_only_one_wins(db, seeded):
    # The second one works on a stale read: the conditional update refuses it.
    with db.session() as first:
        review.register_to_case(first, seeded.ids["review"], "22/414", "a")
    with db.session() as second:
        assert review._claim(second, seeded.ids["review"], review.REGISTRABLE, status="registered") is False
        entries = second.scalars(select(m.JournalEntry).where(m.JournalEntry.intake_id == seeded.ids["review"])).all()
        assert len(entries) == 1


def test_an_ignored_mail_can_still_be_registered_later(db, seeded):
    with db.session() as session:
        review.mark_ignored(session, seeded.ids["newsletter"], "Reklame", "arkivar")
    with db.session() as session:
        record = review.register_to_case(session, seeded.ids["newsletter"], "22/414", "arkivar")
        assert record.status == "registered"


def test_mark_ignored_needs_a_reason_and_audits(db, seeded):
    with db.session() as session, pytest.raises(review.ReviewError, match="begrunnelse"):
        review.mark_ignored(session, seeded.ids["newsletter"], " ", "arkivar")
    with db.session() as session:
        record = review.mark_ignored(session, seeded.ids["newsletter"], "Reklame", "arkivar")
        assert record.status == "ignored" and record.reason == "ignorert av arkivar: Reklame"
        event = session.scalar(select(m.AuditEvent).where(m.AuditEvent.intake_id == record.id))
        assert event.before["status"] == "needs_review" and event.after["status"] == "ignored"
        assert event.note == "Reklame"
    with db.session() as session, pytest.raises(review.ReviewError):
        review.mark_ignored(session, seeded.ids["bergen"], "nei", "arkivar")


def test_correct_field_keeps_the_parsed_value(db, seeded):
    intake_id = seeded.ids["warned"]
    with db.session() as session:
        review.correct_field(session, intake_id, "organisation_name", "Universitetet i Oslo", "arkivar")
    with db.session() as session:
        review.correct_field(session, intake_id, "organisation_name", "UiO", "annen")
    with db.session() as session:
        record = review.load_record(session, intake_id)
        assert record.form.data["organisation_name"] == "Universitetet i Olso"  # parsed value untouched
        corrections = review.corrections_for(session, intake_id)
        assert [(c.parsed_value, c.corrected_value, c.corrected_by) for c in corrections] == [
            ("Universitetet i Olso", "Universitetet i Oslo", "arkivar"),
            ("Universitetet i Olso", "UiO", "annen"),
        ]
        events = review.history(session, intake_id)
        assert [(e.before, e.after) for e in events] == [
            ({"organisation_name": "Universitetet i Olso"}, {"organisation_name": "Universitetet i Oslo"}),
            ({"organisation_name": "Universitetet i Oslo"}, {"organisation_name": "UiO"}),
        ]
    with db.session() as session:
        response = next(r for r in summary.responses(session, "22/414") if r.intake_id == intake_id)
        assert response.form["organisation_name"] == "UiO" and response.corrected_fields == {"organisation_name"}


def test_correct_field_validates(db, seeded):
    intake_id = seeded.ids["warned"]
    cases = [
        ("q1_choice", "kanskje", "Stiller seg bak målene"),
        ("organisation_type", "Forening", "Type organisasjon"),
        ("password", "x", "Ukjent felt"),
        ("email", "eva.lie@uio.no", "uendret"),
    ]
    for field, value, message in cases:
        with db.session() as session, pytest.raises(review.ReviewError, match=message):
            review.correct_field(session, intake_id, field, value, "arkivar")
    with db.session() as session, pytest.raises(review.ReviewError, match="ikke noe tolket skjema"):
        review.correct_field(session, seeded.ids["newsletter"], "email", "x@y.no", "arkivar")
    with db.session() as session:
        # Blank means "empty": the parsed text is cleared by the correction, and kept beside it.
        correction = review.correct_field(session, seeded.ids["bergen"], "q3_text", "   ", "arkivar")
        assert correction.corrected_value is None
        assert correction.parsed_value == "Kommunesektoren bør involveres tidlig i oppfølgingen."


def test_correcting_the_organisation_type_updates_the_private_person_flag(db, seeded):
    with db.session() as session:
        review.correct_field(session, seeded.ids["privat"], "organisation_type", "Kommune/KS", "arkivar")
    with db.session() as session:
        entry = session.scalar(select(m.JournalEntry).where(m.JournalEntry.intake_id == seeded.ids["privat"]))
        assert entry.correspondent_is_private_person is False


def test_resend_receipt(db, seeded):
    with db.session() as session:
        receipt = review.resend_receipt(session, seeded.ids["bergen"], "arkivar")
        assert receipt.status == "pending" and receipt.attempts == 0 and receipt.next_attempt_at is not None
        event = session.scalar(select(m.AuditEvent).where(m.AuditEvent.action == "resend_receipt"))
        assert event.before["status"] == "sent" and event.after["status"] == "pending"
    with db.session() as session, pytest.raises(review.ReviewError, match="venter allerede"):
        review.resend_receipt(session, seeded.ids["bergen"], "arkivar")
    with db.session() as session, pytest.raises(review.ReviewError, match="registrerte"):
        review.resend_receipt(session, seeded.ids["newsletter"], "arkivar")
    with db.session() as session:
        receipt = session.scalar(select(m.Receipt).where(m.Receipt.intake_id == seeded.ids["helsevest"]))
        receipt.status, receipt.reason = "bounced", "550 mailbox unavailable"
    with db.session() as session:
        receipt = review.resend_receipt(session, seeded.ids["helsevest"], "arkivar")
        assert receipt.status == "pending" and receipt.reason is None


def test_confirm_form_takes_it_out_of_the_queue(db, seeded):
    with db.session() as session:
        queue = review.review_queue(session)
        assert [r.id for r in queue.form_warnings] == [seeded.ids["warned"]]
        assert sorted(r.id for r in queue.needs_review) == sorted([seeded.ids["review"], seeded.ids["newsletter"]])
        review.confirm_form(session, seeded.ids["warned"], "arkivar", "Sjekket mot PDF")
    with db.session() as session:
        assert review.review_queue(session).form_warnings == []
        with pytest.raises(review.ReviewError, match="allerede"):
            review.confirm_form(session, seeded.ids["warned"], "arkivar")


def test_users_are_hashed_with_argon2_and_authenticated(db):
    with db.session() as session:
        user = add_user(session, "ny.bruker", "et-langt-passord", "reader")
        assert user.password_hash.startswith("$argon2id$") and "et-langt-passord" not in user.password_hash
        assert authenticate(session, "ny.bruker", "et-langt-passord").username == "ny.bruker"
        assert authenticate(session, "ny.bruker", "feil") is None
        assert authenticate(session, "finnes.ikke", "et-langt-passord") is None
        for name, password, role in [
            ("ny.bruker", "et-langt-passord", "reader"),
            ("x y", "et-langt-passord", "reader"),
            ("z", "kort", "reader"),
            ("z", "et-langt-passord", "admin"),
        ]:
            with pytest.raises(UserError):
                add_user(session, name, password, role)
        set_disabled(session, "ny.bruker", True)
        assert authenticate(session, "ny.bruker", "et-langt-passord") is None


def test_consultation_summary(db, seeded):
    with db.session() as session:
        result = summary.consultation_summary(session, "22/414")
    assert len(result.responses) == 6 and result.with_form == 6
    assert dict(result.by_respondent_type) == {
        "Kommune/KS": 1,
        "RHF/Helseforetak": 1,
        "Fag- og interesseorganisasjoner": 1,
        "Pasient- og brukerorganisasjon": 1,
        "Forskning- og utdanningsorganisasjon": 1,
        "Privatperson": 1,
    }
    # Ordered as in the form.
    assert [t for t, _ in result.by_respondent_type][:2] == ["Kommune/KS", "RHF/Helseforetak"]
    assert [c.spec.key for c in result.choices] == ["q1_choice"]  # the respondent type is the grouping
    q1 = dict(result.choices[0].by_respondent_type)
    assert q1["Fag- og interesseorganisasjoner"] == {"Nei": 1}
    assert q1["Forskning- og utdanningsorganisasjon"] == {"": 1}
    assert q1["Privatperson"] == {"Vet ikke": 1}
    goal_1 = next(t for t in result.texts if t.spec.key == "goal_1")
    assert [r.respondent for r, _ in goal_1.answers] == [
        "Bergen kommune",
        "Helse Vest RHF",
        "Ingrid Berg",
        "Pasientforeningen",
    ]
    assert [r.respondent for r in result.late] == ["Pasientforeningen"]
    days = {d.day: d for d in result.per_day}
    assert min(days) == date(2022, 9, 12) and max(days) == date(2022, 10, 3)
    assert days[date(2022, 10, 1)].total == 0 and days[date(2022, 10, 3)].late == 1
    assert days[date(2022, 9, 30)].on_time == 1  # 22:45 Oslo time, still 30 September locally


def test_summary_counts_responses_without_type_and_without_form(db, store, seeded):
    add_mail(
        db,
        store,
        key="noform",
        seeded=seeded,
        sender="ola@example.no",
        sender_name="Ola",
        subject="Svar 22/414",
        body="Jeg støtter strategien.",
        when=oslo(15, 9, 9),
        status="registered",
        on_time=True,
    )
    add_mail(
        db,
        store,
        key="notype",
        seeded=seeded,
        sender="org@example.no",
        sender_name="Org",
        subject="Svar 22/414",
        body="Se vedlegg",
        when=oslo(16, 9, 9),
        status="registered",
        on_time=True,
        form=form_data(organisation_name="Ukjent org", q1_choice="ja"),
    )
    with db.session() as session:
        result = summary.consultation_summary(session, "22/414")
    assert result.with_form == 7 and len(result.responses) == 8
    assert dict(result.by_respondent_type)["Ikke oppgitt"] == 2
    assert result.by_respondent_type[-1][0] == "Ikke oppgitt"
    assert dict(result.choices[0].by_respondent_type)["Ikke oppgitt"] == {"": 1, "Ja": 1}


def test_spreadsheet_rows_columns_and_cell_safety(db, store, seeded):
    add_mail(
        db,
        store,
        key="formula",
        seeded=seeded,
        sender="f@example.no",
        sender_name="F",
        subject="Svar",
        body="x",
        when=oslo(16, 9, 9),
        status="registered",
        on_time=True,
        form=form_data(organisation_name='=HYPERLINK("http://evil")', q4_text="- punkt en\n- punkt to"),
    )
    with db.session() as session:
        rows = spreadsheet.rows(session, "22/414")
    assert len(rows) == 7 and len(rows.headers) == len(rows[0])
    for spec in form_layout("hoeringssvar-22-414").specs:
        assert spec.column in rows.headers
    text = spreadsheet.to_csv(rows).decode("utf-8-sig")
    parsed = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    evil = next(r for r in parsed if r["Avsender"] == "f@example.no")
    assert evil["Navn på virksomheten"].startswith("'=")
    assert evil["4) Andre innspill"] == "- punkt en\n- punkt to"
    sheet = openpyxl.load_workbook(io.BytesIO(spreadsheet.to_xlsx(rows))).active
    header = [c.value for c in sheet[1]]
    column = header.index("Navn på virksomheten") + 1
    cells = [sheet.cell(row=i, column=column) for i in range(2, sheet.max_row + 1)]
    evil_cell = next(c for c in cells if str(c.value).startswith("=HYPERLINK"))
    assert evil_cell.data_type == "s"
    assert sheet.freeze_panes == "B2"
    bergen = [c.value for c in sheet[2]]
    assert bergen[header.index("Spm. 1") if "Spm. 1" in header else header.index("1) Stiller seg bak målene")] == "Ja"
