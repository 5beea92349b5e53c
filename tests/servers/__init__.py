"""Real-server test fixtures: a throwaway Dovecot IMAP server and an aiosmtpd SMTP sink on 127.0.0.1."""

from .dovecot import DovecotServer
from .smtp import SmtpSink

__all__ = ["DovecotServer", "SmtpSink"]
