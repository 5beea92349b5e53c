"""Result models of the form parser (pydantic, JSON-serialisable)."""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import BaseModel, Field

from .answers import FieldAnswer
from .text_layer import TextLayer

FormStatus = Literal["parsed", "partial", "unreadable", "not_a_form"]
Q1Choice = Literal["ja", "nei", "vet_ikke"]
SourceFormat = Literal["pdf", "docx", "text", "unknown"]

# Per-document statuses in DocumentsAnalysis.document_statuses.
DocumentStatus = Literal[
    "form",  # the document chosen as the form
    "other",  # readable, but not the form (cover letter, a second form copy, ...)
    "unreadable",  # corrupt, truncated, or no text layer
    "encrypted",  # needs a password
    "empty",  # zero bytes
    "unsupported",  # not PDF, DOCX or text (images, archives, ...)
    "timeout",  # the isolated runner's time limit was hit
    "too_large",  # over the size limit, or the memory limit was hit
    "crashed",  # the child process died
]


class FormResult(BaseModel):
    organisation_type: str | None = None
    organisation_types_checked: list[str] = Field(default_factory=list)
    organisation_name: str | None = None
    contact_person: str | None = None
    email: str | None = None
    q1_choice: Q1Choice | None = None
    q1_text: str | None = None
    goal_1: str | None = None
    goal_2: str | None = None
    goal_3: str | None = None
    goal_4: str | None = None
    goal_5: str | None = None
    q3_text: str | None = None
    q4_text: str | None = None
    warnings: list[str] = Field(default_factory=list)
    form_status: FormStatus = "not_a_form"
    profile: str = ""
    # Extras: machine-readable codes parallel to `warnings` (e.g. "checkbox.none_ticked:organisation_type").
    warning_codes: list[str] = Field(default_factory=list)
    # Fields of a profile that are not attributes of this model (a later form's own keys).
    extra_fields: dict[str, str | list[str] | dict[str, list[str]] | None] = Field(default_factory=dict)
    source_format: SourceFormat = "unknown"
    page_count: int | None = None
    # Every field of the profile in form order: the generic result (see answers.py).
    fields: list[FieldAnswer] = Field(default_factory=list)

    def flat_values(self) -> dict[str, object]:
        """Every flat key of the profile: the model's own attributes and the later forms' extra keys."""
        data = self.model_dump(mode="json", exclude={"fields", "extra_fields"})
        return {**self.extra_fields, **data}


class DocumentInput(NamedTuple):
    filename: str | None
    content_type: str
    data: bytes


class DocumentsAnalysis(BaseModel):
    texts: list[str] = Field(default_factory=list)
    form_index: int | None = None
    form: FormResult | None = None
    document_statuses: list[str] = Field(default_factory=list)
    # Per-document warnings (same order as the inputs) and warnings about the whole set.
    document_warnings: list[list[str]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    # Per document (same order): the searchable PDF of a document read by OCR, else None.
    text_layers: list[TextLayer | None] = Field(default_factory=list)
