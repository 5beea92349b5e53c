"""The wheel is what `pip install postmottak` puts on a machine: one `postmottak/` package with all its data files.

The wheel is built from a copy of the sources (setuptools' `build/lib` in the repository would carry files of older
builds into it). The data files expected in it come from the source tree, so a new template or migration that the
packaging forgets fails here. The installed copy is then run from a directory outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Folder in the repository -> its place in the installed package.
PACKAGE_DIRS = {
    "postmottak": "postmottak",
    "intake": "postmottak/intake",
    "parsers": "postmottak/parsers",
    "casefile": "postmottak/casefile",
    "config": "postmottak/config",
    "dashboard": "postmottak/dashboard",
}
SKIPPED_PARTS = {"__pycache__"}
FORM = REPO / "tests" / "fixtures" / "forms" / "form_long_multipage.pdf"
SAMPLE_MAILBOX = REPO / "examples" / "sample-mailbox"


def source_files() -> set[str]:
    """Every file of the package folders, as its path inside the wheel."""
    files: set[str] = set()
    for folder, target in PACKAGE_DIRS.items():
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and not SKIPPED_PARTS & set(path.parts) and path.suffix != ".pyc":
                files.add(f"{target}/{path.relative_to(REPO / folder).as_posix()}")
    return files


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in PACKAGE_DIRS:
        shutil.copytree(REPO / folder, source / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("postmottak-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name for name in archive.namelist() if not name.endswith("/")}


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return target


def test_wheel_holds_only_the_postmottak_package_and_its_metadata(wheel_names: set[str]) -> None:
    outside = {name for name in wheel_names if not name.startswith(("postmottak/", "postmottak-"))}
    assert not outside
    metadata_dirs = {name.split("/")[0] for name in wheel_names if name.startswith("postmottak-")}
    assert len(metadata_dirs) == 1 and metadata_dirs.pop().endswith(".dist-info")


def test_wheel_holds_every_file_of_the_source_folders(wheel_names: set[str]) -> None:
    expected = source_files()
    missing = sorted(expected - wheel_names)
    assert not missing, f"files the packaging leaves out: {missing}"
    extra = sorted({name for name in wheel_names if name.startswith("postmottak/")} - expected)
    assert not extra, f"files in the wheel that are not in the source folders: {extra}"


def test_wheel_carries_templates_migrations_schemas_profiles_and_the_receipt_template(wheel_names: set[str]) -> None:
    """The data files by kind, so an empty glob on both sides (folders moved away) does not pass unnoticed."""

    def count(prefix: str, suffix: str) -> int:
        return sum(1 for name in wheel_names if name.startswith(prefix) and name.endswith(suffix))

    assert count("postmottak/dashboard/templates/", ".html") == len(list((REPO / "dashboard/templates").glob("*.html")))
    assert count("postmottak/dashboard/templates/", ".html") >= 10
    assert count("postmottak/casefile/migrations/versions/", ".py") >= 2
    assert "postmottak/casefile/migrations/env.py" in wheel_names
    assert "postmottak/casefile/migrations/script.py.mako" in wheel_names
    assert count("postmottak/casefile/noark5/schemas/", ".xsd") == 6
    assert count("postmottak/parsers/forms/profiles/", ".toml") >= 1
    assert "postmottak/config/receipt_template.txt" in wheel_names
    assert not [name for name in wheel_names if name.endswith(".eml")]


def installed_env(site: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("POSTMOTTAK_")}
    env["PYTHONPATH"] = str(site)
    return env


def run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=installed_env(site),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    """A working directory outside the repository, so nothing is imported from the source folders."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    assert REPO not in cwd.parents
    yield cwd


def test_installed_copy_is_the_one_imported(installed: Path, outside: Path) -> None:
    probe = (
        "import json, postmottak, postmottak.bootstrap, postmottak.config.settings; "
        "print(json.dumps([postmottak.__file__, postmottak.bootstrap.__file__, postmottak.config.settings.__file__]))"
    )
    result = run_installed(installed, outside, "-c", probe)
    assert result.returncode == 0, result.stderr
    for module_file in json.loads(result.stdout):
        assert Path(module_file).resolve().is_relative_to(installed.resolve()), module_file


def test_installed_command_shows_help_and_parses_a_form(installed: Path, outside: Path) -> None:
    help_text = run_installed(installed, outside, "-m", "postmottak", "--help")
    assert help_text.returncode == 0, help_text.stderr
    assert "run" in help_text.stdout and "parse" in help_text.stdout

    parsed = run_installed(installed, outside, "-m", "postmottak", "parse", str(FORM), "--json")
    assert parsed.returncode == 0, parsed.stderr
    fields = json.loads(parsed.stdout)
    expected = json.loads(FORM.with_suffix(".expected.json").read_text(encoding="utf-8"))
    assert fields["form_status"] == expected["form_status"]
    assert fields["organisation_name"] == expected["organisation_name"]


def test_installed_worker_registers_a_mailbox_folder_once(installed: Path, outside: Path) -> None:
    mailbox = outside / "mailbox"
    mailbox.mkdir()
    mails = sorted(SAMPLE_MAILBOX.glob("*-response_on_time.eml"))[:2] + sorted(SAMPLE_MAILBOX.glob("*-unrelated.eml"))
    for mail in mails:
        shutil.copy2(mail, mailbox / mail.name)
    (outside / "postmottak.toml").write_text(
        '[database]\nurl = "sqlite:///data/postmottak.db"\n\n[storage]\npath = "data/documents"\n\n'
        '[folder]\npath = "mailbox"\n\n[smtp]\nsender = "postmottak@example.org"\n\n'
        '[[cases]]\nnumber = "22/414"\ntitle = "Høring - Nasjonal e-helsestrategi"\ndeadline = "2022-10-01"\n'
        'timezone = "Europe/Oslo"\n',
        encoding="utf-8",
    )
    result = run_installed(installed, outside, "-m", "postmottak", "--config", "postmottak.toml", "run", "--once")
    assert result.returncode == 0, result.stdout + result.stderr
    database = outside / "data" / "postmottak.db"
    with sqlite3.connect(database) as connection:
        (registered,) = connection.execute("SELECT count(*) FROM intake_records").fetchone()
    assert registered == len(mails)
