"""Stable systemIDs for the archive levels a case does not have rows for (arkiv, arkivdel, ...).

Derived as UUIDv5 from the case's own systemID, so exporting the same case twice gives the same IDs.
"""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("6f0f3c52-4a8e-5b43-9a53-6e6f61726b35")  # fixed: changing it changes every derived ID


def derived_id(parent_system_id: str, level: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{parent_system_id}/{level}"))
