"""Apply a FormProfile to the text of a document: find the labels, read checkboxes, cut out the answers."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from .answers import answers_from_values, field_specs
from .controls import FormControl
from .glyphs import GLYPH_TOKEN_PATTERN, glyph_state
from .models import FormResult
from .profile import ChoiceOption, FormProfile, FormSection
from .text_cleaning import clean_section_text, flexible_pattern

# A field's value as read: text, the ticked options, a matrix {row: [ticked columns]}, or nothing.
FieldValue = str | list[str] | dict[str, list[str]] | None


@dataclass
class _Located:
    section: FormSection
    start: int
    content_start: int
    altered: bool


@dataclass
class _Tick:
    option: ChoiceOption
    token: str | None  # the glyph token before the label, None when there is none
    # Ticked or not as a PDF checkbox or radio button whose export value is this option says (None: no such box).
    exported: bool | None = None

    @property
    def boxed(self) -> bool:
        return self.token is not None or self.exported is not None


@dataclass
class ParseOutcome:
    result: FormResult
    labels_found: int
    # Option labels found with no checkbox glyph before them: the boxes may be vector drawings.
    options_without_glyph: int = 0
    options_found: int = 0


@dataclass
class _Warnings:
    messages: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)

    def add(self, code: str, message: str) -> None:
        self.codes.append(code)
        self.messages.append(message)


def _section_regexes(section: FormSection) -> tuple[re.Pattern[str], re.Pattern[str] | None]:
    line_start = r"(?m)^[ \t]*"
    full = re.compile(line_start + flexible_pattern(section.label), re.IGNORECASE)
    anchor = re.compile(line_start + flexible_pattern(section.anchor), re.IGNORECASE) if section.anchor else None
    return full, anchor


def count_labels(text: str, profile: FormProfile) -> int:
    """How many of the profile's section labels the text contains (in any order): the form score."""
    found = 0
    for section in profile.sections:
        full, anchor = _section_regexes(section)
        if full.search(text) or (anchor is not None and anchor.search(text)):
            found += 1
    return found


def locate_sections(text: str, profile: FormProfile) -> list[_Located]:
    located: list[_Located] = []
    position = 0
    for section in profile.sections:
        full, anchor = _section_regexes(section)
        match = full.search(text, position)
        if match is not None:
            located.append(_Located(section, match.start(), match.end(), altered=False))
            position = match.end()
            continue
        if anchor is None:
            continue
        match = anchor.search(text, position)
        if match is None:
            continue
        # The label was edited after its anchor: skip to its final punctuation, or the line end.
        tail = text[match.end() : match.end() + len(section.label) + 40]
        last = section.label.rstrip()[-1]
        cut = tail.find(last) + 1 if last in "?:." and last in tail else tail.find("\n")
        content_start = match.end() + (cut if cut > 0 else len(tail))
        located.append(_Located(section, match.start(), content_start, altered=True))
        position = content_start
    return located


