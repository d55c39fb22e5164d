"""ENVIRONMENT=production refuses to start, naming every missing or default secret, both where the
channel is built (Rasa calls WhatsAppInput.from_credentials) and where the action server builds the
banking service (banking.factory.service_from_env)."""

from __future__ import annotations

from typing import Any

import pytest
from rasa.shared.utils.common import class_from_module_path

import actions.runtime as runtime
import banking.factory as factory
from banking.crypto import Keyring, field_context
from banking.errors import ConfigError
from banking.factory import service_from_env
from banking.identity import user_key
from banking.store import in_memory_database
from connectors.whatsapp import WhatsAppConfigError, WhatsAppInput
from tests.production_env import KEY_HEX, PRODUCTION


def broken() -> dict[str, str]:
    values = dict(PRODUCTION)
    del values["ENCRYPTION_KEY"]
    values["USER_ID_SALT"] = "changeme"
    values["WHATSAPP_APP_SECRET"] = "your-app-secret"
    return values


def test_the_channel_refuses_to_start_in_production_naming_every_problem(environment: Any) -> None:
    environment(broken())
    with pytest.raises(WhatsAppConfigError) as refused:
        class_from_module_path("connectors.whatsapp.WhatsAppInput").from_credentials(None)  # as `rasa run` does
    message = str(refused.value)
    assert message.startswith("refusing to start in production")
    for named in ("ENCRYPTION_KEY is missing", "USER_ID_SALT is a default value",
                  "WHATSAPP_APP_SECRET is a placeholder value"):
        assert named in message
    assert "WHATSAPP_API_TOKEN" not in message and "changeme" not in message and "your-app-secret" not in message


def test_the_channel_checks_the_secrets_it_will_actually_use(environment: Any) -> None:
    values = dict(PRODUCTION)
    del values["WHATSAPP_APP_SECRET"]
    environment(values)
    channel = WhatsAppInput.from_credentials({"app_secret": "f0e1d2c3b4a5968778695a4b3c2d1e0f"})
    assert channel.config.app_secret.startswith("f0e1")
    with pytest.raises(WhatsAppConfigError, match="WHATSAPP_VERIFY_TOKEN is a placeholder value"):
        WhatsAppInput.from_credentials({"app_secret": "f0e1d2c3b4a5968778695a4b3c2d1e0f", "verify_token": "token"})


@pytest.mark.parametrize(("change", "named"), [
    ({"ENCRYPTION_KEY": "00" * 32}, "ENCRYPTION_KEY is a single repeated byte"),
    ({"ENCRYPTION_KEY": "not-hex"}, "ENCRYPTION_KEY must be 64 hexadecimal characters"),
    ({"USER_ID_SALT": "short"}, "USER_ID_SALT is shorter than 16 characters"),
    ({"WHATSAPP_API_TOKEN": ""}, "WHATSAPP_API_TOKEN is missing"),
])
def test_each_weak_secret_is_named(environment: Any, change: dict[str, str], named: str) -> None:
    environment({**PRODUCTION, **change})
    with pytest.raises(WhatsAppConfigError, match=named):
        WhatsAppInput.from_credentials(None)
    with pytest.raises(ConfigError, match=named):
        service_from_env()


def test_production_with_real_secrets_starts_and_development_is_lenient(environment: Any) -> None:
    environment(PRODUCTION)
    assert WhatsAppInput.from_credentials(None).config.user_id_salt == PRODUCTION["USER_ID_SALT"]
    environment({name: value for name, value in PRODUCTION.items() if name.startswith("WHATSAPP")})
    assert WhatsAppInput.from_credentials(None).config.uses_development_salt  # development: a warning only


def test_the_action_server_refuses_to_start_in_production(environment: Any) -> None:
    environment(broken())
    runtime.use_service(None)
    try:
        with pytest.raises(ConfigError) as refused:
            runtime.banking()  # the first action builds the service
    finally:
        runtime.use_service(None)
    assert "ENCRYPTION_KEY is missing" in str(refused.value) and "USER_ID_SALT is a default value" in str(refused.value)


def test_the_banking_service_refuses_production_without_a_database() -> None:
    values = {name: value for name, value in PRODUCTION.items() if name != "MONGODB_URI"}
    with pytest.raises(ConfigError, match="MONGODB_URI is missing"):
        service_from_env(values)


def test_the_banking_service_starts_in_production_with_its_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    database = in_memory_database()
    monkeypatch.setattr(factory, "connect_database", lambda settings: database)
    service = service_from_env(PRODUCTION)
    user = user_key("2348031234567", PRODUCTION["USER_ID_SALT"])
    service.connect_bank(user, "gtbank")
    op = service.prepare_transfer(user, 10_000, "checking", account_number="0123456789", bank="access")
    sealed = database["operations"].find_one({"_id": op.op_id})["params"]["account_number"]
    context = field_context("operations", op.op_id, "params.account_number")
    assert Keyring(bytes.fromhex(KEY_HEX)).decrypt_text(sealed, context) == "0123456789"
    assert service.confirm(user, op.op_id).amount_kobo == 10_000
