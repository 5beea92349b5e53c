"""Who the archive belongs to and who handled the case: values the case database does not hold."""

from __future__ import annotations

import os
from dataclasses import dataclass

# Defaults for the body this deployment serves (postmottak@ehelse.no). Override per export (CLI options or
# $POSTMOTTAK_ARCHIVE_CREATOR_ID / _NAME / _UNIT) rather than editing these.
DEFAULT_CREATOR_ID = "915933149"
DEFAULT_CREATOR_NAME = "Direktoratet for e-helse"
DEFAULT_UNIT = "Postmottak"
SYSTEM_NAME = "postmottak"
SYSTEM_USER = "postmottak"


@dataclass(frozen=True)
class ArchiveOptions:
    creator_id: str = DEFAULT_CREATOR_ID  # arkivskaperID (organisation number)
    creator_name: str = DEFAULT_CREATOR_NAME  # arkivskaperNavn
    unit: str = DEFAULT_UNIT  # administrativEnhet
    case_officer: str | None = None  # saksansvarlig; default: who closed the case
    system_name: str = SYSTEM_NAME

    @classmethod
    def from_environment(cls, **overrides: str | None) -> "ArchiveOptions":
        values = {
            "creator_id": os.environ.get("POSTMOTTAK_ARCHIVE_CREATOR_ID") or DEFAULT_CREATOR_ID,
            "creator_name": os.environ.get("POSTMOTTAK_ARCHIVE_CREATOR_NAME") or DEFAULT_CREATOR_NAME,
            "unit": os.environ.get("POSTMOTTAK_ARCHIVE_UNIT") or DEFAULT_UNIT,
        }
        values.update({key: value for key, value in overrides.items() if value})
        return cls(**values)
