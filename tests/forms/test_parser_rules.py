"""Parser rules on small texts: glyph kinds, cid glyphs, cleaning, missing labels, profiles as data."""

from __future__ import annotations

from pathlib import Path

import pytest

from postmottak.parsers.forms import FormProfile, available_profiles, load_profile, parse_form
from postmottak.parsers.forms.glyphs import decode_symbol_char, glyph_state
from postmottak.parsers.forms.text_cleaning import clean_section_text, join_wrapped_lines

PLACEHOLDERS = tuple(load_profile().placeholders)


def _form_text(org_marks: list[str], choice_marks: list[str], q1: str = "Svar.") -> str:
    profile = load_profile()
    options = profile.sections[0].options
    lines = ["Høringssvarskjema", "Kryss av for type organisasjon/virksomhet:"]
    lines += [f"{mark}{option.label}" for mark, option in zip(org_marks, options, strict=False)]
    lines += [
        "Kontaktinformasjon",
        "Navn på virksomheten (statlig etat, kommune, privatperson osv.): Testby kommune",
        "Kontaktperson: Per Test",
        "E-postadresse: per@test.no",
        "1) Kan dere stille dere bak de fem strategiske målene, gitt strategiens rolle for å skape en",
        "felles langsiktig og forutsigbar retning for digitalisering på tvers av aktørene i helse- og",
        "omsorgssektoren?",
        "  ".join(
            f"{mark} {label}"
            for mark, label in zip(
                choice_marks, ("Ja, utdyp gjerne", "Nei, utdyp gjerne", "Vet ikke, utdyp gjerne"), strict=False
            )
        ),
        q1,
        "2) Har dere tilbakemelding på de fem strategiske målene med målindikatorer?",
        "Mål 1: Aktiv medvirkning i egen og næres helse",
        "Klikk eller trykk her for å skrive inn tekst.",
        "Mål 2: Enklere arbeidshverdag",
        "Klikk eller trykk her for å skrive inn tekst.",
        "Mål 3: Helsedata til fornying og forbedring",
        "Klikk eller trykk her for å skrive inn tekst.",
        "Mål 4: Tilgjengelig informasjon og styrket samhandling",
        "Klikk eller trykk her for å skrive inn tekst.",
        "Mål 5: Samarbeid og virkemidler som styrker gjennomføringskraft",
        "Klikk eller trykk her for å skrive inn tekst.",
        "3) Har dere tilbakemeldinger på prosessen for hvordan strategien skal følges opp?",
        "Nei.",
        "4) Andre innspill og tilbakemeldinger?",
        "Klikk eller trykk her for å skrive inn tekst.",
    ]
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("checked", "unchecked"),
    [
        ("☒", "☐"),
        ("☑", "☐"),
        ("✓", "☐"),
        ("✔", "□"),
        ("✗", "☐"),
        ("\uf0fe", "\uf0a8"),
        ("\uf0fd", "\uf06f"),
        ("[X]", "[ ]"),
        ("X ", ""),
    ],
)
def test_glyph_kinds(checked: str, unchecked: str) -> None:
    marks = [unchecked] * 10
    marks[3] = checked
    choices = [unchecked, unchecked, checked]
    result = parse_form(_form_text(marks, choices).encode(), "skjema.txt")
    assert result.organisation_type == "RHF/Helseforetak"
    assert result.q1_choice == "vet_ikke"
    assert result.form_status == "parsed"
    assert result.q3_text == "Nei." and result.goal_1 is None and result.q4_text is None


def test_cid_glyphs_are_decided_by_majority_with_a_warning() -> None:
    marks = ["(cid:3)"] * 10
    marks[7] = "(cid:5)"
    result = parse_form(_form_text(marks, ["(cid:5)", "(cid:3)", "(cid:3)"]).encode(), "skjema.txt")
    assert result.organisation_type == "Privatperson" and result.q1_choice == "ja"
    assert "checkbox.cid_glyphs" in result.warning_codes


def test_labels_without_boxes_warn() -> None:
    result = parse_form(_form_text([""] * 10, ["", "", ""]).encode(), "skjema.txt")
    assert result.organisation_types_checked == [] and result.q1_choice is None
    assert "checkbox.no_box:organisation_type" in result.warning_codes


