"""IMAP IDLE watcher for `postmottak run`: new mail starts a cycle within seconds instead of at the next poll.

It keeps its own IMAP connection (read-only SELECT; it never fetches or changes anything) and only calls wake()
when the server reports EXISTS; the cycle itself runs in the scheduler, one at a time (intake/scheduler.py). IDLE is
re-issued every `idle_timeout_seconds` (RFC 2177: servers may drop an IDLE after 30 minutes). When the server
has no IDLE the watcher stops and the interval poll does the work; when the connection breaks it reconnects with
backoff (the poll covers the gap) and wakes a cycle once reconnected, for mail that arrived meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from postmottak.intake.sources.base import SourceError
from postmottak.intake.sources.imap import CONNECTION_ERRORS, ImapSource

log = logging.getLogger(__name__)


class IdleBroken(Exception):
    """The IDLE connection is gone (BYE, EOF); reconnect."""


class IdleWatcher:
    def __init__(
        self,
        source: ImapSource,
        wake: Callable[[], None],
        *,
        renew_seconds: float = 1740,
        retry_max_seconds: float = 60,
        check_seconds: float = 1.0,  # how often the stop flag is looked at while idling
        name: str | None = None,  # the mailbox's name with several mailboxes (logs and thread name)
    ) -> None:
        self.source = source
        self.name = name
        self.wake = wake
        self.renew_seconds = renew_seconds
        self.retry_max_seconds = retry_max_seconds
        self.check_seconds = check_seconds
        self.state = "starting"  # starting | idle | reconnecting | unsupported | stopped
        self.sessions = 0  # IDLE sessions started (reconnects + 1), for tests and logs
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        thread_name = f"imap-idle-{self.name}" if self.name else "imap-idle"
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.state = "stopped"

    # ------------------------------------------------------------------------------------ the loop

    def _run(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                if not self._session():
                    return  # no IDLE on this server: polling only
            except (SourceError, IdleBroken, IMAPClientError, *CONNECTION_ERRORS) as exc:
                if self._stopping.is_set():
                    break
                if time.monotonic() - started > 60:
                    delay = 1.0  # it worked for a while: retry quickly
                self.state = "reconnecting"
                log.warning("IMAP IDLE interrupted (%s); polling continues, reconnecting in %.0f s", _text(exc), delay)
            except Exception:
                if self._stopping.is_set():
                    break
                self.state = "reconnecting"
                log.exception("IMAP IDLE failed; polling continues, reconnecting in %.0f s", delay)
            self._stopping.wait(delay)
            delay = min(delay * 2, self.retry_max_seconds)
        self.state = "stopped"

    def _session(self) -> bool:
        """One connection: IDLE until stopped (True) or the server has no IDLE (False). Raises when it breaks."""
        client = self.source.connect()
        try:
            if not client.has_capability("IDLE"):
                self.state = "unsupported"
                log.info("the IMAP server does not offer IDLE; new mail is picked up by the poll only")
                return False
            folder = self.source.config.folder
            client.select_folder(folder, readonly=True)
            self.sessions += 1
            log.info(
                "IMAP IDLE on %s%s: new mail is processed at once (the poll stays as a safety net)",
                folder,
                f" (mailbox {self.name})" if self.name else "",
            )
            self.wake()  # mail that arrived while nobody was listening
            while not self._stopping.is_set():
                self._idle_once(client)
            return True
        finally:
            _close(client)

    def _idle_once(self, client: IMAPClient) -> None:
        client.idle()
        self.state = "idle"
        renew_at = time.monotonic() + self.renew_seconds
        while not self._stopping.is_set():
            remaining = renew_at - time.monotonic()
            if remaining <= 0:
                break
            wait = min(self.check_seconds, remaining)
            asked = time.monotonic()
            responses = client.idle_check(timeout=wait)
            if not responses and time.monotonic() - asked < wait / 2:
                # idle_check swallows EOF: readable at once but no line means the server closed the socket.
                raise IdleBroken("the server closed the connection")
            self._handle(responses)
        _, responses = client.idle_done()  # re-issued by the caller's loop (RFC 2177: at least every 29 min)
        self._handle(responses)
        if not self._stopping.is_set():
            # News that arrived between DONE and the next IDLE come with this NOOP rather than before IDLE's "+".
            _, responses = client.noop()
            self._handle(responses)

    def _handle(self, responses: list[Any]) -> None:
        new_mail = False
        for response in responses:
            if not isinstance(response, tuple) or len(response) < 2:
                continue
            if response[0] == b"BYE":
                raise IdleBroken(f"server said BYE: {_text(response[1])}")
            if response[1] == b"EXISTS":
                new_mail = True
        if new_mail:
            log.debug("IMAP IDLE: new mail reported; starting a cycle")
            self.wake()


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        try:
            client.shutdown()
        except Exception:
            pass


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value) or type(value).__name__
