"""A real, throwaway Dovecot IMAP server for tests.

Everything (config, sockets, state, mail, log) lives in one temp dir; the server listens on 127.0.0.1 on a free
port, speaks plain IMAP only and authenticates one passwd-file user. It runs in the foreground (`dovecot -F`)
as a child process, so stopping it is a plain terminate/wait.

Works as root (CI) and as an ordinary user. As an ordinary user every Dovecot process runs as that user. As
root, Dovecot refuses root for two roles, so login processes run as `dovenull` and mail is accessed as Debian's
`mail` user (see _write_config). INTERNALDATE is reported in Europe/Oslo (TZ of the server process).

Typical use (or the `dovecot_server` fixture from tests/servers/fixtures.py):

    with DovecotServer() as imap:
        uid = imap.append(raw, datetime(2022, 9, 30, 15, 0, tzinfo=ZoneInfo("Europe/Oslo")))
        settings = dict(host=imap.host, port=imap.port, username=imap.username, password=imap.password)
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

DOVECOT_BINARY = "/usr/sbin/dovecot"
DOVEADM_BINARY = "/usr/bin/doveadm"
DEFAULT_USERNAME = "postmottak"
DEFAULT_PASSWORD = "hemmelig-test-passord"
STARTUP_TIMEOUT_SECONDS = 10.0


def dovecot_available() -> bool:
    """True when the Dovecot binaries are installed (see scripts/ensure-system-packages)."""
    return os.access(DOVECOT_BINARY, os.X_OK) and os.access(DOVEADM_BINARY, os.X_OK)


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Dovecot runs in its own session (so Ctrl-C in pytest does not hit it first); make sure an interrupted test run
# does not leave instances behind.
_live_servers: "weakref.WeakSet[DovecotServer]" = weakref.WeakSet()


@atexit.register
def _kill_leftover_servers() -> None:
    for server in list(_live_servers):
        server.cleanup()


def _existing_user(*candidates: str) -> str:
    for candidate in candidates:
        try:
            pwd.getpwnam(candidate)
            return candidate
        except KeyError:
            continue
    raise RuntimeError(f"none of the users {candidates} exists (needed to run Dovecot as root)")


class DovecotError(RuntimeError):
    pass


class DovecotServer:
    """A Dovecot instance owned by the test. Use as a context manager or call start()/stop()."""

    host = "127.0.0.1"
    kind = "dovecot"
    name = "dovecot"
    separator = "/"  # namespace inbox below: personal folders next to INBOX, levels split by "/"
    personal_prefix = ""

    def __init__(
        self,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        port: int | None = None,
        root_dir: Path | None = None,
        timezone: str = "Europe/Oslo",
        oauth2_key: bytes | None = None,
        imap_capability: str | None = None,
    ) -> None:
        self.username = username
        # With oauth2_key, XOAUTH2/OAUTHBEARER logins are accepted too: the `oauth2` passdb validates HS256 JWTs
        # locally with this key (header kid "default", no azp claim, the user name in `sub`).
        self.oauth2_key = oauth2_key
        # Replaces the capabilities announced after login (Dovecot's imap_capability), e.g. a list without IDLE.
        self.imap_capability = imap_capability
        self.password = password
        # Maildir keeps INTERNALDATE as a file mtime, so the offset given at APPEND is not stored; Dovecot
        # reports INTERNALDATE in its own local time zone. Running it with TZ=Europe/Oslo makes it answer like
        # a Norwegian server (+02:00 in September, +01:00 in winter); the instant is always preserved.
        self.timezone = timezone
        self._fixed_port = port
        self.port: int = port or 0
        self._owns_root_dir = root_dir is None
        self.root_dir = Path(root_dir) if root_dir else Path(tempfile.mkdtemp(prefix="postmottak-dovecot-"))
        self.config_path = self.root_dir / "dovecot.conf"
        self.log_path = self.root_dir / "dovecot.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._admin: IMAPClient | None = None
        self._refused_modes: dict[Path, int] = {}  # directories made read-only by refuse_new_folders()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "DovecotServer":
        if self.running:
            return self
        if not dovecot_available():
            raise DovecotError(f"{DOVECOT_BINARY} not installed; run scripts/ensure-system-packages")
        # A port picked by probing can be taken between probe and bind; retry with a fresh one unless fixed.
        attempts = 1 if (self._fixed_port or self.port) else 5
        last_error: Exception | None = None
        for _ in range(attempts):
            if not self.port:
                self.port = _free_loopback_port()
            self._write_config()
            try:
                self._spawn_and_wait()
                _live_servers.add(self)
                return self
            except DovecotError as error:
                last_error = error
                self._terminate_process()
                if self._fixed_port or "Address already in use" not in str(error):
                    break
                self.port = 0
        raise DovecotError(f"Dovecot did not start: {last_error}")

    def stop(self, graceful: bool = True) -> None:
        """Stop the server; data and port are kept for start().

        graceful: SIGTERM (Dovecot's master takes about a second to shut down); False kills the process group
        at once, like a crash (committed mail survives either way).
        """
        self._close_admin()
        self._terminate_process(graceful=graceful)

    def restart(self, graceful: bool = True) -> None:
        """Stop and start again on the same port with the same data."""
        port = self.port
        self.stop(graceful=graceful)
        self.port = port
        self._fixed_port = self._fixed_port or port
        self.start()

    def cleanup(self) -> None:
        """Stop and delete the temp dir (if this object created it).

        When the data is thrown away anyway, the process group is killed outright, saving Dovecot's ~1 s
        graceful shutdown per test.
        """
        self._close_admin()
        self._terminate_process(graceful=not self._owns_root_dir)
        if self._owns_root_dir:
            shutil.rmtree(self.root_dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> "DovecotServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    # ------------------------------------------------------------------ config and process

    def _write_config(self) -> None:
        for sub in ("run", "state", "mail", "home"):
            (self.root_dir / sub).mkdir(parents=True, exist_ok=True)
        uid = os.getuid()
        gid = os.getgid()
        user_name = pwd.getpwuid(uid).pw_name
        group_name = grp.getgrgid(gid).gr_name
        if uid == 0:
            # Dovecot hard-codes two refusals for root: imap-login exits with "This process must not be run as
            # root", and imap refuses "Mail access not allowed for root". So as root the login processes drop
            # to Dovecot's login user (chrooted into base_dir/login, which is how they still reach their sockets),
            # and mail is accessed as Debian's unprivileged `mail` user, which owns the maildir. The master, auth
            # and the other internal services stay root.
            login_user = _existing_user("dovenull", "nobody")
            login_chroot = "login"
            mail_account = pwd.getpwnam(_existing_user("mail", "nobody"))
            mail_uid, mail_gid = mail_account.pw_uid, mail_account.pw_gid
            self.root_dir.chmod(0o711)  # mail user must traverse into the temp dir
        else:
            # An ordinary user can neither chroot nor switch users; one uid runs everything.
            login_user = user_name
            login_chroot = ""
            mail_uid, mail_gid = uid, gid
        for sub in ("mail", "home"):
            os.chown(self.root_dir / sub, mail_uid, mail_gid)
        users_file = self.root_dir / "users"
        home = self.root_dir / "home" / self.username
        # passwd-file format: user:password:uid:gid:gecos:home:shell:extra_fields. uid/gid stay empty because
        # passwd-file rejects UID 0 outright ("has invalid UID '0'"); mail_uid/mail_gid below supply them.
        users_file.write_text(f"{self.username}:{{PLAIN}}{self.password}:::::{home}::\n", encoding="utf-8")
        users_file.chmod(0o600)
        root = self.root_dir
        oauth2_mechanisms, oauth2_passdb = self._oauth2_config()
        config = f"""\
# Generated by tests/servers/dovecot.py - throwaway test instance.
protocols = imap
listen = {self.host}
base_dir = {root}/run
state_dir = {root}/state
instance_name = postmottak-test-{self.port}
log_path = {self.log_path}
info_log_path = {self.log_path}
debug_log_path = {self.log_path}
ssl = no
import_environment = TZ
disable_plaintext_auth = no
# No delays after a failed login (tests exercise wrong passwords): auth_failure_delay is the 2 s wait before
# answering the failure; the per-IP penalty (2 s, doubling) on the *next* login is switched off in service anvil.
auth_failure_delay = 0
auth_mechanisms = plain login{oauth2_mechanisms}
# Internal services run as the current user; see _write_config for the root case.
default_internal_user = {user_name}
default_internal_group = {group_name}
default_login_user = {login_user}
first_valid_uid = {min(uid, mail_uid)}
last_valid_uid = 0
first_valid_gid = {min(gid, mail_gid)}
mail_uid = {mail_uid}
mail_gid = {mail_gid}
mail_location = maildir:{root}/mail/%u
mail_privileged_group =
# Tests may reuse a folder name right after deleting it.
mailbox_list_index = yes
login_greeting = postmottak test Dovecot ready.
# Shut down quickly when asked; no lingering connections on stop().
shutdown_clients = yes
{f"imap_capability = {self.imap_capability}" if self.imap_capability else ""}
{oauth2_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users_file}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users_file}
}}
service imap-login {{
  chroot = {login_chroot}
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  chroot =
}}
service auth {{
  user = {user_name}
}}
service auth-worker {{
  user = {user_name}
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
"""
        self.config_path.write_text(config, encoding="utf-8")

    def _oauth2_config(self) -> tuple[str, str]:
        """Extra auth mechanisms and the oauth2 passdb block (empty without oauth2_key)."""
        if self.oauth2_key is None:
            return "", ""
        import base64

        keys = self.root_dir / "oauth2-keys"
        # Dovecot looks the key up as shared/<azp or "default">/<ALG>/<kid or "default">; fs:posix drops "shared/".
        key_file = keys / "default" / "HS256" / "default"
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(base64.b64encode(self.oauth2_key).decode("ascii"), encoding="ascii")
        oauth2_conf = self.root_dir / "dovecot-oauth2.conf.ext"
        oauth2_conf.write_text(
            f"introspection_mode = local\n"
            f"local_validation_key_dict = fs:posix:prefix={keys}/\n"
            f"username_attribute = sub\n",
            encoding="utf-8",
        )
        passdb = f"""passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {oauth2_conf}
}}
"""
        return " xoauth2 oauthbearer", passdb

    def _spawn_and_wait(self) -> None:
        log_offset = len(self.log_text())
        self._process = subprocess.Popen(
            [DOVECOT_BINARY, "-F", "-c", str(self.config_path)],
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
                returncode = self._process.returncode
                raise DovecotError(f"exited with {returncode}: {stderr.strip()} {self._log_since(log_offset)}")
            if self._greeting_arrives():
                return
            new_log = self._log_since(log_offset)
            if "Fatal:" in new_log or "Error:" in new_log:
                raise DovecotError(new_log)
            time.sleep(0.02)
        raise DovecotError(f"no IMAP greeting on {self.host}:{self.port} within {STARTUP_TIMEOUT_SECONDS}s")

    def _log_since(self, offset: int) -> str:
        return self.log_text()[offset:].strip()

    def _greeting_arrives(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as conn:
                conn.settimeout(2.0)
                greeting = conn.recv(512)
                return greeting.startswith(b"* OK")
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
        # Dovecot children exit when the master goes; wait until the listener is really gone.
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

    def connect(self) -> IMAPClient:
        """A fresh, logged-in IMAPClient; the caller closes it."""
        client = IMAPClient(self.host, port=self.port, ssl=False, use_uid=True, timeout=10)
        client.login(self.username, self.password)
        return client

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
        admin = self._admin
        self._admin = None
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
        self,
        raw: bytes,
        internaldate: datetime,
        folder: str = "INBOX",
        flags: Iterable[str | bytes] = (),
    ) -> int:
        """Append a message with the given INTERNALDATE (must be tz-aware); returns its UID."""
        if internaldate.tzinfo is None or internaldate.utcoffset() is None:
            raise ValueError("internaldate must be timezone-aware")
        refused = bool(self._refused_modes)  # delivering needs the mail directory writable (dovecot-uidlist)
        if refused:
            self.allow_new_folders()
        try:
            response = self._admin_client().append(folder, raw, flags=tuple(flags), msg_time=internaldate)
        finally:
            if refused:
                self.refuse_new_folders()
        # Dovecot answers with UIDPLUS: b"[APPENDUID <uidvalidity> <uid>] Append completed."
        text = response.decode() if isinstance(response, bytes) else str(response)
        if "APPENDUID" not in text:
            raise DovecotError(f"APPEND response without APPENDUID: {text!r}")
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
        status = self._admin_client().folder_status(folder, [b"UIDVALIDITY"])
        return int(status[b"UIDVALIDITY"])

    def recreate_folder_with_new_uidvalidity(self, folder: str) -> int:
        """Delete and re-create `folder` (or empty it, for INBOX) and guarantee a different UIDVALIDITY.

        Dovecot derives UIDVALIDITY from the clock (seconds), so a quick delete+create can reuse the old value;
        we then set a new one explicitly with `doveadm mailbox update --uid-validity`. Returns the new value.
        """
        old = self.uidvalidity(folder)
        client = self._admin_client()
        if folder.upper() == "INBOX":
            # INBOX cannot be deleted; expunge everything, then force a new UIDVALIDITY below.
            client.select_folder(folder)
            uids = client.search("ALL")
            if uids:
                client.delete_messages(uids)
                client.expunge()
            client.unselect_folder()
        else:
            client.delete_folder(folder)
            client.create_folder(folder)
        new = self.uidvalidity(folder)
        if new == old:
            self._close_admin()  # doveadm works on the storage directly; no open session on that folder
            self.doveadm("mailbox", "update", "-u", self.username, "--uid-validity", str(old + 1), folder)
            new = self.uidvalidity(folder)
        if new == old:
            raise DovecotError(f"UIDVALIDITY of {folder!r} did not change ({old})")
        return new

    def kill_connections(self) -> None:
        """Drop every IMAP session of the test user (doveadm kick), e.g. to test reconnect logic."""
        self._close_admin()
        self.doveadm("kick", self.username)

    def doveadm(self, *args: str) -> str:
        result = subprocess.run(
            [DOVEADM_BINARY, "-c", str(self.config_path), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise DovecotError(f"doveadm {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def personal(self, name: str) -> str:
        """The full name of the user's folder `name` (levels written with "/"): the same on this namespace."""
        return self.personal_prefix + name.replace("/", self.separator)

    def refuse_new_folders(self) -> None:
        """Make CREATE fail (NO): the mail directory becomes read-only for the user Dovecot accesses mail as.

        append() lifts it for the delivery (the folder's own index files live there too)."""
        self._close_admin()
        for path in (self.root_dir / "mail").rglob("*"):
            if path.is_dir() and path.name not in ("cur", "new", "tmp"):
                self._refused_modes.setdefault(path, path.stat().st_mode & 0o7777)
                path.chmod(0o555)

    def allow_new_folders(self) -> None:
        """Undo refuse_new_folders()."""
        for path, mode in self._refused_modes.items():
            path.chmod(mode)
        self._refused_modes.clear()
