"""Charts as inline SVG, drawn on the server: no JavaScript, and they print."""

from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape

from postmottak.casefile.summary import DayCount

ON_TIME_COLOUR = "#2f6f9f"
LATE_COLOUR = "#d9822b"
DEADLINE_COLOUR = "#b3261e"
# Series colours in option order; the last series ("not answered") is always light grey.
SERIES_COLOURS = ("#3a8f5c", "#c0392b", "#8a8f98", "#2f6f9f", "#d9822b", "#7d5ba6", "#1f8a8a", "#b58900")
NONE_COLOUR = "#d5d8dc"


def _nice_max(value: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if value <= step * 4:
            return max(step * -(-value // step), step)
    return value


def responses_per_day(days: list[DayCount], deadline: date, *, width: int = 760, height: int = 240) -> Markup:
    """Stacked bars per day (on time / late) with the deadline drawn as a line after its day."""
    if not days:
        return Markup('<p class="muted">Ingen registrerte svar ennå.</p>')
    left, right, top, bottom = 40, 12, 26, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max(d.total for d in days))
    slot = plot_w / len(days)
    bar_w = max(1.0, min(28.0, slot * 0.75))
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Svar per dag mot fristen" xmlns="http://www.w3.org/2000/svg">'
    ]
    ticks = top_value if top_value <= 5 else 4  # whole numbers of responses only
    for i in range(ticks + 1):
        value = top_value * i / ticks
        y = top + plot_h - plot_h * i / ticks
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{value:g}</text>')
    label_every = max(1, -(-len(days) // 10))
    for index, day in enumerate(days):
        x = left + slot * index + (slot - bar_w) / 2
        y_base: float = top + plot_h
        tip = f"{day.day:%d.%m.%Y}: {day.on_time} i tide, {day.late} for sent"
        for count, colour in ((day.on_time, ON_TIME_COLOUR), (day.late, LATE_COLOUR)):
            if count:
                h = plot_h * count / top_value
                y_base -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{y_base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{colour}">'
                    f"<title>{escape(tip)}</title></rect>"
                )
        last_fits = index == len(days) - 1 and (index % label_every) >= label_every / 2
        if index % label_every == 0 or last_fits:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" class="axis">'
                f"{day.day:%d.%m}</text>"
            )
    deadline_index = next((i for i, d in enumerate(days) if d.day == deadline), None)
    if deadline_index is not None:
        x = left + slot * (deadline_index + 1)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 8}" y2="{top + plot_h}" stroke="{DEADLINE_COLOUR}" '
            f'stroke-width="2" stroke-dasharray="5 3"/>'
        )
        anchor = "end" if deadline_index > len(days) * 0.7 else "start"
        offset = -4 if anchor == "end" else 4
        parts.append(
            f'<text x="{x + offset:.1f}" y="{top - 10}" text-anchor="{anchor}" class="deadline" fill="{DEADLINE_COLOUR}">'
            f"Frist {deadline:%d.%m.%Y}</text>"
        )
    legend_y = height - 10
    parts.append(f'<rect x="{left}" y="{legend_y - 9}" width="10" height="10" fill="{ON_TIME_COLOUR}"/>')
    parts.append(f'<text x="{left + 14}" y="{legend_y}" class="axis">I tide</text>')
    parts.append(f'<rect x="{left + 70}" y="{legend_y - 9}" width="10" height="10" fill="{LATE_COLOUR}"/>')
    parts.append(f'<text x="{left + 84}" y="{legend_y}" class="axis">For sent</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_bars(
    rows: list[tuple[str, dict[str, int]]], series: list[tuple[str, str]], aria_label: str, *, width: int = 760
) -> Markup:
    """One horizontal bar per row (a respondent type, a table row), split by series (the options; key "" is
    "not answered")."""
    if not rows:
        return Markup('<p class="muted">Ingen svar ennå.</p>')
    label_w, right, top, row_h = 260, 40, 34, 26
    height = top + row_h * len(rows) + 12
    plot_w = width - label_w - right
    largest = max(sum(counts.values()) for _, counts in rows) or 1
    order = [key for key, _name in series]
    names = dict(series)
    colours = {key: (SERIES_COLOURS[i % len(SERIES_COLOURS)] if key else NONE_COLOUR) for i, key in enumerate(order)}
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(aria_label)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    x: float = label_w
    for key in order:
        parts.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{colours[key]}"/>')
        parts.append(f'<text x="{x + 14}" y="15" class="axis">{escape(names[key])}</text>')
        x += 26 + 7 * len(names[key])
    for index, (org_type, counts) in enumerate(rows):
        y = top + row_h * index
        label = org_type if len(org_type) <= 38 else org_type[:36] + "…"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" class="label">'
            f"<title>{escape(org_type)}</title>{escape(label)}</text>"
        )
        x = float(label_w)
        for key in order:
            count = counts.get(key, 0)
            if not count:
                continue
            w = plot_w * count / largest
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{row_h - 8}" fill="{colours[key]}">'
                f"<title>{escape(org_type)}: {escape(names[key])} {count}</title></rect>"
            )
            if w >= 16:
                fill = "#333" if key == "" else "#fff"
                parts.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + 16}" text-anchor="middle" class="value" fill="{fill}">{count}</text>'
                )
            x += w
        total = sum(counts.values())
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 16}" class="axis">{total}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
