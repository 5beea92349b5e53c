"""What the throwaway IMAP test servers (Dovecot, Cyrus) share: the process and the test user's mailbox.

A subclass supplies its own binaries and config (`_available`, `_write_config`, `_command`), and where it differs,
a few hooks. The base picks a free port on 127.0.0.1, runs the server in the foreground in its own process group
and waits for the IMAP greeting, stops it gracefully (SIGTERM) or like a crash (SIGKILL to the group), restarts it
on the same port, and offers IMAPClient helpers that act as the test user on a separate connection.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Iterable, Self

from imapclient import IMAPClient


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# The servers run in their own session (so Ctrl-C in pytest does not hit them first); make sure an interrupted test
# run does not leave instances behind.
_live_servers: "weakref.WeakSet[ImapTestServer]" = weakref.WeakSet()


@atexit.register
def _kill_leftover_servers() -> None:
    for server in list(_live_servers):
        server.cleanup()


class ImapTestServer:
    """An IMAP server process owned by the test. Use as a context manager or call start()/stop()."""

    host = "127.0.0.1"
    product: ClassVar[str]  # for messages: "Dovecot", "Cyrus"
    error: ClassVar[type[RuntimeError]]  # raised for anything that goes wrong with this server
    startup_timeout_seconds: ClassVar[float]
    dir_prefix: ClassVar[str]  # of the temp dir made when no root_dir is given
    config_name: ClassVar[str]  # file names in the root dir
    log_name: ClassVar[str]
    # Whether cleanup() of data the caller keeps, and a failed start, send SIGTERM before killing the group.
    sigterm_first: ClassVar[bool] = False
    separator: str
    personal_prefix: str

    def __init__(
        self,
        username: str,
        password: str,
        *,
        port: int | None,
        root_dir: Path | None,
        timezone: str,
    ) -> None:
        self.username = username
        self.password = password
        self.timezone = timezone  # TZ of the server process
        self._fixed_port = bool(port)
        self.port: int = port or 0
        self._owns_root_dir = root_dir is None
        self.root_dir = Path(root_dir) if root_dir else Path(tempfile.mkdtemp(prefix=self.dir_prefix))
        self.config_path = self.root_dir / self.config_name
        self.log_path = self.root_dir / self.log_name
        self._process: subprocess.Popen[bytes] | None = None
        self._admin: IMAPClient | None = None
        self._refused_modes: dict[Path, int] = {}  # directories made read-only by refuse_new_folders()

    # ------------------------------------------------------------------ what a server supplies

    def _available(self) -> bool:
        raise NotImplementedError

    def _not_available_message(self) -> str:
        raise NotImplementedError

    def _write_config(self) -> None:
        raise NotImplementedError

    def _command(self) -> list[str]:
        """The command line that runs the server in the foreground."""
        raise NotImplementedError

    def _worth_retrying(self, error: RuntimeError) -> bool:
        """Whether a failed start on a probed port is tried again on another one."""
        return True

    def _startup_failure(self, new_log: str) -> str | None:
        """A reason to give up waiting for the greeting, read from what the server logged since the start."""
        return None

    def _after_start(self) -> None:
        """Runs after each successful start."""

    def refuse_new_folders(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        if self.running:
            return self
        if not self._available():
            raise self.error(self._not_available_message())
        # A port picked by probing can be taken between probe and bind; retry with a fresh one unless fixed.
        attempts = 1 if (self._fixed_port or self.port) else 5
        last_error: RuntimeError | None = None
        for _ in range(attempts):
            if not self.port:
                self.port = free_loopback_port()
            self._write_config()
            try:
                self._spawn_and_wait()
            except self.error as error:
                last_error = error
                self._terminate_process(graceful=self.sigterm_first)
                if attempts == 1 or not self._worth_retrying(error):
                    break
                self.port = 0
                continue
            _live_servers.add(self)
            self._after_start()
            return self
        raise self.error(f"{self.product} did not start: {last_error}")

    def stop(self, graceful: bool = True) -> None:
        """Stop the server; data and port are kept for start().

        graceful: SIGTERM; False kills the process group at once, like a crash (committed mail survives either way).
        """
        self._close_admin()
        self._terminate_process(graceful=graceful)

    def restart(self, graceful: bool = True) -> None:
        """Stop and start again on the same port with the same data."""
        self.stop(graceful=graceful)
        self._fixed_port = self._fixed_port or bool(self.port)
        self.start()

    def cleanup(self) -> None:
        """Stop and delete the temp dir (if this object created it).

        When the data is thrown away anyway, the process group is killed outright (no graceful shutdown to wait for).
        """
        self._close_admin()
        self._terminate_process(graceful=self.sigterm_first and not self._owns_root_dir)
        if self._owns_root_dir:
            shutil.rmtree(self.root_dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    # ------------------------------------------------------------------ process

    def _spawn_and_wait(self) -> None:
        log_offset = len(self.log_text())
        self._process = subprocess.Popen(
            self._command(),
            env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "TZ": self.timezone},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout_seconds
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                returncode = self._process.returncode
                raise self.error(f"exited with {returncode}: {stderr.strip()} {self._log_since(log_offset)}")
            if self._greeting_arrives():
                return
            failure = self._startup_failure(self._log_since(log_offset))
            if failure:
                raise self.error(failure)
            time.sleep(0.02)
        raise self.error(f"no IMAP greeting on {self.host}:{self.port} within {self.startup_timeout_seconds}s")

    def _log_since(self, offset: int) -> str:
        return self.log_text()[offset:].strip()

    def _greeting_arrives(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as conn:
                conn.settimeout(2.0)
                return conn.recv(512).startswith(b"* OK")
        except OSError:
            return False

    def _terminate_process(self, graceful: bool = True) -> None:
        process = self._process
        self._process = None
        if process is None:
            return
        if process.poll() is None:
            if graceful:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            # The master and every child share the process group we created for it (start_new_session).
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=5)
        if process.stderr:
            process.stderr.close()
        # The children exit when the master goes; wait until the listener is really gone.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self._port_accepts():
            time.sleep(0.02)

    def _port_accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.2):
                return True
        except OSError:
            return False

    # ------------------------------------------------------------------ helpers (separate connection)

    def _login(self, username: str, password: str) -> IMAPClient:
        client = IMAPClient(self.host, port=self.port, ssl=False, use_uid=True, timeout=10)
        client.login(username, password)
        return client

    def connect(self) -> IMAPClient:
        """A fresh IMAPClient logged in as the test user; the caller closes it."""
        return self._login(self.username, self.password)

    def _admin_client(self) -> IMAPClient:
        if self._admin is not None:
            try:
                self._admin.noop()
                return self._admin
            except Exception:
                self._close_admin()
        self._admin = self.connect()
        return self._admin

    def _close_admin(self) -> None:
        admin, self._admin = self._admin, None
        if admin is None:
            return
        try:
            admin.logout()
        except Exception:
            try:
                admin.shutdown()
            except Exception:
                pass

    def append(
        self, raw: bytes, internaldate: datetime, folder: str = "INBOX", flags: Iterable[str | bytes] = ()
    ) -> int:
        """Append a message with the given INTERNALDATE (tz-aware) as the test user; returns its UID."""
        if internaldate.tzinfo is None or internaldate.utcoffset() is None:
            raise ValueError("internaldate must be timezone-aware")
        refused = bool(self._refused_modes)  # delivering needs the storage writable
        if refused:
            self.allow_new_folders()
        try:
            response = self._admin_client().append(folder, raw, flags=tuple(flags), msg_time=internaldate)
        finally:
            if refused:
                self.refuse_new_folders()
        # Both servers answer with UIDPLUS: b"[APPENDUID <uidvalidity> <uid>] Append completed."
        text = response.decode() if isinstance(response, bytes) else str(response)
        if "APPENDUID" not in text:
            raise self.error(f"APPEND response without APPENDUID: {text!r}")
        return int(text.split("APPENDUID", 1)[1].split("]", 1)[0].split()[1])

    def create_folder(self, name: str) -> None:
        self._admin_client().create_folder(name)

    def delete_folder(self, name: str) -> None:
        self._admin_client().delete_folder(name)

    def folder_exists(self, name: str) -> bool:
        return bool(self._admin_client().folder_exists(name))

    def list_uids(self, folder: str = "INBOX") -> list[int]:
        client = self._admin_client()
        client.select_folder(folder, readonly=True)
        try:
            return sorted(int(uid) for uid in client.search("ALL"))
        finally:
            client.unselect_folder()

    def fetch_all(self, folder: str = "INBOX") -> dict[int, bytes]:
        client = self._admin_client()
        client.select_folder(folder, readonly=True)
        try:
            uids = client.search("ALL")
            if not uids:
                return {}
            fetched = client.fetch(uids, [b"BODY.PEEK[]"])
            return {int(uid): bytes(data[b"BODY[]"]) for uid, data in fetched.items()}
        finally:
            client.unselect_folder()

    def uidvalidity(self, folder: str = "INBOX") -> int:
        return int(self._admin_client().folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])

    def personal(self, name: str) -> str:
        """The full name of the user's folder `name` (written with "/" between levels), e.g. INBOX.Behandlet."""
        return self.personal_prefix + name.replace("/", self.separator)

    def allow_new_folders(self) -> None:
        """Undo refuse_new_folders()."""
        for path, mode in self._refused_modes.items():
            path.chmod(mode)
        self._refused_modes.clear()
