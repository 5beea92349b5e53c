"""Page image -> words with boxes and confidences, through Tesseract (pytesseract).

The image is cleaned first: greyscale, scaled to about 300 dpi (Tesseract reads body text best
there; it also gets "@" right), uneven lighting divided out, speckle removed, and small skew
straightened. Words come back in the coordinates of the cleaned image, which is kept for the
checkbox reader (scan_boxes.py).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

# Tesseract's language data: Norwegian first, English for symbols the Norwegian model lacks ("@").
LANGUAGES = "nor+eng"
TARGET_DPI = 300
# A page bigger than this (pixels after scaling) is scaled down: bounds memory and time.
MAX_PIXELS = 12_000_000
# Skew searched (degrees) and the step; phone photos and crooked scans stay well inside.
MAX_SKEW_DEGREES = 6.0
SKEW_STEP_DEGREES = 0.2
# One Tesseract call per page may take this long before it is killed.
PAGE_TIMEOUT_S = 120
# Grey level below which a pixel is ink (0 black .. 255 white) after background normalisation.
INK_LEVEL = 140


class OcrUnavailable(Exception):
    """Tesseract (or its Norwegian data) is not installed here."""


@dataclass(frozen=True, slots=True)
class OcrWord:
    text: str
    confidence: float  # Tesseract's word confidence, 0..100
    x0: int
    top: int
    x1: int
    bottom: int
    line_key: tuple[int, int, int]  # (block, paragraph, line) as Tesseract grouped them


@dataclass
class OcrPage:
    words: list[OcrWord]
    # The cleaned page image (greyscale, 0 = ink) the words' boxes refer to.
    image: np.ndarray
    dpi: float
    skew_degrees: float
    # The page as Tesseract's searchable PDF (the cleaned image, the words as invisible text), when asked for.
    pdf: bytes | None = None
    pdf_error: str | None = None
    # The resolution of the page as it came (a 150 dpi scan is cleaned at 300 dpi; its searchable copy need not be).
    source_dpi: float = 0.0

    @property
    def ink(self) -> np.ndarray:
        return self.image < INK_LEVEL


def tesseract_available() -> bool:
    """Tesseract on PATH with the Norwegian data: checked without running a recognition."""
    if shutil.which("tesseract") is None:
        return False
    try:
        import pytesseract  # type: ignore[import-untyped]  # no type information published for pytesseract

        return "nor" in pytesseract.get_languages(config="")
    except Exception:
        return False


def clean_page(image: Image.Image, dpi: float) -> tuple[np.ndarray, float, float]:
    """Greyscale, lighting evened out, speckle removed, deskewed, ~300 dpi. Returns (pixels, dpi, skew).

    The cleaning runs at the image's own resolution (speckle is a pixel there); rotation and
    scaling to 300 dpi are then one resampling pass."""
    grey = image.convert("L")
    if dpi <= 0:
        dpi = TARGET_DPI
    if dpi > TARGET_DPI * 1.05:  # a fine scan: shrink first, everything after is cheaper
        grey = grey.resize(
            (round(grey.width * TARGET_DPI / dpi), round(grey.height * TARGET_DPI / dpi)), Image.Resampling.LANCZOS
        )
        dpi = float(TARGET_DPI)
    grey = _even_out_lighting(grey).filter(ImageFilter.MedianFilter(3))
    skew = estimate_skew(grey)
    scale = TARGET_DPI / dpi
    if grey.width * grey.height * scale * scale > MAX_PIXELS:
        scale = (MAX_PIXELS / (grey.width * grey.height)) ** 0.5
    if abs(skew) < SKEW_STEP_DEGREES / 2:
        skew = 0.0
    if skew or abs(scale - 1.0) > 0.05:
        grey = _rotate_and_scale(grey, skew, scale)
        dpi *= scale
    return np.asarray(grey, dtype=np.uint8), dpi, skew


def _rotate_and_scale(grey: Image.Image, degrees: float, scale: float) -> Image.Image:
    """Rotate counter-clockwise by `degrees` about the centre and scale, keeping the whole page."""
    radians = np.deg2rad(degrees)
    cos, sin = float(np.cos(radians)), float(np.sin(radians))
    w, h = grey.size
    out_w = int(np.ceil((abs(w * cos) + abs(h * sin)) * scale))
    out_h = int(np.ceil((abs(w * sin) + abs(h * cos)) * scale))
    # Output pixel (u, v) -> input (x, y): undo the scale, then rotate back about the centres.
    a, b = cos / scale, -sin / scale
    d, e = sin / scale, cos / scale
    c = w / 2 - a * out_w / 2 - b * out_h / 2
    f = h / 2 - d * out_w / 2 - e * out_h / 2
    return grey.transform(
        (out_w, out_h), Image.Transform.AFFINE, (a, b, c, d, e, f), resample=Image.Resampling.BILINEAR, fillcolor=255
    )


def _even_out_lighting(grey: Image.Image) -> Image.Image:
    """Divide by a blurred background (paper shade, shadows of a photo) and stretch to white paper."""
    pixels = np.asarray(grey, dtype=np.float32)
    small = grey.reduce(8) if min(grey.size) >= 64 else grey
    # The background: the brightest nearby paper, so text strokes do not darken it.
    background = small.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.GaussianBlur(4))
    background = background.resize(grey.size, Image.Resampling.BILINEAR)
    ratio = pixels / np.maximum(np.asarray(background, dtype=np.float32), 1.0)
    return Image.fromarray(np.clip(ratio * 255.0, 0, 255).astype(np.uint8))


def estimate_skew(grey: Image.Image) -> float:
    """The rotation (degrees, counter-clockwise positive) that makes text lines horizontal: the angle
    whose horizontal ink profile is sharpest (projection-profile method), on a reduced image."""
    factor = max(1, round(min(grey.size) / 600))
    small = grey.reduce(factor) if factor > 1 else grey
    ink = Image.fromarray(((np.asarray(small) < INK_LEVEL) * 255).astype(np.uint8))

    def sharpness(angle: float) -> float:
        rotated = np.asarray(ink.rotate(angle, resample=Image.Resampling.NEAREST, expand=False), dtype=np.float32)
        profile = rotated.sum(axis=1)
        return float(np.square(np.diff(profile)).sum())

    coarse = np.arange(-MAX_SKEW_DEGREES, MAX_SKEW_DEGREES + 1e-9, 1.0)
    best = max(coarse, key=sharpness)
    fine = np.arange(best - 1.0, best + 1.0 + 1e-9, SKEW_STEP_DEGREES)
    return round(float(max(fine, key=sharpness)), 2)


def recognise(pixels: np.ndarray, dpi: float, *, timeout_s: float = PAGE_TIMEOUT_S) -> list[OcrWord]:
    """Tesseract's words with boxes and confidences, in reading order."""
    words, _pdf, _error = _run_tesseract(pixels, dpi, timeout_s, with_pdf=False)
    return words


