"""Two consultations with different forms in one Dovecot mailbox, end to end through the real CLI.

22/414 uses its packaged profile; 23/1234 uses a profile that `forms learn` made from its blank .docx (contact
fields in a table, a multiple-choice group, Ja/Nei with an explanation, a table of checkboxes), with its own
deadline, timezone (UTC, so its deadline ends at another instant than in Oslo) and keywords. One worker cycle
(`run --once`), then each case on its own: routing, on-time judgement by its own deadline, the parsed fields against
what the form generators filled in, its summary page, its XLSX, and its Noark 5 extract against the official schemas.
The responses are the committed PDFs of the generators (no LibreOffice at run time or at closing).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from fastapi.testclient import TestClient
from lxml import etree
from lxml import html as lxml_html

from postmottak.bootstrap import open_database
from postmottak.casefile.spreadsheet import HEAD_COLUMNS
from postmottak.casefile.users import add_user
from postmottak.config.settings import load_settings
from postmottak.dashboard.app import create_app
from postmottak.dashboard.rendering import case_key
from postmottak.dashboard.web_settings import WebSettings
from tests import mailfactory as mf
from tests.archive.conftest import run_cli
from tests.dashboard.conftest import PASSWORDS, login
from tests.dbutil import backend_params, database_url
from tests.forms import make_forms
from tests.forms import make_matrix_form as mm
from tests.servers.dovecot import DovecotServer

OSLO = ZoneInfo("Europe/Oslo")
E_HEALTH, JOURNAL = "22/414", "23/1234"
JOURNAL_TITLE = "Høring - Forslag til endringer i pasientjournalforskriften"
TITLES = {E_HEALTH: mf.CASE_TITLE, JOURNAL: JOURNAL_TITLE}
Q1_SHORT = {"ja": "Ja", "nei": "Nei", "vet_ikke": "Vet ikke"}  # the 22/414 profile's short option names
EXPLANATION = f"{mm.JA_NEI_QUESTION} (utdyping)"  # the spreadsheet's header of the text under the Ja/Nei question
TAIL_COLUMNS = ["Skjemastatus", "Advarsler", "Korrigerte felt"]
NS = {"n5": "http://www.arkivverket.no/standarder/noark5/arkivstruktur"}
SCHEMAS = [
    ("arkivstruktur.xml", "arkivstruktur.xsd"),
    ("endringslogg.xml", "endringslogg.xsd"),
    ("loependeJournal.xml", "loependeJournal.xsd"),
    ("offentligJournal.xml", "offentligJournal.xsd"),
    ("arkivuttrekk.xml", "addml.xsd"),
]


@dataclass(frozen=True)
class Sent:
    """One mail put in the mailbox and what the worker must make of it."""

    subject: str
    received: datetime  # the server's receive time (INTERNALDATE)
    status: str
    case: str | None = None
    on_time: bool | None = None
    spec: make_forms.FormSpec | None = None  # a filled 22/414 form
    answers: mm.Answers | None = None  # a filled 23/1234 form


def _corpus_spec(name: str) -> make_forms.FormSpec:
    return next(spec for spec in make_forms.corpus() if spec.name == name)


# name of the filled form -> subject, receive time, on time by the case's own deadline and timezone
E_HEALTH_FORMS = {
    "form_org01_ja": (f"Høringssvar - sak {E_HEALTH}", datetime(2022, 10, 1, 23, 40, tzinfo=OSLO), True),
    # 22:20 UTC on the deadline day, but 00:20 the day after in Oslo; on time by 23/1234's later deadline.
    "form_org02_nei": (f"Sak {E_HEALTH} - høringssvar", datetime(2022, 10, 2, 0, 20, tzinfo=OSLO), False),
}
JOURNAL_FORMS = {
    # 00:30 the day after in Oslo, still the deadline day in UTC (the case's timezone); late by 22/414's deadline.
    # Neither subject nor body names the case: only the attached form does.
    "bergen": ("Høringssvar fra Helse Bergen HF", datetime(2023, 3, 15, 23, 30, tzinfo=timezone.utc), True),
    "forening": (f"Høringssvar sak {JOURNAL}", datetime(2023, 3, 16, 0, 20, tzinfo=timezone.utc), False),
}


def _fill_mailbox(server: DovecotServer) -> list[Sent]:
    sent: list[Sent] = []
    for name, (subject, received, on_time) in E_HEALTH_FORMS.items():
        spec = _corpus_spec(name)
        pdf = (make_forms.FIXTURES / f"{name}.pdf").read_bytes()
        raw = mf.response_mail(
            org=spec.organisation_name or "",
            sender_name=spec.contact_person or "",
            sender_addr=spec.email,
            subject=subject,
            attachments=[(f"Høringssvar {spec.organisation_name}.pdf", "application/pdf", pdf)],
        )
        server.append(raw, received)
        sent.append(Sent(subject, received, "registered", E_HEALTH, on_time, spec=spec))
    for name, (subject, received, on_time) in JOURNAL_FORMS.items():
        answers = mm.FILLED[name]
        org, person, address = answers.contact
        raw = mf.response_mail(
            org=org or "",
            sender_name=person or "Ukjent",
            sender_addr=address,
            subject=subject,
            body=f"Hei,\n\nVedlagt er vårt høringssvar.\n\nMed vennlig hilsen\n{org}\n",
            attachments=[(f"Høringssvar {name}.pdf", "application/pdf", (mm.FIXTURES / f"{name}.pdf").read_bytes())],
        )
        server.append(raw, received)
        sent.append(Sent(subject, received, "registered", JOURNAL, on_time, answers=answers))
    others = [  # subject, body, sender, receive time, status (as the triage rules say)
        (
            f"Høringssvar i sakene {E_HEALTH} og {JOURNAL}",
            "Svaret gjelder begge.",
            "kari.nordbo@example.no",
            (2022, 9, 20),
            "needs_review",
        ),
        ("Innspill til pasientjournalforskriften", "Se under.", "lars.ornes@example.no", (2023, 3, 1), "needs_review"),
        (
            "Faktura 2023-0117 fra Kontorrekvisita AS",
            "Vedlagt faktura.",
            "faktura@example.no",
            (2023, 1, 17),
            "ignored",
        ),
    ]
    for subject, body, sender, day, status in others:
        received = datetime(*day, 10, 0, tzinfo=OSLO)
        server.append(mf.plain_mail(subject, body + "\n", sender.split("@")[0], sender), received)
        sent.append(Sent(subject, received, status))
    return sent


@pytest.fixture(params=backend_params())
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


def _write_config(tmp_path: Path, url: str, server: DovecotServer) -> Path:
    config = tmp_path / "postmottak.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n[storage]\npath = "{tmp_path / "documents"}"\n'
        f'[imap]\nhost = "{server.host}"\nport = {server.port}\nsecurity = "none"\n'
        f'username = "{server.username}"\npassword = "{server.password}"\n'
        f'[[cases]]\nnumber = "{E_HEALTH}"\ntitle = "{mf.CASE_TITLE}"\ndeadline = "2022-10-01"\n'
        'timezone = "Europe/Oslo"\nkeywords = ["e-helsestrategi"]\nform = "hoeringssvar-22-414"\n'
        f'[[cases]]\nnumber = "{JOURNAL}"\ntitle = "{JOURNAL_TITLE}"\ndeadline = "2023-03-15"\n'
        'timezone = "UTC"\nkeywords = ["pasientjournalforskriften"]\nform = "skjema/svar-23-1234.toml"\n',
        encoding="utf-8",
    )
    return config


@pytest.mark.slow
def test_two_consultations_in_one_mailbox_are_routed_judged_summarised_and_archived_each_by_its_own_form(
    dovecot_server: DovecotServer, database: str, tmp_path: Path, official_schemas: Path
) -> None:
    blank = tmp_path / "blank-23-1234.docx"
    blank.write_bytes(mm.build_docx(None))
    (tmp_path / "skjema").mkdir()
    config = _write_config(tmp_path, database, dovecot_server)
    learned = run_cli(
        config, "forms", "learn", str(blank), "--case", JOURNAL, "-o", str(tmp_path / "skjema" / "svar-23-1234.toml")
    )
    assert learned.exit_code == 0, learned.output

    sent = _fill_mailbox(dovecot_server)
    ran = run_cli(config, "run", "--once")
    assert ran.exit_code == 0, ran.output

    exported = run_cli(config, "export", "--output", str(tmp_path / "export.json"))
    assert exported.exit_code == 0, exported.output
    records = {r["subject"]: r for r in json.loads((tmp_path / "export.json").read_text(encoding="utf-8"))}
    assert sorted(records) == sorted(s.subject for s in sent)
    for mail in sent:
        record = records[mail.subject]
        assert (record["status"], record["case_number"], record["on_time"]) == (mail.status, mail.case, mail.on_time)
        if mail.spec is not None:
            assert {f["key"]: f["value"] for f in record["form"]["fields"]} == _e_health_fields(mail.spec)
            expected = mail.spec.expected()
            assert {key: record["form"][key] for key in FLAT_KEYS} == {key: expected[key] for key in FLAT_KEYS}
        if mail.answers is not None:
            fields = [(f["label"], f["kind"], f["value"]) for f in record["form"]["fields"]]
            assert fields == mm.expected(mail.answers), mail.subject
    assert "several cases" in records[f"Høringssvar i sakene {E_HEALTH} og {JOURNAL}"]["reason"]

    e_health = sorted((s for s in sent if s.case == E_HEALTH), key=lambda s: s.received)
    journal = sorted((s for s in sent if s.case == JOURNAL), key=lambda s: s.received)
    settings = load_settings(config)
    db = open_database(settings)
    try:
        with db.session() as session:
            add_user(session, "arkivar", PASSWORDS["arkivar"], "archivist")
        web = WebSettings(secure_cookies=False, secret_key="test-secret-key-for-sessions")
        with TestClient(create_app(settings, db, web), follow_redirects=False) as client:
            login(client, "arkivar")
            _check_e_health_summary(client.get(f"/cases/{case_key(E_HEALTH)}"), e_health)
            _check_journal_summary(client.get(f"/cases/{case_key(JOURNAL)}"), journal)
            _check_e_health_xlsx(client.get(f"/cases/{case_key(E_HEALTH)}/export.xlsx"), e_health)
            _check_journal_xlsx(client.get(f"/cases/{case_key(JOURNAL)}/export.xlsx"), journal)
    finally:
        db.dispose()

    for case, responses in ((E_HEALTH, e_health), (JOURNAL, journal)):
        assert run_cli(config, "case", "close", case, "--user", "arkivar.anne").exit_code == 0
        output = tmp_path / f"uttrekk-{case_key(case)}"
        extracted = run_cli(config, "archive", "export", "--case", case, "--output", str(output))
        assert extracted.exit_code == 0, extracted.output
        validated = run_cli(config, "archive", "validate", str(output))
        assert validated.exit_code == 0, validated.output
        for xml_name, xsd_name in SCHEMAS:
            schema = etree.XMLSchema(etree.parse(str(official_schemas / xsd_name)))
            assert schema.validate(etree.parse(str(output / xml_name))), (case, xml_name, schema.error_log)
        tree = etree.parse(str(output / "arkivstruktur.xml"))
        assert [folder.findtext("n5:tittel", namespaces=NS) for folder in tree.findall(".//n5:mappe", NS)] == [
            TITLES[case]
        ]
        posts = tree.findall(".//n5:registrering", NS)
        received = sorted(datetime.fromisoformat(post.findtext("n5:mottattDato", namespaces=NS)) for post in posts)
        assert received == [s.received for s in responses], case


# ------------------------------------------------------------------------------------------- expectations

FLAT_KEYS = ("organisation_type", "organisation_name", "q1_choice", "goal_2", "q4_text")  # 22/414's export keys


def _e_health_fields(spec: make_forms.FormSpec) -> dict[str, Any]:
    """`form.fields` of a 22/414 response by key, from what the generator filled in (choices as printed)."""
    flat = spec.expected()
    texts = ["organisation_name", "contact_person", "email", "q1_text", *[f"goal_{n}" for n in range(1, 6)]]
    return {
        "organisation_type": [t for t in make_forms.ORG_TYPES if t in spec.org_types],
        **{key: flat[key] for key in texts},
        "q1_choice": [make_forms.Q1_CHOICES[c] for c in spec.q1_choices],
        "q3_text": flat["q3_text"],
        "q4_text": flat["q4_text"],
    }


def _page(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return lxml_html.fromstring(response.text)


def _text(element: Any) -> str:
    return " ".join(element.text_content().split())


def _cards(page: Any, css_class: str) -> dict[str, list[list[str]]]:
    """Heading -> table rows of each card of the class."""
    cards = page.xpath(f"//*[contains(concat(' ', @class, ' '), ' {css_class} ')]")
    return {
        _text(card.xpath(".//h2")[0]): [[_text(c) for c in row.xpath("./th|./td")] for row in card.xpath(".//tr")]
        for card in cards
    }


def _text_questions(page: Any) -> list[str]:
    return [_text(h2) for h2 in page.xpath("//section[contains(@class, 'text-answers')]/h2")]


def _stats(page: Any) -> list[str]:
    return [_text(stat) for stat in page.xpath("//div[@class='stats']/div")]


def _expected_stats(responses: list[Sent]) -> list[str]:
    on_time = sum(1 for s in responses if s.on_time)
    total = len(responses)  # every response carries its form
    return [f"{total}høringssvar", f"{on_time}i tide", f"{total - on_time}for sent", f"{total}med utfylt skjema"]


def _choice_table(options: list[str], ticked: list[list[str]]) -> list[list[str]]:
    """A choice card's rows: each option with how many ticked it, then how many ticked none."""
    tally = Counter(option for chosen in ticked for option in chosen)
    rows = [[option, str(tally[option])] for option in options]
    return [["Svar", "Antall"], *rows, ["Ikke besvart", str(sum(1 for chosen in ticked if not chosen))]]


