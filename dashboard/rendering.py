"""Jinja2 environment, Norwegian labels and formats, and the page renderer every view uses."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from postmottak.casefile.clock import local_time as local_time  # also a template filter
from postmottak.casefile.form_values import shown_value
from postmottak.dashboard.security import csrf_token, pop_flashes
from postmottak.parsers.forms.answers import FieldSpec, answer_value

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
ACTION_LABELS = {
    "register": "Registrert på sak",
    "ignore": "Markert som ignorert",
    "correct_field": "Felt korrigert",
    "resend_receipt": "Kvittering sendes på nytt",
    "form_checked": "Skjema kontrollert",
    "login": "Innlogging",
    "login_failed": "Mislykket innlogging",
}
ROLE_LABELS = {"archivist": "arkivar", "reader": "leser"}
RECEIVED_SOURCE_LABELS = {
    "internaldate": "tidspunkt e-posttjeneren mottok e-posten",
    "received-header": "Received-feltet i e-posten",
    "date-header": "Date-feltet i e-posten",
    "file-mtime": "filens endringstid",
    "fetch-time": "tidspunktet e-posten ble hentet",
}


# The intake's reasons are English (they are also in logs and exports); staff read them in Norwegian.
REASON_PATTERNS = [
    (re.compile(r"^a consultation form without a case number$"), "et høringsskjema uten saksnummer"),
    (re.compile(r"^mentions '(.+)' but no case number$"), r"nevner «\1», men har ikke saksnummer"),
    (re.compile(r"^reply to one of our receipts$"), "svar på en av våre kvitteringer"),
    (re.compile(r"^refers to several cases: (.+)$"), r"viser til flere saker: \1"),
    (re.compile(r"^case (\S+) is closed$"), r"saken \1 er avsluttet"),
    (re.compile(r"^machine mail: (.+)$"), r"automatisk e-post: \1"),
    (re.compile(r"^no reference to a configured case$"), "viser ikke til noen av sakene"),
    (re.compile(r"^same (content|Message-ID|mail) as intake #(\d+)$"), r"samme e-post som post \2"),
    (re.compile(r"^processing failed: (.+)$", re.S), r"behandlingen feilet: \1"),
    (re.compile(r"^not registered \((.+)\)$"), r"ikke registrert (\1)"),
    (re.compile(r"^no sender address$"), "ingen avsenderadresse"),
    (re.compile(r"^sender is our own address$"), "avsender er vår egen adresse"),
]


def reason_text(reason: str | None) -> str:
    if not reason:
        return ""
    for pattern, replacement in REASON_PATTERNS:
        if pattern.match(reason):
            return pattern.sub(replacement, reason)
    return reason


def local_date(day: date | None) -> str:
    return day.strftime("%d.%m.%Y") if day else "–"


def file_size(size: int | None) -> str:
    if size is None:
        return "–"
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} kB".replace(".", ",")
    return f"{size / 1024 / 1024:.1f} MB".replace(".", ",")


def field_value(spec: FieldSpec | None, value: Any) -> str:
    """An answer (labels as printed, see parsers.forms.answers) as one line for a page."""
    return shown_value(spec, value) or "–"


def flat_field_value(spec: FieldSpec | None, value: Any) -> str:
    """A value in the flat form of the profile's key (as corrections store it) as one line for a page."""
    if spec is None:
        return field_value(None, value)
    return field_value(spec, answer_value(spec, {spec.key: value}))


READ_BY_LABELS = {
    "text": "tekst",
    "glyph": "avkrysningstegn",
    "vector_box": "tegnede avkrysningsbokser",
    "content_control": "innholdskontroll i Word",
    "acroform": "PDF-skjemafelt",
    "table": "tabell",
    "ocr": "tekstgjenkjenning (OCR)",
    "staff": "saksbehandler",
    "unknown": "ikke registrert",
}


def changes(value: Any, prefix: str = "") -> str:
    """An audit before/after value as one readable line: "status: needs_review, case: 22/414"."""
    if value is None:
        return "–"
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            if isinstance(item, dict):
                parts.append(changes(item, f"{prefix}{key}."))
            else:
                shown = "–" if item is None else ("ja" if item is True else "nei" if item is False else str(item))
                parts.append(f"{prefix}{key}: {shown}")
        return ", ".join(parts) or "–"
    return str(value)


def case_key(number: str) -> str:
    """"22/414" -> "22-414" for URLs."""
    return number.replace("/", "-")


def make_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("dashboard", "templates"),
        autoescape=select_autoescape(["html", "svg", "xml"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        local=local_time,
        local_date=local_date,
        filesize=file_size,
        field_value=field_value,
        flat_field_value=flat_field_value,
        read_by=lambda s: READ_BY_LABELS.get(s or "", s or "–"),
        status_label=lambda s: STATUS_LABELS.get(s or "", s or "–"),
        receipt_label=lambda s: RECEIPT_LABELS.get(s or "", s or "–"),
        action_label=lambda s: ACTION_LABELS.get(s or "", s or "–"),
        role_label=lambda s: ROLE_LABELS.get(s or "", s or "–"),
        case_key=case_key,
        changes=changes,
        reason=reason_text,
    )
    env.globals.update(
        STATUS_LABELS=STATUS_LABELS,
        RECEIPT_LABELS=RECEIPT_LABELS,
        RECEIVED_SOURCE_LABELS=RECEIVED_SOURCE_LABELS,
    )
    return env


def render(request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    values = {
        "request": request,
        "user": getattr(request.state, "user", None),
        "csrf_token": csrf_token(request),
        "flashes": pop_flashes(request),
        "review_count": getattr(request.state, "review_count", None),
        "path": request.url.path,
        **(context or {}),
    }
    return templates.TemplateResponse(request, template, values, status_code=status_code)
