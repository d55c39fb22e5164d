"""Production refuses unsafe Mono and Plaid settings, at start-up in both processes, and /health says so:
our Mono secret key never goes to another host, test keys and weak webhook secrets never run live,
customers' link pages and Plaid's webhook are https. Elsewhere only missing settings matter."""

from __future__ import annotations

import logging
import uuid

import pytest
from rasa_sdk.endpoint import create_app
from rasa_sdk.plugin import plugin_manager
from sanic import Sanic

from banking.errors import ConfigError
from banking.mono import MonoConfig
from banking.plaid_provider import PlaidConfig
from banking.providers import provider_setting_problems, require_provider_settings

MONO = {"ENVIRONMENT": "production", "BANK_PROVIDER": "mono", "MONO_SECRET_KEY": "live_sk_" + "a1" * 12,
        "MONO_WEBHOOK_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
        "BANK_LINK_REDIRECT_URL": "https://bank.example/webhooks/whatsapp/bank/done"}
PLAID = {"ENVIRONMENT": "production", "BANK_PROVIDER": "plaid", "PLAID_CLIENT_ID": "5f" * 12,
         "PLAID_SECRET": "3c1e" * 7 + "ab", "PLAID_ENV": "production",
         "PLAID_WEBHOOK_URL": "https://bank.example/webhooks/whatsapp/bank/plaid",
         "BANK_LINK_REDIRECT_URL": "https://bank.example/webhooks/whatsapp/bank/done"}


def test_safe_production_settings_start() -> None:
    assert provider_setting_problems(MONO) == [] and provider_setting_problems(PLAID) == []
    assert MonoConfig.from_env(MONO, production=True).base_url == "https://api.withmono.com"
    assert PlaidConfig.from_env(PLAID, production=True).env == "production"


@pytest.mark.parametrize(("change", "named"), [
    ({"MONO_BASE_URL": "https://attacker.example"}, "MONO_BASE_URL"),
    ({"MONO_BASE_URL": "http://api.withmono.com"}, "MONO_BASE_URL"),
    ({"MONO_BASE_URL": "https://api.withmono.com.attacker.example"}, "MONO_BASE_URL"),
    ({"MONO_BASE_URL": "https://user:pw@api.withmono.com"}, "MONO_BASE_URL"),
    ({"MONO_WEBHOOK_SECRET": "changeme"}, "MONO_WEBHOOK_SECRET"),
    ({"MONO_WEBHOOK_SECRET": "0123456789abcdef"}, "MONO_WEBHOOK_SECRET"),
    ({"MONO_SECRET_KEY": "test_sk_" + "a1" * 12}, "MONO_SECRET_KEY"),
    ({"MONO_SECRET_KEY": "TEST_SK_" + "a1" * 12}, "MONO_SECRET_KEY"),
    ({"MONO_SECRET_KEY": "sk_test_" + "a1" * 12}, "MONO_SECRET_KEY"),
    ({"BANK_LINK_REDIRECT_URL": "http://bank.example/done"}, "BANK_LINK_REDIRECT_URL"),
])
def test_production_refuses_unsafe_mono_settings(change: dict[str, str], named: str) -> None:
    environ = {**MONO, **change}
    with pytest.raises(ConfigError, match="refusing to start in production") as refused:
        MonoConfig.from_env(environ, production=True)
    assert named in str(refused.value) and change[named] not in str(refused.value)
    with pytest.raises(ConfigError, match=named):
        require_provider_settings(environ)
    require_provider_settings({**environ, "ENVIRONMENT": "development"})  # development: a warning only


@pytest.mark.parametrize(("change", "named"), [
    ({"PLAID_SECRET": "short-secret"}, "PLAID_SECRET"),
    ({"PLAID_SECRET": "changeme"}, "PLAID_SECRET"),
    ({"PLAID_WEBHOOK_URL": "http://bank.example/webhooks/whatsapp/bank/plaid"}, "PLAID_WEBHOOK_URL"),
    ({"BANK_LINK_REDIRECT_URL": "http://bank.example/done"}, "BANK_LINK_REDIRECT_URL"),
    ({"PLAID_BASE_URL": "https://attacker.example"}, "PLAID_BASE_URL"),
    ({"PLAID_ENV": "sandbox"}, "PLAID_ENV"),
])
def test_production_refuses_unsafe_plaid_settings(change: dict[str, str], named: str) -> None:
    environ = {**PLAID, **change}
    with pytest.raises(ConfigError, match=named) as refused:
        require_provider_settings(environ)
    assert change[named] not in str(refused.value)
    with pytest.raises(ConfigError, match="refusing to start in production"):
        PlaidConfig.from_env(environ, production=True)


def test_the_action_server_refuses_to_start_with_unsafe_provider_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**MONO, "MONO_BASE_URL": "https://attacker.example",
                        "ACTION_SERVER_TOKEN": uuid.uuid4().hex + uuid.uuid4().hex,
                        "ACTION_SERVER_HOST": "127.0.0.1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(Sanic, "test_mode", True)
    with pytest.raises(ConfigError, match="MONO_BASE_URL"):
        plugin_manager().hook.attach_sanic_app_extensions(app=create_app("actions"))


def test_the_sandbox_bank_in_production_is_allowed_but_loudly_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="banking.providers"):
        require_provider_settings({"ENVIRONMENT": "production", "BANK_PROVIDER": "sandbox"})
    assert any("BANK_PROVIDER=sandbox in production" in record.getMessage() for record in caplog.records)