def _check_e_health_summary(response: Any, responses: list[Sent]) -> None:
    page = _page(response)
    specs = [s.spec for s in responses if s.spec is not None]
    assert _stats(page) == _expected_stats(responses)
    assert _cards(page, "choice-summary") == {
        "1) Stiller seg bak målene": _choice_table(
            list(Q1_SHORT.values()), [[Q1_SHORT[c] for c in s.q1_choices] for s in specs]
        )
    }
    assert _cards(page, "matrix-summary") == {}
    assert _text_questions(page) == [
        "1) Utdyping",
        *make_forms.GOALS,
        "3) Oppfølging av strategien",
        "4) Andre innspill",
    ]
    shown = _text(page)
    assert all(
        other not in shown for other in (mm.ROLES_QUESTION, mm.JA_NEI_QUESTION, mm.MATRIX_QUESTION, *mm.PROPOSALS)
    )


def _check_journal_summary(response: Any, responses: list[Sent]) -> None:
    page = _page(response)
    answers = [s.answers for s in responses if s.answers is not None]
    assert _stats(page) == _expected_stats(responses)
    assert _cards(page, "choice-summary") == {
        mm.ROLES_QUESTION: _choice_table(mm.ROLES, [a.roles for a in answers]),
        mm.JA_NEI_QUESTION: _choice_table(mm.JA_NEI, [[a.ja_nei] if a.ja_nei else [] for a in answers]),
    }
    matrix = [["Forslag", *mm.COLUMNS, "Ikke besvart"]]
    for proposal in mm.PROPOSALS:
        ticked = [a.matrix.get(proposal, []) for a in answers]
        tally = Counter(column for columns in ticked for column in columns)
        matrix.append([proposal, *[str(tally[c]) for c in mm.COLUMNS], str(sum(1 for t in ticked if not t))])
    assert _cards(page, "matrix-summary") == {mm.MATRIX_QUESTION: matrix}
    assert _text_questions(page) == [mm.JA_NEI_QUESTION, mm.LAST_QUESTION]
    shown = _text(page)
    assert all(
        other not in shown for other in ("Stiller seg bak", "Mål 1:", "Type organisasjon", "Navn på virksomheten")
    )


