"""Configuration is read once, typed, and names what is missing; credentials.yml overrides the environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from banking.config import DEVELOPMENT_SALT
from connectors.whatsapp import (
    DEFAULT_API_URL,
    NoTranscriber,
    Transcript,
    WhatsAppConfig,
    WhatsAppConfigError,
    WhatsAppInput,
    load_transcriber,
)

ENV = {
    "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    "WHATSAPP_API_TOKEN": "EAAG-env-token",
    "WHATSAPP_VERIFY_TOKEN": "env-verify",
    "WHATSAPP_APP_SECRET": "env-secret",
}
ROOT = Path(__file__).resolve().parents[2]


class EchoTranscriber:
    """A transcriber named by dotted path in credentials.yml (see test below)."""

    async def transcribe(self, audio: bytes, mime_type: str) -> Transcript | None:
        return Transcript(text=audio.decode())


class NotATranscriber:
    pass


def test_from_env_reads_every_setting() -> None:
    environ = {
        **ENV,
        "WHATSAPP_API_URL": "http://127.0.0.1:9999/v25.0/",
        "MONGODB_URI": "mongodb://db:27017",
        "USER_ID_SALT": "pepper",
    }
    config = WhatsAppConfig.from_env(environ)
    assert config.phone_number_id == "106540352242922"
    assert config.api_token == "EAAG-env-token"
    assert config.verify_token == "env-verify"
    assert config.app_secret == "env-secret"
    assert config.api_url == "http://127.0.0.1:9999/v25.0"  # trailing slash dropped
    assert config.mongodb_uri == "mongodb://db:27017"
    assert config.user_id_salt == "pepper"
    assert not config.uses_development_salt


def test_defaults_for_the_optional_settings() -> None:
    config = WhatsAppConfig.from_env(ENV)
    assert config.api_url == DEFAULT_API_URL == "https://graph.facebook.com/v25.0"
    assert config.mongodb_uri is None
    assert config.user_id_salt == DEVELOPMENT_SALT and config.uses_development_salt


def test_config_is_frozen_and_hides_secrets_from_repr() -> None:
    config = WhatsAppConfig.from_env(ENV)
    with pytest.raises(AttributeError):
        config.api_token = "other"  # type: ignore[misc]
    shown = repr(config)
    assert "EAAG-env-token" not in shown and "env-secret" not in shown and "env-verify" not in shown


@pytest.mark.parametrize("variable", sorted(ENV))
def test_each_missing_required_variable_is_named(variable: str) -> None:
    environ = {key: value for key, value in ENV.items() if key != variable}
    with pytest.raises(WhatsAppConfigError, match=variable):
        WhatsAppConfig.from_env(environ)


def test_blank_values_count_as_missing_and_all_missing_are_named() -> None:
    with pytest.raises(WhatsAppConfigError) as raised:
        WhatsAppConfig.from_env({**ENV, "WHATSAPP_API_TOKEN": "  ", "WHATSAPP_APP_SECRET": ""})
    assert "WHATSAPP_API_TOKEN" in str(raised.value) and "WHATSAPP_APP_SECRET" in str(raised.value)
    assert isinstance(raised.value, ValueError)  # a ConfigError, like the banking core's


def test_api_url_must_be_http() -> None:
    with pytest.raises(WhatsAppConfigError, match="WHATSAPP_API_URL"):
        WhatsAppConfig.from_env({**ENV, "WHATSAPP_API_URL": "graph.facebook.com/v25.0"})


def test_credentials_override_the_environment_and_empty_keys_do_not() -> None:
    credentials = {
        "api_url": "http://127.0.0.1:8080/v25.0",
        "phone_number_id": 123456789012345,  # YAML reads a bare id as an int
        "api_token": "",
        "verify_token": None,
        "app_secret": "yaml-secret",
    }
    config = WhatsAppConfig.from_credentials(credentials, ENV)
    assert config.api_url == "http://127.0.0.1:8080/v25.0"
    assert config.phone_number_id == "123456789012345"
    assert config.app_secret == "yaml-secret"
    assert config.api_token == "EAAG-env-token"
    assert config.verify_token == "env-verify"


def test_credentials_alone_are_enough() -> None:
    credentials = {"phone_number_id": "1", "api_token": "t", "verify_token": "v", "app_secret": "s"}
    assert WhatsAppConfig.from_credentials(credentials, {}).app_secret == "s"


def test_from_credentials_with_an_empty_yaml_entry_uses_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    channel = WhatsAppInput.from_credentials(None)
    assert channel.config.app_secret == "env-secret"
    assert isinstance(channel.transcriber, NoTranscriber)


def test_from_credentials_without_secrets_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ENV:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(WhatsAppConfigError, match="WHATSAPP_APP_SECRET"):
        WhatsAppInput.from_credentials({"phone_number_id": "1", "api_token": "t", "verify_token": "v"})


async def test_transcriber_is_loaded_by_dotted_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    transcriber = load_transcriber("test_whatsapp_config.EchoTranscriber")
    assert transcriber is not None
    assert await transcriber.transcribe(b"check my balance", "audio/ogg") == Transcript("check my balance")


@pytest.mark.parametrize("path", ["test_whatsapp_config.NotATranscriber", "no.such.module.Transcriber", 42])
def test_unusable_transcriber_is_a_config_error(path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    with pytest.raises(WhatsAppConfigError):
        load_transcriber(path)


# pykwalify, which Rasa validates YAML with, loads its extensions the deprecated way.
@pytest.mark.filterwarnings(r"ignore:the load_module\(\) method is deprecated:DeprecationWarning")
def test_rasa_builds_the_channel_from_credentials_yml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The documented YAML, read and resolved the way rasa.core.run._create_single_channel does it."""
    from rasa.shared.utils.common import class_from_module_path
    from rasa.shared.utils.io import read_config_file

    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WA_SECRET_FROM_ENV", "substituted-secret")
    credentials = tmp_path / "credentials.yml"
    credentials.write_text(
        "rest:\n"
        "connectors.whatsapp.WhatsAppInput:\n"
        "  app_secret: ${WA_SECRET_FROM_ENV}\n"
    )
    all_credentials = read_config_file(str(credentials))
    name = "connectors.whatsapp.WhatsAppInput"
    channel = class_from_module_path(name).from_credentials(all_credentials[name])
    assert isinstance(channel, WhatsAppInput)
    assert channel.name() == "whatsapp" and channel.url_prefix() == "whatsapp"
    assert channel.config.app_secret == "substituted-secret"
    assert channel.config.api_token == "EAAG-env-token"


def test_importing_the_channel_does_no_work() -> None:
    """No session, socket or database at import: rasa imports channel modules at start-up."""
    code = (
        "import socket, aiohttp, pymongo, mongomock\n"
        "def refuse(*a, **k):\n"
        "    raise AssertionError('work at import time')\n"
        "socket.socket.connect = refuse\n"
        "aiohttp.ClientSession.__init__ = refuse\n"
        "pymongo.MongoClient.__init__ = refuse\n"
        "mongomock.MongoClient.__init__ = refuse\n"
        "import connectors.whatsapp, connectors.whatsapp.graph, connectors.whatsapp.store\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
