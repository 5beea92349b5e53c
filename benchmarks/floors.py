"""The floors: what reading the same PDFs costs with pdfplumber alone and with pypdfium2 alone (one core)."""

from __future__ import annotations

import io
import statistics
import time
from collections import Counter


def pdfplumber_words(data: bytes) -> int:
    """pdfplumber's own word extraction over every page (the chosen geometry library's floor)."""
    import pdfplumber

    words = 0
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for page in pdf.pages:
            words += len(page.extract_words())
            page.close()
    return words


def pdfium_text(data: bytes) -> int:
    """pypdfium2's plain text extraction over every page (a near-physical floor for PDF text)."""
    import pypdfium2 as pdfium

    chars = 0
    pdf = pdfium.PdfDocument(data)
    try:
        for page in pdf:
            textpage = page.get_textpage()
            chars += len(textpage.get_text_range())
            textpage.close()
            page.close()
    finally:
        pdf.close()
    return chars


def per_mail_floor(pdfs: list[bytes], usage: Counter[int], extract, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    """Seconds per mail: the median of `repeats` timings of each distinct PDF, weighted by how many mails carry it
    (the same as timing every mail's PDF, without reading identical bytes a thousand times)."""
    extract(pdfs[0])  # imports and first-use setup are not part of the per-mail cost
    seconds: dict[int, float] = {}
    for index in usage:
        timings = []
        for _ in range(repeats):
            began = time.perf_counter()
            extract(pdfs[index])
            timings.append(time.perf_counter() - began)
        seconds[index] = statistics.median(timings)
    return sum(seconds[index] * count for index, count in usage.items()) / sum(usage.values())
