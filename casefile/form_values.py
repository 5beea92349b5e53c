"""A registered form as staff see it: the parsed values with their corrections applied, per field, in form order.

Every page, summary, spreadsheet, export and extract reads forms through here, so a correction shows the same
everywhere and a new consultation's form needs nothing but its profile. Corrections are stored in the flat
form of the profile's keys (an option's value for a single choice, a list for a multiple choice, text for text);
`answer_value` turns them into the printed labels of `form.fields`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postmottak.casefile import models as m
from postmottak.parsers.forms.answers import FieldSpec, answer_value, field_specs
from postmottak.parsers.forms.profile import DEFAULT_PROFILE_NAME, FormProfile, load_profile


def load_corrections(session: Session, intake_ids: Iterable[int]) -> dict[int, list[m.FieldCorrection]]:
    """Corrections per record, oldest first (the latest per field wins)."""
    ids = list(intake_ids)
    grouped: dict[int, list[m.FieldCorrection]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for correction in session.scalars(
            select(m.FieldCorrection)
            .where(m.FieldCorrection.intake_id.in_(chunk))
            .order_by(m.FieldCorrection.corrected_at, m.FieldCorrection.id)
        ):
            grouped.setdefault(correction.intake_id, []).append(correction)
    return grouped


@functools.lru_cache(maxsize=64)
def profile_named(name: str | None) -> FormProfile | None:
    """The profile of a form or case by its stored name (or path); None when it cannot be loaded any more."""
    try:
        return load_profile(name or DEFAULT_PROFILE_NAME)
    except (ValueError, OSError):
        return None


def specs_named(name: str | None) -> list[FieldSpec]:
    profile = profile_named(name)
    return field_specs(profile) if profile is not None else []


def latest_corrections(corrections: list[m.FieldCorrection]) -> dict[str, Any]:
    latest: dict[str, Any] = {}
    for correction in sorted(corrections, key=lambda c: (c.corrected_at, c.id)):
        latest[correction.field] = correction.corrected_value
    return latest


def corrected_form(record: m.IntakeRecord, corrections: list[m.FieldCorrection]) -> dict[str, Any] | None:
    """The parsed form with staff corrections applied: every flat key of the profile, and `fields` (key, label,
    kind, value per field in form order)."""
    form = record.form
    if form is None:
        return None
    data: dict[str, Any] = {**(form.data.get("extra_fields") or {}), **form.data}
    latest = latest_corrections(corrections)
    data.update(latest)
    specs = {spec.key: spec for spec in specs_named(form.profile)}
    stored = [{"key": a.key, "label": a.label, "kind": a.kind, "value": a.value} for a in form.answers] or [
        {"key": spec.key, "label": spec.label, "kind": spec.kind, "value": answer_value(spec, data)}
        for spec in specs.values()
    ]
    for answer in stored:
        if answer["key"] in latest:
            spec = specs.get(answer["key"])
            answer["value"] = answer_value(spec, data) if spec is not None else latest[answer["key"]]
    data["fields"] = stored
    return data


class FormLayout:
    """The fields of one form, as pages, summaries and spreadsheets lay them out (from its profile)."""

    def __init__(self, profile_name: str | None) -> None:
        self.profile_name = profile_name
        profile = profile_named(profile_name)
        self.profile = profile
        self.specs: list[FieldSpec] = field_specs(profile) if profile is not None else []
        by_key = {spec.key: spec for spec in self.specs}
        self.respondent_type: FieldSpec | None = by_key.get(profile.respondent_type_field or "") if profile else None
        self.respondent_name_key: str | None = profile.respondent_name_field if profile else None
        self.private_person_option: str | None = profile.private_person_option if profile else None
        self.contact_name_key: str | None = profile.contact_name_field if profile else None

    def spec(self, key: str) -> FieldSpec | None:
        return next((spec for spec in self.specs if spec.key == key), None)

    def column(self, key: str) -> str:
        spec = self.spec(key)
        return spec.column if spec is not None else key

    @property
    def contact_keys(self) -> set[str]:
        """The fields that identify or reach the respondent: the short (inline) fields and the respondent type."""
        keys = {spec.key for spec in self.specs if spec.kind == "text" and not spec.multiline}
        if self.respondent_type is not None:
            keys.add(self.respondent_type.key)
            if self.respondent_type.list_key:
                keys.add(self.respondent_type.list_key)
        return keys

    @property
    def text_keys(self) -> list[str]:
        return [spec.key for spec in self.specs if spec.kind == "text"]

    def is_private_person(self, form: dict[str, Any] | None) -> bool | None:
        """Whether the form says the respondent is a private person (None: the form does not say)."""
        if not form or self.respondent_type is None or not self.private_person_option:
            return None
        value = form.get(self.respondent_type.key)
        if value in (None, "", []):
            return None
        chosen = value if isinstance(value, list) else [value]
        return self.private_person_option in chosen


@functools.lru_cache(maxsize=64)
def form_layout(profile_name: str | None) -> FormLayout:
    return FormLayout(profile_name)


def choice_labels(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def answer_of(form: dict[str, Any], key: str) -> Any:
    """The value of one field in `form["fields"]` (labels as printed)."""
    return next((a["value"] for a in form.get("fields") or [] if a["key"] == key), None)


def shown_value(spec: FieldSpec | None, value: Any) -> str:
    """A field's answer as one line of text for a cell or a page ("" when empty)."""
    if value in (None, "", [], {}):
        return ""
    if spec is None:
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    if spec.kind == "choice":
        return "; ".join(spec.option_display(v) for v in choice_labels(value))
    if spec.kind == "matrix" and isinstance(value, dict):
        return "; ".join(f"{row}: {', '.join(cols)}" for row, cols in value.items() if cols)
    return str(value)
