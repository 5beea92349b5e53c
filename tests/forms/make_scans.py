"""Scans and photos made from the generated form PDFs, for the OCR tests and benchmark.

Each kind imitates a way a respondent sends a printed form back: a grey office scan, a
black-and-white fax-like scan, a slightly crooked scan with speckle, and a phone photo (JPEG,
at an angle, uneven light). Everything is derived from the committed form PDFs, whose expected
fields come from the generator's input (make_forms.py), so nothing big is committed.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import numpy as np
import pypdfium2 as pdfium
from PIL import Image, ImageFilter


@dataclass(frozen=True)
class ScanKind:
    name: str
    dpi: int
    mode: str  # "L" grey or "1" black-and-white
    rotate_degrees: float = 0.0
    noise: float = 0.0  # share of pixels flipped to speckle
    photo: bool = False  # JPEG, uneven light, slight perspective


SCAN_KINDS = {
    "grey_150": ScanKind("grey_150", 150, "L"),
    "bw_200": ScanKind("bw_200", 200, "1"),
    "crooked_noisy_150": ScanKind("crooked_noisy_150", 150, "L", rotate_degrees=1.5, noise=0.004),
    "photo_jpeg": ScanKind("photo_jpeg", 150, "L", rotate_degrees=-2.5, noise=0.002, photo=True),
}


def render_pages(pdf_bytes: bytes, dpi: int) -> list[Image.Image]:
    pdf = pdfium.PdfDocument(pdf_bytes)
    try:
        return [pdf[i].render(scale=dpi / 72, grayscale=True).to_pil().convert("L") for i in range(len(pdf))]
    finally:
        pdf.close()


def degrade(page: Image.Image, kind: ScanKind, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = page
    if kind.photo:
        image = _photo_light(image, rng)
    if kind.rotate_degrees:
        background = 235 if kind.photo else 255
        image = image.rotate(kind.rotate_degrees, resample=Image.BICUBIC, expand=True, fillcolor=background)
    if kind.photo:
        # A phone held a little off-parallel: the top edge narrower than the bottom.
        w, h = image.size
        inset = 0.02 * w
        image = image.transform(
            (w, h), Image.QUAD, (inset, 0, 0, h, w, h, w - inset, 0), resample=Image.BICUBIC, fillcolor=200
        )
        image = image.filter(ImageFilter.GaussianBlur(0.6))
    if kind.noise:
        pixels = np.asarray(image, dtype=np.uint8).copy()
        mask = rng.random(pixels.shape) < kind.noise
        pixels[mask] = rng.choice(np.array([0, 255], dtype=np.uint8), size=int(mask.sum()))
        image = Image.fromarray(pixels)
    if kind.mode == "1":
        image = image.point(lambda v: 255 if v > 150 else 0).convert("1")
    return image


def _photo_light(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Paper lit from one side: a brightness ramp, a grey cast, and sensor grain."""
    pixels = np.asarray(image, dtype=np.float32)
    h, w = pixels.shape
    ramp = np.linspace(0.78, 1.0, w, dtype=np.float32)[None, :] * np.linspace(0.9, 1.0, h, dtype=np.float32)[:, None]
    lit = pixels * ramp * 0.93 + rng.normal(0, 4, pixels.shape)
    return Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8))


def scanned_pdf(pages: list[Image.Image], dpi: int) -> bytes:
    """An image-only PDF, as a scanner writes it."""
    buffer = io.BytesIO()
    pages[0].save(buffer, format="PDF", save_all=True, append_images=pages[1:], resolution=dpi)
    return buffer.getvalue()


def photo_jpeg(page: Image.Image, quality: int = 80) -> bytes:
    buffer = io.BytesIO()
    page.convert("L").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def scan_of(pdf_bytes: bytes, kind: ScanKind, *, seed: int = 0, max_pages: int | None = None) -> tuple[bytes, str]:
    """(file bytes, filename suffix): an image-only PDF, or a JPEG of the first page for a photo."""
    pages = render_pages(pdf_bytes, kind.dpi)[:max_pages]
    degraded = [degrade(page, kind, seed + index) for index, page in enumerate(pages)]
    if kind.photo:
        return photo_jpeg(degraded[0]), ".jpg"
    return scanned_pdf(degraded, kind.dpi), ".pdf"


if __name__ == "__main__":
    import sys
    from pathlib import Path

    source, kind_name, out = sys.argv[1], sys.argv[2], sys.argv[3]
    data, _suffix = scan_of(Path(source).read_bytes(), SCAN_KINDS[kind_name], seed=random.randrange(1000))
    Path(out).write_bytes(data)
