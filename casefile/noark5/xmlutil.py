"""Small helpers for writing namespaced XML with the standard library, deterministically."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, datetime
from zoneinfo import ZoneInfo

XSI = "http://www.w3.org/2001/XMLSchema-instance"
N5 = "http://www.arkivverket.no/standarder/noark5/"
ADDML = "http://www.arkivverket.no/standarder/addml"
FORM_NS = "urn:postmottak:skjema:1"  # our own virksomhetsspesifikkeMetadata

XSI_TYPE = "xsi:type"
FORM_PREFIX = "pm"


class Builder:
    """Creates elements in one default namespace: `b.sub(parent, "tittel", "x")`.

    Tags are written unprefixed and the root declares the namespace itself (xmlns=...), so the files read as
    Noark 5 files usually do, and unprefixed attributes (ADDML's name="...") need no special handling.
    """

    def __init__(self, namespace: str) -> None:
        self.ns = namespace

    def q(self, tag: str) -> str:
        return tag

    def root(self, tag: str, schema_file: str, **attributes: str) -> ET.Element:
        element = ET.Element(tag, {"xmlns": self.ns, "xmlns:xsi": XSI, **attributes})
        element.set("xsi:schemaLocation", f"{self.ns} {schema_file}")
        return element

    def sub(self, parent: ET.Element, tag: str, text: object = None, **attributes: str) -> ET.Element:
        element = ET.SubElement(parent, self.q(tag), attributes)
        if text is not None:
            element.text = str(text)
        return element


def to_bytes(root: ET.Element, default_namespace: str) -> bytes:
    """Serialise with an XML declaration; `default_namespace` must be the one the root declares."""
    if root.get("xmlns") != default_namespace:
        raise ValueError(f"root element does not declare {default_namespace}")
    ET.indent(root, space="  ")
    # tostring gives bytes for every encoding but "unicode"
    serialised: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return serialised + b"\n"


def xs_datetime(stamp: datetime, tz: str) -> str:
    """xs:dateTime in the case's local time with its offset, whole seconds."""
    return stamp.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


def xs_date(day: date) -> str:
    return day.isoformat()


def local_date(stamp: datetime, tz: str) -> date:
    return stamp.astimezone(ZoneInfo(tz)).date()
