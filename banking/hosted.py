"""What a bank provider with a hosted linking page (Mono, Plaid) gives the banking core.

The sandbox links at once (``banking.providers.BankProvider.connect``). Mono and Plaid
link on their own page: the customer opens a link from the chat, the provider calls our
webhook, and only then are there accounts. These types are that conversation's words;
money stays in integer minor units (kobo, cents, pence) with its ISO currency beside it.

    ProviderError(ProviderUnavailable)   the provider refused or failed; ``.reason`` says how
        reason: "unavailable"            timeout, connection refused, 5xx
                "rate_limited"           429 (``.retry_after`` seconds when given)
                "login_required"         the customer must log in at their bank again
                "refused"                4xx: our request or the link is not acceptable
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from banking.errors import ProviderUnavailable

REASONS = ("unavailable", "rate_limited", "login_required", "refused")


class ProviderError(ProviderUnavailable):
    """A provider call failed; nothing was changed on our side. Messages carry codes, never data."""

    def __init__(self, message: str = "", *, reason: str = "unavailable", provider_code: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message or "the bank is not answering; try again shortly")
        if reason not in REASONS:
            raise ValueError(f"unknown provider error reason {reason!r}")
        self.reason = reason
        self.provider_code = provider_code
        self.retry_after = retry_after


@dataclass(frozen=True)
class LinkPage:
    """The provider's page for the customer, and the provider's own handle for the session."""

    url: str
    handle: str | None = None  # Plaid's link_token: its webhooks name the session by it


@dataclass(frozen=True)
class LinkedAccount:
    """One account as a provider reports it; ``provider_id`` is sealed at rest."""

    provider_id: str
    type: str  # "checking" | "savings"
    name: str
    mask: str  # last four digits at most
    balance_minor: int
    currency: str  # ISO 4217: NGN, USD, EUR, GBP


@dataclass(frozen=True)
class LinkResult:
    """A finished link: the credential we keep (sealed), the accounts, and whether data is ready."""

    token: str
    accounts: tuple[LinkedAccount, ...]
    data_ready: bool  # False: the provider is still fetching history ("still syncing")
    item_id: str | None = None  # the provider's id for the link, when its webhooks name it


@dataclass(frozen=True)
class ProviderTransaction:
    """A posted transaction, in the provider's currency; ``category`` already on our vocabulary."""

    provider_id: str
    account_id: str
    posted_at: datetime
    amount_minor: int  # > 0
    direction: str  # "debit" | "credit"
    category: str
    merchant: str
    narration: str
    currency: str


@runtime_checkable
class HostedLinkProvider(Protocol):
    """A provider whose customers link on its hosted page and whose news comes by webhook."""

    name: str
    moves_money: bool  # False: read-only (Plaid); True: payments through the provider (Mono DirectPay)

    def start_link(self, reference: str, user: str, bank: str | None) -> LinkPage:
        """Open the hosted page for a new link named by our opaque ``reference``."""

    def start_reauth(self, reference: str, token: str, user: str) -> LinkPage:
        """Open the page where the customer logs in again to an existing link."""

    def finish_link(self, credential: str) -> LinkResult:
        """Turn what the webhook brought (account id, public token) into a link."""

    def accounts(self, token: str) -> tuple[LinkedAccount, ...]:
        """Fresh balances of the linked accounts."""

    def transactions(self, token: str, since: datetime) -> list[ProviderTransaction]:
        """Posted transactions since ``since``, every page."""

    def revoke(self, token: str) -> None:
        """Unlink at the provider; the credential stops working."""
