from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from postmottak.config.settings import ConfigError, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "postmottak.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_loads_with_every_documented_key() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.imap.host == "imap.example.no"
    assert settings.imap.port == 993 and settings.imap.security == "ssl"
    assert settings.imap.processed_folder == ""
    assert settings.smtp.port == 587 and settings.smtp.security == "starttls"
    assert settings.smtp.sender == "postmottak@ehelse.no"
    assert settings.schedule.interval_seconds == 60
    case = settings.cases[0]
    assert (case.number, case.deadline, case.timezone) == ("22/414", date(2022, 10, 1), "Europe/Oslo")
    assert case.title == "Høring - Nasjonal e-helsestrategi for helse- og omsorgssektoren"


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite:///var/p.db"\n[storage]\npath = "var/docs"\n')
    settings = load_settings(path)
    assert settings.database_url == f"sqlite:///{tmp_path}/var/p.db"
    assert settings.storage_path == tmp_path / "var" / "docs"


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[imap]\nhost = "imap.example.no"\npassword = "from-file"\n')
    monkeypatch.setenv("POSTMOTTAK_IMAP__PASSWORD", "from-env")
    monkeypatch.setenv("POSTMOTTAK_IMAP__PORT", "1143")
    settings = load_settings(path)
    assert settings.imap.password.get_secret_value() == "from-env"
    assert settings.imap.port == 1143


def test_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "imap-password"
    secret.write_text("s3cret-fra-fil\n")
    path = write(tmp_path, f'[imap]\nhost = "h"\npassword_file = "{secret}"\n')
    assert load_settings(path).imap.password.get_secret_value() == "s3cret-fra-fil"


def test_config_env_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[schedule]\ninterval_seconds = 5\n")
    monkeypatch.setenv("POSTMOTTAK_CONFIG", str(path))
    assert load_settings().schedule.interval_seconds == 5


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[imap]\nprot = 993\n", "imap.prot: unknown key"),
        ('[imap]\nsecurity = "tls"\n', "imap.security"),
        ('[[cases]]\nnumber = "22-414"\ntitle = "x"\ndeadline = "2022-10-01"\n', "cases.0.number"),
        (
            '[[cases]]\nnumber = "22/414"\ntitle = "x"\ndeadline = "2022-10-01"\ntimezone = "Europe/Bergen"\n',
            "cases.0.timezone",
        ),
        ('[[cases]]\nnumber = "22/414"\ntitle = "x"\ndeadline = "1. oktober"\n', "cases.0.deadline"),
        ("[schedule]\ninterval_seconds = 0\n", "schedule.interval_seconds"),
    ],
)
def test_bad_keys_are_named(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert named in str(caught.value)


def test_secret_never_in_errors_or_repr(tmp_path: Path) -> None:
    path = write(tmp_path, '[imap]\nhost = "h"\npassword = "topp-hemmelig-123"\nport = "not a port"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "topp-hemmelig-123" not in str(caught.value)
    ok = load_settings(write(tmp_path, '[imap]\nhost = "h"\npassword = "topp-hemmelig-123"\n'))
    assert "topp-hemmelig-123" not in repr(ok) and "topp-hemmelig-123" not in str(ok.model_dump())


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_secret_files_are_read_relative_to_the_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "session").write_text("okt-nokkel\n", encoding="utf-8")
    (tmp_path / "secrets" / "metrics").write_text("maaler\n", encoding="utf-8")
    path = write(tmp_path, '[web]\nsecret_key_file = "secrets/session"\nmetrics_token_file = "secrets/metrics"\n')
    monkeypatch.chdir(tmp_path / "secrets")  # not the config folder
    web = load_settings(path).web
    assert web.secret_key is not None and web.secret_key.get_secret_value() == "okt-nokkel"
    assert web.metrics_token is not None and web.metrics_token.get_secret_value() == "maaler"


def test_unreadable_secret_file_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[smtp]\nhost = "h"\npassword_file = "missing-password"\n')
    with pytest.raises(ConfigError, match=r"\[smtp\] password_file: cannot read 'missing-password'"):
        load_settings(path)
