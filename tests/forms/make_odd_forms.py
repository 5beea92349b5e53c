"""Build the forms and bad files that are not made by LibreOffice:

- tests/fixtures/forms/form_vector_boxes.pdf: the form drawn with reportlab, checkboxes as
  vector squares with an X (two lines) or a tick (a polyline) and no glyph; two pages with
  "Side N av M" footers. Expectations beside it.
- tests/fixtures/forms/bad/: an image-only scan, an encrypted PDF, a truncated PDF, zero bytes,
  a .pdf that is not a PDF, a cover letter that is not the form, and PDF bombs (page-tree
  bomb, huge content stream).

    .venv/bin/python tests/forms/make_odd_forms.py   (after make_forms.py: the scan and the
    truncated copy are made from form_org01_ja.pdf)
"""

from __future__ import annotations

import io
import json
import sys
import zlib
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import simpleSplit
from reportlab.pdfgen import canvas

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_forms as mf

FIXTURES = mf.FIXTURES
BAD = FIXTURES / "bad"

FONT, BOLD, SIZE, PITCH, PARAGRAPH_GAP = "Helvetica", "Helvetica-Bold", 11, 14, 9
LEFT, RIGHT, TOP, BOTTOM = 72, A4[0] - 72, A4[1] - 72, 80
BOX = 9


def vector_spec() -> mf.FormSpec:
    return mf.FormSpec(
        name="form_vector_boxes",
        org_types=["Pasient- og brukerorganisasjon"],
        organisation_name="Funksjonshemmedes Fellesorganisasjon – FFO, avdeling for helse- og omsorgspolitikk i Nord-Norge",
        contact_person="Ørjan Bækkelund",
        email="orjan.baekkelund@ffo.no",
        q1_choices=["ja"],
        q1=mf.paragraphs(500, 3, (3, 5)),
        goals=[mf.paragraphs(501, 2), None, mf.paragraphs(502, 1), None, mf.paragraphs(503, 3, (3, 5))],
        q3=mf.paragraphs(504, 2, (3, 5)),
        q4=None,
    )


class _Pages:
    """Lays out drawing operations over pages, so footers can say "Side N av M"."""

    def __init__(self) -> None:
        self.pages: list[list[tuple]] = [[]]
        self.y = TOP

    def need(self, height: float) -> None:
        if self.y - height < BOTTOM:
            self.pages.append([])
            self.y = TOP

    def text(self, text: str, *, bold: bool = False, x: float = LEFT, width: float | None = None) -> None:
        font = BOLD if bold else FONT
        for line in simpleSplit(text, font, SIZE, width or (RIGHT - x)):
            self.need(PITCH)
            self.y -= PITCH
            self.pages[-1].append(("text", x, self.y, line, font))

    def gap(self, amount: float = PARAGRAPH_GAP) -> None:
        self.y -= amount

    def box(self, x: float, ticked: str | None) -> None:
        self.pages[-1].append(("box", x, self.y - 1, ticked))

    def line_with_boxes(self, items: list[tuple[str | None, str]]) -> None:
        self.need(PITCH)
        self.y -= PITCH
        x = LEFT
        for ticked, label in items:
            self.box(x, ticked)
            x += BOX + 4
            self.pages[-1].append(("text", x, self.y, label, FONT))
            x += canvas.Canvas(io.BytesIO()).stringWidth(label, FONT, SIZE) + 18


