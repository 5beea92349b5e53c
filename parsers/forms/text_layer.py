"""A searchable PDF of a scanned document, from the Tesseract run that read it.

Tesseract writes each OCR'd page as a one-page PDF: the cleaned page image (deskewed, greyscale, ~300 dpi) with
the recognised words as invisible text at their places. Here those pages are put together (pikepdf) into one
PDF: for a PDF, its text pages copied as they are and its scanned pages replaced by the OCR'd ones, in the
original order; for an image attachment, its pages. The page image is stored as JPEG at about the scan's own
resolution (Tesseract writes it losslessly at ~300 dpi, about 1 MB a page). The original file is never changed: this is a second, derived file.

Nothing here raises: a layer that cannot be made comes back with `error` set (the mail is registered anyway).
"""

from __future__ import annotations

import io

from PIL import Image
from pydantic import BaseModel, Field

from .ocr import LANGUAGES, OcrPage

JPEG_QUALITY = 70
# The page image of the searchable copy: at the scan's own resolution within these bounds (Tesseract's copy is
# the cleaned page at ~300 dpi, four times the pixels of a 150 dpi scan).
IMAGE_DPI_RANGE = (150.0, 200.0)
TOOL = f"Tesseract ({LANGUAGES})"


class TextLayer(BaseModel):
    """The searchable version of one document, or why there is none."""

    pdf: bytes | None = None
    # Pages (0-based, of the original and of `pdf` alike) that were read by OCR and carry the text layer.
    ocr_pages: list[int] = Field(default_factory=list)
    text: str = ""  # the OCR'd text, page by page, for search
    error: str | None = None
    tool: str = TOOL


def page_text(page: OcrPage) -> str:
    """The words of a page in Tesseract's lines, a line per line."""
    lines: dict[tuple[int, int, int], list[str]] = {}
    for word in page.words:
        lines.setdefault(word.line_key, []).append(word.text)
    return "\n".join(" ".join(words) for words in lines.values())


def build_text_layer(pages: list[tuple[int, OcrPage]], original_pdf: bytes | None = None) -> TextLayer:
    """The searchable PDF of a document whose `pages` were OCR'd (index, page); `original_pdf` supplies the
    pages that were not (a mixed PDF)."""
    ocr_pages = [index for index, _page in pages]
    text = "\n\n".join(page_text(page) for _index, page in pages)
    missing = [page.pdf_error or "ingen PDF fra Tesseract" for _index, page in pages if page.pdf is None]
    if missing or not pages:
        return TextLayer(ocr_pages=ocr_pages, text=text, error=missing[0] if missing else "ingen sider lest med OCR")
    try:
        return TextLayer(pdf=_assemble(pages, original_pdf), ocr_pages=ocr_pages, text=text)
    except Exception as exc:  # a PDF pikepdf cannot copy pages from: the fields are read all the same
        return TextLayer(ocr_pages=ocr_pages, text=text, error=f"{type(exc).__name__}: {exc}"[:300])


def _assemble(pages: list[tuple[int, OcrPage]], original_pdf: bytes | None) -> bytes:
    import pikepdf

    by_index = dict(pages)
    output = pikepdf.new()
    sources: list[pikepdf.Pdf] = []
    try:
        original = pikepdf.open(io.BytesIO(original_pdf)) if original_pdf is not None else None
        if original is not None:
            sources.append(original)
        count = len(original.pages) if original is not None else max(by_index) + 1
        for index in range(count):
            page = by_index.get(index)
            if page is None:
                if original is not None:
                    output.pages.append(original.pages[index])
                continue
            assert page.pdf is not None
            scanned = pikepdf.open(io.BytesIO(page.pdf))
            sources.append(scanned)
            _as_jpeg(scanned, page)
            output.pages.append(scanned.pages[0])
        output.docinfo["/Producer"] = f"postmottak, {TOOL}"
        buffer = io.BytesIO()
        output.save(buffer, compress_streams=True, object_stream_mode=pikepdf.ObjectStreamMode.generate)
        return buffer.getvalue()
    finally:
        output.close()
        for source in sources:
            source.close()


def _as_jpeg(pdf: object, page: OcrPage) -> None:
    """Tesseract's page image (the cleaned page, losslessly) re-encoded as JPEG from the same pixels."""
    import pikepdf

    assert isinstance(pdf, pikepdf.Pdf)
    height, width = page.image.shape
    xobjects: dict[str, pikepdf.Object] = dict(pdf.pages[0].Resources.get("/XObject", {}))
    for _name, image in xobjects.items():
        if image.get("/Subtype") != "/Image" or (int(image.Width), int(image.Height)) != (width, height):
            continue
        low, high = IMAGE_DPI_RANGE
        scale = min(1.0, max(low, min(high, page.source_dpi or high)) / page.dpi)
        picture = Image.fromarray(page.image)
        if scale < 0.95:  # the image is drawn to the page's size whatever its pixels: the text stays in place
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            picture = picture.resize(size, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        image.write(buffer.getvalue(), filter=pikepdf.Name.DCTDecode)
        image.Width, image.Height = picture.width, picture.height
        image.ColorSpace, image.BitsPerComponent = pikepdf.Name.DeviceGray, 8
        for key in ("/DecodeParms", "/SMask"):
            if key in image:
                del image[key]
