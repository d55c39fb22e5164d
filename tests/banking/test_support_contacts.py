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
from tests.production_env import SECRETS, SUPPORT_CONTACTS


def test_the_placeholders_are_named_and_real_contacts_pass() -> None:
    assert support_contact_problems(Settings()) == [
        "SUPPORT_PHONE is the placeholder number", "SUPPORT_EMAIL is a placeholder address"]
    assert support_contact_problems(Settings.from_env(SUPPORT_CONTACTS)) == []
    assert support_contact_problems(Settings.from_env({**SUPPORT_CONTACTS, "SUPPORT_EMAIL": "help@example.com"})) == [
        "SUPPORT_EMAIL is a placeholder address"]


def test_production_refuses_placeholders_and_development_keeps_them() -> None:
    with pytest.raises(ConfigError, match="refusing to start in production: SUPPORT_PHONE") as refused:
        require_support_contacts(Settings.from_env({"ENVIRONMENT": "production"}))
    assert "SUPPORT_EMAIL" in str(refused.value)
    with pytest.raises(ConfigError, match="SUPPORT_EMAIL is a placeholder"):
        require_support_contacts(Settings.from_env({"ENVIRONMENT": "production", **SUPPORT_CONTACTS,
                                                    "SUPPORT_EMAIL": "support@example-bank.ng"}))
    require_support_contacts(Settings.from_env({"ENVIRONMENT": "production", **SUPPORT_CONTACTS}))
    require_support_contacts(Settings.from_env({}))  # development: the placeholders are fine


def test_the_banking_service_refuses_placeholder_contacts_in_production() -> None:
    with pytest.raises(ConfigError, match="SUPPORT_PHONE is the placeholder number"):
        service_from_env(SECRETS)


def test_the_action_server_refuses_to_start_with_placeholder_contacts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"ENVIRONMENT": "production", "BANK_PROVIDER": "sandbox",
                        "ACTION_SERVER_TOKEN": uuid.uuid4().hex + uuid.uuid4().hex,
                        "ACTION_SERVER_HOST": "127.0.0.1"}.items():
        monkeypatch.setenv(name, value)
    for name in SUPPORT_CONTACTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(Sanic, "test_mode", True)
    with pytest.raises(ConfigError, match="SUPPORT_PHONE is the placeholder number"):
        plugin_manager().hook.attach_sanic_app_extensions(app=create_app("actions"))
    for name, value in SUPPORT_CONTACTS.items():
        monkeypatch.setenv(name, value)
    plugin_manager().hook.attach_sanic_app_extensions(app=create_app("actions"))