def _sheet(response: Any) -> tuple[list[str], list[dict[str, Any]]]:
    assert response.status_code == 200, response.text
    header, *rows = openpyxl.load_workbook(io.BytesIO(response.content)).worksheets[0].iter_rows(values_only=True)
    return list(header), [dict(zip(header, row, strict=True)) for row in rows]


def _check_e_health_xlsx(response: Any, responses: list[Sent]) -> None:
    header, rows = _sheet(response)
    assert header == [
        *[name for name, _ in HEAD_COLUMNS],
        "Type organisasjon/virksomhet",
        "Alle avkryssede: Type organisasjon/virksomhet",
        "Navn på virksomheten",
        "Kontaktperson",
        "E-postadresse",
        "1) Stiller seg bak målene",
        "1) Utdyping",
        *make_forms.GOALS,
        "3) Oppfølging av strategien",
        "4) Andre innspill",
        *TAIL_COLUMNS,
    ]
    assert len(rows) == len(responses)
    for cells, sent in zip(rows, responses, strict=True):
        spec = sent.spec
        assert spec is not None
        assert (cells["Sak"], cells["I tide"]) == (E_HEALTH, "ja" if sent.on_time else "nei")
        assert cells["Type organisasjon/virksomhet"] == "; ".join(spec.org_types)
        assert (cells["Navn på virksomheten"], cells["Kontaktperson"]) == (spec.organisation_name, spec.contact_person)
        assert cells["1) Stiller seg bak målene"] == "; ".join(Q1_SHORT[c] for c in spec.q1_choices)
        assert [cells[goal] for goal in make_forms.GOALS] == [spec.expected()[f"goal_{n}"] for n in range(1, 6)]


