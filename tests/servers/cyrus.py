"""A real, throwaway Cyrus IMAP server for tests (the second server besides Dovecot).

Debian's `cyrus-imapd` package conflicts with `dovecot-imapd` (both provide imap-server), so the tests use
`cyrus-common` + `sasl2-bin` from the system and only the imapd binaries unpacked from the `cyrus-imapd` package
into CYRUS_PREFIX (scripts/ensure-system-packages does that). Everything else (imapd.conf, cyrus.conf, the
configdirectory, the partition, the sasldb with the test user and an admin) lives in one temp dir; the master
process runs in the foreground on 127.0.0.1 on a free port and is stopped like Dovecot.

Namespaces, as an administrator would choose them:
- `CyrusServer()`: Cyrus's classic default, personal folders under `INBOX.` (separator ".", altnamespace off);
- `CyrusServer(altnamespace=True)`: personal folders next to INBOX (prefix "");
- `CyrusServer(unixhierarchysep=True)`: separator "/" (`INBOX/Behandlet`).

Cyrus tells an idling client about new mail only every `imapidlepoll` seconds unless `idled` runs; tests set it
to 1 s. The API matches DovecotServer where tests need it (append, list_uids, personal(), restart, ...).
"""

from __future__ import annotations

import atexit
import grp
import os
import pwd
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
from typing import Iterable

from imapclient import IMAPClient

CYRUS_PREFIX = Path(os.environ.get("POSTMOTTAK_CYRUS_PREFIX", "/opt/cyrus-imapd"))
CYRUS_LIB = Path("/usr/lib/cyrus/bin")  # cyrus-common: master, ctl_cyrusdb, ...
SASLPASSWD = "/usr/sbin/saslpasswd2"
DEFAULT_USERNAME = "postmottak"
DEFAULT_PASSWORD = "hemmelig-test-passord"
ADMIN_USERNAME = "cyrusadmin"
ADMIN_PASSWORD = "hemmelig-admin-passord"
STARTUP_TIMEOUT_SECONDS = 15.0


def imapd_binary() -> Path:
    for candidate in (CYRUS_PREFIX / "usr/lib/cyrus/bin/imapd", CYRUS_LIB / "imapd"):
        if os.access(candidate, os.X_OK):
            return candidate
    return CYRUS_PREFIX / "usr/lib/cyrus/bin/imapd"


def cyrus_available() -> bool:
    """True when cyrus-common, sasl2-bin and the unpacked imapd are present (see scripts/ensure-system-packages)."""
    return all(os.access(path, os.X_OK) for path in (imapd_binary(), CYRUS_LIB / "master", Path(SASLPASSWD)))


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_live_servers: "weakref.WeakSet[CyrusServer]" = weakref.WeakSet()


@atexit.register
def _kill_leftover_servers() -> None:
    for server in list(_live_servers):
        server.cleanup()


class CyrusError(RuntimeError):
    pass


