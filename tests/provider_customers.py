"""Customers whose bank is linked through a fake provider on 127.0.0.1, the link made the real
way: through the fake Plaid (dollar accounts) by the signed SESSION_FINISHED webhook and the
token exchange; through the fake Mono by its connected webhook. No Rasa here: the banking tests
use these too."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from banking.config import Settings
from banking.mono import MonoClient, MonoConfig, MonoProvider
from banking.plaid_provider import PlaidConfig, PlaidProvider
from banking.provider_webhooks import ProviderWebhooks
from banking.service import BankingService
from checks.action_runner import SENDER
from checks.clock import Clock
from sandbox.fake_mono import SECRET_KEY, WEBHOOK_SECRET, FakeMono, MonoAccount
from sandbox.fake_plaid import CLIENT_ID, SECRET, FakePlaid


@contextlib.contextmanager
def plaid_customer(db: Any, user: str, sender: str, salt: str = "test-salt") -> Iterator[BankingService]:
    """A Plaid-backed service with ``user`` linked (checking $1,204.10, 25 dollar transactions)."""
    plaid = FakePlaid().start()
    try:
        config = PlaidConfig.from_env({"PLAID_CLIENT_ID": CLIENT_ID, "PLAID_SECRET": SECRET, "PLAID_ENV": "sandbox",
                                       "PLAID_BASE_URL": plaid.base_url,
                                       "PLAID_WEBHOOK_URL": "https://bank.example/webhooks/whatsapp/bank/plaid"})
        service = BankingService(db, PlaidProvider(config), Settings(user_id_salt=salt, bank_provider="plaid"),
                                 clock=Clock(datetime.now(timezone.utc)))
        service.start_bank_link(user, sender, None)
        token = list(plaid.link_tokens)[-1]
        plaid.finish(token)
        body, signature = plaid.signed(plaid.session_finished(token))
        assert ProviderWebhooks(service).handle("plaid", body, {"plaid-verification": signature}).status == 200
        assert service.complete_bank_link(user).kind == "connected"
        yield service
    finally:
        plaid.stop()


MONO_ACCOUNT = "65aa7935564a694c67123456"


@contextlib.contextmanager
def fake_mono(*accounts: MonoAccount, **options: Any) -> Iterator[FakeMono]:
    """The fake Mono serving ``accounts``; ``options`` (page_size) for FakeMono."""
    fake = FakeMono(**options).start()
    try:
        for account in accounts:
            fake.add_account(account)
        yield fake
    finally:
        fake.stop()


def mono_config(mono: FakeMono) -> MonoConfig:
    return MonoConfig(secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET,
                      redirect_url="https://bank.example/webhooks/whatsapp/bank/done", base_url=mono.base_url)


@contextlib.contextmanager
def mono_services(db: Any, clock: Clock, mono: FakeMono, salt: str,
                  directpay: bool = True) -> Iterator[Callable[..., BankingService]]:
    """Builds banking services on the fake Mono, each with its own Mono client (keyword options:
    timeout, retries); every client is closed at the end."""
    clients: list[MonoClient] = []

    def build(**client: Any) -> BankingService:
        config = mono_config(mono)
        clients.append(MonoClient(config, **client))
        return BankingService(db, MonoProvider(config, clients[-1]),
                              Settings(user_id_salt=salt, bank_provider="mono", mono_directpay=directpay),
                              clock=clock)

    try:
        yield build
    finally:
        for made in clients:
            made.close()


def mono_webhook(hooks: ProviderWebhooks, payload: dict[str, Any], secret: str | None = WEBHOOK_SECRET) -> Any:
    """Mono's POST of ``payload``, with its secret header unless ``secret`` is None."""
    headers = {} if secret is None else {"mono-webhook-secret": secret}
    return hooks.handle("mono", json.dumps(payload).encode(), headers)


def connect_at_mono(service: BankingService, mono: FakeMono, user: str, account: str) -> str:
    """``user`` opens Mono's page for GTBank and Mono reports ``account`` connected; the link's reference."""
    service.start_bank_link(user, SENDER, "GTBank")
    reference = next(iter(mono.sessions))
    assert mono_webhook(ProviderWebhooks(service), mono.connected_webhook(reference, account)).delivery is not None
    return reference


def link_at_mono(service: BankingService, mono: FakeMono, user: str, account: str) -> BankingService:
    """``service`` with ``user``'s GTBank linked through Mono (``account``), the link completed."""
    connect_at_mono(service, mono, user, account)
    assert service.complete_bank_link(user).kind == "connected"
    return service
