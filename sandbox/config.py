"""Sandbox configuration: throwaway secrets for one run, and the guard that keeps the
sandbox out of production.

Secrets are generated with ``secrets.token_hex`` unless ``SANDBOX_*`` variables (or
command-line options) fix them, so ``eval "$(python -m sandbox --print-env)"`` followed
by ``python -m sandbox`` gives the bot and the sandbox the same values. The sandbox
never reads the bot's ``WHATSAPP_*`` variables: a real Meta token in the environment
must not end up inside a fake. Every variable the sandbox reads is read here; of the bot's
own it reads only ``ENVIRONMENT`` (to refuse production) and ``BANK_PROVIDER`` with the
provider's key (to start a fake provider when no real one is configured).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_BOT_WEBHOOK_URL = "http://127.0.0.1:5005/webhooks/whatsapp/webhook"
DEFAULT_API_VERSION = "v25.0"
DEFAULT_DISPLAY_PHONE_NUMBER = "15550100000"

# Variables read by the sandbox itself (``SANDBOX_*``) and the option each one backs.
ENV_VARIABLES = {
    "SANDBOX_HOST": "host",
    "SANDBOX_PORT": "port",
    "SANDBOX_BOT_WEBHOOK_URL": "bot_webhook_url",
    "SANDBOX_PHONE_NUMBER_ID": "phone_number_id",
    "SANDBOX_APP_SECRET": "app_secret",
    "SANDBOX_ACCESS_TOKEN": "access_token",
    "SANDBOX_VERIFY_TOKEN": "verify_token",
}
SECRET_FIELDS = ("app_secret", "access_token", "verify_token")


def wanted_provider(environ: Mapping[str, str]) -> str | None:
    """The provider to fake: BANK_PROVIDER=mono|plaid without that provider's own keys."""
    name = environ.get("BANK_PROVIDER", "").strip().lower()
    if name == "mono" and not environ.get("MONO_SECRET_KEY", "").strip():
        return name
    if name == "plaid" and not environ.get("PLAID_CLIENT_ID", "").strip():
        return name
    return None


class SandboxForbidden(RuntimeError):
    """The environment says this is production (or forbids the sandbox outright)."""


def check_allowed(environ: Mapping[str, str]) -> None:
    """Refuse to run where a fake Meta with throwaway secrets must never stand in."""
    if environ.get("ENVIRONMENT", "").strip().lower() in {"production", "prod"}:
        raise SandboxForbidden(
            "Refusing to start the WhatsApp sandbox: ENVIRONMENT=production. The sandbox fakes "
            "Meta's Cloud API with throwaway secrets and is for local testing only."
        )
    if environ.get("SANDBOX_FORBIDDEN", "").strip().lower() in {"1", "true", "yes"}:
        raise SandboxForbidden("Refusing to start the WhatsApp sandbox: SANDBOX_FORBIDDEN is set on this machine.")


def _random_numeric_id(digits: int = 15) -> str:
    """Meta's object ids (phone number id, WABA id) are long decimal numbers."""
    return str(10 ** (digits - 1) + secrets.randbelow(9 * 10 ** (digits - 1)))


@dataclass(frozen=True)
class SandboxConfig:
    """Everything one sandbox run needs. Secrets are hidden from ``repr``."""

    app_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    verify_token: str = field(repr=False)
    phone_number_id: str
    business_account_id: str
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER
    business_name: str = "Bank Assistant"
    bot_webhook_url: str = DEFAULT_BOT_WEBHOOK_URL
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_version: str = DEFAULT_API_VERSION
    # Seconds between a bot message and its "sent", then "delivered" status webhooks.
    status_delay: float = 0.5
    # Probe the bot's webhook with Meta's GET verification until it answers.
    verify_webhook_on_start: bool = True
    # Which secrets were generated for this run (as opposed to given).
    generated: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("app_secret", "access_token", "verify_token", "phone_number_id", "bot_webhook_url"):
            if not getattr(self, name):
                raise ValueError(f"sandbox setting {name} must not be empty")
        if not self.phone_number_id.isdigit():
            raise ValueError("sandbox phone number id must be digits, like Meta's")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"sandbox port out of range: {self.port}")

    @classmethod
    def generate(cls, **overrides: Any) -> SandboxConfig:
        """A config with fresh throwaway secrets; ``overrides`` fix any field."""
        values: dict[str, Any] = {
            "app_secret": secrets.token_hex(32),
            "access_token": "SANDBOX" + secrets.token_hex(32),
            "verify_token": secrets.token_hex(16),
            "phone_number_id": _random_numeric_id(),
            "business_account_id": _random_numeric_id(),
        }
        given = {key: value for key, value in overrides.items() if value is not None}
        generated = frozenset(name for name in SECRET_FIELDS if name not in given)
        values.update(given)
        values.setdefault("generated", generated)
        return cls(**values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> SandboxConfig:
        """Read ``SANDBOX_*`` variables; options in ``overrides`` win; the rest is generated."""
        values: dict[str, Any] = {}
        for variable, name in ENV_VARIABLES.items():
            raw = environ.get(variable, "").strip()
            if not raw:
                continue
            if name == "port":
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise ValueError(f"{variable} must be a port number, got {raw!r}") from None
            else:
                values[name] = raw
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls.generate(**values)

    def with_port(self, port: int) -> SandboxConfig:
        """The same run on another port (used once a port-0 server knows its real port)."""
        return replace(self, port=port)

    @property
    def public_host(self) -> str:
        """The address the bot should call: a wildcard bind is reached over loopback."""
        return "127.0.0.1" if self.host in {"0.0.0.0", "", "::"} else self.host

    @property
    def base_url(self) -> str:
        return f"http://{self.public_host}:{self.port}"

    @property
    def graph_api_url(self) -> str:
        return f"{self.base_url}/{self.api_version}"

    def bot_environment(self) -> dict[str, str]:
        """The variables the WhatsApp channel reads, pointed at this sandbox."""
        return {
            "WHATSAPP_API_URL": self.graph_api_url,
            "WHATSAPP_PHONE_NUMBER_ID": self.phone_number_id,
            "WHATSAPP_API_TOKEN": self.access_token,
            "WHATSAPP_VERIFY_TOKEN": self.verify_token,
            "WHATSAPP_APP_SECRET": self.app_secret,
        }

    def sandbox_environment(self) -> dict[str, str]:
        """The ``SANDBOX_*`` variables that make a later ``python -m sandbox`` reuse this run's values."""
        return {
            "SANDBOX_HOST": self.host,
            "SANDBOX_PORT": str(self.port),
            "SANDBOX_BOT_WEBHOOK_URL": self.bot_webhook_url,
            "SANDBOX_PHONE_NUMBER_ID": self.phone_number_id,
            "SANDBOX_APP_SECRET": self.app_secret,
            "SANDBOX_ACCESS_TOKEN": self.access_token,
            "SANDBOX_VERIFY_TOKEN": self.verify_token,
        }
