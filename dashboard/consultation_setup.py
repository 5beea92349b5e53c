""" "Ny høring": archivists set up a consultation from its blank form, without editing the configuration file.

Two steps, both a POST of the same form (CSRF-checked, archivists only): "Les skjemaet" learns the form's fields
from the uploaded blank (.docx or .pdf) and shows them; "Lagre høringen" stores the consultation and creates its case
(one transaction, with an audit event). Between the steps the learned profile travels in a signed, time-limited
hidden field, so the blank is uploaded once and nothing is stored before the save. The worker reads stored
consultations at every cycle (intake/pipeline.py `case_rules`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

from fastapi import APIRouter, Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.responses import RedirectResponse, Response

from postmottak.casefile import consultations
from postmottak.casefile.db import WriteConflict
from postmottak.casefile.labels import learned_field_rows
from postmottak.dashboard.rendering import case_key, render
from postmottak.dashboard.security import StaffUser, csrf_protect, flash, require_archivist
from postmottak.dashboard.web_settings import session_secret
from postmottak.parsers.forms.learn import LearnError, learn_profile, profile_to_toml
from postmottak.parsers.forms.profile import FormProfile

log = logging.getLogger("postmottak.dashboard.consultations")
router = APIRouter()

MAX_BLANK_BYTES = 10 * 1024 * 1024
DRAFT_MAX_AGE_S = 4 * 3600
DEFAULT_TIMEZONE = "Europe/Oslo"
DEFAULT_DEADLINE_TIME = "23:59"
TIMEZONES = ("Europe/Oslo", "UTC", "Europe/Stockholm", "Europe/Copenhagen", "Atlantic/Reykjavik")


@dataclass
class LearnedField:
    kind: str
    label: str
    options: str


@dataclass
class SetupForm:
    number: str = ""
    title: str = ""
    deadline: str = ""
    deadline_time: str = DEFAULT_DEADLINE_TIME
    timezone: str = DEFAULT_TIMEZONE
    keywords: str = ""
    draft: str = ""
    filename: str = ""
    fields: list[LearnedField] = field(default_factory=list)
    form_title: str = ""


def _serializer(request: Request) -> URLSafeTimedSerializer:
    state = request.app.state
    return URLSafeTimedSerializer(session_secret(state.settings, state.web), salt="postmottak-consultation-draft")


def learned_fields(profile: FormProfile) -> list[LearnedField]:
    """What was learned, in form order, as the CLI's `forms learn` prints it."""
    return [LearnedField(*row) for row in learned_field_rows(profile)]


def _profile_name(number: str) -> str:
    return "hoering-" + (re.sub(r"[^0-9A-Za-z]+", "-", number).strip("-") or "ny")


