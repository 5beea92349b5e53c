"""What every download route needs: a stored file's bytes (a 404 when the store has lost it) and a
Content-Disposition header that no filename can break."""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import HTTPException, Request

from postmottak.casefile.storage import StorageError


def disposition(kind: str, filename: str) -> str:
    """`inline` or `attachment` with the name as ASCII and as UTF-8 (RFC 6266), control characters and quotes out."""
    cleaned = re.sub(r'[\x00-\x1f\x7f"\\/]', "_", filename).strip() or "dokument"
    ascii_name = cleaned.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(cleaned, safe='')}"


def read_stored(request: Request, relative: str) -> bytes:
    try:
        data: bytes = request.app.state.store.read(relative)
        return data
    except (OSError, StorageError):
        raise HTTPException(404, "Filen finnes ikke i dokumentlageret.") from None
