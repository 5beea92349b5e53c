"""A real SMTP server on 127.0.0.1 (aiosmtpd, run in a thread) that captures what it receives.

Tests can make it answer the next N RCPT TO or DATA commands with a chosen reply (451 temporary, 550 permanent),
require AUTH PLAIN/LOGIN over plain TCP, and take it down and bring it back on the same port. With `xoauth2`
(a function (user, bearer token) -> bool) it also offers AUTH XOAUTH2 and lets that function judge the token.
"""

from __future__ import annotations

import base64
import binascii
import json
import socket
import threading
import time
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from functools import cached_property
from types import TracebackType
from typing import Any, Callable

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

DEFAULT_SMTP_USERNAME = "postmottak"
DEFAULT_SMTP_PASSWORD = "hemmelig-smtp-passord"

_DEFAULT_TEXT = {
    421: "4.3.0 Service not available, closing channel",
    451: "4.3.0 Temporary local problem, try again later",
    452: "4.2.2 Mailbox full",
    550: "5.1.1 Mailbox unavailable",
    552: "5.3.4 Message too big",
    554: "5.7.1 Transaction failed",
}


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _reply(code: int, text: str | None) -> str:
    return f"{code} {text or _DEFAULT_TEXT.get(code, 'Rejected by test server')}"


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted delivery (one DATA transaction)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    smtputf8: bool
    mail_options: tuple[str, ...]
    auth_login: str | None
    received_at: float

    @cached_property
    def message(self) -> EmailMessage:
        """The delivery parsed, when a test asks: the sink shares a core with the worker in the benchmark, and
        parsing every receipt on arrival would be counted against the worker."""
        return BytesParser(policy=policy.default).parsebytes(self.raw)  # type: ignore[return-value]


@dataclass
class _FailurePlan:
    remaining: int = 0
    code: int = 451
    text: str | None = None

    def take(self) -> str | None:
        if self.remaining <= 0:
            return None
        self.remaining -= 1
        return _reply(self.code, self.text)


@dataclass
class Rejection:
    """A command the sink refused on purpose (for asserting that the client really retried)."""

    command: str  # "RCPT" or "DATA"
    reply: str
    address: str | None = None


class _QuietSession(Session):
    """aiosmtpd sets the deprecated Session.login_data itself after every AUTH, which warns; accept it silently."""

    @property  # type: ignore[override]
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _SinkSMTP(SMTP):
    def _create_session(self) -> Session:
        return _QuietSession(self.loop)


class _SinkController(Controller):
    def factory(self) -> SMTP:
        return _SinkSMTP(self.handler, **self.SMTP_kwargs)


