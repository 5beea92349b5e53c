"""`[oauth2] token_url`: the client secret travels to it, so it must be https (plain http only to a loopback host)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from postmottak.config.settings import ConfigError, load_settings

SECRET = "hemmelig-klientnokkel"


def write_config(tmp_path: Path, token_url: str) -> Path:
    config = tmp_path / "postmottak.toml"
    config.write_text(
        f'[imap]\nhost = "imap.example.no"\nauth = "oauth2"\nusername = "postmottak@ehelse.no"\n'
        f'[oauth2]\ntoken_url = "{token_url}"\nclient_id = "postmottak"\nclient_secret = "{SECRET}"\n',
        encoding="utf-8",
    )
    return config


@pytest.mark.parametrize(
    "token_url",
    [
        "http://login.example.no/tenant/oauth2/v2.0/token",
        "http://192.0.2.10/token",
        "ftp://login.example.no/token",
        "login.example.no/token",
        "https:///token",
    ],
)
def test_token_url_without_tls_to_a_remote_host_is_a_config_error_naming_the_key(
    tmp_path: Path, token_url: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write_config(tmp_path, token_url))
    message = str(error.value)
    assert "oauth2.token_url" in message and "https://" in message
    assert SECRET not in message


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.0.0.53"])
def test_plain_http_token_url_on_a_loopback_host_is_accepted_with_a_warning(
    tmp_path: Path, host: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://{host}:8080/tenant/oauth2/v2.0/token"
    with caplog.at_level(logging.WARNING, logger="postmottak.config"):
        settings = load_settings(write_config(tmp_path, url))
    assert settings.oauth2.token_url == url
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "token_url" in warnings[0].getMessage()


def test_https_token_url_is_accepted_without_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = "https://login.microsoftonline.com/tenant/oauth2/v2.0/token"
    with caplog.at_level(logging.WARNING, logger="postmottak.config"):
        settings = load_settings(write_config(tmp_path, url))
    assert settings.oauth2.token_url == url
    assert not [record for record in caplog.records if record.name == "postmottak.config"]
