"""The generic result of a form: one answer per field of the profile, in form order.

Every consumer downstream (storage, export, summaries, spreadsheets, pages, corrections) works on these, so a
new consultation's form needs a new profile and nothing else. A reader (text, glyphs, vector boxes, Word content
controls, PDF form fields, OCR) only has to say what it found for a field and how it read it.

`FieldAnswer.value` by kind:
- text:   the answer as a string, or None when empty or a placeholder;
- choice: the ticked option labels as printed, in form order ([] when none);
- matrix: {row label as printed: [ticked column labels as printed]} for every row.

The flat keys of the profile (e.g. a single-choice `field` holding the option's `value`) stay in the result as
before; `field_specs` and `answers_from_values` convert between the two views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from .profile import ChoiceOption, FormProfile

AnswerKind = Literal["text", "choice", "matrix"]
# How a field was read. "unknown" marks answers carried over from before this was recorded.
READ_BY = ("text", "glyph", "vector_box", "content_control", "acroform", "table", "ocr", "staff", "unknown")
AnswerValue = str | list[str] | dict[str, list[str]] | None


class FieldAnswer(BaseModel):
    key: str
    label: str  # the question or field label as printed
    kind: AnswerKind
    value: AnswerValue = None
    read_by: str = "text"  # one of READ_BY
    warnings: list[str] = Field(default_factory=list)

    def public(self) -> dict[str, Any]:
        """The export shape: key, label, kind, value."""
        return {"key": self.key, "label": self.label, "kind": self.kind, "value": self.value}


@dataclass(frozen=True)
class FieldSpec:
    """One answerable field of a profile."""

    key: str
    label: str
    kind: AnswerKind
    column: str  # the spreadsheet and page heading
    options: tuple[ChoiceOption, ...] = ()
    rows: tuple[str, ...] = ()
    multiple: bool = False  # choice: may hold several options
    list_key: str | None = None  # choice: a second flat key with every ticked option
    compact: bool = False
    multiline: bool = False  # text: a free-text answer (paragraphs), not a short inline value

    def option_label(self, value: str) -> str:
        return next((o.label for o in self.options if o.value == value), value)

    def option_display(self, label_or_value: str) -> str:
        return next((o.display for o in self.options if label_or_value in (o.label, o.value)), label_or_value)


def field_specs(profile: FormProfile) -> list[FieldSpec]:
    specs: list[FieldSpec] = []
    for section in profile.sections:
        if section.kind == "heading" or not section.field:
            continue
        if section.kind == "checkboxes":
            specs.append(
                FieldSpec(
                    section.field,
                    section.label,
                    "choice",
                    section.column or section.label,
                    tuple(section.options),
                    multiple=section.multiple,
                    list_key=section.list_field,
                )
            )
        elif section.kind == "matrix":
            specs.append(
                FieldSpec(
                    section.field,
                    section.label,
                    "matrix",
                    section.column or section.label,
                    tuple(section.options),
                    rows=tuple(section.rows),
                )
            )
        else:
            if section.choices and section.choice_field:
                specs.append(
                    FieldSpec(
                        section.choice_field,
                        section.label,
                        "choice",
                        section.choice_column or section.label,
                        tuple(section.choices),
                    )
                )
            specs.append(
                FieldSpec(
                    section.field,
                    section.label,
                    "text",
                    section.column or section.label,
                    compact=section.compact,
                    multiline=section.kind == "text",
                )
            )
    return specs


def flat_defaults(profile: FormProfile) -> dict[str, Any]:
    """Every flat key of the profile with its empty value: None for a text or single choice, [] for a list of
    ticked options, {row: []} for a matrix."""
    defaults: dict[str, Any] = {}
    for section in profile.sections:
        if section.kind == "heading" or not section.field:
            continue
        if section.kind == "checkboxes":
            if section.list_field:
                defaults[section.list_field] = []
            defaults[section.field] = [] if section.multiple and not section.list_field else None
        elif section.kind == "matrix":
            defaults[section.field] = {row: [] for row in section.rows}
        else:
            if section.choice_field:
                defaults[section.choice_field] = None
            defaults[section.field] = None
    return defaults


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def answer_value(spec: FieldSpec, values: dict[str, Any]) -> AnswerValue:
    """The answer of one field from the flat values (option values become printed labels)."""
    raw = values.get(spec.key)
    if spec.kind == "text":
        if raw is None:
            return None
        return str(raw) if not isinstance(raw, str) else (raw or None)
    if spec.kind == "choice":
        if spec.list_key is not None and raw in (None, ""):
            chosen = _as_list(values.get(spec.list_key))
        else:
            chosen = _as_list(raw)
        return [spec.option_label(v) for v in chosen]
    table = raw if isinstance(raw, dict) else {}
    return {row: [spec.option_label(v) for v in _as_list(table.get(row))] for row in spec.rows}


def flat_value(spec: FieldSpec, value: AnswerValue) -> Any:
    """The flat key's value for an answer (the inverse of answer_value for the field's own key)."""
    if spec.kind == "text":
        return value
    if spec.kind == "choice":
        chosen = [_option_value(spec, label) for label in _as_list(value)]
        if spec.multiple:
            return chosen
        return chosen[0] if len(chosen) == 1 else None
    table = value if isinstance(value, dict) else {}
    return {row: [_option_value(spec, label) for label in _as_list(table.get(row))] for row in spec.rows}


def _option_value(spec: FieldSpec, label: str) -> str:
    return next((o.value for o in spec.options if label in (o.label, o.value)), label)


def answers_from_values(
    profile: FormProfile,
    values: dict[str, Any],
    *,
    read_by: dict[str, str] | str = "text",
    warnings: dict[str, list[str]] | None = None,
) -> list[FieldAnswer]:
    """Every field of the profile, in form order, from a flat dict of values (a FormResult dump, or stored data;
    data stored before every key was flat may hold some under `extra_fields`)."""
    merged = {**(values.get("extra_fields") or {}), **values}
    answers = []
    for spec in field_specs(profile):
        how = read_by if isinstance(read_by, str) else read_by.get(spec.key, "text")
        answers.append(
            FieldAnswer(
                key=spec.key,
                label=spec.label,
                kind=spec.kind,
                value=answer_value(spec, merged),
                read_by=how,
                warnings=list((warnings or {}).get(spec.key, [])),
            )
        )
    return answers


def text_fields(profile: FormProfile) -> list[FieldSpec]:
    return [spec for spec in field_specs(profile) if spec.kind == "text"]


def spec_by_key(profile: FormProfile) -> dict[str, FieldSpec]:
    return {spec.key: spec for spec in field_specs(profile)}


def states_private_person(profile: FormProfile, answers: list[FieldAnswer]) -> bool | None:
    """Whether the form's respondent-type question says "private person": the one option ticked (None when it has
    no such question or nothing was ticked; several ticks are not a private person)."""
    key, option = profile.respondent_type_field, profile.private_person_option
    if not key or not option:
        return None
    spec = next((s for s in field_specs(profile) if s.key == key), None)
    answer = next((a for a in answers if a.key == key), None)
    if spec is None or answer is None or not answer.value:
        return None
    return list(answer.value) == [spec.option_label(option)]
