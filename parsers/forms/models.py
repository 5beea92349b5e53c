"""Result models of the form parser (pydantic, JSON-serialisable)."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .answers import FieldAnswer, flat_defaults
from .profile import FormProfile
from .text_layer import TextLayer

FormStatus = Literal["parsed", "partial", "unreadable", "not_a_form"]
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
    """The parsed form. Every flat key of its profile (a field's key, a choice group's list key) is an attribute of
    its own, dumped at the top level beside the parse's own keys below: the profile decides them, not this model.
    `fields` holds the same answers per field in form order (key, label, kind, value, how read, warnings)."""

    model_config = ConfigDict(extra="allow")

    warnings: list[str] = Field(default_factory=list)
    form_status: FormStatus = "not_a_form"
    profile: str = ""
    # Machine-readable codes parallel to `warnings` (e.g. "checkbox.none_ticked:<field key>").
    warning_codes: list[str] = Field(default_factory=list)
    source_format: SourceFormat = "unknown"
    page_count: int | None = None
    # Every field of the profile in form order: the generic result (see answers.py).
    fields: list[FieldAnswer] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _flatten_extra_fields(cls, data: Any) -> Any:
        """Results stored before every key was flat kept a later form's keys under "extra_fields"."""
        if isinstance(data, dict) and isinstance(data.get("extra_fields"), dict):
            data = dict(data)
            extra = data.pop("extra_fields")
            data = {**extra, **data}
        elif isinstance(data, dict) and "extra_fields" in data:
            data = {key: value for key, value in data.items() if key != "extra_fields"}
        return data

    def flat_values(self) -> dict[str, Any]:
        """Every flat key of the profile with its value."""
        return dict(self.model_extra or {})

    @classmethod
    def of_profile(cls, form: FormProfile, values: dict[str, Any] | None = None, /, **parse: Any) -> FormResult:
        """A result with every flat key of the profile `form` (empty where `values` has none) and the parse's own
        keys (`profile` defaults to the profile's name)."""
        parse.setdefault("profile", form.name)
        flat = {**flat_defaults(form), **(values or {})}
        clash = set(flat) & set(cls.model_fields)
        if clash:
            raise ValueError(f"profile keys clash with the result's own: {', '.join(sorted(clash))}")
        return cls(**flat, **parse)


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