def parse_text(
    text: str,
    profile: FormProfile,
    *,
    checkbox_read_by: str = "glyph",
    controls: list[FormControl] | None = None,
) -> ParseOutcome:
    """Parse the text of a document; `checkbox_read_by` names how its checkbox glyphs came to be (see answers);
    `controls` are the form controls read from the document's structure, placed in `text` (see controls.py)."""
    warnings = _Warnings()
    values: dict[str, FieldValue] = {}
    located = locate_sections(text, profile)
    labels_found = len(located)
    if labels_found < profile.min_labels_for_form:
        warnings.add("not_a_form", f"Dokumentet ser ikke ut til å være skjemaet «{profile.title}».")
        result = FormResult.of_profile(
            profile,
            form_status="not_a_form",
            profile=profile.name,
            warnings=warnings.messages,
            warning_codes=warnings.codes,
        )
        return ParseOutcome(result, labels_found)

    found_sections = {id(item.section) for item in located}
    for section in profile.sections:
        if id(section) not in found_sections:
            warnings.add(f"label_missing:{section.field or section.label}", f"Fant ikke «{section.label}» i skjemaet.")

    # (section, its ticks, the key they are stored under: the field of a checkbox section, else its choice_field)
    ticks_by_section: list[tuple[FormSection, list[_Tick], str]] = []
    options_without_glyph = options_found = 0
    placeholders = tuple(profile.placeholders)
    for index, item in enumerate(located):
        end = located[index + 1].start if index + 1 < len(located) else len(text)
        content = text[item.content_start : end]
        section = item.section
        if item.altered:
            warnings.add(
                f"label_altered:{section.field or section.label}",
                f"Ledeteksten «{section.label}» er endret i skjemaet.",
            )
        stop = end if index + 1 < len(located) else len(text) + 1
        inside = [c for c in controls or [] if item.content_start <= c.offset < stop]
        if section.kind == "checkboxes":
            ticks, rest = _read_options(content, section.options, whole=True)
            ticks = _with_exports(ticks, section.options, inside)
            if any(tick.exported is not None for tick in ticks):
                rest = re.sub(GLYPH_TOKEN_PATTERN, " ", rest)  # the boxes were read as form fields, wherever they are
            ticks_by_section.append((section, ticks, section.field or ""))
            _warn_missing_options(section, section.options, ticks, warnings)
            leftover = clean_section_text(rest, placeholders, paragraphs=False)
            if leftover:
                warnings.add(
                    f"unplaced_text:{section.field}",
                    f"Tekst ved «{section.display_name}» passer ikke i noe felt: «{_short(leftover)}»",
                )
        elif section.kind == "matrix":
            assert section.field is not None  # FormSection requires a field of a matrix
            table, unread = _read_matrix(content, section)
            values[section.field] = table
            options_found += len(section.rows) * len(section.options)
            options_without_glyph += unread
            if unread:
                warnings.add(
                    f"matrix.incomplete:{section.field}",
                    f"Fant ikke alle avkrysningsboksene i tabellen «{_short(section.display_name, 60)}».",
                )
        elif section.kind == "heading":
            leftover = clean_section_text(content, placeholders, paragraphs=False)
            if leftover:
                warnings.add(
                    f"unplaced_text:{section.label}",
                    f"Tekst under «{_short(section.label, 60)}» passer ikke i noe felt: «{_short(leftover)}»",
                )
        else:
            if section.choices:
                ticks, content = _read_options(content, section.choices, whole=False)
                ticks = _with_exports(ticks, section.choices, inside)
                ticks_by_section.append((section, ticks, section.choice_field or ""))
                _warn_missing_options(section, section.choices, ticks, warnings)
            assert section.field is not None  # FormSection requires a field of an inline or text section
            values[section.field] = clean_section_text(
                content, placeholders, paragraphs=(section.kind == "text"), compact=section.compact
            )

    unchecked_cid = _unchecked_cid_token(ticks_by_section)
    if unchecked_cid is not None:
        warnings.add(
            "checkbox.cid_glyphs",
            "Avkrysningsboksene mangler tekstkoding; avkrysningen er tolket ut fra glyfkodene og bør kontrolleres.",
        )
    ticked: dict[str, list[str]] = {}  # choice key -> every ticked option's printed label
    for section, ticks, choice_key in ticks_by_section:
        options_found += len(ticks)
        options_without_glyph += sum(1 for tick in ticks if not tick.boxed)
        checked = [tick.option.value for tick in ticks if _tick_checked(tick, unchecked_cid)]
        ticked[choice_key] = [tick.option.label for tick in ticks if _tick_checked(tick, unchecked_cid)]
        unknown = [tick.option.label for tick in ticks if not tick.boxed]
        if unknown:
            warnings.add(
                f"checkbox.no_box:{choice_key}",
                f"Fant ingen avkrysningsboks ved: {', '.join(unknown)} ({section.display_name}).",
            )
        if section.kind == "checkboxes":
            if section.list_field:
                values[section.list_field] = checked
            single = checked[0] if len(checked) == 1 else None
            values[choice_key] = checked if section.multiple and not section.list_field else single
            if section.multiple:
                checked = checked[:1]  # several ticks are the point of a multiple-choice group
        else:
            values[choice_key] = checked[0] if len(checked) == 1 else None
        if not checked and ticks:
            warnings.add(f"checkbox.none_ticked:{choice_key}", f"Ingen avkrysning for {section.display_name}.")
        elif len(checked) > 1:
            warnings.add(
                f"checkbox.several_ticked:{choice_key}",
                f"Flere avkrysninger for {section.display_name}: {', '.join(checked)}.",
            )

    missing = labels_found < len(profile.sections)
    read_by = {spec.key: ("text" if spec.kind == "text" else checkbox_read_by) for spec in field_specs(profile)}
    if controls:
        _read_controls(text, profile, located, controls, values, read_by)
    fields = answers_from_values(profile, values, read_by=read_by, warnings=_warnings_by_field(warnings))
    for answer in fields:
        if answer.kind == "choice" and answer.key in ticked:
            answer.value = ticked[answer.key]  # every tick, also where the single-answer key holds none
    result = FormResult.of_profile(
        profile,
        dict(values),
        fields=fields,
        form_status="partial" if missing else "parsed",
        profile=profile.name,
        warnings=warnings.messages,
        warning_codes=warnings.codes,
    )
    return ParseOutcome(result, labels_found, options_without_glyph, options_found)