def test_text_that_fits_no_field_warns() -> None:
    text = _form_text(["☐"] * 10, ["☐"] * 3).replace(
        "Kontaktinformasjon\n", "Kontaktinformasjon\nVi svarer på vegne av tre kommuner.\n"
    )
    result = parse_form(text.encode(), "skjema.txt")
    assert any(code.startswith("unplaced_text:") for code in result.warning_codes)
    assert any("tre kommuner" in w for w in result.warnings)


def test_missing_labels_make_a_partial_form() -> None:
    text = _form_text(["☐"] * 10, ["☐"] * 3).replace("Kontaktperson: Per Test\n", "")
    result = parse_form(text.encode(), "skjema.txt")
    assert result.form_status == "partial" and result.contact_person is None
    assert "label_missing:contact_person" in result.warning_codes
    assert result.organisation_name == "Testby kommune"


def test_altered_question_label_is_found_by_its_anchor() -> None:
    text = _form_text(["☐"] * 10, ["☐"] * 3).replace("felles langsiktig og forutsigbar", "felles og forutsigbar")
    result = parse_form(text.encode(), "skjema.txt")
    assert result.q1_text == "Svar." and "label_altered:q1_text" in result.warning_codes


def test_symbol_font_decoding() -> None:
    assert decode_symbol_char("þ", "ABCDEF+Wingdings-Regular") == "☑"
    assert decode_symbol_char("¨", "Wingdings") == "◻"
    assert decode_symbol_char("4", "ZapfDingbats") == "✔"
    assert decode_symbol_char("þ", "Calibri") == "þ"
    assert glyph_state("☒") is True and glyph_state("☐") is False and glyph_state("a") is None


def test_cleaning_rules() -> None:
    assert join_wrapped_lines(["IKT må være en del av e-", "helseberedskapen og primær-", "og sekundærtjenesten"]) == (
        "IKT må være en del av e-helseberedskapen og primær- og sekundærtjenesten"
    )
    raw = "  Første linje\nfortsetter her.\n\n\nAndre  avsnitt.\nKlikk eller trykk her for å\nskrive inn tekst.\n"
    assert clean_section_text(raw, PLACEHOLDERS) == "Første linje fortsetter her.\n\nAndre avsnitt."
    assert clean_section_text("Klikk eller trykk her for å skrive inn tekst.", PLACEHOLDERS) is None
    assert clean_section_text("ola@\nexample.no", PLACEHOLDERS, paragraphs=False, compact=True) == "ola@example.no"


def test_a_new_form_is_a_new_profile(tmp_path: Path) -> None:
    """A later consultation's form: only a TOML file."""
    profile_file = tmp_path / "annen-hoering.toml"
    profile_file.write_text(
        """
name = "annen-hoering-23-001"
title = "Høringssvar om noe annet"
min_labels_for_form = 2
placeholders = ["Klikk eller trykk her for å skrive inn tekst."]

[[sections]]
kind = "inline"
label = "Avsender:"
field = "organisation_name"

[[sections]]
kind = "text"
label = "Har dere merknader?"
field = "merknader"
choice_field = "enig"
choices = [{ value = "ja", label = "Ja" }, { value = "nei", label = "Nei" }]
""",
        encoding="utf-8",
    )
    profile = load_profile(str(profile_file))
    assert isinstance(profile, FormProfile)
    text = "Avsender: Fjellby\nkommune\nHar dere merknader?\n☐ Ja ☒ Nei\nVi har to.\n\nOg en til."
    result = parse_form(text.encode(), "svar.txt", profile=profile)
    assert result.profile == "annen-hoering-23-001" and result.form_status == "parsed"
    assert result.organisation_name == "Fjellby kommune"
    # The flat keys are the profile's own, and only those (none of another form's).
    assert result.flat_values() == {
        "organisation_name": "Fjellby kommune",
        "merknader": "Vi har to.\n\nOg en til.",
        "enig": "nei",
    }
    assert {"merknader", "enig"} <= set(result.model_dump()) and "q1_choice" not in result.model_dump()


def test_packaged_profiles() -> None:
    assert "hoeringssvar-22-414" in available_profiles()
    assert load_profile().case_number == "22/414"
    with pytest.raises(ValueError):
        load_profile("finnes-ikke")