def draw_vector_form(spec: mf.FormSpec) -> bytes:
    layout = _Pages()
    layout.text(mf.TITLE, bold=True)
    layout.gap()
    layout.text(mf.INTRO)
    for bullet in mf.BULLETS:
        layout.text("• " + bullet, x=LEFT + 18)
    layout.gap()
    for paragraph in (mf.INSTRUCTION, mf.MARK_IT, mf.DEADLINE):
        layout.text(paragraph, bold=paragraph == mf.DEADLINE)
        layout.gap()
    layout.text(mf.ORG_HEADING, bold=True)
    for label in mf.ORG_TYPES:
        layout.line_with_boxes([("x" if label in spec.org_types else None, label)])
    layout.gap()
    layout.text(mf.CONTACT_HEADING, bold=True)
    for label, value in (
        (mf.NAME_LABEL, spec.organisation_name),
        (mf.PERSON_LABEL, spec.contact_person),
        (mf.EMAIL_LABEL, spec.email),
    ):
        layout.text(f"{label} {value or mf.PLACEHOLDER}")
    layout.gap()
    layout.text(mf.Q1, bold=True)
    layout.gap(4)
    layout.line_with_boxes(
        [("tick" if value in spec.q1_choices else None, label) for value, label in mf.Q1_CHOICES.items()]
    )

    def answer(paragraphs: list[str] | None) -> None:
        for index, paragraph in enumerate(paragraphs or [mf.PLACEHOLDER]):
            if index:
                layout.gap()
            layout.text(paragraph)
        layout.gap()

    layout.gap(4)
    answer(spec.q1)
    layout.text(mf.Q2, bold=True)
    layout.gap()
    for title, goal in zip(mf.GOALS, spec.goals, strict=False):
        layout.text(title, bold=True)
        answer(goal)
    layout.text(mf.Q3, bold=True)
    answer(spec.q3)
    layout.text(mf.Q4, bold=True)
    answer(spec.q4)

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.setTitle(mf.TITLE)
    total = len(layout.pages)
    for number, operations in enumerate(layout.pages, start=1):
        for operation in operations:
            if operation[0] == "text":
                _, x, y, text, font = operation
                pdf.setFont(font, SIZE)
                pdf.drawString(x, y, text)
            else:
                _, x, y, ticked = operation
                pdf.setLineWidth(0.8)
                pdf.rect(x, y, BOX, BOX, stroke=1, fill=0)
                if ticked == "x":
                    pdf.line(x + 1.5, y + 1.5, x + BOX - 1.5, y + BOX - 1.5)
                    pdf.line(x + 1.5, y + BOX - 1.5, x + BOX - 1.5, y + 1.5)
                elif ticked == "tick":
                    path = pdf.beginPath()
                    path.moveTo(x + 1.5, y + 4.5)
                    path.lineTo(x + 3.8, y + 1.5)
                    path.lineTo(x + BOX - 1, y + BOX + 1)
                    pdf.drawPath(path, stroke=1, fill=0)
        pdf.setFont(FONT, 9)
        pdf.drawCentredString(A4[0] / 2, 40, f"Side {number} av {total}")
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def image_only_copy(pdf_bytes: bytes) -> bytes:
    """Rasterise every page (no text layer left), like a scan."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf_bytes)
    images = [document[i].render(scale=72 / 72).to_pil().convert("L") for i in range(len(document))]
    buffer = io.BytesIO()
    images[0].save(buffer, "PDF", save_all=True, append_images=images[1:], resolution=72)
    return buffer.getvalue()


def cover_letter(encrypt: str | None = None) -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, encrypt=encrypt)
    y = TOP
    for line in [
        "Direktoratet for e-helse",
        "Postboks 6737 St. Olavs plass, 0130 Oslo",
        "",
        "Vår ref.: 2022/118   Deres ref.: Saksnummer 22/414",
        "Oslo, 28.09.2022",
        "",
        "Høringssvar – Nasjonal e-helsestrategi for helse- og omsorgssektoren",
        "",
        "Vi viser til høringsbrev av 1. juli 2022 og takker for muligheten til å gi innspill.",
        "Vårt utfylte høringssvarskjema følger vedlagt. Vi har ingen merknader utover det",
        "som står i skjemaet, men ønsker å delta i det videre arbeidet med strategien.",
        "",
        "Med vennlig hilsen",
        "Åse Ødegård, kommunalsjef helse og omsorg",
        "Ørland kommune",
    ]:
        pdf.setFont(FONT, SIZE)
        pdf.drawString(LEFT, y, line)
        y -= PITCH
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF from numbered object bodies (object 1 is the catalog), with a correct xref."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
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


def page_tree_bomb(levels: int = 7, fanout: int = 10) -> bytes:
    """Each Pages node lists the same child `fanout` times: fanout**levels pages in a few hundred bytes."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    for level in range(levels):
        node = 2 + level
        kids = b" ".join([b"%d 0 R" % (node + 1)] * fanout)
        parent = b" /Parent %d 0 R" % (node - 1) if level else b""
        objects.append(b"<< /Type /Pages /Kids [%s] /Count %d%s >>" % (kids, fanout ** (levels - level), parent))
    leaf = 2 + levels
    objects.append(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Contents %d 0 R >>" % (leaf - 1, leaf + 1))
    stream = b"BT /F1 12 Tf 72 720 Td (Side) Tj ET"
    objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    return _raw_pdf(objects)


def content_stream_bomb(text_objects: int = 3_000_000) -> bytes:
    """One page whose deflated content stream expands to ~100 MB of text-showing operators."""
    chunk = b"BT /F1 1 Tf 10 10 Td (Klikk) Tj ET\n" * 1000
    compressor = zlib.compressobj(9)
    compressed = b"".join(compressor.compress(chunk) for _ in range(text_objects // 1000)) + compressor.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(compressed) + compressed + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return _raw_pdf(objects)


def main() -> int:
    BAD.mkdir(parents=True, exist_ok=True)
    spec = vector_spec()
    (FIXTURES / f"{spec.name}.pdf").write_bytes(draw_vector_form(spec))
    (FIXTURES / f"{spec.name}.expected.json").write_text(
        json.dumps(spec.expected(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )

    source = (FIXTURES / "form_org01_ja.pdf").read_bytes()
    (BAD / "scan_image_only.pdf").write_bytes(image_only_copy(source))
    (BAD / "truncated.pdf").write_bytes(source[: len(source) * 2 // 5])
    (BAD / "zero_bytes.pdf").write_bytes(b"")
    (BAD / "not_a_pdf.pdf").write_bytes("<html><body>Dette er ikke en PDF, men en nettside.</body></html>\n".encode())
    (BAD / "letter_not_a_form.pdf").write_bytes(cover_letter())
    (BAD / "encrypted.pdf").write_bytes(cover_letter(encrypt="hemmelig"))
    (BAD / "bomb_page_tree.pdf").write_bytes(page_tree_bomb())
    (BAD / "bomb_content_stream.pdf").write_bytes(content_stream_bomb())
    print(f"wrote {spec.name} and bad files to {BAD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
