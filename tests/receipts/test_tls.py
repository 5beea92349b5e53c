"""TLS to the SMTP server is verified by default; turning verification off works and is logged.

A real aiosmtpd on loopback with a freshly generated self-signed certificate, as implicit TLS (security = "ssl")
and as STARTTLS.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from postmottak.casefile.db import Database
from postmottak.intake.receipts import send_pending
from tests.servers.smtp import _free_loopback_port

from .helpers import make_settings, receipt_of, register, sync_cases

pytestmark = [pytest.mark.smtp]


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class TlsSink:
    host: str
    port: int
    received: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.received.append((envelope.mail_from, tuple(envelope.rcpt_tos)))
        return "250 2.0.0 OK"


def _server(tmp_path: Path, mode: str) -> Iterator[TlsSink]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink = TlsSink("127.0.0.1", _free_loopback_port())
    kwargs = {"ssl_context": context} if mode == "ssl" else {"tls_context": context, "require_starttls": True}
    controller = Controller(sink, hostname=sink.host, port=sink.port, server_hostname="localhost", **kwargs)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture(params=["ssl", "starttls"])
def tls_sink(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, TlsSink]]:
    for sink in _server(tmp_path, request.param):
        yield request.param, sink


def test_untrusted_certificate_is_refused_by_default(
    database: Database, tls_sink: tuple[str, TlsSink], tmp_path: Path
) -> None:
    mode, sink = tls_sink
    sync_cases(database)
    intake_id = register(database)
    settings = make_settings(sink, tmp_path, database, smtp={"security": mode})  # type: ignore[arg-type]
    assert settings.smtp.verify_tls is True
    assert send_pending(settings, database)["retry"] == 1
    assert sink.received == []
    receipt = receipt_of(database, intake_id)
    assert receipt.status == "pending" and "certificate" in (receipt.reason or "").lower()


def test_verification_off_sends_and_warns(
    database: Database, tls_sink: tuple[str, TlsSink], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mode, sink = tls_sink
    sync_cases(database)
    intake_id = register(database)
    settings = make_settings(sink, tmp_path, database, smtp={"security": mode, "verify_tls": False})  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="postmottak.intake.receipts"):
        assert send_pending(settings, database)["sent"] == 1
    assert sink.received == [("postmottak@ehelse.no", ("ase@baerum.kommune.no",))]
    assert "verification is OFF" in caplog.text
    assert receipt_of(database, intake_id).status == "sent"
