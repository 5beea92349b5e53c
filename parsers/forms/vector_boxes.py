"""Checkboxes drawn as small vector squares (no glyph), and which drawn paths could be a table's ruling lines.

The shapes come from pdfium's page objects (the fast read) or from pdfplumber's (its text backend); what counts as
a box and what ticks it is the same for both. Coordinates are top-down page coordinates, as a Char's."""

from __future__ import annotations

import ctypes
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# (x0, x1, top, bottom) of a drawn box or stroke.
Box = tuple[float, float, float, float]

# A checkbox is a closed square between these sizes (points), its sides equal to within this share of the longer.
BOX_MIN, BOX_MAX, BOX_SQUARENESS = 4.0, 24.0, 0.25
# pdfium's bounds of a stroked path take in the stroke (and a diagonal's mitre), up to this many points more than
# the path itself: a checkbox or the tick inside one measured by them is still checkbox-sized.
STROKE_TOLERANCE = 3.0


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


# --- pdfium: a page's path objects ----------------------------------------------------------

# (a, b, c, d, e, f) of a PDF transformation matrix: (x, y) -> (a x + c y + e, b x + d y + f).
_Matrix = tuple[float, float, float, float, float, float]


def ruling_paths(page: Any, enough: int) -> int:
    """The page's path objects that could be a ruling line or a cell border of a table, counted up to `enough`:
    checkbox-sized squares (a box, or the tick drawn inside one) are not."""
    import pypdfium2.raw as pdfium_c

    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    refs = (ctypes.byref(left), ctypes.byref(bottom), ctypes.byref(right), ctypes.byref(top))
    low, high = BOX_MIN - STROKE_TOLERANCE, BOX_MAX + STROKE_TOLERANCE
    count = 0
    for obj, form in _path_objects(page):
        if not pdfium_c.FPDFPageObj_GetBounds(obj, *refs):
            continue
        x0, y0, x1, y1 = left.value, bottom.value, right.value, top.value
        if form is not None:  # the bounds of an object inside a form XObject are in the form's space
            x0, y0, x1, y1 = _transform_bounds(form, x0, y0, x1, y1)
        width, height = x1 - x0, y1 - y0
        checkbox_sized = low <= width <= high and low <= height <= high
        if not (checkbox_sized and abs(width - height) <= BOX_SQUARENESS * max(width, height)):
            count += 1
            if count >= enough:
                break
    return count


def page_shapes(page: Any, page_height: float) -> list[Shape]:
    """The drawn subpaths of a pdfium page, and of its form XObjects one level down, in top-down page coordinates.

    As pdfminer sees them: each subpath a shape, a curve's extent that of its end points (not its control points),
    a subpath closed by "h" ending at its start."""
    import pypdfium2.raw as pdfium_c

    moveto, bezierto = pdfium_c.FPDF_SEGMENT_MOVETO, pdfium_c.FPDF_SEGMENT_BEZIERTO
    matrix = pdfium_c.FS_MATRIX()
    x, y = ctypes.c_float(), ctypes.c_float()
    fill_mode, stroke = ctypes.c_int(), ctypes.c_int()
    red, green, blue, alpha = (ctypes.c_uint() for _ in range(4))
    shapes: list[Shape] = []
    for obj, form in _path_objects(page):
        if not pdfium_c.FPDFPageObj_GetMatrix(obj, ctypes.byref(matrix)):
            continue
        own: _Matrix = (matrix.a, matrix.b, matrix.c, matrix.d, matrix.e, matrix.f)
        transform = own if form is None else _multiply(own, form)
        dark = False
        pdfium_c.FPDFPath_GetDrawMode(obj, ctypes.byref(fill_mode), ctypes.byref(stroke))
        if fill_mode.value != pdfium_c.FPDF_FILLMODE_NONE:
            got = pdfium_c.FPDFPageObj_GetFillColor(
                obj, ctypes.byref(red), ctypes.byref(green), ctypes.byref(blue), ctypes.byref(alpha)
            )
            dark = not got or (red.value + green.value + blue.value) / 3 < 127.5
        points: list[tuple[float, float]] = []
        closed = False
        beziers = 0
        for i in range(max(0, pdfium_c.FPDFPath_CountSegments(obj))):
            segment = pdfium_c.FPDFPath_GetPathSegment(obj, i)
            kind = pdfium_c.FPDFPathSegment_GetType(segment)
            if kind == moveto and points:
                shapes.append(_shape(points, closed, dark, transform, page_height))
                points, closed = [], False
            if kind == bezierto:
                beziers += 1
                if beziers % 3:  # a cubic curve is three segments: two control points, then its end point
                    continue
            else:
                beziers = 0
            pdfium_c.FPDFPathSegment_GetPoint(segment, ctypes.byref(x), ctypes.byref(y))
            points.append((x.value, y.value))
            if pdfium_c.FPDFPathSegment_GetClose(segment):
                closed = True
        if points:
            shapes.append(_shape(points, closed, dark, transform, page_height))
    return shapes


