"""Form profiles: the labels, order, choices and placeholders of one consultation form, as data.

A profile is a TOML file in `parsers/forms/profiles/` loaded into `FormProfile`. Parsing code
knows nothing about a particular form; a new consultation's form is a new TOML file.
"""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_PROFILE_NAME = "hoeringssvar-22-414"
# The parsed result's own keys (FormResult): no field of a profile may have one of these as its key.
RESERVED_KEYS = frozenset(
    {"warnings", "warning_codes", "form_status", "profile", "source_format", "page_count", "fields", "extra_fields"}
)


class ChoiceOption(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    value: str
    label: str
    # A shorter name for summaries and spreadsheet cells (default: the printed label).
    short: str | None = None

    @property
    def display(self) -> str:
        return self.short or self.label


class FormSection(BaseModel):
    """One labelled part of the form. Its content runs from its label to the next label found."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # checkboxes: a list of ticked options; heading: no content expected;
    # inline: a short value (wrapped lines joined); text: free text with paragraphs;
    # matrix: a table of checkboxes, one row per entry of `rows`, one column per entry of `options`.
    kind: Literal["checkboxes", "heading", "inline", "matrix", "text"]
    label: str
    # Shorter prefix of the label used to find it when the respondent altered the rest.
    anchor: str | None = None
    field: str | None = None
    # checkboxes: the FormResult key holding every ticked option (the single-answer `field` is then the
    # one ticked option or nothing). Without it, `field` holds the list when `multiple`, else the one option.
    list_field: str | None = None
    multiple: bool = False
    options: list[ChoiceOption] = Field(default_factory=list)
    # matrix: the row labels as printed (the proposals); the columns are `options`.
    rows: list[str] = Field(default_factory=list)
    # text sections may open with a line of choice checkboxes (one of them to tick).
    choice_field: str | None = None
    choices: list[ChoiceOption] = Field(default_factory=list)
    # inline: drop all whitespace from the value (e-mail addresses).
    compact: bool = False
    description: str | None = None
    # Shorter column names for spreadsheets and pages (default: the printed label).
    column: str | None = None
    choice_column: str | None = None

    @property
    def display_name(self) -> str:
        return self.description or self.label

    @model_validator(mode="after")
    def _check_kind(self) -> "FormSection":
        if self.kind == "checkboxes" and not (self.options and self.field):
            raise ValueError(f"checkbox section {self.label!r} needs options and a field")
        if self.kind == "matrix" and not (self.options and self.rows and self.field):
            raise ValueError(f"matrix section {self.label!r} needs options (columns), rows and a field")
        if self.kind in ("inline", "text") and not self.field:
            raise ValueError(f"section {self.label!r} needs a field")
        if self.choices and not self.choice_field:
            raise ValueError(f"section {self.label!r} has choices but no choice_field")
        return self


class FormProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    title: str
    case_number: str | None = None
    min_labels_for_form: int = 3
    placeholders: list[str] = Field(default_factory=list)
    # Keys of the fields with a meaning beyond the form: the respondent-type question (summaries group by it),
    # the respondent's name, and the option of the respondent type that marks a private person (screened in
    # the public journal).
    respondent_type_field: str | None = None
    respondent_name_field: str | None = None
    private_person_option: str | None = None
    # The field naming the person who wrote the response (for a private person's published response).
    contact_name_field: str | None = None
    sections: list[FormSection]
    # The field of a question where respondents ask for their response to be exempt from publication: an answer
    # pre-fills a suggestion for staff (legal basis below), it never exempts anything by itself.
    exemption_field: str | None = None
    exemption_suggested_basis: str = "Offl. § 13 jf. fvl. § 13"

    @model_validator(mode="after")
    def _check_sections(self) -> "FormProfile":
        if not self.sections:
            raise ValueError("a profile needs sections")
        if self.min_labels_for_form > len(self.sections):
            raise ValueError("min_labels_for_form exceeds the number of sections")
        keys = [
            key
            for section in self.sections
            for key in (section.field, section.list_field, section.choice_field)
            if key is not None
        ]
        reserved = sorted(set(keys) & RESERVED_KEYS)
        if reserved:
            raise ValueError(f"field keys {', '.join(reserved)} are the parsed result's own; choose other keys")
        if len(set(keys)) != len(keys):
            raise ValueError("every field key of a profile must be unique")
        return self


def available_profiles() -> list[str]:
    folder = resources.files(__package__).joinpath("profiles")
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


@functools.lru_cache(maxsize=32)
def load_profile(name: str = DEFAULT_PROFILE_NAME) -> FormProfile:
    """Load a packaged profile by name, or a profile TOML file by path."""
    if name.endswith(".toml") or "/" in name:
        raw = Path(name).read_bytes()
    else:
        resource = resources.files(__package__).joinpath("profiles", f"{name}.toml")
        if not resource.is_file():
            raise ValueError(f"unknown form profile {name!r}; known: {', '.join(available_profiles())}")
        raw = resource.read_bytes()
    return FormProfile.model_validate(tomllib.loads(raw.decode("utf-8")))


def resolve_profile(profile: "FormProfile | str | None") -> FormProfile:
    if profile is None:
        return load_profile()
    if isinstance(profile, FormProfile):
        return profile
    return load_profile(profile)
