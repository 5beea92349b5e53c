"""The benchmark's mail: realistic høringssvar mails with 2-3 page form PDFs, small mails, and one 30 MB mail."""

from __future__ import annotations

import os
import random
from datetime import datetime, timedelta
from pathlib import Path

from tests import mailfactory as mf

# The backlog uses the committed filled-in forms of 2-3 pages (the 7-page stress form is left out).
MAX_FORM_PAGES = 3


def form_pdfs() -> list[tuple[str, bytes]]:
    import pypdfium2 as pdfium

    chosen = []
    for path in mf.real_form_pdfs():
        data = path.read_bytes()
        pdf = pdfium.PdfDocument(data)
        pages = len(pdf)
        pdf.close()
        if 2 <= pages <= MAX_FORM_PAGES:
            chosen.append((path.name, data))
    if not chosen:
        raise SystemExit("no 2-3 page form PDFs in tests/fixtures/forms")
    return chosen


def internaldate(index: int) -> datetime:
    """Arrivals spread over September 2022 (all on time)."""
    return datetime(2022, 9, 1, 8, 0, tzinfo=mf.OSLO) + timedelta(minutes=37 * index % (29 * 24 * 60))


def response(index: int, forms: list[tuple[str, bytes]]) -> tuple[bytes, int]:
    """Response mail number `index` (unique sender and Message-ID) and which form PDF it carries."""
    rng = random.Random(index)
    org = mf.ORGANISATIONS[index % len(mf.ORGANISATIONS)]
    name = mf.PERSON_NAMES[(index * 7) % len(mf.PERSON_NAMES)]
    local, domain = mf.address_for(name, org.domain).split("@", 1)
    address = f"{local}.{index}@{domain}"  # one receipt per respondent: the per-address rate limit never bites
    form_index = index % len(forms)
    # Each respondent's PDF is its own file (as in real life): a comment after %%EOF makes the bytes unique, so the
    # content-addressed store really writes every one, while the parse work stays that of the committed form.
    pdf = forms[form_index][1] + b"\n%% respondent %d\n" % index
    variant = index % 6
    raw = mf.response_mail(
        org=org.name,
        sender_name=name,
        sender_addr=address,
        subject=f"Høringssvar fra {org.name} - sak {mf.CASE_NUMBER}",
        attachments=[(f"Høringssvar {org.name}.pdf", "application/pdf", pdf)],
        message_id=f"<bench-{index}-{rng.randrange(10**9)}@{domain}>",
        date=internaldate(index) - timedelta(seconds=30),
        transfer=("quoted-printable", "base64", "quoted-printable", "8bit", "base64", "quoted-printable")[variant],
        html=variant in (0, 1, 4),
    )
    return raw, form_index


def small(index: int) -> bytes:
    """A small plain mail (for the idle-poll folders)."""
    return mf.plain_mail(
        f"Melding {index}",
        "Hei,\n\nDette er en kort melding.\n\nHilsen\nOla\n",
        "Ola Brenna",
        f"ola.{index}@example.no",
        message_id=f"<idle-{index}@example.no>",
        date=internaldate(index),
    )


def big_pdf(size: int) -> bytes:
    """A one-page PDF with a scanned-looking image of about `size` bytes (incompressible, like a photo)."""
    width = 2400
    height = max(1, size // (width * 3))
    image = os.urandom(width * height * 3)
    content = f"q {width * 72 // 300} 0 0 {height * 72 // 300} 0 0 cm /Im0 Do Q".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width * 72 // 300} {height * 72 // 300}] "
        f"/Resources << /XObject << /Im0 5 0 R >> >> /Contents 4 0 R >>".encode(),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        f"<< /Type /XObject /Subtype /Image /Width {width} /Height {height} /ColorSpace /DeviceRGB "
        f"/BitsPerComponent 8 /Length {len(image)} >>\nstream\n".encode()
        + image
        + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def big_mail(total_bytes: int, forms: list[tuple[str, bytes]]) -> bytes:
    """A response whose raw size is about `total_bytes`: the form plus a scanned appendix (base64 adds 4/3)."""
    appendix = big_pdf(int(total_bytes * 3 / 4) - 60_000)
    org = mf.ORGANISATIONS[0]
    return mf.response_mail(
        org=org.name,
        sender_name="Åse Ødegård",
        sender_addr=f"ase.odegard.big@{org.domain}",
        attachments=[
            (f"Høringssvar {org.name}.pdf", "application/pdf", forms[0][1]),
            ("Vedlegg - skannet utredning.pdf", "application/pdf", appendix),
        ],
        message_id=f"<bench-big@{org.domain}>",
        date=internaldate(0),
    )


def write_maildir_files(folder: Path, raws: list[bytes], prefix: str) -> None:
    """Drop mails straight into a Maildir's new/ (Dovecot indexes them at the next SELECT)."""
    new = folder / "new"
    new.mkdir(parents=True, exist_ok=True)
    for index, raw in enumerate(raws):
        (new / f"{1600000000 + index}.{prefix}{index}.bench").write_bytes(raw)
