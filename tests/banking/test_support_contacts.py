"""Production refuses to start while customers would be sent to placeholder support contacts
(the frozen-account and human-handoff messages give them): where the action server starts and
where it builds the banking service. Development keeps the placeholders."""

from __future__ import annotations

import uuid

import pytest
from rasa_sdk.endpoint import create_app
from rasa_sdk.plugin import plugin_manager
from sanic import Sanic

from banking.config import Settings, require_support_contacts, support_contact_problems
from banking.errors import ConfigError
from banking.factory import service_from_env

REAL = {"SUPPORT_PHONE": "+234 201 888 8888", "SUPPORT_EMAIL": "help@gtbank.com"}
SECRETS = {
    "ENVIRONMENT": "production",
    "ENCRYPTION_KEY": "4be0c7a21f9d83e65a0b7c4d92e18f3a6c5d07b9e2f41a8c3b6d90e7f25a1c48",
    "USER_ID_SALT": "k7Qp2vN9xR4mT8wZ1cF6",
    "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    "WHATSAPP_API_TOKEN": "EAAGm0PBA1bcD2efG3hiJ4klM5",
    "WHATSAPP_VERIFY_TOKEN": "b1f7c0e9a2d84f36",
    "WHATSAPP_APP_SECRET": "e3a91f0c7b5d28e46f1a9c3b7d0e5f82",
    "MONGODB_URI": "mongodb://db.internal:27017",
}


def test_the_placeholders_are_named_and_real_contacts_pass() -> None:
    assert support_contact_problems(Settings()) == [
        "SUPPORT_PHONE is the placeholder number", "SUPPORT_EMAIL is a placeholder address"]
    assert support_contact_problems(Settings.from_env(REAL)) == []
    assert support_contact_problems(Settings.from_env({**REAL, "SUPPORT_EMAIL": "help@example.com"})) == [
        "SUPPORT_EMAIL is a placeholder address"]


def test_production_refuses_placeholders_and_development_keeps_them() -> None:
    with pytest.raises(ConfigError, match="refusing to start in production: SUPPORT_PHONE") as refused:
        require_support_contacts(Settings.from_env({"ENVIRONMENT": "production"}))
    assert "SUPPORT_EMAIL" in str(refused.value)
    with pytest.raises(ConfigError, match="SUPPORT_EMAIL is a placeholder"):
        require_support_contacts(Settings.from_env({"ENVIRONMENT": "production", **REAL,
                                                    "SUPPORT_EMAIL": "support@example-bank.ng"}))
    require_support_contacts(Settings.from_env({"ENVIRONMENT": "production", **REAL}))
    require_support_contacts(Settings.from_env({}))  # development: the placeholders are fine


def test_the_banking_service_refuses_placeholder_contacts_in_production() -> None:
    with pytest.raises(ConfigError, match="SUPPORT_PHONE is the placeholder number"):
        service_from_env(SECRETS)


def test_the_action_server_refuses_to_start_with_placeholder_contacts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"ENVIRONMENT": "production", "BANK_PROVIDER": "sandbox",
                        "ACTION_SERVER_TOKEN": uuid.uuid4().hex + uuid.uuid4().hex,
                        "ACTION_SERVER_HOST": "127.0.0.1"}.items():
        monkeypatch.setenv(name, value)
    for name in REAL:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(Sanic, "test_mode", True)
    with pytest.raises(ConfigError, match="SUPPORT_PHONE is the placeholder number"):
        plugin_manager().hook.attach_sanic_app_extensions(app=create_app("actions"))
    for name, value in REAL.items():
        monkeypatch.setenv(name, value)
    plugin_manager().hook.attach_sanic_app_extensions(app=create_app("actions"))
