"""`postmottak run` (the scheduled loop): logs each cycle and stops cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import mailfactory as mf

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_polls_on_schedule_and_stops_on_signal(tmp_path: Path, signum: int) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "1.eml").write_bytes(mf.response_mail(org="NITO", attachments=[]))
    config = tmp_path / "postmottak.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "db.sqlite"}"\n[storage]\npath = "{tmp_path / "docs"}"\n'
        f'[folder]\npath = "{folder}"\n[schedule]\ninterval_seconds = 1\n'
        f'[[cases]]\nnumber = "22/414"\ntitle = "{mf.CASE_TITLE}"\ndeadline = "2022-10-01"\n',
        encoding="utf-8",
    )
    log = tmp_path / "run.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "postmottak", "--config", str(config), "run"],
            cwd=REPO,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = log.read_text()
            if text.count("fetched") >= 2:  # the first cycle and at least one scheduled one
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"no two cycles logged:\n{log.read_text()}")
        # A mail dropped in while the loop runs is picked up by a later cycle.
        (folder / "2.eml").write_bytes(mf.response_mail(org="Bærum kommune", attachments=[]))
        while time.monotonic() < deadline and log.read_text().count("(registered 1)") < 2:
            time.sleep(0.2)
        process.send_signal(signum)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text()
    assert text.count("(registered 1)") == 2, text
    assert "finishing the current cycle and stopping" in text and "stopped" in text
    assert "Traceback" not in text
