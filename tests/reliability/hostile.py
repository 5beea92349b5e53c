"""A corpus of hostile and broken mail, generated: what anyone on the internet can send to a public mailbox.

`hostile_corpus()` returns (name, raw bytes) pairs; every item is a distinct message (its own bytes). Nothing is
read from outside the repository; the PDF bombs come from tests/fixtures/forms/bad.
"""

from __future__ import annotations

import base64
import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

BAD_PDFS = Path(__file__).resolve().parents[1] / "fixtures" / "forms" / "bad"
CRLF = b"\r\n"


def _headers(subject: str | bytes = "Høringssvar - sak 22/414", *, extra: bytes = b"", index: int = 0) -> bytes:
    subject_bytes = subject if isinstance(subject, bytes) else _ew(subject)
    return (
        b"From: Kari Nordmann <kari@baerum.kommune.no>\r\n"
        b"To: postmottak@ehelse.no\r\n"
        b"Subject: " + subject_bytes + b"\r\n"
        b"Date: Tue, 20 Sep 2022 10:00:00 +0200\r\n"
        b"Message-ID: <hostile-"
        + str(index).encode()
        + b"-"
        + os.urandom(6).hex().encode()
        + b"@baerum.kommune.no>\r\n"
        b"MIME-Version: 1.0\r\n" + extra
    )


def _ew(text: str) -> bytes:
    if text.isascii():
        return text.encode()
    return b"=?utf-8?b?" + base64.b64encode(text.encode()) + b"?="


def _b64(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return CRLF.join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def _with_attachment(
    name_params: bytes,
    data: bytes,
    content_type: bytes = b"application/pdf",
    index: int = 0,
    subject: str = "Høringssvar - sak 22/414",
) -> bytes:
    boundary = b"b-" + os.urandom(8).hex().encode()
    return (
        _headers(subject, extra=b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n', index=index)
        + CRLF
        + b"--"
        + boundary
        + CRLF
        + b"Content-Type: text/plain; charset=utf-8\r\n\r\nSe vedlagt h\xc3\xb8ringssvar i sak 22/414.\r\n"
        + b"--"
        + boundary
        + CRLF
        + b"Content-Type: "
        + content_type
        + b"\r\n"
        + b"Content-Transfer-Encoding: base64\r\n"
        + b"Content-Disposition: attachment; "
        + name_params
        + CRLF
        + CRLF
        + _b64(data)
        + CRLF
        + b"--"
        + boundary
        + b"--"
        + CRLF
    )


def _plain(body: bytes, subject: str | bytes = "Høringssvar - sak 22/414", extra: bytes = b"", index: int = 0) -> bytes:
    return _headers(subject, extra=extra, index=index) + CRLF + body


def minimal_pdf(text: str = "Høringssvar 22/414") -> bytes:
    stream = f"BT /F1 12 Tf 72 720 Td ({text.encode('latin-1', 'replace').decode('latin-1')}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return _pdf(objects)


def _pdf(objects: list[bytes]) -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def deep_nesting_pdf(depth: int = 200_000) -> bytes:
    """An object nested `depth` arrays deep, reachable from the page (recursive parsers overflow)."""
    nested = b"[" * depth + b"]" * depth
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Annots 4 0 R >>",
        nested,
    ]
    return _pdf(objects)


def self_referencing_pages_pdf() -> bytes:
    """A page tree whose Kids point back at itself, claiming a billion pages."""
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [2 0 R 3 0 R 2 0 R] /Count 1000000000 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        ]
    )


def zip_bomb(uncompressed_mb: int = 200) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("nuller.bin", "w", force_zip64=True) as entry:
            chunk = bytes(1 << 20)
            for _ in range(uncompressed_mb):
                entry.write(chunk)
    return buffer.getvalue()


