"""Checkboxes drawn as small vector squares (no glyph): what counts as a box and what ticks it, on the shapes
drawn on a page. Coordinates are top-down page coordinates, as a Char's."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# (x0, x1, top, bottom) of a drawn box or stroke.
Box = tuple[float, float, float, float]

# A checkbox is a closed square between these sizes (points), its sides equal to within this share of the longer.
BOX_MIN, BOX_MAX, BOX_SQUARENESS = 4.0, 24.0, 0.25


@dataclass(slots=True)
class Shape:
    """One drawn subpath: its extent, whether it is closed (ends where it starts), whether it is filled dark."""

    x0: float
    x1: float
    top: float
    bottom: float
    closed: bool
    dark: bool


class Glyph(Protocol):
    """A character on the page (pdf_reader's Char)."""

    text: str
    x0: float
    x1: float
    top: float
    bottom: float


def is_checkbox_square(width: float, height: float) -> bool:
    return (
        BOX_MIN <= width <= BOX_MAX
        and BOX_MIN <= height <= BOX_MAX
        and abs(width - height) <= BOX_SQUARENESS * max(width, height)
    )


def checkboxes(shapes: list[Shape], glyphs: Sequence[Glyph]) -> list[tuple[Box, bool]]:
    """The checkboxes drawn as squares among `shapes` that hold no glyph (of `glyphs`, a page's Chars), each with
    whether it is ticked: another stroke (lines of an X, a tick polyline, a filled inner square) lies mostly inside
    it."""
    boxes: list[Box] = []
    marks: list[Box] = []
    for shape in shapes:
        box = (shape.x0, shape.x1, shape.top, shape.bottom)
        if shape.closed and not shape.dark and is_checkbox_square(shape.x1 - shape.x0, shape.bottom - shape.top):
            if not any(_same_box(b, box) for b in boxes):
                boxes.append(box)
        else:
            marks.append(box)
    found: list[tuple[Box, bool]] = []
    if not boxes:
        return found
    # The page's glyphs by their upper edge, so each box looks only at those that can reach it.
    placed = sorted((min(g.top, g.bottom), (g.x0, g.x1, g.top, g.bottom)) for g in glyphs if g.text != " ")
    uppers = [upper for upper, _box in placed]
    tallest = max((abs(g[3] - g[2]) for _upper, g in placed), default=0.0)
    for box in boxes:
        x0, x1, top, bottom = box
        near = range(bisect_left(uppers, top - tallest), bisect_right(uppers, bottom))
        if any(_overlap_fraction(placed[i][1], box) > 0.5 for i in near):
            continue  # a glyph box already sits there
        size = max(x1 - x0, bottom - top)
        ticked = any(
            _overlap_fraction(mark, (x0 - 1.5, x1 + 1.5, top - 1.5, bottom + 1.5)) >= 0.6
            and max(mark[1] - mark[0], mark[3] - mark[2]) >= 0.3 * size
            and not _same_box(mark, box)
            for mark in marks
        )
        found.append((box, ticked))
    return found


def _same_box(a: Box, b: Box, tolerance: float = 1.0) -> bool:
    return all(abs(p - q) <= tolerance for p, q in zip(a, b, strict=False))


def _overlap_fraction(inner: Box, outer: Box) -> float:
    """Share of `inner` (a box, or a flat line) that lies within `outer`."""

    def axis(i0: float, i1: float, o0: float, o1: float) -> float:
        if i1 - i0 < 0.5:  # flat along this axis: inside or not
            return 1.0 if o0 <= (i0 + i1) / 2 <= o1 else 0.0
        return max(0.0, min(i1, o1) - max(i0, o0)) / (i1 - i0)

    return axis(inner[0], inner[1], outer[0], outer[1]) * axis(inner[2], inner[3], outer[2], outer[3])


# --- pdfplumber: a page's rects, curves and lines -------------------------------------------


def plumber_shapes(page: Any) -> list[Shape]:
    """A pdfplumber page's drawn shapes: rects and closed paths can be boxes; lines only marks."""
    return [
        Shape(obj["x0"], obj["x1"], obj["top"], obj["bottom"], _closed(obj), _filled_dark(obj))
        for obj in (*page.rects, *page.curves, *page.lines)
    ]


def is_box_object(obj: dict[str, Any]) -> bool:
    """A pdfplumber object that is a small closed square (a rect or a curve): a checkbox drawn as a vector shape."""
    return _closed(obj) and is_checkbox_square(obj["x1"] - obj["x0"], obj["bottom"] - obj["top"])


def _closed(obj: dict[str, Any]) -> bool:
    if obj.get("object_type") == "rect":
        return True
    if obj.get("object_type") != "curve":
        return False
    points: list[tuple[float, float]] = obj.get("pts") or []
    return len(points) >= 4 and abs(points[0][0] - points[-1][0]) < 1 and abs(points[0][1] - points[-1][1]) < 1


def _filled_dark(obj: dict[str, Any]) -> bool:
    if not obj.get("fill"):
        return False
    color = obj.get("non_stroking_color")
    if color is None:
        return True
    values: list[float] = list(color) if isinstance(color, (list, tuple)) else [color]
    if len(values) == 1:
        return values[0] < 0.5
    if len(values) == 3:
        return sum(values) / 3 < 0.5
    if len(values) == 4:
        return values[3] > 0.5
    return False
