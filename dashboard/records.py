"""Records and privacy in the dashboard: a case's publication package, the retention rules, and data subject
requests. The work is done by casefile.publication, casefile.retention and casefile.privacy (the same code as
`postmottak publish`, `retention run` and `privacy find|export|erase`); these pages show it and ask first.

Changes and downloads are for archivists, each asked for once more on a confirmation page (as in confirm.py) and
audit-logged. The privacy pages send the person's address or name in POST bodies only, so it never ends up in
an address, the browser history or an access log.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from postmottak.casefile import privacy, publication, retention, review
from postmottak.casefile.noark5.archival import prepare_case
from postmottak.dashboard.downloads import disposition
from postmottak.dashboard.pages import find_case, staff
from postmottak.dashboard.rendering import case_key, render
from postmottak.dashboard.security import StaffUser, csrf_protect, flash, require_archivist

router = APIRouter()
actions = APIRouter(dependencies=[Depends(csrf_protect)])

KIND_LABELS = {"ignored": "Ignorert e-post", "duplicate": "Duplikater", "unrelated": "E-post uten sak"}
KIND_HELP = {
    "ignored": "maskinpost (autosvar, nyhetsbrev) og e-post en arkivar har ignorert",
    "duplicate": "samme e-post mottatt mer enn én gang",
    "unrelated": "e-post som ikke viser til noen høring",
}
PUBLICATION_KINDS = {"organisation": "Virksomhet", "private": "Privatperson", "exempt": "Unntatt offentlighet"}


def _archivist(request: Request) -> StaffUser:
    """An archivist, with what the navigation shows (the review count)."""
    user = staff(request)
    if not user.can_act:
        require_archivist(request)  # raises Forbidden with the usual message
    return user


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


# Publication -------------------------------------------------------------------------------------------


def _plan(request: Request, key: str) -> tuple[str, publication.PublicationPlan]:
    with request.app.state.db.session() as session:
        case = find_case(session, key)
        return case.number, publication.plan(session, case.number, before_conversion=True)


@router.get("/cases/{key}/publication")
def publication_page(request: Request, key: str, user: StaffUser = Depends(staff)) -> Response:
    _, plan = _plan(request, key)
    return render(
        request,
        "publication.html",
        {"plan": plan, "key": key, "kinds": PUBLICATION_KINDS, "counts": publication.published_kinds(plan)},
    )


@router.get("/cases/{key}/publication/confirm")
def publication_confirm(request: Request, key: str, user: StaffUser = Depends(_archivist)) -> Response:
    _, plan = _plan(request, key)
    return render(
        request,
        "publication_confirm.html",
        {"plan": plan, "key": key, "counts": publication.published_kinds(plan)},
    )


@actions.post("/cases/{key}/publication")
def publication_write(request: Request, key: str, user: StaffUser = Depends(require_archivist)) -> Response:
    """Make the missing PDF/A versions, write the package and send it as a ZIP (an export in the audit trail)."""
    state = request.app.state
    with state.db.session() as session:
        case = find_case(session, key)
        number, case_id = case.number, case.id
        extra = publication.private_sources(session, number)
    rendered = prepare_case(state.db, state.store, number, user.username, extra_sources=extra).extra
    work = Path(tempfile.mkdtemp(prefix="publisering-"))
    try:
        with state.db.session() as session:
            plan = publication.plan(session, number)
            if not plan.responses:
                flash(request, "Det er ingen høringssvar å publisere.", "error")
                return RedirectResponse(f"/cases/{key}/publication", status_code=303)
            written = publication.write(session, state.store, plan, work / "publisering", rendered)
            data = _zip(work / "publisering")
            review.record_access(
                session,
                actor=user.username,
                action="export",
                case_id=case_id,
                note=f"publiseringspakke (ZIP), sak {number}: {len(plan.published)} svar publisert, "
                f"{len(written)} filer",
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    filename = f"publisering-{case_key(number)}.zip"
    return Response(
        data, media_type="application/zip", headers={"Content-Disposition": disposition("attachment", filename)}
    )


# Retention ---------------------------------------------------------------------------------------------


def _days(request: Request) -> dict[str, int | None]:
    section = request.app.state.settings.retention
    return {"ignored": section.ignored_days, "duplicate": section.duplicate_days, "unrelated": section.unrelated_days}


def _retention_context(request: Request) -> dict[str, object]:
    days = _days(request)
    with request.app.state.db.session() as session:
        rows = retention.preview(session, days)
        last = retention.last_run(session)
        return {
            "rows": rows,
            "configured": any(value is not None for value in days.values()),
            "due_total": sum(row.count for row in rows),
            "last": (last.at, last.actor, dict(last.after or {})) if last is not None else None,
            "labels": KIND_LABELS,
            "help": KIND_HELP,
            "every_hours": request.app.state.settings.retention.run_every_hours,
        }


@router.get("/retention")
def retention_page(request: Request, user: StaffUser = Depends(staff)) -> Response:
    return render(request, "retention.html", _retention_context(request))


@router.get("/retention/confirm")
def retention_confirm(request: Request, user: StaffUser = Depends(_archivist)) -> Response:
    return render(request, "retention_confirm.html", _retention_context(request))


@actions.post("/retention/run")
def retention_run(request: Request, user: StaffUser = Depends(require_archivist)) -> Response:
    days = _days(request)
    if all(value is None for value in days.values()):
        flash(request, "Ingen oppbevaringsregler er satt; ingenting er slettet.", "error")
        return RedirectResponse("/retention", status_code=303)
    report = retention.run(request.app.state.db, request.app.state.store, days, user.username, dry_run=False)
    flash(
        request,
        f"Innholdet er slettet for {report.deleted_records} poster ({report.deleted_files} filer). "
        f"{report.kept_files} filer er beholdt fordi andre poster bruker dem.",
    )
    return RedirectResponse("/retention", status_code=303)


# Data subject requests ---------------------------------------------------------------------------------


@router.get("/privacy")
def privacy_page(request: Request, user: StaffUser = Depends(_archivist)) -> Response:
    return render(request, "privacy.html", {"query": "", "result": None, "problem": None})


@actions.post("/privacy")
def privacy_find(request: Request, query: str = Form(""), user: StaffUser = Depends(_archivist)) -> Response:
    query = query[:320]
    try:
        with request.app.state.db.session() as session:
            result = privacy.record_find(session, query, user.username)
    except privacy.PrivacyError as exc:
        return render(request, "privacy.html", {"query": query, "result": None, "problem": str(exc)}, 400)
    erasable = [hit for hit in result.hits if not hit.archival_duty]
    return render(request, "privacy.html", {"query": query, "result": result, "problem": None, "erasable": erasable})


@actions.post("/privacy/export")
def privacy_export(request: Request, query: str = Form(""), user: StaffUser = Depends(_archivist)) -> Response:
    """Everything held about the person (art. 15) as a ZIP: innsyn.json and the stored mail and documents."""
    query = query[:320]
    work = Path(tempfile.mkdtemp(prefix="innsyn-"))
    try:
        with request.app.state.db.session() as session:
            privacy.export(session, request.app.state.store, query, work / "innsyn", user.username)
        data = _zip(work / "innsyn")
    except privacy.PrivacyError as exc:
        return render(request, "privacy.html", {"query": query, "result": None, "problem": str(exc)}, 400)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": disposition("attachment", f"innsyn-{stamp}.zip")},
    )


@actions.post("/privacy/erase/confirm")
def privacy_erase_confirm(request: Request, query: str = Form(""), user: StaffUser = Depends(_archivist)) -> Response:
    """What would be erased and what is kept, and why (nothing changes here)."""
    query = query[:320]
    try:
        planned = privacy.erase(request.app.state.db, request.app.state.store, query, user.username, dry_run=True)
    except privacy.PrivacyError as exc:
        return render(request, "privacy.html", {"query": query, "result": None, "problem": str(exc)}, 400)
    hits = {hit.intake_id: hit for hit in planned.found.hits}
    return render(request, "privacy_confirm.html", {"query": query, "planned": planned, "hits": hits})


@actions.post("/privacy/erase")
def privacy_erase(request: Request, query: str = Form(""), user: StaffUser = Depends(require_archivist)) -> Response:
    query = query[:320]
    try:
        done = privacy.erase(request.app.state.db, request.app.state.store, query, user.username, dry_run=False)
    except privacy.PrivacyError as exc:
        flash(request, str(exc), "error")
        return RedirectResponse("/privacy", status_code=303)
    kept = f" {len(done.kept)} poster er beholdt på grunn av arkivplikt." if done.kept else ""
    flash(request, f"Personopplysningene er slettet i {len(done.erased)} poster.{kept}")
    return RedirectResponse("/privacy", status_code=303)
