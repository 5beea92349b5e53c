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

import grp
import os
import pwd
import subprocess
import time
from pathlib import Path

from .imap_base import ImapTestServer

DOVECOT_BINARY = "/usr/sbin/dovecot"
DOVEADM_BINARY = "/usr/bin/doveadm"
DEFAULT_USERNAME = "postmottak"
DEFAULT_PASSWORD = "hemmelig-test-passord"
STARTUP_TIMEOUT_SECONDS = 10.0


def dovecot_available() -> bool:
    """True when the Dovecot binaries are installed (see scripts/ensure-system-packages)."""
    return os.access(DOVECOT_BINARY, os.X_OK) and os.access(DOVEADM_BINARY, os.X_OK)


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


class DovecotServer(ImapTestServer):
    """A Dovecot instance owned by the test. Use as a context manager or call start()/stop()."""

    product = "Dovecot"
    error = DovecotError
    startup_timeout_seconds = STARTUP_TIMEOUT_SECONDS
    dir_prefix = "postmottak-dovecot-"
    config_name = "dovecot.conf"
    log_name = "dovecot.log"
    # Dovecot's master takes about a second to shut down on SIGTERM; cleanup() waits for that only when the data
    # is kept.
    sigterm_first = True
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
        # Maildir keeps INTERNALDATE as a file mtime, so the offset given at APPEND is not stored; Dovecot
        # reports INTERNALDATE in its own local time zone. Running it with TZ=Europe/Oslo makes it answer like
        # a Norwegian server (+02:00 in September, +01:00 in winter); the instant is always preserved.
        super().__init__(
            username,
            password,
            port=port,
            root_dir=root_dir,
            timezone=timezone,
        )
        # With oauth2_key, XOAUTH2/OAUTHBEARER logins are accepted too: the `oauth2` passdb validates HS256 JWTs
        # locally with this key (header kid "default", no azp claim, the user name in `sub`).
        self.oauth2_key = oauth2_key
        # Replaces the capabilities announced after login (Dovecot's imap_capability), e.g. a list without IDLE.
        self.imap_capability = imap_capability

    def _available(self) -> bool:
        return dovecot_available()

    def _not_available_message(self) -> str:
        return f"{DOVECOT_BINARY} not installed; run scripts/ensure-system-packages"

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

    def _command(self) -> list[str]:
        return [DOVECOT_BINARY, "-F", "-c", str(self.config_path)]

    def _worth_retrying(self, error: RuntimeError) -> bool:
        return "Address already in use" in str(error)

    def _startup_failure(self, new_log: str) -> str | None:
        return new_log if "Fatal:" in new_log or "Error:" in new_log else None

    # ------------------------------------------------------------------ helpers

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
        """Drop every IMAP session of the test user (doveadm kick), e.g. to test reconnect logic. A session that
        has just logged in may not be known to Dovecot's session tracker yet: wait (briefly) until it is."""
        self._close_admin()
        deadline = time.monotonic() + 5
        while self.username not in self.doveadm("who") and time.monotonic() < deadline:
            time.sleep(0.05)
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

    def refuse_new_folders(self) -> None:
        """Make CREATE fail (NO): the mail directory becomes read-only for the user Dovecot accesses mail as.

        append() lifts it for the delivery (the folder's own index files live there too)."""
        self._close_admin()
        for path in (self.root_dir / "mail").rglob("*"):
            if path.is_dir() and path.name not in ("cur", "new", "tmp"):
                self._refused_modes.setdefault(path, path.stat().st_mode & 0o7777)
                path.chmod(0o555)
