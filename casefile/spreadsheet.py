"""One row per response, one column per field, corrected values applied: CSV and XLSX for case officers.

CSV is UTF-8 with a byte order mark and semicolons, which is what Excel with Norwegian settings opens correctly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from sqlalchemy.orm import Session

from postmottak.casefile.labels import DATE_TIME_FORMAT, form_status_label
from postmottak.casefile.summary import FIELD_LABELS, Q1_CHOICES, Response, responses

Column = tuple[str, Callable[[Response], Any]]


def _form(key: str) -> Callable[[Response], Any]:
    if key == "q1_choice":
        return lambda r: Q1_CHOICES.get(r.form.get(key) or "", r.form.get(key) or "")
    return lambda r: r.form.get(key) or ""


COLUMNS: list[Column] = [
    ("ID", lambda r: r.intake_id),
    ("Sak", lambda r: r.case_number),
    ("Journalnummer", lambda r: r.journal_number or ""),
    # The case's local time without a zone: Excel stores no zone, and staff read Norwegian time.
    ("Mottatt", lambda r: r.received_at.replace(tzinfo=None)),
    ("I tide", lambda r: "ja" if r.on_time else "nei"),
    ("Avsender", lambda r: r.sender_address or ""),
    ("Avsendernavn", lambda r: r.sender_name or ""),
    ("Emne", lambda r: r.subject),
    *[(label, _form(key)) for key, label in FIELD_LABELS.items()],
    ("Avkryssede typer", lambda r: "; ".join(r.form.get("organisation_types_checked") or [])),
    ("Skjemastatus", lambda r: form_status_label(r.form_status) if r.form_status else "intet skjema"),
    ("Advarsler", lambda r: "\n".join(r.warnings)),
    ("Korrigerte felt", lambda r: ", ".join(FIELD_LABELS.get(f, f) for f in sorted(r.corrected_fields))),
]
HEADERS = [name for name, _ in COLUMNS]


def rows(session: Session, case_number: str | None = None) -> list[list[Any]]:
    return [[value(response) for _, value in COLUMNS] for response in responses(session, case_number)]


def to_csv(data: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADERS)
    writer.writerows([[_csv_cell(value) for value in row] for row in data])
    return buffer.getvalue().encode("utf-8-sig")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime(DATE_TIME_FORMAT)
    # Excel runs a CSV cell starting with = + @ (or - and no space, "-1+2") as a formula: keep answers as text.
    # A "- " bullet list, common in answers, is left alone.
    if isinstance(value, str) and (value[:1] in ("=", "+", "@") or (value[:1] == "-" and value[1:2] not in (" ", ""))):
        return "'" + value
    return value


def to_xlsx(data: list[list[Any]], title: str = "Høringssvar") -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title[:31]
    sheet.append(HEADERS)
    for row in data:
        sheet.append(row)
    for row_cells in sheet.iter_rows(min_row=2):
        for cell in row_cells:
            if cell.data_type == "f":  # openpyxl takes "=..." for a formula; an answer is text
                cell.data_type = "s"
            elif isinstance(cell.value, datetime):  # a real date cell: sortable and filterable in Excel
                cell.number_format = "dd.mm.yyyy hh:mm"
    bold = Font(bold=True)
    for cell in sheet[1]:
        cell.font = bold
    wrap = Alignment(wrap_text=True, vertical="top")
    for row_cells in sheet.iter_rows(min_row=2):
        for cell in row_cells:
            cell.alignment = wrap
    for index, header in enumerate(HEADERS, start=1):
        long_text = header in FIELD_LABELS.values() and header.startswith(("1)", "Mål", "3)", "4)"))
        sheet.column_dimensions[get_column_letter(index)].width = 60 if long_text else max(12, min(40, len(header) + 4))
    sheet.freeze_panes = "B2"
    sheet.auto_filter.ref = sheet.dimensions
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def export_csv(session: Session, case_number: str | None = None) -> bytes:
    return to_csv(rows(session, case_number))


def export_xlsx(session: Session, case_number: str | None = None) -> bytes:
    return to_xlsx(rows(session, case_number), f"Høringssvar {case_number}".replace("/", "-") if case_number else "Høringssvar")
