"""`postmottak run` with IMAP IDLE (and XOAUTH2) against a real Dovecot and SMTP server.

The poll interval is an hour, so a receipt within the test's wait can only come from IDLE. The delay from APPEND
to the receipt at the SMTP server is printed (run with -s) and kept in $POSTMOTTAK_IDLE_DELAYS_FILE when set; it
is reported in benchmarks/README.md, not asserted.

The IDLE tests run on Dovecot (XOAUTH2) and on Cyrus (password; default namespace and altnamespace). Cyrus without
its idled daemon reports new mail to an idling client only every `imapidlepoll` seconds; the test server sets 1 s.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from postmottak.intake.scheduler import SerialCycle
from tests import mailfactory as mf
from tests.oauth2.helpers import CLIENT_SECRET, KEY, TokenEndpoint, settings_for, toml_config
from tests.servers.cyrus import CyrusServer
from tests.servers.dovecot import DovecotServer
from tests.servers.fixtures import _require_dovecot, running_cyrus, running_dovecot
from tests.servers.smtp import SmtpSink

REPO = Path(__file__).resolve().parents[2]
ON_TIME = datetime(2022, 9, 20, 10, 0, tzinfo=mf.OSLO)
WAIT_SECONDS = 60  # far below the 3600 s poll interval


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, count: int = 1, timeout: float = WAIT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(text) >= count:
                return
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited ({self.process.returncode}):\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"{text!r} x{count} not in the worker log:\n{self.log()}")


@contextmanager
def running_worker(
    tmp_path: Path,
    dovecot: DovecotServer | CyrusServer,
    sink: SmtpSink,
    endpoint: TokenEndpoint,
    interval_seconds: int = 3600,
) -> Iterator[Worker]:
    """`postmottak run` in a subprocess (XOAUTH2 to both servers; password to Cyrus), stopped with SIGTERM."""
    password = isinstance(dovecot, CyrusServer)  # Cyrus's test instance has no XOAUTH2
    settings = settings_for(
        tmp_path,
        imap=dovecot,
        smtp=sink,
        endpoint=endpoint,
        imap_extra={
            "idle": True,
            "idle_timeout_seconds": 2,  # re-issued often, to exercise the renewal too
            **({"auth": "password"} if password else {}),
        },
    )
    settings.schedule.interval_seconds = interval_seconds
    settings.intake.parse_workers = 1
    config = toml_config(settings, tmp_path / "postmottak.toml")
    log_path = tmp_path / "worker.log"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "POSTMOTTAK_OAUTH2__CLIENT_SECRET": CLIENT_SECRET}
    if password:
        env["POSTMOTTAK_IMAP__PASSWORD"] = dovecot.password
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "postmottak", "--config", str(config), "run"],
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Worker(process, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(params=["dovecot", "cyrus-default", "cyrus-altnamespace"])
def idle_server(request: pytest.FixtureRequest) -> Iterator[DovecotServer | CyrusServer]:
    """Dovecot accepting XOAUTH2, or Cyrus (imapidlepoll 1 s) in its default namespace or with altnamespace."""
    if request.param == "dovecot":
        yield from running_dovecot(oauth2_key=KEY)
    else:
        yield from running_cyrus(altnamespace=request.param == "cyrus-altnamespace")


@pytest.fixture
def worker(
    tmp_path: Path, idle_server: DovecotServer | CyrusServer, smtp_oauth2: SmtpSink, endpoint: TokenEndpoint
) -> Iterator[Worker]:
    with running_worker(tmp_path, idle_server, smtp_oauth2, endpoint) as started:
        yield started


def append_response(server: DovecotServer | CyrusServer, n: int) -> float:
    raw = mf.response_mail(sender_addr=f"svar{n}@example.no", message_id=f"<idle-{n}-{time.time_ns()}@example.no>")
    started = time.time()
    server.append(raw, ON_TIME)
    return started


def test_idle_answers_new_mail_within_seconds(
    worker: Worker, idle_server: DovecotServer | CyrusServer, smtp_oauth2: SmtpSink
) -> None:
    worker.wait_for_log("IMAP IDLE on INBOX")
    worker.wait_for_log("nothing new")  # the start-up cycle is done
    delays: list[float] = []
    for n in range(1, 6):
        if n == 3:
            time.sleep(2.5)  # let at least one IDLE renewal (every 2 s here) happen while waiting
        started = append_response(idle_server, n)
        received = smtp_oauth2.wait_for(n, timeout=WAIT_SECONDS)[-1]
        assert received.rcpt_tos == (f"svar{n}@example.no",)
        assert received.auth_login == "postmottak"  # XOAUTH2
        delays.append(received.received_at - started)
    assert worker.process.poll() is None
    assert "IMAP IDLE interrupted" not in worker.log()
    assert CLIENT_SECRET not in worker.log() and "eyJ" not in worker.log()  # no secret, no token (JWT) logged
    median = statistics.median(delays)
    rounded = [round(d, 3) for d in delays]
    print(f"\nIDLE ({idle_server.name}): APPEND -> receipt delays {rounded} s, median {median:.3f} s")
    target = os.environ.get("POSTMOTTAK_IDLE_DELAYS_FILE")
    if target:
        Path(target).write_text(json.dumps({"delays_s": delays, "median_s": median}) + "\n", encoding="utf-8")
    # A clean stop on SIGTERM while idling.
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=30) == 0
    assert "stopped" in worker.log()


@pytest.mark.parametrize("idle_server", ["dovecot", "cyrus-default"], indirect=True)  # namespace-neutral
def test_idle_recovers_after_server_restart(
    worker: Worker, idle_server: DovecotServer | CyrusServer, smtp_oauth2: SmtpSink
) -> None:
    worker.wait_for_log("IMAP IDLE on INBOX")
    append_response(idle_server, 1)
    smtp_oauth2.wait_for(1, timeout=WAIT_SECONDS)
    idle_server.restart()  # the IDLE connection breaks (BYE / EOF)
    worker.wait_for_log("IMAP IDLE interrupted")
    worker.wait_for_log("IMAP IDLE on INBOX", count=2)  # reconnected (with a fresh login)
    append_response(idle_server, 2)
    second = smtp_oauth2.wait_for(2, timeout=WAIT_SECONDS)[-1]
    assert second.rcpt_tos == ("svar2@example.no",)
    assert worker.process.poll() is None
    print("\n" + worker.log())


@pytest.mark.parametrize("idle_server", ["dovecot", "cyrus-default"], indirect=True)  # namespace-neutral
def test_idle_recovers_after_server_crash(
    worker: Worker, idle_server: DovecotServer | CyrusServer, smtp_oauth2: SmtpSink
) -> None:
    """No BYE at all (killed): the watcher notices the closed socket and reconnects once the server is back."""
    worker.wait_for_log("IMAP IDLE on INBOX")
    idle_server.stop(graceful=False)
    worker.wait_for_log("IMAP IDLE interrupted")
    time.sleep(1.5)  # a reconnect attempt fails while the server is down
    idle_server.start()
    worker.wait_for_log("IMAP IDLE on INBOX", count=2)
    append_response(idle_server, 1)
    assert smtp_oauth2.wait_for(1, timeout=WAIT_SECONDS)[-1].rcpt_tos == ("svar1@example.no",)


def test_without_idle_the_poll_does_the_work(tmp_path: Path, smtp_oauth2: SmtpSink, endpoint: TokenEndpoint) -> None:
    _require_dovecot()
    no_idle = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE UIDPLUS MOVE NAMESPACE"
    with DovecotServer(oauth2_key=KEY, imap_capability=no_idle) as server:
        with running_worker(tmp_path, server, smtp_oauth2, endpoint, interval_seconds=1) as polling:
            polling.wait_for_log("does not offer IDLE")
            append_response(server, 1)
            assert smtp_oauth2.wait_for(1, timeout=WAIT_SECONDS)[-1].rcpt_tos == ("svar1@example.no",)
            assert "IMAP IDLE on INBOX" not in polling.log()
            assert polling.process.poll() is None


def test_serial_cycle_never_overlaps_and_keeps_wakeups() -> None:
    """Wake-ups during a running cycle make exactly one more cycle; scheduled runs skip while one runs."""
    running = threading.Event()
    release = threading.Event()
    active: list[int] = []
    overlaps: list[int] = []
    runs: list[int] = []

    def cycle() -> None:
        active.append(1)
        if len(active) > 1:
            overlaps.append(len(active))
        runs.append(1)
        running.set()
        release.wait(5)
        active.pop()

    serial = SerialCycle(cycle)
    first = threading.Thread(target=serial.scheduled)
    first.start()
    assert running.wait(5)
    serial.scheduled()  # returns at once: a cycle is running
    for _ in range(3):
        serial.request()
    drains = [threading.Thread(target=serial.drain) for _ in range(3)]
    for thread in drains:
        thread.start()
    release.set()
    first.join(5)
    for thread in drains:
        thread.join(5)
    assert overlaps == []
    assert len(runs) == 2  # the running one, then one for the three wake-ups
