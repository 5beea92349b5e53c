"""Checkboxes on a page image: the square just before an option label, ticked or not, from pixels.

The option label's position comes from OCR; the box is searched for in a strip to the left of
(and overlapping) the label's first word, as the square whose outline is darkest. Ink inside the
square (away from its outline) means ticked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Box side relative to the label's text height (ascender to descender).
MIN_SIDE = 0.7
MAX_SIDE = 1.45
# Search strip: this many text heights left of the label's first word, and into it (glued boxes).
SEARCH_LEFT = 3.0
SEARCH_INTO = 1.6
SEARCH_VERTICAL = 0.35
# Share of a square's outline that must be ink for it to be a box.
MIN_OUTLINE = 0.72
# Share of the box interior (outline trimmed off) that is ink: above this, ticked.
TICK_INK = 0.07
# Ink is darker than this share of the way from the region's darkest ink to its paper.
INK_SHARE = 0.6
# A region whose darkest and paper levels differ less than this holds no ink.
INK_CONTRAST = 60
# The interior skips this share of the side on every edge (the outline and its blur).
INTERIOR_MARGIN = 0.22


@dataclass(frozen=True, slots=True)
class BoxReading:
    ticked: bool
    confidence: float  # 0..1
    x0: int
    top: int
    x1: int
    bottom: int
    interior_ink: float


def read_box_before(grey: np.ndarray, word_box: tuple[int, int, int, int], text_height: float) -> BoxReading | None:
    """The checkbox before a label whose first word has `word_box` (x0, top, x1, bottom) on the greyscale
    page `grey` (0 = black), or None."""
    x0, top, x1, bottom = word_box
    h = max(float(text_height), 6.0)
    left = max(0, int(x0 - SEARCH_LEFT * h))
    right = min(grey.shape[1], int(min(x1, x0 + SEARCH_INTO * h)))
    upper = max(0, int(top - SEARCH_VERTICAL * h))
    lower = min(grey.shape[0], int(bottom + SEARCH_VERTICAL * h))
    if right - left < MIN_SIDE * h or lower - upper < MIN_SIDE * h:
        return None
    region = ink_mask(grey[upper:lower, left:right])
    # Tolerate outlines a pixel off the ideal square (scan blur, residual skew).
    thick = _dilate(region)
    best: tuple[float, int, int, int] | None = None
    for side in range(max(4, int(MIN_SIDE * h)), int(MAX_SIDE * h) + 1):
        score = _outline_scores(thick, side)
        if score.size == 0:
            continue
        row, col = np.unravel_index(int(np.argmax(score)), score.shape)
        value = float(score[row, col])
        # Prefer the larger of nearly equal squares: a smaller square fits inside a box's corner.
        larger_and_as_good = value >= best[0] - 0.02 and side > best[3] and value >= MIN_OUTLINE if best else False
        if best is None or value > best[0] + 0.02 or larger_and_as_good:
            best = (value, int(row), int(col), side)
    if best is None or best[0] < MIN_OUTLINE:
        return None
    outline, y, x, side = best
    margin = max(2, int(round(INTERIOR_MARGIN * side)))
    interior = region[y + margin : y + side - margin, x + margin : x + side - margin]
    share = float(interior.mean()) if interior.size else 0.0
    ticked = share > TICK_INK
    # Sure when the interior is far from the threshold and the outline is clear.
    distance = abs(share - TICK_INK) / TICK_INK
    confidence = min(1.0, distance) * min(1.0, (outline - 0.5) / (1.0 - 0.5) + 0.15)
    confidence = round(max(0.0, min(1.0, confidence)), 3)
    return BoxReading(ticked, confidence, left + x, upper + y, left + x + side, upper + y + side, round(share, 4))


def ink_mask(grey: np.ndarray) -> np.ndarray:
    """Ink by the region's own contrast: thin box outlines of a blurred photo are grey, not black."""
    paper = float(np.percentile(grey, 90))
    dark = float(np.percentile(grey, 1))
    if paper - dark < INK_CONTRAST:
        return np.zeros(grey.shape, dtype=bool)  # blank paper (or a flat smear): no ink
    return grey < dark + INK_SHARE * (paper - dark)


def _dilate(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:, :] |= mask[:-1, :]
    out[:-1, :] |= mask[1:, :]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def _outline_scores(mask: np.ndarray, side: int) -> np.ndarray:
    """For every top-left (y, x): the share of ink on the outline of a side x side square."""
    rows, cols = mask.shape
    if rows < side or cols < side:
        return np.empty((0, 0))
    m = mask.astype(np.int32)
    # Horizontal run sums of length `side` (for top/bottom edges) and vertical ones (left/right edges).
    horizontal = _run_sums(m, side, axis=1)  # shape (rows, cols - side + 1)
    vertical = _run_sums(m, side, axis=0)  # shape (rows - side + 1, cols)
    n_y, n_x = rows - side + 1, cols - side + 1
    top_edge = horizontal[:n_y, :]
    bottom_edge = horizontal[side - 1 : side - 1 + n_y, :]
    left_edge = vertical[:, :n_x]
    right_edge = vertical[:, side - 1 : side - 1 + n_x]
    scores: np.ndarray = (top_edge + bottom_edge + left_edge + right_edge) / (4.0 * side)
    return scores


def _run_sums(m: np.ndarray, length: int, axis: int) -> np.ndarray:
    cumulative = np.cumsum(m, axis=axis)
    zero_shape = list(m.shape)
    zero_shape[axis] = 1
    cumulative = np.concatenate([np.zeros(zero_shape, dtype=cumulative.dtype), cumulative], axis=axis)
    sums: np.ndarray
    if axis == 1:
        sums = cumulative[:, length:] - cumulative[:, :-length]
    else:
        sums = cumulative[length:, :] - cumulative[:-length, :]
    return sums
