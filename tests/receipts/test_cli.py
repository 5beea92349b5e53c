"""`postmottak receipts send|list|resend` against a real SMTP sink and database."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from postmottak.casefile.db import Database
from postmottak.intake import cli
from postmottak.intake.cli import receipts as cli_receipts
from tests.servers.smtp import SmtpSink

from .helpers import receipt_of, register, sync_cases

pytestmark = [pytest.mark.smtp]


@pytest.fixture
def config(database: Database, smtp_sink: SmtpSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    sync_cases(database)
    path = tmp_path / "postmottak.toml"
    path.write_text(
        f"""
[database]
url = "{database.url}"
[storage]
path = "docs"
[smtp]
host = "{smtp_sink.host}"
port = {smtp_sink.port}
security = "none"
sender = "postmottak@ehelse.no"
[receipts]
retry_base_seconds = 0
contact_address = "spørsmål@ehelse.no"
[[cases]]
number = "22/414"
title = "Høring - Nasjonal e-helsestrategi for helse- og omsorgssektoren"
deadline = "2022-10-01"
""",
        encoding="utf-8",
    )
    monkeypatch.setattr(cli_receipts, "console", Console(width=300))  # no wrapped table cells
    return path


def invoke(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, ["--config", str(config), *args])
    return result.exit_code, result.output


def test_send_list_resend(config: Path, database: Database, smtp_sink: SmtpSink) -> None:
    bad = register(database, sender="feil@example.no")  # first in line: gets the 550
    good = register(database, sender="kari@example.no")
    smtp_sink.fail_next_rcpt(1, 550)
    code, output = invoke(config, "receipts", "send")
    assert code == 1 and "sendt 1" in output and "feilet 1" in output
    assert [m.rcpt_tos for m in smtp_sink.messages] == [("kari@example.no",)]
    assert "spørsmål@ehelse.no" in smtp_sink.messages[0].message.get_body().get_content()

    code, output = invoke(config, "receipts", "list", "--status", "failed")
    assert code == 0 and "feil@example.no" in output and "550" in output and "kari@example.no" not in output

    bad_receipt = receipt_of(database, bad).id
    code, output = invoke(config, "receipts", "resend", str(bad_receipt), "--to", "riktig@example.no")
    assert code == 0
    code, output = invoke(config, "receipts", "resend", str(receipt_of(database, good).id))
    assert code == 1 and "only failed, bounced or suppressed" in output

    code, output = invoke(config, "receipts", "send")
    assert code == 0 and "sendt 1" in output
    assert [m.rcpt_tos[0] for m in smtp_sink.messages] == ["kari@example.no", "riktig@example.no"]
    assert receipt_of(database, bad).status == "sent"

    code, output = invoke(config, "receipts", "list")
    assert code == 0 and "Totalt: sendt 2" in output


def test_send_without_smtp_host_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[database]\nurl = "sqlite:///p.db"\n', encoding="utf-8")
    code, output = invoke(path, "receipts", "send")
    assert code == 2 and "no SMTP server configured" in output