def _shape(points: list[tuple[float, float]], closed: bool, dark: bool, matrix: _Matrix, page_height: float) -> Shape:
    a, b, c, d, e, f = matrix
    if closed:
        points.append(points[0])  # "h" draws back to the start
    xs = [a * px + c * py + e for px, py in points]
    ys = [b * px + d * py + f for px, py in points]
    ends_at_start = len(points) >= 4 and abs(xs[0] - xs[-1]) < 1 and abs(ys[0] - ys[-1]) < 1
    return Shape(min(xs), max(xs), page_height - max(ys), page_height - min(ys), ends_at_start, dark)


def _path_objects(page: Any) -> Iterator[tuple[Any, _Matrix | None]]:
    """The page's path objects, and those inside its form XObjects one level down (as pypdfium2's
    `get_objects(filter=[FPDF_PAGEOBJ_PATH], max_depth=2)` finds them), each with its form's matrix (None on the
    page itself)."""
    import pypdfium2.raw as pdfium_c

    get_type = pdfium_c.FPDFPageObj_GetType
    path, form = pdfium_c.FPDF_PAGEOBJ_PATH, pdfium_c.FPDF_PAGEOBJ_FORM
    matrix = pdfium_c.FS_MATRIX()
    for i in range(max(0, pdfium_c.FPDFPage_CountObjects(page))):
        obj = pdfium_c.FPDFPage_GetObject(page, i)
        kind = get_type(obj)
        if kind == path:
            yield obj, None
        elif kind == form:
            children = max(0, pdfium_c.FPDFFormObj_CountObjects(obj))
            if not children or not pdfium_c.FPDFPageObj_GetMatrix(obj, ctypes.byref(matrix)):
                continue
            form_matrix = (matrix.a, matrix.b, matrix.c, matrix.d, matrix.e, matrix.f)
            for j in range(children):
                child = pdfium_c.FPDFFormObj_GetObject(obj, j)
                if get_type(child) == path:
                    yield child, form_matrix


def _multiply(first: _Matrix, then: _Matrix) -> _Matrix:
    """The matrix applying `first`, then `then`."""
    a1, b1, c1, d1, e1, f1 = first
    a2, b2, c2, d2, e2, f2 = then
    return (
        a1 * a2 + b1 * c2,
        a1 * b2 + b1 * d2,
        c1 * a2 + d1 * c2,
        c1 * b2 + d1 * d2,
        e1 * a2 + f1 * c2 + e2,
        e1 * b2 + f1 * d2 + f2,
    )


def _transform_bounds(m: _Matrix, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
    a, b, c, d, e, f = m
    corners = [(a * x + c * y + e, b * x + d * y + f) for x in (x0, x1) for y in (y0, y1)]
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    return min(xs), min(ys), max(xs), max(ys)


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
