"""Norwegian words for the codes and English reasons stored in the case database.

The database, the JSON export and the logs keep the codes ("needs_review", "machine mail: ..."); everything staff
read (web pages, CLI output, spreadsheets) goes through this one table. Pure: no SQL, no I/O.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from postmottak.parsers.forms.profile import FormProfile

OSLO = ZoneInfo("Europe/Oslo")
DATE_TIME_FORMAT = "%d.%m.%Y %H:%M"

STATUS_LABELS = {
    "registered": "Registrert",
    "needs_review": "Til vurdering",
    "ignored": "Ignorert",
    "duplicate": "Duplikat",
    "failed": "Feilet",
}
RECEIPT_LABELS = {
    "pending": "Venter",
    "sent": "Sendt",
    "failed": "Feilet",
    "suppressed": "Ikke sendt",
    "bounced": "Returnert",
}
FORM_STATUS_LABELS = {
    "parsed": "tolket",
    "partial": "delvis tolket",
    "not_a_form": "ikke et skjema",
    "unreadable": "uleselig",
    "failed": "tolking feilet",
    "none": "ikke tolket",
}
ACTION_LABELS = {
    "register": "Registrert på sak",
    "ignore": "Markert som ignorert",
    "correct_field": "Felt korrigert",
    "resend_receipt": "Kvittering sendes på nytt",
    "form_checked": "Skjema kontrollert",
    "undo": "Beslutning angret",
    "export": "Eksport lastet ned",
    "download": "Dokument lastet ned",
    "login": "Innlogging",
    "login_failed": "Mislykket innlogging",
    "logout": "Utlogging",
    "consultation_created": "Høring opprettet",
    "exempt_from_publication": "Unntatt offentlighet",
    "exemption_lifted": "Unntak opphevet",
    "publication_written": "Publiseringspakke laget",
    "retention_run": "Oppbevaringsregler kjørt",
    "retention_delete": "Innhold slettet (oppbevaringsregel)",
    "privacy_find": "Søk etter personopplysninger",
    "privacy_export": "Innsyn i personopplysninger eksportert",
    "privacy_erase": "Personopplysninger slettet",
}
# The kinds of a form profile's sections, as staff see them when a form is learned from its blank.
FORM_KIND_LABELS = {
    "heading": "overskrift",
    "inline": "tekstfelt",
    "text": "fritekst",
    "checkboxes": "avkrysning",
    "matrix": "tabell",
}
ROLE_LABELS = {"archivist": "arkivar", "reader": "leser"}
TIMELINESS_LABELS = {True: "i tide", False: "for sent"}
# Keys of the audit trail's before/after records.
CHANGE_KEYS = {
    "status": "status",
    "reason": "begrunnelse",
    "case": "sak",
    "on_time": "i tide",
    "journal_number": "journalnummer",
    "receipt": "kvittering",
    "to": "til",
    "sent_at": "sendt",
    "attempts": "forsøk",
    "subject": "emne",
    "warnings": "advarsler",
    "checked": "kontrollert",
    "format": "format",
    "rows": "rader",
    "document": "dokument",
    "undone": "angret",
    "journal_status": "journalstatus",
    "receipt_outcome": "kvittering",
    "title": "tittel",
    "deadline": "frist",
    "timezone": "tidssone",
    "keywords": "stikkord",
    "form": "skjema",
    "sha256": "SHA-256",
}
# What undoing a registration did with the mail's receipt.
UNDO_RECEIPT_LABELS = {
    "none": "ingen",
    "cancelled": "stoppet før den ble sendt",
    "cancelled_after_attempt": "stoppet, men et forsøk var allerede gjort, så den kan ha kommet fram",
    "sent": "var allerede sendt og kan ikke trekkes tilbake",
}

# The intake's reasons are English (they are also in logs and exports); staff read them in Norwegian.
# First match wins; a reason no pattern knows is shown as it is.
REASON_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^registration undone$"), "registreringen på sak ble angret"),
    (re.compile(r"^a consultation form without a case number$"), "et høringsskjema uten saksnummer"),
    (re.compile(r"^mentions '(.+)' but no case number$"), r"nevner «\1», men har ikke saksnummer"),
    (re.compile(r"^reply to one of our receipts$"), "svar på en av våre kvitteringer"),
    (re.compile(r"^refers to several cases: (.+)$"), r"viser til flere saker: \1"),
    (re.compile(r"^case (\S+) is closed$"), r"saken \1 er avsluttet"),
    (re.compile(r"^no reference to a configured case$"), "viser ikke til noen av sakene"),
    (re.compile(r"^same (?:content|Message-ID|mail) as intake #(\d+)$"), r"samme e-post som post \1"),
    (re.compile(r"^duplicate of intake #(\d+)(?::.*)?$", re.S), r"duplikat av post \1"),
    (re.compile(r"^processing failed: (.+)$", re.S), r"behandlingen feilet: \1"),
    (re.compile(r"^not registered \((.+)\)$"), r"ikke registrert (\1)"),
    (re.compile(r"^no sender address$"), "ingen avsenderadresse"),
    (re.compile(r"^sender is our own address$"), "avsender er vår egen adresse"),
    (re.compile(r"^one of our own receipts came back$"), "en av våre egne kvitteringer kom tilbake"),
    (re.compile(r"^automatic address \((.+)\)$"), r"automatisk adresse (\1) – ingen person leser den"),
    (re.compile(r"^automatic address (.+)$"), r"automatisk adresse (\1) – ingen person leser den"),
    (re.compile(r"^mailing list \((.+)\)$"), r"e-postliste (\1)"),
    (re.compile(r"^null sender \(Return-Path: <>\)$"), "tom avsender (Return-Path: <>), typisk en returmelding"),
    (re.compile(r"^delivery or disposition report \((.+)\)$"), r"leverings- eller lesebekreftelse (\1)"),
    (
        re.compile(r"^the sender asked for no automatic replies \((.+)\)$"),
        r"avsenderen har bedt om ingen automatiske svar (\1)",
    ),
    (
        re.compile(
            r"^rate limit: (\d+) receipts already sent to this address in the last (\S+) hours \(limit (\d+)\)$"
        ),
        r"grense for kvitteringer: \1 kvitteringer er allerede sendt til denne adressen de siste \2 timene "
        r"(grense \3)",
    ),
    (re.compile(r"^bounced: (.+)$", re.S), r"returnert: \1"),
    (re.compile(r"^refused by the SMTP server at (.+?): (.+)$", re.S), r"avvist av e-posttjeneren ved \1: \2"),
    (
        re.compile(r"^the mail is not registered to a case; no receipt is sent$"),
        "e-posten er ikke registrert på en sak; ingen kvittering sendes",
    ),
    (re.compile(r"^cannot reach SMTP server (.+)$", re.S), r"når ikke e-posttjeneren \1"),
    # parsers.machine's reasons
    (re.compile(r"^MAILER-DAEMON address$"), "MAILER-DAEMON-adresse (returmeldinger)"),
    (re.compile(r"^postmaster address$"), "postmaster-adresse"),
    (re.compile(r"^no-reply address$"), "no-reply-adresse"),
    (re.compile(r"^list request address \(-request\)$"), "adresse for e-postliste (-request)"),
    (re.compile(r"^list owner address \(owner-\)$"), "adresse for eier av e-postliste (owner-)"),
    (re.compile(r"^bounce address$"), "adresse for returmeldinger"),
    (re.compile(r"^disposition notification \(multipart/report\)$"), "lesebekreftelse (multipart/report)"),
    (
        re.compile(r"^delivery status notification \(multipart/report\)$"),
        "melding om levering eller retur (multipart/report)",
    ),
    (re.compile(r"^null sender$"), "tom avsender (typisk en returmelding)"),
    (re.compile(r"^auto-submitted: (.+)$"), r"automatisk sendt (Auto-Submitted: \1)"),
    (re.compile(r"^Auto-Submitted: (.+)$"), r"automatisk sendt (Auto-Submitted: \1)"),
    (re.compile(r"^precedence: (.+)$", re.I), r"masseutsendelse (Precedence: \1)"),
    (re.compile(r"^list mail \((.+)\)$"), r"e-post fra en e-postliste (\1)"),
    (
        re.compile(r"^auto-reply \(x-auto-response-suppress and an auto-reply subject\)$"),
        "automatisk svar (X-Auto-Response-Suppress og emne som et automatisk svar)",
    ),
    (re.compile(r"^x-auto-response-suppress$"), "automatisk svar (X-Auto-Response-Suppress)"),
    (re.compile(r"^sender is MAILER-DAEMON$"), "avsender er MAILER-DAEMON (returmelding)"),
    (re.compile(r"^sender is postmaster$"), "avsender er postmaster"),
    (re.compile(r"^sender is a no-reply address$"), "avsender er en no-reply-adresse"),
    (re.compile(r"^auto-reply subject$"), "emnet er et automatisk svar"),
    (re.compile(r"^auto-reply \((.+)\)$"), r"automatisk svar (\1)"),
]
_MACHINE = re.compile(r"^machine mail: (.+)$", re.S)
_MAYBE_MACHINE = re.compile(r"^refers to (.+) but may be automatic \((.+)\)$", re.S)


def reason_text(reason: str | None) -> str:
    """A stored reason in Norwegian ("machine mail: automatic address (mailer-daemon)" -> "automatisk e-post: ...")."""
    if not reason:
        return ""
    machine = _MACHINE.match(reason)
    if machine:
        return "automatisk e-post: " + reason_text(machine.group(1))
    maybe = _MAYBE_MACHINE.match(reason)
    if maybe:
        return f"viser til {maybe.group(1)}, men kan være automatisk ({reason_text(maybe.group(2))})"
    for pattern, replacement in REASON_PATTERNS:
        if pattern.match(reason):
            return pattern.sub(replacement, reason, count=1)
    return reason


def status_word(status: str | None) -> str:
    return STATUS_LABELS.get(status or "", status or "–").lower()


def status_label(status: str | None) -> str:
    return STATUS_LABELS.get(status or "", status or "–")


def receipt_label(status: str | None) -> str:
    return RECEIPT_LABELS.get(status or "", status or "–")


def form_status_label(status: str | None) -> str:
    return FORM_STATUS_LABELS.get(status or "", status or "–")


def action_label(action: str | None) -> str:
    return ACTION_LABELS.get(action or "", action or "–")


def local_time(stamp: datetime | None, fmt: str = DATE_TIME_FORMAT) -> str:
    """A stored UTC time in Europe/Oslo, dd.mm.yyyy HH:MM."""
    if stamp is None:
        return "–"
    return stamp.astimezone(OSLO).strftime(fmt)


def local_date(day: date | None) -> str:
    return day.strftime("%d.%m.%Y") if day else "–"


def _value_text(key: str, value: Any) -> str:
    if value is None or value == "":
        return "–"
    if value is True:
        return "ja"
    if value is False:
        return "nei"
    if key == "status":
        return status_word(str(value))
    if key == "reason":
        return reason_text(str(value))
    if key == "receipt_outcome":
        return UNDO_RECEIPT_LABELS.get(str(value), str(value))
    if key == "sent_at" and isinstance(value, str):
        try:
            return local_time(datetime.fromisoformat(value))
        except ValueError:
            return value
    if isinstance(value, list):
        return "; ".join(str(item) for item in value) or "–"
    return str(value)


def changes(value: Any, prefix: str = "") -> str:
    """An audit before/after record as one Norwegian line: "status: til vurdering, sak: 22/414"."""
    if value is None:
        return "–"
    if isinstance(value, dict):
        parts = []
        receipt_context = prefix.startswith("kvittering")
        for key, item in value.items():
            label = CHANGE_KEYS.get(key, key)
            if isinstance(item, dict):
                parts.append(changes(item, f"{prefix}{label} "))
            elif receipt_context and key == "status":
                parts.append(f"{prefix}{label}: {receipt_label(str(item)).lower() if item else '–'}")
            else:
                parts.append(f"{prefix}{label}: {_value_text(key, item)}")
        return ", ".join(parts) or "–"
    return str(value)


def learned_field_rows(profile: FormProfile) -> list[tuple[str, str, str]]:
    """(kind, label, options) of each section of a learned form in form order, as staff see them: the table
    `forms learn` prints and the fields the dashboard's "Ny høring" page shows."""
    rows = []
    for section in profile.sections:
        kind = FORM_KIND_LABELS[section.kind]
        if section.kind == "checkboxes":
            kind += " (flere valg)" if section.multiple else " (ett valg)"
        options = ", ".join(o.label for o in section.options or section.choices)
        if section.kind == "matrix":
            options = "Rader: " + "; ".join(section.rows) + ". Kolonner: " + options
        elif section.choices:
            kind += " med valg"
        rows.append((kind, section.label, options))
    return rows
