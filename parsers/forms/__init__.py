"""Consultation form parser: PDF/DOCX høringssvarskjema -> exact structured answers.

Pure functions, no I/O. For untrusted input use intake.form_worker (child process with
time and memory limits)."""

from .documents import (
    SingleDocumentAnalysis,
    analyse_documents,
    analyse_single_document,
    combine_analyses,
    extract_text,
    parse_form,
    sniff_format,
)
from .models import DocumentInput, DocumentsAnalysis, DocumentStatus, FormResult, FormStatus
from .profile import DEFAULT_PROFILE_NAME, FormProfile, FormSection, available_profiles, load_profile

__all__ = [
    "DEFAULT_PROFILE_NAME",
    "DocumentInput",
    "DocumentStatus",
    "DocumentsAnalysis",
    "FormProfile",
    "FormResult",
    "FormSection",
    "FormStatus",
    "SingleDocumentAnalysis",
    "analyse_documents",
    "analyse_single_document",
    "available_profiles",
    "combine_analyses",
    "extract_text",
    "load_profile",
    "parse_form",
    "sniff_format",
]
