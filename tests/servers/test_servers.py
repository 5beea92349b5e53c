"""Proves the real-server fixtures work: a real Dovecot over IMAP and a real aiosmtpd over SMTP."""

from __future__ import annotations

import imaplib
import smtplib
import socket
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from .dovecot import DovecotServer
from .fixtures import dovecot_server, smtp_sink, smtp_sink_auth  # noqa: F401  (fixtures)
from .smtp import SmtpSink

OSLO = ZoneInfo("Europe/Oslo")
SIMPLE_MAIL = (
    b"From: =?utf-8?q?=C3=85se_=C3=98deg=C3=A5rd?= <ase@example.no>\r\n"
    b"To: postmottak@ehelse.no\r\n"
    b"Subject: =?utf-8?q?H=C3=B8ringssvar_-_sak_22/414?=\r\n"
    b"Message-ID: <test-1@example.no>\r\n"
    b"\r\n"
    b"Vedlagt er v\xc3\xa5rt h\xc3\xb8ringssvar.\r\n"
)

# --------------------------------------------------------------------------- Dovecot


@pytest.mark.imap
def test_append_keeps_chosen_internaldate_tz_aware(dovecot_server: DovecotServer) -> None:
    # One minute before the deadline, Oslo summer time (+02:00).
    internaldate = datetime(2022, 9, 30, 23, 59, 0, tzinfo=OSLO)
    uid = dovecot_server.append(SIMPLE_MAIL, internaldate, flags=[r"\Seen"])

    client = dovecot_server.connect()
    try:
        client.normalise_times = False
        client.select_folder("INBOX", readonly=True)
        data = client.fetch([uid], [b"INTERNALDATE", b"FLAGS", b"BODY.PEEK[]"])[uid]
    finally:
        client.logout()

    fetched = data[b"INTERNALDATE"]
    assert fetched.tzinfo is not None
    assert fetched.utcoffset() == timedelta(hours=2)
    assert fetched == internaldate
    assert fetched.astimezone(timezone.utc) == datetime(2022, 9, 30, 21, 59, tzinfo=timezone.utc)
    assert b"\\Seen" in data[b"FLAGS"]
    assert data[b"BODY[]"] == SIMPLE_MAIL


@pytest.mark.imap
def test_append_rejects_naive_internaldate(dovecot_server: DovecotServer) -> None:
    with pytest.raises(ValueError):
        dovecot_server.append(SIMPLE_MAIL, datetime(2022, 9, 30, 12, 0))


@pytest.mark.imap
def test_uids_folders_and_fetch_all(dovecot_server: DovecotServer) -> None:
    when = datetime(2022, 9, 12, 9, 30, tzinfo=OSLO)
    first = dovecot_server.append(SIMPLE_MAIL, when)
    second = dovecot_server.append(SIMPLE_MAIL.replace(b"test-1", b"test-2"), when)
    assert second > first
    assert dovecot_server.list_uids("INBOX") == [first, second]

    dovecot_server.create_folder("Behandlet")
    assert dovecot_server.folder_exists("Behandlet")
    archived = dovecot_server.append(SIMPLE_MAIL, when, folder="Behandlet")
    assert dovecot_server.fetch_all("Behandlet") == {archived: SIMPLE_MAIL}

    dovecot_server.delete_folder("Behandlet")
    assert not dovecot_server.folder_exists("Behandlet")


@pytest.mark.imap
def test_recreate_folder_changes_uidvalidity(dovecot_server: DovecotServer) -> None:
    when = datetime(2022, 9, 20, 8, 0, tzinfo=OSLO)
    dovecot_server.create_folder("Innkommende")
    dovecot_server.append(SIMPLE_MAIL, when, folder="Innkommende")
    before = dovecot_server.uidvalidity("Innkommende")

    after = dovecot_server.recreate_folder_with_new_uidvalidity("Innkommende")

    assert after != before
    assert dovecot_server.uidvalidity("Innkommende") == after
    assert dovecot_server.list_uids("Innkommende") == []