class CyrusServer:
    """A Cyrus instance owned by the test. Use as a context manager or call start()/stop()."""

    host = "127.0.0.1"
    kind = "cyrus"

    def __init__(
        self,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        *,
        altnamespace: bool = False,
        unixhierarchysep: bool = False,
        idle_poll_seconds: int = 1,
        timezone: str = "Europe/Oslo",
        root_dir: Path | None = None,
    ) -> None:
        self.username = username
        self.password = password
        self.altnamespace = altnamespace
        self.unixhierarchysep = unixhierarchysep
        self.idle_poll_seconds = idle_poll_seconds
        self.timezone = timezone
        self.separator = "/" if unixhierarchysep else "."
        # Where the user's own folders live, as NAMESPACE announces it.
        self.personal_prefix = "" if altnamespace else f"INBOX{self.separator}"
        self.port = 0
        self._fixed_port = False
        self._owns_root_dir = root_dir is None
        self.root_dir = Path(root_dir) if root_dir else Path(tempfile.mkdtemp(prefix="postmottak-cyrus-"))
        self.config_path = self.root_dir / "imapd.conf"
        self.log_path = self.root_dir / "master.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._admin: IMAPClient | None = None
        self._refused_modes: dict[Path, int] = {}  # directories made read-only by refuse_new_folders()
        self._user_created = False

    @property
    def name(self) -> str:
        variant = "altnamespace" if self.altnamespace else "default"
        return f"cyrus-{variant}" + ("-unixsep" if self.unixhierarchysep else "")

    def personal(self, name: str) -> str:
        """The full name of the user's folder `name` (written with "/" between levels), e.g. INBOX.Behandlet."""
        return self.personal_prefix + name.replace("/", self.separator)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "CyrusServer":
        if self.running:
            return self
        if not cyrus_available():
            raise CyrusError(f"Cyrus imapd not found under {CYRUS_PREFIX}; run scripts/ensure-system-packages")
        attempts = 1 if (self._fixed_port or self.port) else 5  # a restart keeps its port
        last_error: Exception | None = None
        for _ in range(attempts):
            if not self.port:
                self.port = _free_loopback_port()
            self._write_config()
            try:
                self._spawn_and_wait()
                _live_servers.add(self)
                break
            except CyrusError as error:
                last_error = error
                self._terminate_process(graceful=False)
                if attempts == 1:
                    break
                self.port = 0
        else:
            raise CyrusError(f"Cyrus did not start: {last_error}")
        if not self.running:
            raise CyrusError(f"Cyrus did not start: {last_error}")
        if not self._user_created:
            admin = self._login(ADMIN_USERNAME, ADMIN_PASSWORD)
            try:
                admin.create_folder(f"user{self.separator}{self.username}")
            finally:
                admin.logout()
            self._user_created = True
        return self

    def stop(self, graceful: bool = True) -> None:
        """Stop the server; data and port are kept for start(). graceful=False kills it like a crash."""
        self._close_admin()
        self._terminate_process(graceful=graceful)

    def restart(self, graceful: bool = True) -> None:
        self.stop(graceful=graceful)
        self._fixed_port = True
        self.start()

    def cleanup(self) -> None:
        self._close_admin()
        self._terminate_process(graceful=False)
        if self._owns_root_dir:
            shutil.rmtree(self.root_dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> "CyrusServer":
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

    # ------------------------------------------------------------------ config and process

    def _run_as(self) -> tuple[str, str]:
        """Cyrus drops root to its own user; an ordinary user runs everything as itself (cyrus_user)."""
        if os.getuid() == 0:
            try:
                account = pwd.getpwnam("cyrus")
                return account.pw_name, grp.getgrgid(account.pw_gid).gr_name
            except KeyError as exc:
                raise CyrusError("user 'cyrus' missing (it comes with cyrus-common)") from exc
        return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name

    def _write_config(self) -> None:
        root = self.root_dir
        config_dir = root / "conf"
        for sub in ("conf", "conf/socket", "conf/proc", "conf/db", "conf/log", "conf/lock", "partition", "run"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        user, group = self._run_as()
        conf = f"""\
# Generated by tests/servers/cyrus.py - throwaway test instance.
configdirectory: {config_dir}
defaultpartition: default
partition-default: {root / "partition"}
admins: {ADMIN_USERNAME}
servername: postmottak-test
cyrus_user: {user}
cyrus_group: {group}
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {root / "sasldb2"}
sasl_mech_list: PLAIN LOGIN
allowplaintext: yes
altnamespace: {"yes" if self.altnamespace else "no"}
unixhierarchysep: {"yes" if self.unixhierarchysep else "no"}
imapidlepoll: {self.idle_poll_seconds}
idlesocket: {config_dir / "socket/idle"}
notifysocket: {config_dir / "socket/notify"}
lmtpsocket: {config_dir / "socket/lmtp"}
mboxname_lockpath: {config_dir / "lock"}
proc_path: {config_dir / "proc"}
delete_mode: immediate
expunge_mode: immediate
"""
        self.config_path.write_text(conf, encoding="utf-8")
        services = f"""\
START {{
  recover cmd="{CYRUS_LIB / "ctl_cyrusdb"} -C {self.config_path} -r"
}}
SERVICES {{
  imap cmd="{imapd_binary()} -C {self.config_path}" listen="{self.host}:{self.port}" prefork=0
}}
EVENTS {{
}}
DAEMON {{
}}
"""
        (root / "cyrus.conf").write_text(services, encoding="utf-8")
        sasldb = root / "sasldb2"
        if not sasldb.exists():
            for name, password in ((ADMIN_USERNAME, ADMIN_PASSWORD), (self.username, self.password)):
                subprocess.run(
                    [SASLPASSWD, "-p", "-c", "-f", str(sasldb), "-u", "postmottak-test", name],
                    input=password.encode(),
                    check=True,
                    capture_output=True,
                    timeout=10,
                )
        if os.getuid() == 0:
            account = pwd.getpwnam(user)
            root.chmod(0o755)
            for path in [root, *root.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid)

    def _spawn_and_wait(self) -> None:
        log_offset = len(self.log_text())
        self._process = subprocess.Popen(
            [
                str(CYRUS_LIB / "master"),
                "-C",
                str(self.config_path),
                "-M",
                str(self.root_dir / "cyrus.conf"),
                "-p",
                str(self.root_dir / "run/master.pid"),
                "-L",
                str(self.log_path),
            ],
            env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "TZ": self.timezone},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                raise CyrusError(
                    f"exited with {self._process.returncode}: {stderr.strip()} {self.log_text()[log_offset:].strip()}"
                )
            if self._greeting_arrives():
                return
            time.sleep(0.02)
        raise CyrusError(f"no IMAP greeting on {self.host}:{self.port} within {STARTUP_TIMEOUT_SECONDS}s")

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
            try:
                os.killpg(process.pid, signal.SIGKILL)  # master and every imapd share the group
            except ProcessLookupError:
                pass
            process.wait(timeout=5)
        if process.stderr:
            process.stderr.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self._port_accepts():
            time.sleep(0.02)

    def _port_accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.2):
                return True
        except OSError:
            return False

    # ------------------------------------------------------------------ admin helpers (separate connection)

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
        refused = bool(self._refused_modes)  # delivering stages the file in the partition
        if refused:
            self.allow_new_folders()
        try:
            response = self._admin_client().append(folder, raw, flags=tuple(flags), msg_time=internaldate)
        finally:
            if refused:
                self.refuse_new_folders()
        text = response.decode() if isinstance(response, bytes) else str(response)
        if "APPENDUID" not in text:
            raise CyrusError(f"APPEND response without APPENDUID: {text!r}")
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

    def recreate_folder_with_new_uidvalidity(self, folder: str) -> int:
        """Delete and re-create `folder` (INBOX: the whole user, as the admin) until UIDVALIDITY differs."""
        old = self.uidvalidity(folder)
        self._close_admin()
        for _ in range(5):
            if folder.upper() == "INBOX":
                admin = self._login(ADMIN_USERNAME, ADMIN_PASSWORD)
                try:
                    mailbox = f"user{self.separator}{self.username}"
                    admin.setacl(mailbox, ADMIN_USERNAME, "lrswipkxtecda")  # admins may delete, given x
                    admin.delete_folder(mailbox)
                    admin.create_folder(mailbox)
                finally:
                    admin.logout()
            else:
                self.delete_folder(folder)
                self.create_folder(folder)
            new = self.uidvalidity(folder)
            if new != old:
                return new
            time.sleep(1.0)  # Cyrus derives UIDVALIDITY from the clock
        raise CyrusError(f"UIDVALIDITY of {folder!r} did not change ({old})")

    def refuse_new_folders(self) -> None:
        """Make CREATE fail (NO System I/O error): no new mailbox directory can be made in the partition.

        (Taking the create right away does not do it: Cyrus lets owners create under their own INBOX.) append()
        lifts it for the delivery."""
        for path in (self.root_dir / "partition").rglob("*"):
            if path.is_dir() and not (path / "cyrus.header").exists():
                self._refused_modes.setdefault(path, path.stat().st_mode & 0o7777)
                path.chmod(0o555)

    def allow_new_folders(self) -> None:
        """Undo refuse_new_folders()."""
        for path, mode in self._refused_modes.items():
            path.chmod(mode)
        self._refused_modes.clear()
