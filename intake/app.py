"""Wiring: settings -> database (migrated, cases synced), document store, mail source, intake."""

from __future__ import annotations

from casefile.db import Database
from casefile.storage import DocumentStore
from config.settings import ConfigError, Settings
from intake.database import open_database
from intake.oauth2 import token_client
from intake.pipeline import Intake
from intake.sources.base import MailSource
from intake.sources.folder import FolderSource
from intake.sources.imap import ImapConfig, ImapSource


def make_source(settings: Settings) -> MailSource:
    if settings.imap.configured:
        imap = settings.imap
        return ImapSource(
            ImapConfig(
                host=imap.host, port=imap.port, security=imap.security, username=imap.username,
                password=imap.password.get_secret_value(), folder=imap.folder, processed_folder=imap.processed_folder,
                verify_tls=imap.verify_tls, timeout=imap.timeout_seconds, batch_size=imap.batch_size,
                tokens=token_client(settings) if imap.auth == "oauth2" else None,
            )
        )
    if settings.folder_path is not None:
        return FolderSource(settings.folder_path, settings.folder.format)
    raise ConfigError("no mail source configured: set [imap] host, or [folder] path for a mailbox export")


def make_intake(settings: Settings, db: Database | None = None) -> Intake:
    return Intake(
        settings=settings,
        db=db or open_database(settings),
        store=DocumentStore(settings.storage_path),
        source=make_source(settings),
    )
