"""How sure OCR is of each field of a scanned form, said in the result.

Every field read by OCR is marked with the code `ocr.field:<key>:<confidence>` (or
`ocr.low_confidence:<key>:<confidence>` below the threshold, with a warning to check it against
the image); confidence is 0..100: Tesseract's word confidence (weighted by word length) for text,
the pixel reading's certainty for checkboxes (the least sure box of the field).

Hook for a per-field result model: `field_confidences(result, reading, profile)` returns
{key: confidence}; a model with a per-field "how read" sets it to "ocr" with that confidence
for each key returned, and `LOW_CONFIDENCE` decides its warning.
"""

from __future__ import annotations

import difflib

from .models import FormResult
from .profile import FormProfile
from .scan_reader import ScanReading

# Below this confidence (0..100) a field is flagged for checking, and the form is `partial`.
LOW_CONFIDENCE = 80.0
# Share of a value's characters that must be found among the OCR words for it to count as read by OCR.
MIN_MATCHED_SHARE = 0.6


def field_confidences(result: FormResult, reading: ScanReading, profile: FormProfile) -> dict[str, float]:
    values = result.flat_values()
    confidences: dict[str, float] = {}
    for section in profile.sections:
        if section.kind == "checkboxes" and section.field in reading.box_confidences:
            confidences[section.field] = min(reading.box_confidences[section.field])
        if section.choice_field and section.choice_field in reading.box_confidences:
            confidences[section.choice_field] = min(reading.box_confidences[section.choice_field])
        if section.kind in ("inline", "text") and section.field:
            value = values.get(section.field)
            if isinstance(value, str) and value.strip():
                confidence = _text_confidence(value, reading.tokens, short=section.kind == "inline")
                if confidence is not None:
                    confidences[section.field] = confidence
    return confidences


def _text_confidence(value: str, tokens: list[tuple[str, float]], *, short: bool = False) -> float | None:
    """Length-weighted mean confidence of the OCR words the value was made of. For a short value (a name, an
    address) one doubtful word is a wrong value: the mean is pulled halfway to its least sure word."""
    wanted = value.split()
    words = [text for text, _confidence in tokens]
    matcher = difflib.SequenceMatcher(None, words, wanted, autojunk=False)
    total = weighted = 0.0
    least = 100.0
    for block in matcher.get_matching_blocks():
        for offset in range(block.size):
            text, confidence = tokens[block.a + offset]
            total += len(text)
            weighted += len(text) * confidence
            least = min(least, confidence)
    # Only a value mostly made of OCR words was read by OCR (a text page's value may share a few words).
    if not total or total < MIN_MATCHED_SHARE * sum(len(word) for word in wanted):
        return None
    mean = weighted / total
    return round((mean + least) / 2 if short else mean, 1)


def mark_ocr_fields(result: FormResult, reading: ScanReading, profile: FormProfile) -> FormResult:
    """The result with every OCR-read field marked (codes and warnings), and `partial` unless all are sure."""
    if result.form_status not in ("parsed", "partial"):
        return result
    names = {}
    for section in profile.sections:
        if section.field:
            names[section.field] = section.display_name
        if section.choice_field:
            names[section.choice_field] = f"{section.display_name} (avkrysning)"
    confidences = field_confidences(result, reading, profile)
    messages: list[str] = [
        f"Skjemaet er et skannet bilde og er lest med tekstgjenkjenning (OCR, side {_pages(reading.pages)}); "
        "kontroller feltene mot bildet."
    ]
    codes: list[str] = ["ocr.document"]
    low = False
    for key, confidence in confidences.items():
        name = _short(names.get(key, key))
        if confidence < LOW_CONFIDENCE:
            low = True
            codes.append(f"ocr.low_confidence:{key}:{confidence:.0f}")
            messages.append(
                f"«{name}» er lest med OCR med lav sikkerhet ({confidence:.0f} %) og må kontrolleres mot bildet."
            )
        else:
            codes.append(f"ocr.field:{key}:{confidence:.0f}")
            messages.append(f"«{name}» er lest med OCR (sikkerhet {confidence:.0f} %).")
    status = "partial" if low or result.form_status == "partial" else "parsed"
    return result.model_copy(
        update={
            "warnings": result.warnings + messages,
            "warning_codes": result.warning_codes + codes,
            "form_status": status,
        }
    )


def _pages(pages: list[int]) -> str:
    return ", ".join(str(page + 1) for page in pages)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
