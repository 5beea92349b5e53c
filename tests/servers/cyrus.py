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

import grp
import os
import pwd
import subprocess
import time
from pathlib import Path

from .imap_base import ImapTestServer

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


class CyrusError(RuntimeError):
    pass


class CyrusServer(ImapTestServer):
    """A Cyrus instance owned by the test. Use as a context manager or call start()/stop()."""

    product = "Cyrus"
    error = CyrusError
    startup_timeout_seconds = STARTUP_TIMEOUT_SECONDS
    dir_prefix = "postmottak-cyrus-"
    config_name = "imapd.conf"
    log_name = "master.log"
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
        super().__init__(
            username,
            password,
            port=None,
            root_dir=root_dir,
            timezone=timezone,
        )
        self.altnamespace = altnamespace
        self.unixhierarchysep = unixhierarchysep
        self.idle_poll_seconds = idle_poll_seconds
        self.separator = "/" if unixhierarchysep else "."
        # Where the user's own folders live, as NAMESPACE announces it.
        self.personal_prefix = "" if altnamespace else f"INBOX{self.separator}"
        self._user_created = False

    @property
    def name(self) -> str:
        variant = "altnamespace" if self.altnamespace else "default"
        return f"cyrus-{variant}" + ("-unixsep" if self.unixhierarchysep else "")

    def _available(self) -> bool:
        return cyrus_available()

    def _not_available_message(self) -> str:
        return f"Cyrus imapd not found under {CYRUS_PREFIX}; run scripts/ensure-system-packages"

    def _after_start(self) -> None:
        if not self._user_created:
            admin = self._login(ADMIN_USERNAME, ADMIN_PASSWORD)
            try:
                admin.create_folder(f"user{self.separator}{self.username}")
            finally:
                admin.logout()
            self._user_created = True

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

    def _command(self) -> list[str]:
        return [
            str(CYRUS_LIB / "master"),
            "-C",
            str(self.config_path),
            "-M",
            str(self.root_dir / "cyrus.conf"),
            "-p",
            str(self.root_dir / "run/master.pid"),
            "-L",
            str(self.log_path),
        ]

    # ------------------------------------------------------------------ helpers

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