@pytest.mark.imap
def test_recreate_inbox_changes_uidvalidity_and_empties_it(dovecot_server: DovecotServer) -> None:
    dovecot_server.append(SIMPLE_MAIL, datetime(2022, 9, 20, 8, 0, tzinfo=OSLO))
    before = dovecot_server.uidvalidity("INBOX")

    after = dovecot_server.recreate_folder_with_new_uidvalidity("INBOX")

    assert after != before
    assert dovecot_server.list_uids("INBOX") == []


@pytest.mark.imap
@pytest.mark.parametrize("graceful", [True, False], ids=["graceful", "crash"])
def test_restart_keeps_port_and_data(dovecot_server: DovecotServer, graceful: bool) -> None:
    uid = dovecot_server.append(SIMPLE_MAIL, datetime(2022, 9, 28, 14, 0, tzinfo=OSLO))
    port = dovecot_server.port
    uidvalidity = dovecot_server.uidvalidity()

    dovecot_server.restart(graceful=graceful)

    assert dovecot_server.port == port
    assert dovecot_server.uidvalidity() == uidvalidity
    assert dovecot_server.fetch_all() == {uid: SIMPLE_MAIL}


@pytest.mark.imap
def test_stop_refuses_connections_and_start_brings_it_back(dovecot_server: DovecotServer) -> None:
    dovecot_server.stop(graceful=False)
    with pytest.raises(OSError):
        socket.create_connection((dovecot_server.host, dovecot_server.port), timeout=1).close()
    dovecot_server.start()
    assert dovecot_server.list_uids() == []


@pytest.mark.imap
def test_kill_connections_drops_an_open_session(dovecot_server: DovecotServer) -> None:
    client = dovecot_server.connect()
    client.select_folder("INBOX")
    dovecot_server.kill_connections()
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        client.noop()
    # The server itself stays up for the reconnect.
    assert dovecot_server.list_uids() == []


@pytest.mark.imap
def test_wrong_password_is_refused_and_logged(dovecot_server: DovecotServer) -> None:
    from imapclient import IMAPClient
    from imapclient.exceptions import LoginError

    client = IMAPClient(dovecot_server.host, port=dovecot_server.port, ssl=False, timeout=10)
    with pytest.raises(LoginError):
        client.login(dovecot_server.username, "feil-passord")
    client.shutdown()
    dovecot_server.list_uids()  # a successful login, for the log
    assert "Login: user=<postmottak>" in dovecot_server.log_text()
    # The plaintext password never ends up in Dovecot's log.
    assert dovecot_server.password not in dovecot_server.log_text()


@pytest.mark.imap
def test_two_servers_run_side_by_side() -> None:
    with DovecotServer() as one, DovecotServer() as two:
        assert one.port != two.port
        one.append(SIMPLE_MAIL, datetime(2022, 9, 1, 10, 0, tzinfo=OSLO))
        assert len(one.list_uids()) == 1
        assert two.list_uids() == []


# --------------------------------------------------------------------------- SMTP


def _send(sink: SmtpSink, sender: str, recipients: list[str], raw: bytes, **kwargs: object) -> dict:
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        if sink.require_auth and kwargs.pop("login", True):
            client.login(sink.username, sink.password)
        return client.sendmail(sender, recipients, raw, **kwargs)  # type: ignore[arg-type]


@pytest.mark.smtp
def test_smtp_captures_delivery(smtp_sink: SmtpSink) -> None:
    refused = _send(smtp_sink, "postmottak@ehelse.no", ["ase@example.no", "kopi@example.no"], SIMPLE_MAIL)
    assert refused == {}
    [mail] = smtp_sink.wait_for(1)
    assert mail.mail_from == "postmottak@ehelse.no"
    assert mail.rcpt_tos == ("ase@example.no", "kopi@example.no")
    assert mail.raw == SIMPLE_MAIL
    assert mail.message["Subject"] == "Høringssvar - sak 22/414"
    assert mail.smtputf8 is False