def _run_tesseract(
    pixels: np.ndarray, dpi: float, timeout_s: float, *, with_pdf: bool
) -> tuple[list[OcrWord], bytes | None, str | None]:
    """One Tesseract run: the words (TSV) and, with `with_pdf`, the page as a searchable PDF (the image with an
    invisible text layer) from the same recognition. Returns (words, pdf, why there is no pdf)."""
    import tempfile

    import pytesseract

    # One thread per Tesseract: the child processes already run in parallel, and OpenMP
    # threads on a busy machine make recognition slower, not faster.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    with tempfile.TemporaryDirectory(prefix="postmottak-ocr-") as folder:
        source, base = os.path.join(folder, "page.png"), os.path.join(folder, "page")
        Image.fromarray(pixels).save(source, dpi=(dpi, dpi), compress_level=1)
        config = f"--psm 3 --dpi {round(dpi)} -c tessedit_create_tsv=1"
        pdf_error: str | None = None
        try:
            _tesseract(source, base, "tsv pdf" if with_pdf else "tsv", config, timeout_s)
        except pytesseract.TesseractError as exc:
            if not with_pdf:
                raise
            # The PDF renderer failed (its font file missing, say): read the page without it.
            pdf_error = f"Tesseract kunne ikke lage PDF ({exc})"[:300]
            _tesseract(source, base, "tsv", config, timeout_s)
        with open(base + ".tsv", encoding="utf-8") as handle:
            data = pytesseract.pytesseract.file_to_dict(handle.read(), "\t", -1)
        pdf: bytes | None = None
        if with_pdf and pdf_error is None:
            try:
                with open(base + ".pdf", "rb") as handle:
                    pdf = handle.read()
            except OSError as exc:
                pdf_error = f"Tesseract laget ingen PDF ({exc.strerror})"
    return _words(data), pdf, pdf_error


def _tesseract(source: str, base: str, extensions: str, config: str, timeout_s: float) -> None:
    import pytesseract

    try:
        pytesseract.pytesseract.run_tesseract(source, base, extensions, LANGUAGES, config, timeout=timeout_s)
    except pytesseract.TesseractNotFoundError as exc:
        raise OcrUnavailable(str(exc)) from None


def _words(data: dict[str, list[object]]) -> list[OcrWord]:
    words: list[OcrWord] = []
    for i, text in enumerate(data.get("text", [])):
        text = str(text or "").strip()
        confidence = float(data["conf"][i])  # type: ignore[arg-type]  # numbers as file_to_dict parsed them
        if not text or confidence < 0:
            continue
        left, top, width, height = (int(data[key][i]) for key in ("left", "top", "width", "height"))  # type: ignore[call-overload]
        words.append(
            OcrWord(
                text,
                confidence,
                left,
                top,
                left + width,
                top + height,
                (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i])),  # type: ignore[call-overload]
            )
        )
    return words


def ocr_page(image: Image.Image, dpi: float, *, timeout_s: float = PAGE_TIMEOUT_S, searchable: bool = False) -> OcrPage:
    """Clean and read one page; with `searchable`, the same Tesseract run also writes the page as a searchable
    PDF (kept in `OcrPage.pdf`, or why not in `OcrPage.pdf_error`)."""
    source_dpi = dpi
    pixels, dpi, skew = clean_page(image, dpi)
    words, pdf, error = _run_tesseract(pixels, dpi, timeout_s, with_pdf=searchable)
    return OcrPage(words, pixels, dpi, skew, pdf, error, source_dpi)
