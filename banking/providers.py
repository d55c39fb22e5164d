"""The seam between the banking core and whoever actually holds the money."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from banking.config import Settings
from banking.errors import ConfigError


@dataclass(frozen=True)
class AccountSeed:
    """An account as the provider reports it when a customer links their bank."""

    type: str  # "checking" | "savings"
    name: str
    number: str
    balance_kobo: int


class BankProvider(Protocol):
    """What the service needs from a bank integration (sandbox today; Mono or Plaid later)."""

    name: str

    def connect(self, user: str, bank: str) -> list[AccountSeed]:
        """Open the link and report the customer's accounts."""

    def access_token(self, user: str, bank: str) -> str:
        """The provider's credential for this link (stored encrypted, deleted on disconnect)."""

    def seed_transactions(self, user: str, bank: str, now: datetime) -> list[dict[str, Any]]:
        """Past transactions to import at link time, as `transactions` documents ending at ``now``."""

    def name_enquiry(self, account_number: str, bank: str) -> str:
        """The holder's name for a NUBAN at a bank (NIP name enquiry)."""

    def validate_biller_ref(self, biller: str, ref: str) -> str:
        """The customer name registered on a meter, smartcard or biller account."""


def get_provider(settings: Settings, environ: Mapping[str, str] = os.environ) -> Any:
    """The provider named by BANK_PROVIDER: the sandbox (links at once), or Mono or Plaid (hosted pages,
    banking.hosted.HostedLinkProvider), whose settings are read here and refused when missing."""
    if settings.bank_provider == "sandbox":
        from banking.sandbox import SandboxProvider

        return SandboxProvider()
    if settings.bank_provider == "mono":
        from banking.mono import MonoConfig, MonoProvider

        return MonoProvider(MonoConfig.from_env(environ, production=settings.is_production))
    if settings.bank_provider == "plaid":
        from banking.plaid_provider import PlaidConfig, PlaidProvider

        return PlaidProvider(PlaidConfig.from_env(environ, production=settings.is_production))
    raise ConfigError(f"BANK_PROVIDER={settings.bank_provider} is not available")
