"""Jinja2 environment, Norwegian formats (the words come from casefile.labels), and the page renderer."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from postmottak.casefile.form_values import shown_value
from postmottak.casefile.labels import (
    ACTION_LABELS,
    RECEIPT_LABELS,
    STATUS_LABELS,
    action_label,
    changes,
    form_status_label,
    local_date,
    local_time,
    reason_text,
    receipt_label,
    status_label,
)
from postmottak.dashboard.security import csrf_token, pop_flashes
from postmottak.parsers.forms.answers import FieldSpec, answer_value

ROLE_LABELS = {"archivist": "arkivar", "reader": "leser"}
RECEIVED_SOURCE_LABELS = {
    "internaldate": "tidspunkt e-posttjeneren mottok e-posten",
    "received-header": "Received-feltet i e-posten",
    "date-header": "Date-feltet i e-posten",
    "file-mtime": "filens endringstid",
    "fetch-time": "tidspunktet e-posten ble hentet",
}


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


def case_key(number: str) -> str:
    """ "22/414" -> "22-414" for URLs."""
    return number.replace("/", "-")


def make_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("postmottak.dashboard", "templates"),
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
        status_label=status_label,
        receipt_label=receipt_label,
        action_label=action_label,
        form_status=form_status_label,
        role_label=lambda s: ROLE_LABELS.get(s or "", s or "–"),
        case_key=case_key,
        changes=changes,
        reason=reason_text,
    )
    env.globals.update(
        STATUS_LABELS=STATUS_LABELS,
        RECEIPT_LABELS=RECEIPT_LABELS,
        ACTION_LABELS=ACTION_LABELS,
        RECEIVED_SOURCE_LABELS=RECEIVED_SOURCE_LABELS,
    )
    return env


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
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
