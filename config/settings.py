"""The settings schema: one TOML file, every value overridable from the environment.

`POSTMOTTAK_IMAP__PASSWORD=...` overrides `[imap] password`; `password_file` reads a secret from a file.
Relative paths (the SQLite file, the storage folder, the sample mailbox) are resolved against the config
file's folder, so a config works wherever it is run from.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

CONFIG_ENV = "POSTMOTTAK_CONFIG"
CASE_NUMBER = re.compile(r"^(\d{2}|\d{4})/(\d{1,6})$")
DEFAULT_MAILBOX = "default"  # the mailbox of the single [imap] or [folder] section


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the bad key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _SecretFiles(_Section):
    """Sections whose secrets may come from files: `(secret field, file field)` pairs. Settings reads the files
    once the config file's folder is known (a relative path is relative to it)."""

    _secret_files: ClassVar[tuple[tuple[str, str], ...]] = ()

    def read_secret_files(self, section: str, base_dir: Path) -> None:
        for secret_field, file_field in self._secret_files:
            path = getattr(self, file_field)
            if not path:
                continue
            candidate = Path(path).expanduser()
            try:
                secret = (candidate if candidate.is_absolute() else base_dir / candidate).read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"[{section}] {file_field}: cannot read {path!r}: {exc.strerror}") from None
            setattr(self, secret_field, SecretStr(secret.strip()))


class DatabaseSettings(_Section):
    url: str = "sqlite:///var/postmottak.db"


class StorageSettings(_Section):
    path: str = "var/documents"
    backend: Literal["filesystem", "database"] = "filesystem"  # database: documents in the case database


