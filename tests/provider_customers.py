"""A customer whose bank is linked through the fake Plaid on 127.0.0.1 (dollar accounts), for
tests that check what such a customer reads: the link made the real way, by the signed
SESSION_FINISHED webhook and the token exchange."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from banking.config import Settings
from banking.plaid_provider import PlaidConfig, PlaidProvider
from banking.provider_webhooks import ProviderWebhooks
from banking.service import BankingService
from checks.action_runner import Clock
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
