"""Files staff open: the documents of a mail, the raw .eml, and the summary spreadsheets.

A file is found by its row in the case database (a document id within its mail) and read through the document
store; nothing in the URL is ever used as a path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.responses import Response

from postmottak.casefile import review, spreadsheet
from postmottak.dashboard.downloads import disposition, read_stored
from postmottak.dashboard.pages import find_case
from postmottak.dashboard.rendering import case_key
from postmottak.dashboard.security import StaffUser, current_user

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

router = APIRouter()

# Shown in the browser; anything else is a download, so a sender's HTML never runs on our origin.
INLINE_TYPES = ("application/pdf", "text/plain", "image/png", "image/jpeg", "image/gif")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _record(request: Request, user: StaffUser, action: str, *, intake_id: int, note: str) -> None:
    """Personal data leaving the system is in the audit trail: who downloaded what, when."""
    with request.app.state.db.session() as session:
        review.record_access(session, actor=user.username, action=action, intake_id=intake_id, note=note)


@router.get("/intake/{intake_id}/documents/{document_id}")
def document(
    request: Request,
    intake_id: int,
    document_id: int,
    download: bool = False,
    user: StaffUser = Depends(current_user),
) -> Response:
    with request.app.state.db.session() as session:
        try:
            doc = review.document_of(session, intake_id, document_id)
        except LookupError:
            raise HTTPException(404) from None
        relative, filename, content_type = doc.storage_path, doc.filename or doc.title, doc.content_type
    data = read_stored(request, relative)
    base_type = content_type.split(";")[0].strip().lower()
    inline = not download and base_type in INLINE_TYPES
    media_type = content_type if inline else "application/octet-stream"
    if base_type == "text/plain" and "charset" not in content_type:
        media_type = "text/plain; charset=utf-8"
    headers = {"Content-Disposition": disposition("inline" if inline else "attachment", filename)}
    if inline and base_type != "application/pdf":
        headers["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'"
    elif inline:
        headers["Content-Security-Policy"] = "default-src 'self'; object-src 'self'; frame-ancestors 'self'"
    _record(request, user, "download", intake_id=intake_id, note=f"dokument {document_id}: {filename}")
    return Response(data, media_type=media_type, headers=headers)


@router.get("/intake/{intake_id}/raw.eml")
def raw_mail(request: Request, intake_id: int, user: StaffUser = Depends(current_user)) -> Response:
    with request.app.state.db.session() as session:
        try:
            record = review.load_record(session, intake_id)
        except LookupError:
            raise HTTPException(404) from None
        relative = record.raw_path
    data = read_stored(request, relative)
    _record(request, user, "download", intake_id=intake_id, note="original e-post (.eml)")
    return Response(
        data,
        media_type="message/rfc822",
        headers={"Content-Disposition": disposition("attachment", f"post-{intake_id}.eml")},
    )


# A case export by file extension: how it is built, and its media type.
_EXPORTS: dict[str, tuple[Callable[[Session, str], bytes], str]] = {
    "csv": (spreadsheet.export_csv, "text/csv; charset=utf-8"),
    "xlsx": (spreadsheet.export_xlsx, XLSX),
}


def _case_export(request: Request, key: str, user: StaffUser, extension: str) -> Response:
    """A case's responses as a spreadsheet (`csv` or `xlsx`), recorded in the audit trail as an export."""
    builder, media_type = _EXPORTS[extension]
    with request.app.state.db.session() as session:
        case = find_case(session, key)
        data = builder(session, case.number)
        review.record_access(
            session,
            actor=user.username,
            action="export",
            case_id=case.id,
            note=f"{extension.upper()}, sak {case.number}",
        )
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": disposition("attachment", f"hoeringssvar-{case_key(case.number)}.{extension}")},
    )


@router.get("/cases/{key}/export.csv")
def export_csv(request: Request, key: str, user: StaffUser = Depends(current_user)) -> Response:
    return _case_export(request, key, user, "csv")


@router.get("/cases/{key}/export.xlsx")
def export_xlsx(request: Request, key: str, user: StaffUser = Depends(current_user)) -> Response:
    return _case_export(request, key, user, "xlsx")
