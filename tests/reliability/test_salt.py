"""USER_ID_SALT must be real whenever records persist (MONGODB_URI set), in development too: the
channel, the tracker store and the action server's banking service each refuse to start, naming
USER_ID_SALT; without a database the development salt still works, with its warning."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.utils.common import class_from_module_path

import actions.runtime as runtime
import banking.factory as factory
from banking.config import DEVELOPMENT_SALT
from banking.crypto import require_production_secrets, require_user_id_salt
from banking.errors import ConfigError
from banking.factory import service_from_env
from banking.store import in_memory_database
from connectors.tracker_store import EncryptedMongoTrackerStore
from connectors.whatsapp import WhatsAppConfigError, WhatsAppInput
from tests.production_env import KEY_HEX, SALT, WHATSAPP

URI = "mongodb://alice:s3cr3t-pw@db.internal:27017/banking"
NO_REAL_SALT = [{}, {"USER_ID_SALT": "   "}, {"USER_ID_SALT": DEVELOPMENT_SALT}]


def assert_names_the_salt(refused: pytest.ExceptionInfo[Exception]) -> None:
    message = str(refused.value)
    assert "USER_ID_SALT" in message and "MONGODB_URI" in message
    assert "s3cr3t-pw" not in message and DEVELOPMENT_SALT not in message  # neither URI nor salt is quoted


@pytest.mark.parametrize("salt", NO_REAL_SALT, ids=["unset", "blank", "development salt"])
def test_the_rule_refuses_a_missing_or_development_salt_when_records_persist(salt: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as refused:
        require_user_id_salt({"MONGODB_URI": URI, **salt})
    assert_names_the_salt(refused)
    with pytest.raises(ConfigError):
        require_user_id_salt(salt, mongodb_uri=URI)  # a URI from elsewhere (endpoints.yml) counts too
    require_user_id_salt(salt)  # in memory: allowed
    require_user_id_salt({**salt, "MONGODB_URI": "  "})


def test_the_rule_accepts_a_real_salt_and_runs_in_every_start_up_check() -> None:
    require_user_id_salt({"MONGODB_URI": URI, "USER_ID_SALT": SALT})
    require_production_secrets({"MONGODB_URI": URI, "USER_ID_SALT": SALT})
    with pytest.raises(ConfigError, match="USER_ID_SALT is unset"):
        require_production_secrets({"MONGODB_URI": URI})  # development, not only production


@pytest.mark.parametrize("salt", NO_REAL_SALT, ids=["unset", "blank", "development salt"])
def test_the_channel_refuses_to_start_in_development_with_a_database(environment: Any, salt: dict[str, str]) -> None:
    environment({**WHATSAPP, "MONGODB_URI": URI, **salt})
    with pytest.raises(WhatsAppConfigError) as refused:
        class_from_module_path("connectors.whatsapp.WhatsAppInput").from_credentials(None)  # as `rasa run` does
    assert_names_the_salt(refused)


def test_the_channel_without_a_database_starts_with_a_warning(environment: Any,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    environment(WHATSAPP)
    with caplog.at_level(logging.WARNING):
        channel = WhatsAppInput.from_credentials(None)
    assert channel.config.uses_development_salt
    assert "USER_ID_SALT is unset" in caplog.text
    environment({**WHATSAPP, "MONGODB_URI": URI, "USER_ID_SALT": SALT})
    assert WhatsAppInput.from_credentials(None).config.user_id_salt == SALT


@pytest.mark.parametrize("salt", NO_REAL_SALT, ids=["unset", "blank", "development salt"])
def test_the_tracker_store_refuses_a_database_from_the_environment_or_endpoints(salt: dict[str, str]) -> None:
    domain = Domain.empty()
    with pytest.raises(ConfigError) as refused:
        EncryptedMongoTrackerStore(domain, environ={"MONGODB_URI": URI, "ENCRYPTION_KEY": KEY_HEX, **salt})
    assert_names_the_salt(refused)
    with pytest.raises(ConfigError, match="USER_ID_SALT"):
        EncryptedMongoTrackerStore(domain, host=URI, environ={"ENCRYPTION_KEY": KEY_HEX, **salt})  # url: in endpoints


def test_the_tracker_store_in_memory_keeps_the_development_salt() -> None:
    store = EncryptedMongoTrackerStore(Domain.empty(), environ={"ENCRYPTION_KEY": KEY_HEX})
    assert store._salt == DEVELOPMENT_SALT


@pytest.mark.parametrize("salt", NO_REAL_SALT, ids=["unset", "blank", "development salt"])
def test_the_action_server_refuses_before_connecting(environment: Any, monkeypatch: pytest.MonkeyPatch,
                                                     salt: dict[str, str]) -> None:
    connected: list[Any] = []
    monkeypatch.setattr(factory, "connect_database", lambda settings: connected.append(settings))
    environment({"MONGODB_URI": URI, "ENCRYPTION_KEY": KEY_HEX, **salt})
    runtime.use_service(None)
    try:
        with pytest.raises(ConfigError) as refused:
            runtime.banking()  # the first action builds the service
    finally:
        runtime.use_service(None)
    assert_names_the_salt(refused)
    assert connected == []


def test_the_action_server_in_memory_starts_with_the_development_salt(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        service = service_from_env({})
    assert service.settings.user_id_salt == DEVELOPMENT_SALT
    assert "USER_ID_SALT is unset" in caplog.text


def test_with_a_real_salt_the_action_server_uses_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    database = in_memory_database()
    monkeypatch.setattr(factory, "connect_database", lambda settings: database)
    service = service_from_env({"MONGODB_URI": URI, "USER_ID_SALT": SALT, "ENCRYPTION_KEY": KEY_HEX})
    assert service.settings.user_id_salt == SALT