def _read_controls(
    text: str,
    profile: FormProfile,
    located: list[_Located],
    controls: list[FormControl],
    values: dict[str, FieldValue],
    read_by: dict[str, str],
) -> None:
    """Fields answered in form controls: the controls placed in a section's content are its answer (a text
    control's own value replaces the text read around it), and say how the field was read. A control whose tag
    or title names a field whose label was not found answers that field."""
    placeholders = tuple(profile.placeholders)
    owners = {id(c): owner for c in controls if (owner := _named_section(c, profile)) is not None}
    answered: set[str] = set()
    for index, item in enumerate(located):
        end = located[index + 1].start if index + 1 < len(located) else len(text) + 1
        section = item.section
        # A control named for another field is that field's, wherever it stands; a Word control whose text runs
        # on past the next label (one wrapped around a label and its answer) is no field's answer alone.
        inside = [
            c
            for c in controls
            if item.content_start <= c.offset < end
            and owners.get(id(c), section) is section
            and not (c.source == "content_control" and c.value and c.offset + len(c.value) > end)
        ]
        choices = [c for c in inside if c.answers_choice]
        in_table = any(c.kind == "table_cell" for c in inside)
        if section.kind in ("checkboxes", "matrix"):
            if section.field and (choices or in_table):
                # Boxes that are controls say so; printed boxes in a table's cells were read from the table.
                read_by[section.field] = choices[0].source if choices else "table"
            continue
        if section.kind == "heading" or not section.field:
            continue
        if section.choice_field and choices:
            read_by[section.choice_field] = choices[0].source
        answers = [c for c in inside if c.answers_text]
        if answers:
            answered.add(section.field)
            given = [c.value for c in answers if c.value]
            if given:
                values[section.field] = _control_text(given, section, placeholders)
                read_by[section.field] = answers[0].source
            elif not values.get(section.field):
                read_by[section.field] = answers[0].source
        elif in_table:
            read_by[section.field] = "table"
    for control in controls:
        owner = owners.get(id(control))
        if owner is None or not owner.field or owner.field in answered or not control.answers_text:
            continue
        if control.value and owner.kind in ("inline", "text"):
            values[owner.field] = _control_text([control.value], owner, placeholders)
            read_by[owner.field] = control.source
            answered.add(owner.field)


def _named_section(control: FormControl, profile: FormProfile) -> FormSection | None:
    """The section whose key is the control's tag, or whose label is its title."""

    def fold(value: str) -> str:
        return " ".join(value.casefold().rstrip(":?. ").split())

    title = fold(control.title) if control.title else None
    for section in profile.sections:
        if section.kind == "heading" or not section.field:
            continue
        if control.name and control.name == section.field:
            return section
        if title and (title == fold(section.label) or (section.anchor and title == fold(section.anchor))):
            return section
    return None


def _control_text(given: list[str], section: FormSection, placeholders: tuple[str, ...]) -> str | None:
    return clean_section_text(
        "\n\n".join(given), placeholders, paragraphs=(section.kind == "text"), compact=section.compact
    )


def _warnings_by_field(warnings: _Warnings) -> dict[str, list[str]]:
    """Warnings whose code names a field ("kind:field") belong to that field as well."""
    grouped: dict[str, list[str]] = {}
    for code, message in zip(warnings.codes, warnings.messages, strict=True):
        if ":" in code:
            grouped.setdefault(code.split(":", 1)[1], []).append(message)
    return grouped