class _CapturingHandler:
    def __init__(self, sink: "SmtpSink") -> None:
        self._sink = sink

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        # AUTH is enforced here rather than with aiosmtpd's auth_required, which warns on every connection
        # when combined with auth_require_tls=False (plain TCP on loopback is deliberate in tests).
        if self._sink.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self._sink._take_failure("RCPT", address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self._sink._take_failure("DATA", None)
        if reply is not None:
            return reply
        raw = envelope.original_content if envelope.original_content is not None else envelope.content
        assert isinstance(raw, bytes)
        auth_data = session.auth_data
        auth_login = None
        if isinstance(auth_data, LoginPassword):
            auth_login = auth_data.login.decode("utf-8", errors="replace")
        record = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=raw,
            smtputf8=bool(envelope.smtp_utf8),
            mail_options=tuple(envelope.mail_options),
            auth_login=auth_login,
            received_at=time.time(),
        )
        self._sink._record(record)
        return "250 2.0.0 OK: queued"

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH XOAUTH2 (Google/Microsoft style): base64 of "user=U^Aauth=Bearer T^A^A"."""
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False)
        else:
            try:
                blob = base64.b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        assert isinstance(blob, bytes)
        fields = dict(part.split("=", 1) for part in blob.decode("utf-8", "replace").split("\x01") if "=" in part)
        user = fields.get("user", "")
        auth = fields.get("auth", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        verify = self._sink.xoauth2
        if verify is not None and token and verify(user, token):
            with self._sink._condition:
                self._sink.xoauth2_logins.append(user)
            return AuthResult(success=True, auth_data=LoginPassword(user.encode("utf-8"), b""))
        with self._sink._condition:
            self._sink.auth_failures += 1
        # As real servers do: the error as a JSON challenge, the client answers with an empty line, then 535.
        error = json.dumps({"status": "401", "schemes": "bearer", "scope": "https://mail.test.invalid/"})
        await server.challenge_auth(error)
        refusal = "535 5.7.8 Username and Password not accepted (XOAUTH2)"
        return AuthResult(success=False, handled=False, message=refusal)


class SmtpSink:
    """Real SMTP server capturing deliveries. Use as a context manager or call start()/stop()."""

    host = "127.0.0.1"

    def __init__(
        self,
        port: int | None = None,
        require_auth: bool = False,
        username: str = DEFAULT_SMTP_USERNAME,
        password: str = DEFAULT_SMTP_PASSWORD,
        enable_smtputf8: bool = True,
        xoauth2: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.port: int = port or 0
        self.xoauth2 = xoauth2
        self.xoauth2_logins: list[str] = []
        self.require_auth = require_auth
        self.username = username
        self.password = password
        self.enable_smtputf8 = enable_smtputf8
        self.rejections: list[Rejection] = []
        self.auth_failures = 0
        self._messages: list[ReceivedMail] = []
        self._condition = threading.Condition()
        self._rcpt_plan = _FailurePlan()
        self._data_plan = _FailurePlan()
        self._controller: Controller | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "SmtpSink":
        """Start (again) on the same port; a first start picks a free port."""
        if self._controller is not None:
            return self
        if not self.port:
            self.port = _free_loopback_port()
        controller_kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "server_hostname": "smtp.test.invalid",
            "ident": "postmottak test SMTP sink",
            "enable_SMTPUTF8": self.enable_smtputf8,
            "decode_data": False,
            "auth_require_tls": False,
            "auth_required": False,  # enforced in _CapturingHandler.handle_MAIL
            "authenticator": self._authenticate,
            "auth_exclude_mechanism": [] if self.xoauth2 is not None else ["XOAUTH2"],
            "ready_timeout": 5.0,
        }
        controller = _SinkController(_CapturingHandler(self), **controller_kwargs)
        # The port may linger briefly after a stop(); retry for a moment instead of failing a restart.
        deadline = time.monotonic() + 5
        while True:
            try:
                controller.start()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                controller = _SinkController(_CapturingHandler(self), **controller_kwargs)
        self._controller = controller
        return self

    def stop(self) -> None:
        """Take the server down; the port and captured messages are kept for a later start()."""
        controller = self._controller
        self._controller = None
        if controller is not None:
            controller.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._controller is not None

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ controls

    def fail_next_rcpt(self, count: int = 1, code: int = 451, text: str | None = None) -> None:
        """Answer the next `count` RCPT TO commands with `code` (e.g. 451 temporary, 550 permanent)."""
        with self._condition:
            self._rcpt_plan = _FailurePlan(count, code, text)

    def fail_next_data(self, count: int = 1, code: int = 451, text: str | None = None) -> None:
        """Answer the next `count` DATA transactions (after the message body) with `code`."""
        with self._condition:
            self._data_plan = _FailurePlan(count, code, text)

    def clear(self) -> None:
        """Forget captured messages, rejections and pending failure plans."""
        with self._condition:
            self._messages.clear()
            self.rejections.clear()
            self.auth_failures = 0
            self._rcpt_plan = _FailurePlan()
            self._data_plan = _FailurePlan()

    # ------------------------------------------------------------------ inspection

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._condition:
            return list(self._messages)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:
        """Block until at least `count` messages arrived; raises TimeoutError otherwise."""
        with self._condition:
            if not self._condition.wait_for(lambda: len(self._messages) >= count, timeout=timeout):
                raise TimeoutError(f"expected {count} message(s) on the SMTP sink, got {len(self._messages)}")
            return list(self._messages)

    # ------------------------------------------------------------------ handler callbacks (server thread)

    def _take_failure(self, command: str, address: str | None) -> str | None:
        with self._condition:
            plan = self._rcpt_plan if command == "RCPT" else self._data_plan
            reply = plan.take()
            if reply is not None:
                self.rejections.append(Rejection(command=command, reply=reply, address=address))
            return reply

    def _record(self, record: ReceivedMail) -> None:
        with self._condition:
            self._messages.append(record)
            self._condition.notify_all()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.username.encode("utf-8")
            and auth_data.password == self.password.encode("utf-8")
        )
        if not ok:
            with self._condition:
                self.auth_failures += 1
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