def _check_journal_xlsx(response: Any, responses: list[Sent]) -> None:
    header, rows = _sheet(response)
    assert header == [
        *[name for name, _ in HEAD_COLUMNS],
        *mm.CONTACT,
        mm.ROLES_QUESTION,
        mm.JA_NEI_QUESTION,
        EXPLANATION,
        *mm.PROPOSALS,
        mm.LAST_QUESTION,
        *TAIL_COLUMNS,
    ]
    assert len(rows) == len(responses)
    for cells, sent in zip(rows, responses, strict=True):
        answers = sent.answers
        assert answers is not None
        assert (cells["Sak"], cells["I tide"]) == (JOURNAL, "ja" if sent.on_time else "nei")
        assert [cells[label] for label in mm.CONTACT] == answers.contact
        assert cells[mm.ROLES_QUESTION] == "; ".join(answers.roles)
        assert (cells[mm.JA_NEI_QUESTION], cells[EXPLANATION]) == (answers.ja_nei, answers.explanation)
        assert [cells[p] for p in mm.PROPOSALS] == [
            ", ".join(answers.matrix[p]) if p in answers.matrix else None for p in mm.PROPOSALS
        ]
        assert cells[mm.LAST_QUESTION] == answers.remarks


def test_a_spreadsheet_header_two_forms_share_is_filled_by_each_responses_own_field(tmp_path: Path) -> None:
    """Two forms print "Kontaktperson" under different keys: the all-cases sheet has the column once, and every
    response's cell comes from its own form's field."""
    from postmottak.casefile.form_values import form_layout
    from postmottak.casefile.spreadsheet import columns_for
    from postmottak.casefile.summary import Response

    other = tmp_path / "annet-skjema.toml"
    other.write_text(
        'name = "annet-skjema"\ntitle = "Høringssvarskjema"\nmin_labels_for_form = 1\n'
        '[[sections]]\nkind = "inline"\nlabel = "Kontaktperson"\nfield = "kontakt"\n',
        encoding="utf-8",
    )
    layouts = [form_layout("hoeringssvar-22-414"), form_layout(str(other))]

    def response(layout: Any, form: dict[str, Any]) -> Response:
        received = datetime(2023, 3, 1, tzinfo=OSLO)
        return Response(1, None, received, True, None, None, "", form, set(), [], "parsed", "", layout)

    columns, _ = columns_for(layouts)
    contact = next(value for name, value in columns if name == "Kontaktperson")
    assert [name for name, _ in columns].count("Kontaktperson") == 1
    assert contact(response(layouts[0], {"contact_person": "Åse Ødegård", "kontakt": "feil"})) == "Åse Ødegård"
    assert contact(response(layouts[1], {"contact_person": "feil", "kontakt": "Lars Ørnes"})) == "Lars Ørnes"