def _read_matrix(content: str, section: FormSection) -> tuple[dict[str, list[str]], int]:
    """Each row label (in order) followed by one checkbox per column: {row label: [ticked column values]}, and
    how many boxes were not found."""
    columns = section.options
    starts: list[tuple[str, int, int]] = []
    position = 0
    for row in section.rows:
        match = re.compile(flexible_pattern(row), re.IGNORECASE).search(content, position)
        if match is None:
            starts.append((row, -1, -1))
            continue
        starts.append((row, match.start(), match.end()))
        position = match.end()
    table: dict[str, list[str]] = {}
    unread = 0
    found = [item for item in starts if item[1] >= 0]
    for row, start, end in starts:
        if start < 0:
            table[row] = []
            unread += len(columns)
            continue
        following = [s for _r, s, _e in found if s > start]
        stop = min(following) if following else len(content)
        tokens = re.findall(GLYPH_TOKEN_PATTERN, content[end:stop])[: len(columns)]
        unread += len(columns) - len(tokens)
        table[row] = [column.value for column, token in zip(columns, tokens, strict=False) if _is_checked(token, None)]
    return table, unread


def _read_options(content: str, options: list[ChoiceOption], *, whole: bool) -> tuple[list[_Tick], str]:
    """Find each option label (in order) and the checkbox token right before it; return the
    ticks and the content with the options cut out. Choices are looked for only near the start."""
    ticks: list[_Tick] = []
    removed: list[tuple[int, int]] = []
    position = 0
    limit = len(content) if whole else min(len(content), sum(len(o.label) for o in options) + 40 * len(options) + 80)
    for option in options:
        pattern = re.compile(
            r"(?P<glyph>"
            + GLYPH_TOKEN_PATTERN
            + r"|(?<!\S)[xX](?=[ \t]))?[ \t]*(?<![^\W\d_])"
            + flexible_pattern(option.label)
            + r"(?![^\W\d_])",
            re.IGNORECASE,
        )
        match = pattern.search(content, position, limit)
        if match is None:
            continue
        ticks.append(_Tick(option, match.group("glyph")))
        removed.append(match.span())
        position = match.end()
    rest = content
    for start, end in reversed(removed):
        rest = rest[:start] + " " + rest[end:]
    return ticks, rest


def _with_exports(ticks: list[_Tick], options: list[ChoiceOption], controls: list[FormControl]) -> list[_Tick]:
    """The ticks, with each option that a PDF checkbox or radio button names by its export value ticked as that
    box is (whatever glyph stands before its printed label); in the options' order."""
    states = _export_states(options, controls)
    if not states:
        return ticks
    by_option = {id(tick.option): tick for tick in ticks}
    merged = []
    for option in options:
        tick = by_option.get(id(option))
        if id(option) in states:
            tick = _Tick(option, tick.token if tick else None, states[id(option)])
        if tick is not None:
            merged.append(tick)
    return merged


def _export_states(options: list[ChoiceOption], controls: list[FormControl]) -> dict[int, bool]:
    """id(option) -> ticked, for the options whose label (or value) is a checkbox's or radio button's export
    value."""

    def fold(text: str) -> str:
        return " ".join(text.casefold().split())

    states: dict[int, bool] = {}
    for control in controls:
        if control.kind != "checkbox" or not control.export:
            continue
        wanted = fold(control.export)
        option = next((o for o in options if wanted in (fold(o.label), fold(o.value))), None)
        if option is not None:
            states[id(option)] = states.get(id(option), False) or bool(control.checked)
    return states


def _tick_checked(tick: _Tick, unchecked_cid: str | None) -> bool:
    return tick.exported if tick.exported is not None else _is_checked(tick.token, unchecked_cid)


def _warn_missing_options(
    section: FormSection, options: list[ChoiceOption], ticks: list[_Tick], warnings: _Warnings
) -> None:
    seen = {id(tick.option) for tick in ticks}
    missing = [option.label for option in options if id(option) not in seen]
    if missing:
        warnings.add(
            f"option_missing:{section.field or section.choice_field}",
            f"Fant ikke valgene {', '.join('«' + m + '»' for m in missing)} ({section.display_name}).",
        )


def _unchecked_cid_token(ticks_by_section: list[tuple[FormSection, list[_Tick], str]]) -> str | None:
    """For "(cid:N)" glyphs (font without a text map) the commonest code is taken as the empty box."""
    tokens = [
        tick.token
        for _s, ticks, _f in ticks_by_section
        for tick in ticks
        if tick.token and tick.token.startswith("(cid:")
    ]
    if not tokens:
        return None
    return Counter(tokens).most_common(1)[0][0]


def _is_checked(token: str | None, unchecked_cid: str | None) -> bool:
    if token is None:
        return False
    if token.startswith("(cid:"):
        return token != unchecked_cid
    return bool(glyph_state(token))


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
