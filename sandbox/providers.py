"""A fake bank provider beside the sandbox, so ``make run BANK_PROVIDER=mono`` (or ``plaid``)
shows the whole linking flow on this machine: the link in the chat opens the fake's own
page, its button finishes the link, and the fake's signed webhook reaches the bot's server,
which tells the customer in the chat.

Used only when the provider's own settings are absent (no ``MONO_SECRET_KEY`` /
``PLAID_CLIENT_ID``): with real sandbox keys set, the bot talks to the provider itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sandbox import fake_mono, fake_plaid

FAKE_PROVIDERS = ("mono", "plaid")


@dataclass
class RunningProvider:
    """A fake provider on 127.0.0.1 and the settings that point the bot at it."""

    name: str
    fake: Any
    environment: dict[str, str]

    @property
    def base_url(self) -> str:
        return str(self.fake.base_url)

    def stop(self) -> None:
        self.fake.stop()


def bank_routes(bot_webhook_url: str) -> str:
    """The channel's provider routes beside its WhatsApp webhook: …/webhooks/whatsapp/bank."""
    parts = urlsplit(bot_webhook_url)
    path = parts.path.rstrip("/")
    base = path[: -len("/webhook")] if path.endswith("/webhook") else path
    return urlunsplit((parts.scheme, parts.netloc, f"{base}/bank", "", ""))


def start_fake_provider(name: str, bot_webhook_url: str) -> RunningProvider:
    """Start the fake ``name`` in its own thread; the bot's settings for it come with it."""
    routes = bank_routes(bot_webhook_url)
    done = f"{routes}/done"
    if name == "mono":
        mono = fake_mono.FakeMono().start()
        mono.webhook_url = f"{routes}/mono"  # what Mono's dashboard would name
        return RunningProvider(name, mono, {
            "MONO_SECRET_KEY": fake_mono.SECRET_KEY, "MONO_WEBHOOK_SECRET": fake_mono.WEBHOOK_SECRET,
            "MONO_BASE_URL": mono.base_url, "BANK_LINK_REDIRECT_URL": done,
            "MONO_DIRECTPAY": "on"})  # the demo pays through the fake's DirectPay page (never in production)
    if name == "plaid":
        plaid = fake_plaid.FakePlaid().start()
        return RunningProvider(name, plaid, {
            "PLAID_CLIENT_ID": fake_plaid.CLIENT_ID, "PLAID_SECRET": fake_plaid.SECRET, "PLAID_ENV": "sandbox",
            "PLAID_BASE_URL": plaid.base_url, "PLAID_WEBHOOK_URL": f"{routes}/plaid", "BANK_LINK_REDIRECT_URL": done})
    raise ValueError(f"no fake for the bank provider {name!r}; use one of {', '.join(FAKE_PROVIDERS)}")
