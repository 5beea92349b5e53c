"""Small builders for raw test mails (bytes, CRLF line endings) used by the parser tests."""

from __future__ import annotations

import base64

# A minimal but well-formed PDF (what a Word "save as PDF" starts and ends with).
PDF_BYTES = (
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
)
DOCX_BYTES = b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40 + b"word/document.xml"


def crlf(text: str) -> bytes:
    """UTF-8 bytes with CRLF line endings (as mail travels)."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def b64(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii")


def headers_block(
    subject: str = "Høringssvar",
    sender: str = "Kari Nordmann <kari.nordmann@example.no>",
    to: str = "postmottak@direktoratet.example.no",
    message_id: str = "<abc123@example.no>",
    extra: str = "",
) -> str:
    lines = [
        "Return-Path: <kari.nordmann@example.no>",
        "Received: from mx.example.no (mx.example.no [192.0.2.10])\n\tby mail.direktoratet.example.no; "
        "Wed, 14 Sep 2022 10:15:02 +0200",
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        "Date: Wed, 14 Sep 2022 10:14:58 +0200",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
    ]
    text = "\n".join(lines)
    if extra:
        text += "\n" + extra.strip("\n")
    return text


def simple_mail(body: str = "Hei,\nvedlagt er vårt høringssvar.\n", charset: str = "utf-8", **headers: str) -> bytes:
    extra = headers.pop("extra", "")
    content = f"Content-Type: text/plain; charset={charset}\nContent-Transfer-Encoding: 8bit\n" + (
        extra.strip("\n") + "\n" if extra else ""
    )
    head = headers_block(**headers, extra=content)
    return crlf(head + "\n\n") + body.replace("\n", "\r\n").encode(charset if charset != "bogus" else "utf-8")


def multipart(boundary: str, parts: list[str], subtype: str = "mixed", params: str = "") -> str:
    """A multipart body with its Content-Type header line first (no trailing newline)."""
    body = "".join(f"--{boundary}\n{part.lstrip(chr(10))}\n" for part in parts)
    return f'Content-Type: multipart/{subtype}; boundary="{boundary}"{params}\n\n{body}--{boundary}--'


def mixed_mail(parts: list[str], boundary: str = "==b1==", **headers: str) -> bytes:
    return crlf(headers_block(**headers) + "\n" + multipart(boundary, parts) + "\n")


def text_part(text: str = "Hei,\nvedlagt er vårt høringssvar.\n", subtype: str = "plain") -> str:
    return f"Content-Type: text/{subtype}; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{text}"


def binary_part(data: bytes, headers: str) -> str:
    """A base64 part; ``headers`` are its Content-Type/Content-Disposition lines (any, even none)."""
    head = headers.strip("\n")
    return (head + "\n" if head else "") + f"Content-Transfer-Encoding: base64\n\n{b64(data)}"


def pdf_part(
    filename: str | None = "Høringssvar.pdf",
    content_type: str = "application/pdf",
    disposition: str = "attachment",
    data: bytes = PDF_BYTES,
) -> str:
    disp = ""
    if disposition:
        disp = f"Content-Disposition: {disposition}" + (f'; filename="{filename}"' if filename else "")
    return binary_part(data, f"Content-Type: {content_type}\n{disp}")
