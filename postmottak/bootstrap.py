"""The one wiring point: settings -> case database -> document store -> mail source -> worker.

Every command, the dashboard (through `serve`) and the benchmark build what they need here, so a change in how
the pieces fit together is made once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from postmottak.casefile import cases as case_store
from postmottak.casefile.blobstore import open_store
from postmottak.casefile.db import Database, DatabaseUnavailable, WriteConflict
from postmottak.casefile.storage import DocumentStore
from postmottak.config.settings import ConfigError, Settings, form_reference, load_settings
from postmottak.intake.oauth2 import token_client
from postmottak.intake.pipeline import Intake
from postmottak.intake.sources.base import MailSource
from postmottak.intake.sources.folder import FolderSource
from postmottak.intake.sources.imap import ImapConfig, ImapSource

if TYPE_CHECKING:
    from postmottak.intake.fleet import Fleet

__all__ = [
    "ConfigError",
    "DatabaseUnavailable",
    "build_fleet",
    "build_mailbox_worker",
    "build_worker",
    "document_store",
    "load_settings",
    "mail_source",
    "open_database",
]


def open_database(settings: Settings) -> Database:
    """The case database, migrated, with the configured cases in step. Raises DatabaseUnavailable."""
    db = Database.open(settings.database_url)
    configured = [(c.number, c.title, c.deadline, c.timezone, form_reference(settings, c.form)) for c in settings.cases]
    for attempt in (1, 2):
        try:
            with db.translating_errors(), db.session() as session:
                case_store.sync_cases(session, configured)
            break
        except WriteConflict:
            # Another process (a second worker, the dashboard) starting at the same moment inserted the same case
            # first; the second pass finds it and brings it in step.
            if attempt == 2:
                raise
    return db


def document_store(settings: Settings, db: Database | None = None) -> DocumentStore:
    """The configured store: files under [storage] path, or chunks in the case database (`backend`)."""
    return open_store(settings.storage.backend, settings.storage_path, db)  # type: ignore[return-value]


def mail_source(settings: Settings, folder: Path | None = None) -> MailSource:
    """The configured source, or a folder export given on the command line (`import PATH`)."""
    if folder is not None:
        return FolderSource(folder)
    if settings.imap.configured:
        imap = settings.imap
        return ImapSource(
            ImapConfig(
                host=imap.host,
                port=imap.port,
                security=imap.security,
                username=imap.username,
                password=imap.password.get_secret_value(),
                folder=imap.folder,
                processed_folder=imap.processed_folder,
                verify_tls=imap.verify_tls,
                timeout=imap.timeout_seconds,
                batch_size=imap.batch_size,
                tokens=token_client(settings) if imap.auth == "oauth2" else None,
            )
        )
    if settings.folder_path is not None:
        return FolderSource(settings.folder_path, settings.folder.format)
    raise ConfigError("no mail source configured: set [imap] host, or [folder] path for a mailbox export")


def build_worker(settings: Settings, db: Database | None = None, *, folder: Path | None = None) -> Intake:
    """The intake worker for the configured source (or for a folder export)."""
    database = db or open_database(settings)
    return Intake(
        settings=settings,
        db=database,
        store=document_store(settings, database),
        source=mail_source(settings, folder),
    )


def build_mailbox_worker(settings: Settings, db: Database, mailbox: str) -> Intake:
    """The intake worker of one configured mailbox (`[[mailboxes]]` name, or "default")."""
    return build_worker(settings.for_mailbox(mailbox), db)


def build_fleet(settings: Settings, db: Database | None = None) -> "Fleet":
    """This process as one of several workers sharing the configured mailboxes through leases."""
    from postmottak.intake.fleet import Fleet

    database = db or open_database(settings)
    return Fleet(settings, database, lambda mailbox: build_mailbox_worker(settings, database, mailbox))