def docx_bomb(uncompressed_mb: int = 200) -> bytes:
    """A .docx whose document.xml inflates to `uncompressed_mb` MB (the form reader opens .docx files)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        with archive.open("word/document.xml", "w", force_zip64=True) as entry:
            entry.write(
                b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
                b'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>'
            )
            chunk = b"A" * (1 << 20)
            for _ in range(uncompressed_mb):
                entry.write(chunk)
            entry.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return buffer.getvalue()


def billion_laughs_docx() -> bytes:
    entities = '<!ENTITY a0 "ha">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    document = (
        f'<?xml version="1.0"?><!DOCTYPE w:document [{entities}]>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body><w:p><w:r><w:t>&a9;</w:t></w:r></w:p></w:body></w:document>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", document)
    return buffer.getvalue()


def nested_rfc822(depth: int = 50) -> bytes:
    inner = b"From: innerst@example.no\r\nSubject: innerst\r\n\r\nHoeringssvar 22/414 helt inne.\r\n"
    for level in range(depth):
        inner = (
            b"From: lag" + str(level).encode() + b"@example.no\r\nSubject: Fwd: lag " + str(level).encode() + b"\r\n"
            b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="n' + str(level).encode() + b'"\r\n\r\n'
            b"--n" + str(level).encode() + b"\r\nContent-Type: text/plain\r\n\r\nVidersendt.\r\n"
            b"--n" + str(level).encode() + b"\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n"
            b"--n" + str(level).encode() + b"--\r\n"
        )
    return _headers("Fwd: Fwd: Fwd: ...", extra=b"Content-Type: message/rfc822\r\n") + CRLF + inner


def many_parts(count: int = 5000) -> bytes:
    parts = b"".join(
        b'--m\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename="del'
        + str(i).encode()
        + b'.txt"\r\n\r\ndel '
        + str(i).encode()
        + b"\r\n"
        for i in range(count)
    )
    return _headers(extra=b'Content-Type: multipart/mixed; boundary="m"\r\n') + CRLF + parts + b"--m--\r\n"


def big_attachment(megabytes: int = 30) -> bytes:
    return _with_attachment(b'filename="stort vedlegg.bin"', os.urandom(megabytes << 20), b"application/octet-stream")


def hostile_corpus(*, big_mb: int = 30) -> list[tuple[str, bytes]]:
    pdf = minimal_pdf()
    builders: list[tuple[str, Callable[[], bytes]]] = [
        # --- headers
        ("no headers at all", lambda: b"Bare en tekst uten noen header.\r\n"),
        ("headers only, no body", lambda: _headers()),
        (
            "garbled From",
            lambda: _plain(b"Hei\r\n").replace(
                b"From: Kari Nordmann <kari@baerum.kommune.no>", b'From: <<<@@@>>> """ <;;;@>'
            ),
        ),
        ("missing From, Date and Message-ID", lambda: b"Subject: sak 22/414\r\n\r\nHeisann\r\n"),
        ("garbled Date", lambda: _plain(b"x\r\n").replace(b"Tue, 20 Sep 2022 10:00:00 +0200", b"i morgen, kanskje")),
        ("Date in year 9999", lambda: _plain(b"x\r\n").replace(b"Tue, 20 Sep 2022", b"Fri, 31 Dec 9999")),
        ("8-bit latin-1 header", lambda: _plain(b"Hei\r\n", subject=b"H\xf8ringssvar fra \xc6rlig \xc5s - sak 22/414")),
        ("8-bit invalid utf-8 header", lambda: _plain(b"Hei\r\n", subject=b"Sak 22/414 \xff\xfe\xc3\x28 \xed\xa0\x80")),
        ("1 MB header line", lambda: _plain(b"Hei\r\n", extra=b"X-Stor: " + b"a" * (1 << 20) + CRLF)),
        ("1 MB folded Subject", lambda: _plain(b"Hei\r\n", subject=b"22/414" + b"\r\n x" * 300_000)),
        (
            "30,000 header fields",
            lambda: _plain(b"Hei\r\n", extra=b"".join(b"X-F%d: v\r\n" % i for i in range(30_000))),
        ),
        (
            "Message-ID of 5,000 characters",
            lambda: _plain(b"Hei\r\n").replace(b"Message-ID: <", b"Message-ID: <" + b"m" * 5000),
        ),
        (
            "From address of 3,000 characters",
            lambda: _plain(b"Hei sak 22/414\r\n").replace(
                b"kari@baerum.kommune.no", b"k" * 3000 + b"@baerum.kommune.no"
            ),
        ),
        (
            "10,000 recipients",
            lambda: _plain(
                b"x\r\n", extra=b"To: " + b", ".join(b"mottaker%d@example.no" % i for i in range(10_000)) + CRLF
            ),
        ),
        (
            "encoded CRLF in Subject (header injection)",
            lambda: _plain(
                b"Hei\r\n", subject=b"=?utf-8?b?" + base64.b64encode(b"22/414\r\nBcc: evil@example.com") + b"?="
            ),
        ),
        (
            "mbox From line first",
            lambda: b"From MAILER-DAEMON Tue Sep 20 10:00:00 2022\r\n" + _plain(b"sak 22/414\r\n"),
        ),
        ("NUL bytes in body", lambda: _plain(b"Sak 22/414\x00\x00\x00 med NUL\r\n")),
        ("bare CR line ends", lambda: _plain(b"linje1\rlinje2\rsak 22/414\r").replace(CRLF, b"\r")),
        ("one 8 MB line", lambda: _plain(b"22/414 " + b"x" * (8 << 20))),
        # --- MIME structure
        (
            "missing closing boundary",
            lambda: (
                _headers(extra=b"Content-Type: multipart/mixed; boundary=z\r\n")
                + CRLF
                + b"--z\r\nContent-Type: text/plain\r\n\r\nsak 22/414\r\n--z\r\nContent-Type: application/pdf\r\n\r\n"
                + pdf
            ),
        ),
        (
            "multipart without boundary parameter",
            lambda: _plain(b"--x\r\nhei\r\n--x--\r\n", extra=b"Content-Type: multipart/mixed\r\n"),
        ),
        (
            "boundary never used",
            lambda: _plain(b"sak 22/414\r\n", extra=b"Content-Type: multipart/mixed; boundary=q\r\n"),
        ),
        (
            "multipart with no parts",
            lambda: _plain(b"--e--\r\n", extra=b"Content-Type: multipart/mixed; boundary=e\r\n"),
        ),
        (
            "garbage base64",
            lambda: _plain(
                b"!!!!****" * 1000 + CRLF, extra=b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n"
            ),
        ),
        (
            "broken quoted-printable",
            lambda: _plain(b"=ZZ=\r\n=4=\r\n=C3=\r\n22/414=", extra=b"Content-Transfer-Encoding: quoted-printable\r\n"),
        ),
        ("unknown transfer encoding", lambda: _plain(b"zzz\r\n", extra=b"Content-Transfer-Encoding: x-martian\r\n")),
        ("invalid Content-Type", lambda: _plain(b"sak 22/414\r\n", extra=b"Content-Type: ;;;/;;; charset==\r\n")),
        ("message/rfc822 nested 50 deep", lambda: nested_rfc822(50)),
        ("5,000 MIME parts", lambda: many_parts(5000)),
        (
            "1,000 alternatives",
            lambda: (
                _headers(extra=b"Content-Type: multipart/alternative; boundary=a\r\n")
                + CRLF
                + b"".join(b"--a\r\nContent-Type: text/html\r\n\r\n<p>%d</p>\r\n" % i for i in range(1000))
                + b"--a--\r\n"
            ),
        ),
        (
            "S/MIME encrypted body",
            lambda: _plain(
                _b64(os.urandom(4096)),
                extra=(
                    b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n"
                    b"Content-Transfer-Encoding: base64\r\n"
                ),
            ),
        ),
        # --- charsets and HTML
        (
            "unknown charset",
            lambda: _plain("Høringssvar".encode("utf-8"), extra=b"Content-Type: text/plain; charset=x-klingon\r\n"),
        ),
        ("unknown charset in encoded word", lambda: _plain(b"x\r\n", subject=b"=?x-unknown?q?H=F8ringssvar_22/414?=")),
        (
            "utf-7 and punycode charsets",
            lambda: _plain(
                b"+AGQ-22/414\r\n", subject=b"=?punycode?q?abc?=", extra=b"Content-Type: text/plain; charset=utf-7\r\n"
            ),
        ),
        (
            "HTML only with script",
            lambda: _plain(
                b"<html><script>alert(1)</script><body><p>H&oslash;ringssvar sak 22/414</p></body></html>",
                extra=b"Content-Type: text/html; charset=utf-8\r\n",
            ),
        ),
        (
            "HTML nested 100,000 divs",
            lambda: _plain(b"<div>" * 100_000 + b"22/414" + b"</div>" * 100_000, extra=b"Content-Type: text/html\r\n"),
        ),
        # --- attachments
        (
            "attachment ../../etc/passwd",
            lambda: _with_attachment(b'filename="../../etc/passwd"', b"root:x:0:0\n", b"text/plain"),
        ),
        ("attachment absolute path", lambda: _with_attachment(b'filename="/etc/cron.d/evil.pdf"', pdf)),
        ("attachment Windows path", lambda: _with_attachment(b'filename="C:\\\\Windows\\\\System32\\\\evil.pdf"', pdf)),
        ("attachment name with NUL", lambda: _with_attachment(b"filename*=utf-8''svar%00.pdf%00.exe", pdf)),
        ("attachment name of 1,000 characters", lambda: _with_attachment(b'filename="' + b"n" * 996 + b'.pdf"', pdf)),
        ("attachment name with CRLF", lambda: _with_attachment(b"filename*=utf-8''a%0D%0ABcc%3A%20x.pdf", pdf)),
        ("attachment name with RTL override", lambda: _with_attachment(b"filename*=utf-8''svar%E2%80%AEfdp.exe", pdf)),
        ("attachment named ..", lambda: _with_attachment(b'filename=".."', pdf)),
        (f"{big_mb} MB attachment", lambda: big_attachment(big_mb)),
        (
            "zip bomb (200 MB of zeros)",
            lambda: _with_attachment(b'filename="vedlegg.zip"', zip_bomb(), b"application/zip"),
        ),
        (
            "docx bomb (200 MB document.xml)",
            lambda: _with_attachment(
                b'filename="hoeringssvar.docx"',
                docx_bomb(),
                b"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ),
        ),
        (
            "docx billion laughs",
            lambda: _with_attachment(
                b'filename="latter.docx"',
                billion_laughs_docx(),
                b"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ),
        ),
        ("PDF with objects nested 200,000 deep", lambda: _with_attachment(b'filename="dyp.pdf"', deep_nesting_pdf())),
        (
            "PDF page tree with a cycle and a billion pages",
            lambda: _with_attachment(b'filename="sider.pdf"', self_referencing_pages_pdf()),
        ),
        (
            "corrupt PDF (random bytes)",
            lambda: _with_attachment(b'filename="skadet.pdf"', b"%PDF-1.4\n" + os.urandom(20_000)),
        ),
        ("PDF declared, not a PDF", lambda: _with_attachment(b'filename="svar.pdf"', b"MZ\x90\x00 this is an exe")),
    ]
    for fixture in sorted(BAD_PDFS.glob("*.pdf")):  # content-stream bomb, page-tree bomb, encrypted, truncated...
        data = fixture.read_bytes()
        builders.append(
            (
                f"fixture {fixture.name}",
                lambda d=data, n=fixture.name: _with_attachment(b'filename="' + n.encode() + b'"', d),
            )
        )
    return [(name, build()) for name, build in builders]
