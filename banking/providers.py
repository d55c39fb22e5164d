"""The seam between the banking core and whoever actually holds the money."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from banking.config import Settings
from banking.errors import ConfigError

logger = logging.getLogger(__name__)


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


def provider_setting_problems(environ: Mapping[str, str] = os.environ) -> list[str]:
    """What is wrong with BANK_PROVIDER and the chosen provider's settings (production's rules when
    ENVIRONMENT=production): one phrase each, naming variables, never quoting values."""
    try:
        settings = Settings.from_env(environ)
    except ConfigError as error:
        return [str(error)]
    if settings.bank_provider == "mono":
        from banking.mono import setting_problems

        problems = setting_problems(environ, production=settings.is_production)
        if settings.is_production and settings.mono_directpay:
            problems.append("MONO_DIRECTPAY is on, but DirectPay collects into the operator's own account "
                            "and no payout to the recipient exists")
        return problems
    if settings.bank_provider == "plaid":
        from banking.plaid_provider import setting_problems as plaid_problems

        return plaid_problems(environ, production=settings.is_production)
    return []


def require_provider_settings(environ: Mapping[str, str] = os.environ) -> None:
    """At each process's start-up: production refuses to start on any problem with the bank provider's
    settings; elsewhere they are logged (the provider refuses them again when first used)."""
    problems = provider_setting_problems(environ)
    try:
        settings = Settings.from_env(environ)
    except ConfigError:
        settings = None
    production = settings.is_production if settings is not None else False
    if problems and production:
        raise ConfigError("refusing to start in production: " + "; ".join(problems))
    if problems:
        logger.warning("the bank provider's settings have problems: %s", "; ".join(problems))
    if production and settings is not None and settings.bank_provider == "sandbox":
        logger.warning("!!! BANK_PROVIDER=sandbox in production: customers link the SANDBOX bank (made-up "
                       "accounts and balances, no real bank); set BANK_PROVIDER=mono or plaid !!!")