@pytest.mark.smtp
def test_smtp_temporary_rcpt_failure_then_success(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_next_rcpt(1, code=451)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        _send(smtp_sink, "postmottak@ehelse.no", ["ase@example.no"], SIMPLE_MAIL)
    assert refused.value.recipients["ase@example.no"][0] == 451
    assert smtp_sink.messages == []

    _send(smtp_sink, "postmottak@ehelse.no", ["ase@example.no"], SIMPLE_MAIL)
    assert len(smtp_sink.wait_for(1)) == 1
    assert [r.command for r in smtp_sink.rejections] == ["RCPT"]


@pytest.mark.smtp
def test_smtp_data_failures_temporary_and_permanent(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_next_data(1, code=451)
    with pytest.raises(smtplib.SMTPDataError) as temporary:
        _send(smtp_sink, "postmottak@ehelse.no", ["ase@example.no"], SIMPLE_MAIL)
    assert temporary.value.smtp_code == 451

    smtp_sink.fail_next_data(1, code=550, text="5.7.1 Rejected for policy reasons")
    with pytest.raises(smtplib.SMTPDataError) as permanent:
        _send(smtp_sink, "postmottak@ehelse.no", ["ase@example.no"], SIMPLE_MAIL)
    assert permanent.value.smtp_code == 550
    assert b"policy" in permanent.value.smtp_error

    _send(smtp_sink, "postmottak@ehelse.no", ["ase@example.no"], SIMPLE_MAIL)
    assert len(smtp_sink.wait_for(1)) == 1


@pytest.mark.smtp
def test_smtp_permanent_rcpt_failure(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_next_rcpt(1, code=550)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        _send(smtp_sink, "postmottak@ehelse.no", ["finnes.ikke@example.no"], SIMPLE_MAIL)
    assert refused.value.recipients["finnes.ikke@example.no"][0] == 550


@pytest.mark.smtp
def test_smtp_auth_required(smtp_sink_auth: SmtpSink) -> None:
    with pytest.raises(smtplib.SMTPSenderRefused) as unauthenticated:
        _send(smtp_sink_auth, "postmottak@ehelse.no", ["ase@example.no"], SIMPLE_MAIL, login=False)
    assert unauthenticated.value.smtp_code == 530

    with smtplib.SMTP(smtp_sink_auth.host, smtp_sink_auth.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(smtp_sink_auth.username, "feil-passord")
    assert smtp_sink_auth.auth_failures >= 1

    for mechanism in ("PLAIN", "LOGIN"):
        with smtplib.SMTP(smtp_sink_auth.host, smtp_sink_auth.port, timeout=10) as client:
            client.ehlo()
            client.user, client.password = smtp_sink_auth.username, smtp_sink_auth.password
            authobject = client.auth_plain if mechanism == "PLAIN" else client.auth_login
            code, _ = client.auth(mechanism, authobject)
            assert code == 235
            client.sendmail("postmottak@ehelse.no", ["ase@example.no"], SIMPLE_MAIL)

    mails = smtp_sink_auth.wait_for(2)
    assert [m.auth_login for m in mails] == ["postmottak", "postmottak"]


@pytest.mark.smtp
def test_smtp_smtputf8_recipient(smtp_sink: SmtpSink) -> None:
    raw = "From: postmottak@ehelse.no\r\nTo: øyvind@åsheim.no\r\nSubject: Kvittering\r\n\r\nTakk.\r\n".encode()
    _send(smtp_sink, "postmottak@ehelse.no", ["øyvind@åsheim.no"], raw, mail_options=["SMTPUTF8"])
    [mail] = smtp_sink.wait_for(1)
    assert mail.smtputf8 is True
    assert mail.rcpt_tos == ("øyvind@åsheim.no",)
    assert mail.message["To"] == "øyvind@åsheim.no"


@pytest.mark.smtp
def test_smtp_stop_and_start_on_same_port(smtp_sink: SmtpSink) -> None:
    port = smtp_sink.port
    smtp_sink.stop()
    with pytest.raises(OSError):
        smtplib.SMTP(smtp_sink.host, port, timeout=2)
    smtp_sink.start()
    assert smtp_sink.port == port
    _send(smtp_sink, "postmottak@ehelse.no", ["ase@example.no"], SIMPLE_MAIL)
    assert len(smtp_sink.wait_for(1)) == 1


@pytest.mark.smtp
def test_smtp_wait_for_times_out(smtp_sink: SmtpSink) -> None:
    with pytest.raises(TimeoutError):
        smtp_sink.wait_for(1, timeout=0.2)
