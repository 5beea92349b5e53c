"""OCR accuracy on scans made from the generated forms, and the form reader's cost for a 3-page scan.

    .venv/bin/python -m benchmarks.ocr_accuracy                 # the README table (about 10-20 minutes on 2 cores)
    .venv/bin/python -m benchmarks.ocr_accuracy --forms 2 --kinds grey_150   # a quick look

Every committed filled-in form PDF (tests/fixtures/forms, expectations from the generator's input) is rasterised
and degraded as each scan kind (tests/forms/make_scans.py: grey 150 dpi, black-and-white 200 dpi, crooked and
speckled 150 dpi, a JPEG phone photo of the first page at an angle), then read by `parse_form` (the photo: the fields
of page 1 only). Checkboxes are counted per box (each option's ticked/unticked state, exact), text fields by
character error rate (Levenshtein distance / expected length, summed over the fields, paragraph breaks included).
The cost is the isolated form reader (`analyse_documents_isolated`, the worker's code path) on a 3-page scan:
wall time, and CPU time and peak RSS of the reader process and its Tesseract children.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from postmottak.parsers.forms import DocumentInput, load_profile, parse_form
from postmottak.parsers.forms.answers import field_specs, text_fields
from tests.forms.corpus import FIXTURES, expectations
from tests.forms.make_scans import SCAN_KINDS, scan_of

# The corpus's form (the packaged default profile): every text field, and the short fields printed on page 1 of
# every generated form (what a photo of page 1 can show).
TEXT_FIELDS = tuple(spec.key for spec in text_fields(load_profile()))
PAGE_ONE_FIELDS = tuple(spec.key for spec in text_fields(load_profile()) if not spec.multiline)
# The ticked options of each choice question (a group's list of every tick where it has one).
BOX_KEYS = tuple(spec.list_key or spec.key for spec in field_specs(load_profile()) if spec.kind == "choice")


@dataclass
class Tally:
    boxes: int = 0
    boxes_right: int = 0
    chars: int = 0
    char_errors: int = 0
    fields: int = 0
    fields_exact: int = 0
    low_confidence_fields: int = 0
    ocr_marked_fields: int = 0
    forms: int = 0
    forms_parsed: int = 0
    seconds: float = 0.0
    misses: list[str] = field(default_factory=list)

    def add(self, other: "Tally") -> None:
        for name in (
            "boxes",
            "boxes_right",
            "chars",
            "char_errors",
            "fields",
            "fields_exact",
            "low_confidence_fields",
            "ocr_marked_fields",
            "forms",
            "forms_parsed",
            "seconds",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.misses.extend(other.misses)


def box_states(result: dict, expected: dict, *, choices: bool = True) -> list[bool]:
    """Right/wrong per checkbox: the ten organisation types and the three choices of question 1."""
    profile = load_profile()
    states = []
    for section in profile.sections:
        if section.kind == "checkboxes":
            got = set(result.get(section.list_field) or [])
            want = set(expected.get(section.list_field) or [])
            states.extend((option.value in got) == (option.value in want) for option in section.options)
        if choices and section.choices and expected.get(section.choice_field) is not None:
            got_choice, want_choice = result.get(section.choice_field), expected.get(section.choice_field)
            states.extend((got_choice == c.value) == (want_choice == c.value) for c in section.choices)
    return states


def score(name: str, kind: str, result: dict, expected: dict, seconds: float) -> Tally:
    tally = Tally(forms=1, seconds=seconds)
    tally.forms_parsed = int(result["form_status"] in ("parsed", "partial"))
    # A photo of page 1 shows the organisation types; question 1 may be on page 2.
    states = box_states(result, expected, choices=not SCAN_KINDS[kind].photo)
    tally.boxes, tally.boxes_right = len(states), sum(states)
    if len(states) != sum(states):
        boxes = " ".join(str(result.get(key)) for key in BOX_KEYS)
        tally.misses.append(f"{kind} {name}: boxes {boxes}")
    fields = PAGE_ONE_FIELDS if SCAN_KINDS[kind].photo else TEXT_FIELDS
    for key in fields:
        want, got = expected.get(key) or "", result.get(key) or ""
        tally.fields += 1
        tally.fields_exact += int(want == got)
        tally.chars += max(len(want), 1 if got else 0)
        tally.char_errors += Levenshtein.distance(want, got)
        if want != got:
            tally.misses.append(f"{kind} {name} {key}: {got[:90]!r} != {want[:90]!r}")
    codes = result.get("warning_codes", [])
    tally.ocr_marked_fields = sum(1 for c in codes if c.startswith(("ocr.field:", "ocr.low_confidence:")))
    tally.low_confidence_fields = sum(1 for c in codes if c.startswith("ocr.low_confidence:"))
    return tally


def measure_accuracy(form_names: list[str], kinds: list[str]) -> dict[str, Tally]:
    cases = dict(expectations())
    tallies: dict[str, Tally] = {}
    for kind in kinds:
        tallies[kind] = Tally()
        for seed, name in enumerate(form_names):
            pdf = (FIXTURES / f"{name}.pdf").read_bytes()
            data, suffix = scan_of(pdf, SCAN_KINDS[kind], seed=seed)
            started = time.perf_counter()
            result = parse_form(data, f"{name}{suffix}").model_dump()
            expected = cases[name]
            tallies[kind].add(score(name, kind, result, expected, time.perf_counter() - started))
            print(
                f"  {kind:18} {name:28} {result['form_status']:10} {time.perf_counter() - started:5.1f} s",
                file=sys.stderr,
                flush=True,
            )
    return tallies


def measure_worker_cost(pages: int = 3) -> dict[str, float]:
    """Wall time through the isolated reader (the worker's path); CPU and peak RSS from a child process that runs
    the same analysis under the same memory limit (the isolated reader's process is the forkserver's child, so its
    usage does not reach ours)."""
    import subprocess
    import tempfile

    from postmottak.intake.form_worker import analyse_documents_isolated

    pdf = (FIXTURES / "form_long_multipage.pdf").read_bytes()
    data, _suffix = scan_of(pdf, SCAN_KINDS["grey_150"], max_pages=pages)
    started = time.perf_counter()
    analysis = analyse_documents_isolated([DocumentInput("skanning.pdf", "application/pdf", data)], timeout_s=600)
    wall = time.perf_counter() - started
    with tempfile.NamedTemporaryFile(suffix=".pdf") as scan:
        scan.write(data)
        scan.flush()
        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.ocr_accuracy", "--cost-child", scan.name],
            capture_output=True,
            text=True,
            check=True,
        )
    usage = json.loads(child.stdout)
    return {
        "pages": pages,
        "wall_s": round(wall, 1),
        **usage,
        "status": analysis.document_statuses[0],
        "scan_bytes": len(data),
        # The searchable PDF made from the same Tesseract run (stored beside the scan by the worker).
        "layer_bytes": len(layer.pdf) if (layer := analysis.text_layers[0]) is not None and layer.pdf else 0,
    }


def cost_child(path: Path) -> None:
    """Analyse one file as the form reader does (same memory limit) and print its CPU time and peak RSS."""
    from postmottak.intake.form_worker import DEFAULT_MEMORY_MB, _limit_memory
    from postmottak.parsers.forms import analyse_single_document

    _limit_memory(DEFAULT_MEMORY_MB)
    analyse_single_document(DocumentInput(path.name, "application/pdf", path.read_bytes()))
    own = resource.getrusage(resource.RUSAGE_SELF)
    tesseract = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "cpu_s": round(own.ru_utime + own.ru_stime + tesseract.ru_utime + tesseract.ru_stime, 1),
                "reader_cpu_s": round(own.ru_utime + own.ru_stime, 1),
                # Tesseract's own peak is not separable: a child's ru_maxrss starts from its parent's RSS at the fork.
                "peak_rss_mb": round(own.ru_maxrss / 1024),
            }
        )
    )


def table(tallies: dict[str, Tally], cost: dict[str, float] | None) -> str:
    lines = [
        "| scan | forms | checkboxes right | text characters right (1 - CER) | text fields exact "
        "| fields flagged low | s/form |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    total = Tally()
    for kind, tally in tallies.items():
        total.add(tally)
        lines.append(_row(kind, tally))
    if len(tallies) > 1:
        lines.append(_row("**all**", total))
    if cost:
        lines.append("")
        lines.append(
            f"Form reader for one {cost['pages']}-page scan (grey, 150 dpi, isolated reader as the worker runs it): "
            f"{cost['wall_s']} s wall; {cost['cpu_s']} s CPU ({cost['reader_cpu_s']} s of it "
            f"cleaning, boxes and parsing, the rest Tesseract); peak RSS of the reader {cost['peak_rss_mb']} MB."
        )
        if cost.get("layer_bytes"):
            lines.append(
                f"Its searchable PDF (made in the same Tesseract run): {cost['layer_bytes'] / 1024:.0f} kB, "
                f"beside the {cost['scan_bytes'] / 1024:.0f} kB scan."
            )
    return "\n".join(lines)


def _row(kind: str, tally: Tally) -> str:
    boxes = 100 * tally.boxes_right / tally.boxes if tally.boxes else 0.0
    chars = 100 * (1 - tally.char_errors / tally.chars) if tally.chars else 0.0
    exact = f"{tally.fields_exact}/{tally.fields}"
    low = f"{tally.low_confidence_fields}/{tally.ocr_marked_fields}"
    per_form = tally.seconds / tally.forms if tally.forms else 0.0
    return (
        f"| {kind} | {tally.forms} | {boxes:.2f} % ({tally.boxes_right}/{tally.boxes}) | {chars:.2f} % "
        f"| {exact} | {low} | {per_form:.1f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forms", type=int, default=0, help="only the first N forms (default: all)")
    parser.add_argument("--names", nargs="*", help="only these forms (file names without .pdf)")
    parser.add_argument("--kinds", nargs="*", default=list(SCAN_KINDS), choices=list(SCAN_KINDS))
    parser.add_argument("--no-cost", action="store_true", help="skip the 3-page worker cost")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--table-from", type=Path, nargs="*", help="only print the table of earlier --json files")
    parser.add_argument("--cost-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cost_child:
        cost_child(args.cost_child)
        return 0
    if args.table_from:
        tallies, cost = {}, None
        for path in args.table_from:
            raw = json.loads(path.read_text())
            tallies.update({kind: Tally(**figures) for kind, figures in raw["accuracy"].items()})
            cost = raw["cost"] or cost
        print(table(tallies, cost))
        return 0
    names = [name for name, _expected in expectations() if name != "form_long_multipage"]
    names = [name for name in names if name in args.names] if args.names else names
    names = names[: args.forms] if args.forms else names
    tallies = measure_accuracy(names, args.kinds)
    cost = None if args.no_cost else measure_worker_cost()
    print(table(tallies, cost))
    for tally in tallies.values():
        for miss in tally.misses:
            print(f"  miss: {miss}", file=sys.stderr)
    if args.json:
        raw = {kind: {k: v for k, v in vars(t).items()} for kind, t in tallies.items()}
        args.json.write_text(json.dumps({"accuracy": raw, "cost": cost}, ensure_ascii=False, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