def _page(request: Request, user: StaffUser, form: SetupForm, error: str | None = None, status: int = 200) -> Response:
    request.state.user = user
    return render(
        request,
        "consultation_new.html",
        {"form": form, "error": error, "timezones": TIMEZONES, "max_mb": MAX_BLANK_BYTES // (1024 * 1024)},
        status,
    )


@router.get("/cases/new")
def new_consultation(request: Request, user: StaffUser = Depends(require_archivist)) -> Response:
    return _page(request, user, SetupForm())


def _text(value: Any, limit: int = 1000) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


class SetupProblem(Exception):
    pass


def _read_blank(upload: StarletteUpload) -> tuple[bytes, str]:
    filename = (upload.filename or "skjema").rsplit("/", 1)[-1].rsplit("\\", 1)[-1][:255]
    data = upload.file.read(MAX_BLANK_BYTES + 1)
    if len(data) > MAX_BLANK_BYTES:
        raise SetupProblem(
            f"{filename} er for stor (over {MAX_BLANK_BYTES // (1024 * 1024)} MB). Last opp det tomme skjemaet."
        )
    if not data:
        raise SetupProblem(f"{filename} er tom.")
    return data, filename


def _learn(data: bytes, filename: str, number: str, title: str) -> FormProfile:
    try:
        return learn_profile(
            data, name=_profile_name(number), case_number=number or None, title=title or None, filename=filename
        )
    except LearnError as exc:
        raise SetupProblem(f"Skjemaet kunne ikke læres: {exc}") from None
    except Exception as exc:  # a damaged file the readers did not foresee: still a message, never a 500
        log.warning("learning %s failed: %s: %s", filename, type(exc).__name__, exc)
        raise SetupProblem(f"{filename} kan ikke leses som et skjema (.docx eller .pdf).") from None


def _parse_deadline(form: SetupForm) -> tuple[date, time | None]:
    try:
        day = date.fromisoformat(form.deadline)
    except ValueError:
        raise SetupProblem("Fristen mangler eller er ikke en dato (dd.mm.åååå).") from None
    if not form.deadline_time:
        return day, None
    try:
        at = time.fromisoformat(form.deadline_time)
    except ValueError:
        raise SetupProblem("Klokkeslettet for fristen er ikke gyldig (tt:mm).") from None
    return day, at.replace(second=0, microsecond=0)


@router.post("/cases/new", dependencies=[Depends(csrf_protect)])
async def setup_consultation(request: Request, user: StaffUser = Depends(require_archivist)) -> Response:
    data = await request.form()
    # Reading the blank and the database work off the event loop, as for the other (sync) routes.
    return await run_in_threadpool(_setup, request, user, data)


def _setup(request: Request, user: StaffUser, data: FormData) -> Response:
    step = _text(data.get("step"), 16)
    form = SetupForm(
        number=_text(data.get("number"), 32),
        title=_text(data.get("title"), consultations.MAX_TITLE + 1),
        deadline=_text(data.get("deadline"), 10),
        deadline_time=_text(data.get("deadline_time"), 8),
        timezone=_text(data.get("timezone"), 64) or DEFAULT_TIMEZONE,
        keywords=_text(data.get("keywords"), 2000),
        draft=_text(data.get("draft"), 500_000),
    )
    upload = data.get("blank")
    has_upload = isinstance(upload, StarletteUpload) and bool(upload.filename)
    serializer = _serializer(request)
    profile: FormProfile | None = None
    sha = ""
    try:
        if has_upload:
            assert isinstance(upload, StarletteUpload)
            form.draft = ""  # a new blank replaces the one read before, also when it cannot be read
            blank, form.filename = _read_blank(upload)
            profile = _learn(blank, form.filename, form.number, form.title)
            sha = hashlib.sha256(blank).hexdigest()
            form.draft = serializer.dumps({"toml": profile_to_toml(profile), "sha": sha, "filename": form.filename})
        elif form.draft:
            try:
                draft = serializer.loads(form.draft, max_age=DRAFT_MAX_AGE_S)
                profile = FormProfile.model_validate(_toml_loads(draft["toml"]))
                sha, form.filename = str(draft["sha"]), str(draft["filename"])
            except (BadSignature, KeyError, TypeError, ValueError):
                form.draft = ""
                raise SetupProblem("Det opplastede skjemaet er utløpt eller ugyldig. Last det opp på nytt.") from None
        else:
            raise SetupProblem("Velg det tomme høringsskjemaet (.docx eller .pdf) og trykk «Les skjemaet».")
        form.fields = learned_fields(profile)
        form.form_title = profile.title
        if step != "save" or has_upload:
            # A new blank is shown before it can be saved.
            return _page(request, user, form)
        day, at = _parse_deadline(form)
        number = form.number
        if not consultations.CASE_NUMBER.match(number):
            raise SetupProblem("Saksnummeret må se ut som ÅÅ/NNN eller ÅÅÅÅ/NNN, for eksempel 23/1234.")
        title = form.title or profile.title
        final = profile.model_copy(update={"name": _profile_name(number), "case_number": number})
        new = consultations.NewConsultation(
            number=number,
            title=title,
            deadline=day,
            deadline_time=at,
            timezone=form.timezone,
            keywords=tuple(k.strip() for k in re.split(r"[,\n;]", form.keywords) if k.strip()),
            profile_toml=profile_to_toml(final),
            blank_sha256=sha,
            blank_filename=form.filename,
        )
        settings = request.app.state.settings
        configured = {c.number for c in settings.cases}
        consultations.check(new, configured)
        path = consultations.profile_file(settings.consultation_forms_path, new.profile_toml)
        try:
            with request.app.state.db.session() as session:
                consultations.create(session, new, user.username, configured, form_profile=str(path))
        except WriteConflict:
            raise SetupProblem(f"Sak {number} ble nettopp opprettet av noen andre. Velg et annet saksnummer.") from None
    except (SetupProblem, consultations.ConsultationError) as exc:
        return _page(request, user, form, str(exc), 422)
    log.info("consultation %s set up by %s", new.number, user.username)
    flash(request, f"Høringen {new.number} er opprettet. Innhentingen tar den med fra neste henting.")
    return RedirectResponse(f"/cases/{case_key(new.number)}", status_code=303)


def _toml_loads(text: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(text)
