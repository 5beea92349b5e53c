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
from sqlalchemy import select
from sqlalchemy.orm import Session

from postmottak.casefile import models as m
from postmottak.casefile.form_values import FormLayout, form_layout, shown_value
from postmottak.casefile.labels import DATE_TIME_FORMAT, form_status_label
from postmottak.casefile.summary import Response, responses
from postmottak.parsers.forms.answers import FieldSpec

Column = tuple[str, Callable[[Response], Any]]

HEAD_COLUMNS: list[Column] = [
    ("ID", lambda r: r.intake_id),
    ("Sak", lambda r: r.case_number),
    ("Journalnummer", lambda r: r.journal_number or ""),
    # The case's local time without a zone: Excel stores no zone, and staff read Norwegian time.
    ("Mottatt", lambda r: r.received_at.replace(tzinfo=None)),
    ("I tide", lambda r: "ja" if r.on_time else "nei"),
    ("Avsender", lambda r: r.sender_address or ""),
    ("Avsendernavn", lambda r: r.sender_name or ""),
    ("Emne", lambda r: r.subject),
]


class Sheet(list[list[Any]]):
    """The rows of the first sheet, with their headers."""

    def __init__(self, headers: list[str], rows: list[list[Any]], long_text: set[str] | None = None) -> None:
        super().__init__(rows)
        self.headers = headers
        self.long_text = long_text or set()


def _field_columns(spec: FieldSpec) -> list[Column]:
    """One column per field; a matrix has one column per row (its ticked columns as the cell)."""
    key = spec.key
    if spec.kind == "text":
        return [(spec.column, lambda r: r.form.get(key) or "")]
    if spec.kind == "choice":
        columns: list[Column] = [(spec.column, lambda r: shown_value(spec, r.answer(key)))]
        if spec.list_key is not None:
            columns.append((f"Alle avkryssede: {spec.column}", lambda r: shown_value(spec, _all_ticked(r, spec))))
        return columns

    def matrix_cell(row: str) -> Callable[[Response], Any]:
        return lambda r: ", ".join(spec.option_display(c) for c in (r.answer(key) or {}).get(row) or [])

    return [(row, matrix_cell(row)) for row in spec.rows]


def _all_ticked(response: Response, spec: FieldSpec) -> list[str]:
    return [spec.option_label(v) for v in response.form.get(spec.list_key or "") or []]


def _layout_columns(layout: FormLayout) -> list[tuple[str, Callable[[Response], Any], bool]]:
    """The field columns of one form as (header, value, long text), each header once: a field printed under the same
    label as the one before it (the explanation under a Ja/Nei question) is headed "... (utdyping)"."""
    columns: list[tuple[str, Callable[[Response], Any], bool]] = []
    taken: set[str] = set()
    for spec in layout.specs:
        for name, value in _field_columns(spec):
            header = f"{name} (utdyping)" if name in taken and spec.kind == "text" else name
            number = 2
            while header in taken:
                header, number = f"{name} ({number})", number + 1
            taken.add(header)
            columns.append((header, value, spec.multiline))
    return columns


def _field_columns_of(layouts: list[FormLayout]) -> tuple[list[Column], set[str]]:
    """The field columns of every form, a header shared by several forms once; each response's cell is read by
    its own form's field under that header (empty when its form has none)."""
    by_header: dict[str, dict[str | None, Callable[[Response], Any]]] = {}
    long_text: set[str] = set()
    for layout in layouts:
        for header, value, long in _layout_columns(layout):
            by_header.setdefault(header, {}).setdefault(layout.profile_name, value)
            if long:
                long_text.add(header)

    def cell(values: dict[str | None, Callable[[Response], Any]]) -> Callable[[Response], Any]:
        return lambda r: values[r.layout.profile_name](r) if r.layout.profile_name in values else ""

    return [(header, cell(values)) for header, values in by_header.items()], long_text


def columns_for(layouts: list[FormLayout]) -> tuple[list[Column], set[str]]:
    """Every column of the sheet, and the headers of the long-text ones."""
    fields, long_text = _field_columns_of(layouts)

    def corrected(r: Response) -> str:
        return ", ".join(r.layout.column(f) for f in sorted(r.corrected_fields))

    tail: list[Column] = [
        ("Skjemastatus", lambda r: form_status_label(r.form_status) if r.form_status else "intet skjema"),
        ("Advarsler", lambda r: "\n".join(r.warnings)),
        ("Korrigerte felt", corrected),
    ]
    return [*HEAD_COLUMNS, *fields, *tail], long_text


def rows(session: Session, case_number: str | None = None) -> Sheet:
    items = responses(session, case_number)
    layouts: list[FormLayout] = []
    if case_number is not None:
        layouts.append(form_layout(session.scalar(select(m.Case.form_profile).where(m.Case.number == case_number))))
    for response in items:
        if all(response.layout is not other for other in layouts):
            layouts.append(response.layout)
    if not layouts:
        layouts.append(form_layout(None))
    columns, long_text = columns_for(layouts)
    return Sheet([name for name, _ in columns], [[value(r) for _, value in columns] for r in items], long_text)


def to_csv(data: Sheet) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(data.headers)
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


def to_xlsx(data: Sheet, title: str = "Høringssvar") -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title[:31]
    sheet.append(data.headers)
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
    for index, header in enumerate(data.headers, start=1):
        long_text = header in data.long_text
        sheet.column_dimensions[get_column_letter(index)].width = 60 if long_text else max(12, min(40, len(header) + 4))
    sheet.freeze_panes = "B2"
    sheet.auto_filter.ref = sheet.dimensions
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def export_csv(session: Session, case_number: str | None = None) -> bytes:
    return to_csv(rows(session, case_number))


def export_xlsx(session: Session, case_number: str | None = None) -> bytes:
    return to_xlsx(
        rows(session, case_number), f"Høringssvar {case_number}".replace("/", "-") if case_number else "Høringssvar"
    )