class ImapSettings(_SecretFiles):
    _secret_files = (("password", "password_file"),)

    host: str = ""
    port: int = Field(993, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "ssl"
    verify_tls: bool = True
    auth: Literal["password", "oauth2"] = "password"  # oauth2: XOAUTH2 with a token from [oauth2]
    username: str = ""  # with oauth2: the mailbox address (a shared mailbox too)
    password: SecretStr = SecretStr("")
    password_file: str | None = None
    folder: str = "INBOX"
    processed_folder: str = ""
    batch_size: int = Field(50, ge=1, le=1000)
    timeout_seconds: float = Field(60, gt=0)
    idle: bool = True  # `postmottak run` waits in IMAP IDLE for new mail when the server offers it
    idle_timeout_seconds: int = Field(1740, ge=1, le=1740)  # re-issue IDLE this often (RFC 2177: < 30 min)

    @property
    def configured(self) -> bool:
        return bool(self.host)


class SmtpSettings(_SecretFiles):
    _secret_files = (("password", "password_file"),)

    host: str = ""
    port: int = Field(587, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "starttls"
    verify_tls: bool = True
    auth: Literal["password", "oauth2"] = "password"  # oauth2: XOAUTH2 with a token from [oauth2]
    username: str = ""
    password: SecretStr = SecretStr("")
    password_file: str | None = None
    sender: str = "postmottak@ehelse.no"
    sender_name: str = "Postmottak"
    envelope_sender: str | None = None
    timeout_seconds: float = Field(30, gt=0)

    @property
    def configured(self) -> bool:
        return bool(self.host)


class OAuth2Settings(_SecretFiles):
    """`[oauth2]`: where IMAP and SMTP get their access tokens when `auth = "oauth2"`.

    client_credentials: app-only access (Microsoft Entra ID for Exchange Online, token_url
    https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token, scope https://outlook.office365.com/.default).
    refresh_token: delegated access (e.g. Google); a rotated refresh token is written to refresh_token_file (0600).
    Secrets also come from the environment: POSTMOTTAK_OAUTH2__CLIENT_SECRET, POSTMOTTAK_OAUTH2__REFRESH_TOKEN.
    token_url must be https: the client secret or refresh token is sent to it (plain http only to a loopback host).
    """

    _secret_files = (("client_secret", "client_secret_file"),)

    token_url: str = ""
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    client_secret_file: str | None = None
    scope: str = ""
    flow: Literal["client_credentials", "refresh_token"] = "client_credentials"
    refresh_token: SecretStr = SecretStr("")
    refresh_token_file: str | None = None  # read at start; a rotated token is stored here (relative: config dir)
    renew_before_seconds: float = Field(300, ge=0)  # renew a cached token this long before it expires
    timeout_seconds: float = Field(30, gt=0)
    verify_tls: bool = True

    @property
    def configured(self) -> bool:
        return bool(self.token_url)

    @field_validator("token_url")
    @classmethod
    def _token_url_encrypted(cls, value: str) -> str:
        return check_token_url(value)


class FolderSettings(_Section):
    """A mailbox export (Maildir, mbox or a folder of .eml files) read as a mail source."""

    path: str = ""
    format: Literal["auto", "maildir", "mbox", "eml"] = "auto"


class ScheduleSettings(_Section):
    interval_seconds: int = Field(60, ge=1)


class IntakeSettings(_Section):
    max_attempts: int = Field(5, ge=1)
    retry_base_seconds: float = Field(60, ge=0)
    parse_timeout_seconds: float = Field(60, gt=0)
    parse_memory_mb: int = Field(1024, ge=64)
    parse_workers: int = Field(0, ge=0)  # form reader processes; 0 = one per CPU core
    max_message_bytes: int = Field(50 * 1024 * 1024, ge=1024)


class ReceiptSettings(_Section):
    """`[receipts]`: the automatic receipt (kvittering) sent to each registered respondent."""

    enabled: bool = True
    template_path: str = ""  # "" = the built-in config/receipt_template.txt
    contact_address: str = ""  # "" = [smtp] sender
    rate_limit_count: int = Field(10, ge=1)  # at most this many receipts to one address ...
    rate_limit_hours: float = Field(3, gt=0)  # ... within this many hours
    max_attempts: int = Field(8, ge=1)
    retry_base_seconds: float = Field(60, ge=0)  # doubled after each temporary failure
    retry_max_seconds: float = Field(6 * 3600, ge=0)
    claim_seconds: float = Field(600, ge=0)  # a receipt being sent is not picked up again before this
    null_envelope_sender: bool = False  # MAIL FROM:<> (no bounces come back); default: [smtp] envelope_sender or sender
    batch_size: int = Field(200, ge=1)


class WebSettings(_SecretFiles):
    """`[web]`: the staff dashboard (`postmottak serve`). Without secret_key (or secret_key_file) the session secret
    is generated once and kept beside the document store."""

    _secret_files = (("secret_key", "secret_key_file"), ("metrics_token", "metrics_token_file"))

    secret_key: SecretStr | None = None
    secret_key_file: str | None = None
    secure_cookies: bool = True  # cookies only over HTTPS; false for plain-http development on localhost
    session_max_age_seconds: int = Field(8 * 3600, ge=60)
    metrics_token: SecretStr | None = None  # bearer token for Prometheus on /metrics; unset = login only
    metrics_token_file: str | None = None
    stale_after_seconds: int | None = Field(None, ge=1)  # /healthz "stale" after this (default 3 intervals + 60 s)
    login_max_failures: int = Field(5, ge=1)
    login_max_failures_per_client: int = Field(20, ge=1)
    login_window_seconds: int = Field(900, ge=1)
    page_size: int = Field(50, ge=1, le=500)


class CaseSettings(_Section):
    number: str
    title: str
    deadline: date
    timezone: str = "Europe/Oslo"
    form: str | None = None
    keywords: list[str] = Field(default_factory=list)

    @field_validator("number")
    @classmethod
    def _number_shape(cls, value: str) -> str:
        if not CASE_NUMBER.match(value.strip()):
            raise ValueError("case number must look like YY/NNN or YYYY/NNN, e.g. 22/414")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class MailboxSettings(_Section):
    """`[[mailboxes]]`: one more mailbox to read, with its own `[mailboxes.imap]` or `[mailboxes.folder]` table.

    `cases` names the case numbers this mailbox serves (empty: every configured case). The single `[imap]` or
    `[folder]` section stays valid and is the mailbox named "default".
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
    imap: ImapSettings | None = None
    folder: FolderSettings | None = None
    cases: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_source(self) -> "MailboxSettings":
        has_imap = self.imap is not None and self.imap.configured
        has_folder = self.folder is not None and bool(self.folder.path)
        if has_imap == has_folder:
            raise ValueError(
                f"mailbox {self.name!r} needs exactly one of [mailboxes.imap] host or [mailboxes.folder] path"
            )
        return self


class LeaseSettings(_Section):
    """`[leases]`: which worker reads which mailbox, through leases in the case database.

    On by default when more than one mailbox is configured. A worker that stops renewing loses its mailboxes after
    `seconds`; another worker takes them within `seconds + renew_seconds`.
    """

    enabled: bool | None = None  # None: on when several mailboxes are configured
    seconds: float = Field(30, ge=1)
    renew_seconds: float | None = Field(None, gt=0)  # default: a third of `seconds`

    @property
    def renew_every(self) -> float:
        return self.renew_seconds if self.renew_seconds is not None else self.seconds / 3


class RetentionSettings(_Section):
    """`[retention]`: days after which the raw mail and attachments of mail that is not a response are deleted from
    storage (the record keeps its metadata, SHA-256 and a tombstone). Unset = kept. Registered mail is never
    deleted. ignored: machine mail and mail staff ignored; unrelated: mail about no configured case."""

    ignored_days: int | None = Field(None, ge=0)
    duplicate_days: int | None = Field(None, ge=0)
    unrelated_days: int | None = Field(None, ge=0)
    run_every_hours: float = Field(24, gt=0)  # how often the worker runs it (at most)


class NotificationSettings(_Section):
    """[notifications]: a daily digest and alerts to staff (never to respondents), through the [smtp] settings."""

    # Staff login name -> e-mail address; each person can opt out in the dashboard ("Varsler").
    recipients: dict[str, str] = Field(default_factory=dict)
    digest: bool = True
    digest_hour: int = Field(7, ge=0, le=23)  # Europe/Oslo; the digest goes out at the first run after this hour
    stall_minutes: int = Field(60, ge=1)  # no successful poll for this long: an alert
    alert_interval_minutes: int = Field(60, ge=1)  # at most one alert per incident kind in this period


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="POSTMOTTAK_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    imap: ImapSettings = ImapSettings()
    smtp: SmtpSettings = SmtpSettings()
    oauth2: OAuth2Settings = OAuth2Settings()
    folder: FolderSettings = FolderSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    intake: IntakeSettings = IntakeSettings()
    web: WebSettings = WebSettings()
    receipts: ReceiptSettings = ReceiptSettings()
    cases: list[CaseSettings] = Field(default_factory=list)
    mailboxes: list[MailboxSettings] = Field(default_factory=list)
    leases: LeaseSettings = LeaseSettings()
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    # Where relative paths are anchored (the config file's folder); not a TOML key.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    toml_path: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_path))
        return tuple(sources)

    @model_validator(mode="after")
    def _secrets_from_files(self) -> "Settings":
        for name in type(self).model_fields:
            section = getattr(self, name)
            if isinstance(section, _SecretFiles):
                section.read_secret_files(name, self.base_dir)
        for mailbox in self.mailboxes:  # each [[mailboxes]] entry's own [mailboxes.imap] secrets
            if mailbox.imap is not None:
                mailbox.imap.read_secret_files(f"mailboxes.{mailbox.name}.imap", self.base_dir)
        return self

    @model_validator(mode="after")
    def _unique_cases(self) -> "Settings":
        numbers = [case.number for case in self.cases]
        for number in numbers:
            if numbers.count(number) > 1:
                raise ValueError(f"case {number} is configured twice")
        return self

    @model_validator(mode="after")
    def _oauth2_complete(self) -> "Settings":
        users = [name for name, section in (("imap", self.imap), ("smtp", self.smtp)) if section.auth == "oauth2"]
        if not users:
            return self
        oauth2 = self.oauth2
        missing = [key for key in ("token_url", "client_id") if not getattr(oauth2, key)]
        has_refresh_token = bool(oauth2.refresh_token.get_secret_value() or oauth2.refresh_token_file)
        if oauth2.flow == "refresh_token" and not has_refresh_token:
            missing.append("refresh_token (or refresh_token_file)")
        if missing:
            raise ValueError(f'[{"] and [".join(users)}] auth = "oauth2" needs [oauth2] {", ".join(missing)}')
        for name, section in (("imap", self.imap), ("smtp", self.smtp)):
            if section.auth == "oauth2" and section.configured and not section.username:
                raise ValueError(f'[{name}] auth = "oauth2" needs [{name}] username (the mailbox address)')
        return self

    # Resolved paths and URLs -------------------------------------------------------------

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate)

    @property
    def database_url(self) -> str:
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and url != "sqlite:///:memory:" and not url.startswith("sqlite:////"):
            return prefix + str(self.resolve(url[len(prefix) :]))
        return url

    @property
    def storage_path(self) -> Path:
        return self.resolve(self.storage.path)

    @property
    def consultation_forms_path(self) -> Path:
        """Where the form profiles of consultations set up in the dashboard are written for the parsers to load."""
        return self.storage_path.parent / "consultation-forms"

    @property
    def folder_path(self) -> Path | None:
        return self.resolve(self.folder.path) if self.folder.path else None

    def case(self, number: str) -> CaseSettings:
        for case in self.cases:
            if case.number == number:
                return case
        raise KeyError(number)

    # Several mailboxes ---------------------------------------------------------------------

    @model_validator(mode="after")
    def _mailboxes_consistent(self) -> "Settings":
        names = [box.name for box in self.mailboxes]
        if self.imap.configured or self.folder.path:
            names.append(DEFAULT_MAILBOX)
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"mailbox {name!r} is configured twice")
        known = {case.number for case in self.cases}
        for box in self.mailboxes:
            for number in box.cases:
                if number not in known:
                    raise ValueError(f"mailbox {box.name!r} serves case {number}, which is not under [[cases]]")
        return self

    def mailbox_names(self) -> list[str]:
        """Every configured mailbox: "default" for the single [imap]/[folder] section, then [[mailboxes]]."""
        names = [DEFAULT_MAILBOX] if (self.imap.configured or self.folder.path) else []
        return names + [box.name for box in self.mailboxes]

    @property
    def uses_leases(self) -> bool:
        return self.leases.enabled if self.leases.enabled is not None else len(self.mailbox_names()) > 1

    def for_mailbox(self, name: str) -> "Settings":
        """These settings as seen by one mailbox's worker: its source in [imap]/[folder], only the cases it serves."""
        if name == DEFAULT_MAILBOX and name not in {box.name for box in self.mailboxes}:
            return self
        for box in self.mailboxes:
            if box.name == name:
                served = [case for case in self.cases if not box.cases or case.number in box.cases]
                return self.model_copy(
                    update={
                        "imap": box.imap or ImapSettings(),
                        "folder": box.folder or FolderSettings(),
                        "cases": served,
                        "mailboxes": [],
                    }
                )
        raise KeyError(name)

    def mailbox_sources(self) -> dict[str, str]:
        """Each configured mailbox's source key, the key its intake records and poll state are kept under (the
        same as intake/sources build it: imap://user@host:port/folder or folder://<absolute path>)."""
        keys = {}
        for name in self.mailbox_names():
            view = self.for_mailbox(name)
            if view.imap.configured:
                keys[name] = f"imap://{view.imap.username}@{view.imap.host}:{view.imap.port}/{view.imap.folder}"
            elif view.folder_path is not None:
                keys[name] = f"folder://{view.folder_path.resolve()}"
        return keys


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Load settings from a TOML file (or $POSTMOTTAK_CONFIG) plus the environment.

    Raises ConfigError with a message naming each bad key; never includes secret values.
    """
    chosen = path or os.environ.get(CONFIG_ENV)
    toml_path: Path | None = None
    if chosen:
        toml_path = Path(chosen).expanduser().resolve()
        if not toml_path.is_file():
            raise ConfigError(f"config file not found: {toml_path}")
    source = str(toml_path) if toml_path else "the environment"

    class _Loaded(Settings):
        pass

    _Loaded.toml_path = toml_path

    try:
        loaded = _Loaded(base_dir=toml_path.parent if toml_path else Path.cwd(), **overrides)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None
    except ValueError as exc:  # TOML syntax errors
        raise ConfigError(f"cannot read {source}: {exc}") from None
    return loaded


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token_url(url: str) -> str:
    """`[oauth2] token_url`: https, or plain http to a loopback host (test servers), with a warning."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        logging.getLogger("postmottak.config").warning(
            "[oauth2] token_url uses plain http to %s: allowed for a loopback host only", parts.hostname
        )
        return url
    raise ValueError(
        "token_url must be an https:// URL (the client secret is sent to it; http only to a loopback host)"
    )


def form_reference(settings: Settings, form: str | None) -> str | None:
    """A case's `form` as the parsers load it: a packaged profile's name, or a profile file's path (a relative path
    is relative to the config file)."""
    if not form or not (form.endswith(".toml") or "/" in form):
        return form
    path = Path(form)
    return str(path if path.is_absolute() else settings.base_dir / path)
