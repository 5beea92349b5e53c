import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "forms"
BAD = FIXTURES / "bad"
SEED = Path(__file__).resolve().parents[2] / ".." / "shared" / "seed" / "000_d7729f5d16082052.txt"


def expectations() -> list[tuple[str, dict]]:
    return [
        (path.name.removesuffix(".expected.json"), json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(FIXTURES.glob("*.expected.json"))
    ]


def form_pdf_for_mail(index: int) -> bytes:
    """The index-th committed filled-in form PDF (wraps around): for other tests' mail factories."""
    pdfs = sorted(FIXTURES.glob("*.pdf"))
    return pdfs[index % len(pdfs)].read_bytes()
