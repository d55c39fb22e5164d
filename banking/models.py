"""Immutable values the banking service hands to the assistant.

All money is integer kobo; all datetimes are timezone-aware.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Any

from banking.money import mask_account_number
from banking.periods import Period

ACCOUNT_ORDER = ("checking", "savings")


@dataclass(frozen=True)
class Account:
    """One of the customer's own accounts.

    ``key`` names it within the link, and is what forms, operations and the ledger carry: an
    account alone of its type is keyed by the type (the sandbox's "checking" and "savings");
    two or more of a type at one bank are "savings_1", "savings_2", ... Empty means the type.
    """

    type: str  # "checking" | "savings"
    name: str
    number: str  # masked, "******6789": the full number is not kept
    balance_kobo: int  # minor units of ``currency`` (kobo, cents, pence)
    currency: str = "NGN"
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.type)

    @property
    def masked_number(self) -> str:
        """What may be shown or logged: "******6789"."""
        return mask_account_number(self.number)

    @property
    def label(self) -> str:
        """How confirmations and receipts name it: the sandbox's "Checking"; a real bank's account by
        its own name and last digits ("Plaid Checking (******0000)"), since two can share a name."""
        if self.name.lower() == self.type and self.key == self.type:
            return self.name
        return f"{self.name} ({self.masked_number})"


@dataclass(frozen=True)
class Profile:
    """A customer's link to their bank, with the controls that belong to the customer and outlive it.

    Freeze, daily limit and today's spending stay when the bank is unlinked and apply to the
    next link. An unfreeze or a higher limit waits out the cooling-off period: until then
    ``unfreezes_at`` / ``scheduled_limit_kobo`` and ``limit_changes_at`` say what is coming.
    """

    user: str
    bank: str
    bank_code: str
    connected_at: datetime
    frozen: bool
    frozen_at: datetime | None
    daily_limit_kobo: int
    accounts: tuple[Account, ...]
    unfreezes_at: datetime | None = None
    scheduled_limit_kobo: int | None = None
    limit_changes_at: datetime | None = None

    def account(self, key: str) -> Account:
        """The account with that key ("checking", "checking_2"); KeyError if the customer has none."""
        for account in self.accounts:
            if account.key == key:
                return account
        raise KeyError(key)

    def of_type(self, account_type: str) -> list[Account]:
        """The customer's accounts of one type, in the link's order."""
        return [account for account in self.accounts if account.type == account_type]


@dataclass(frozen=True)
class Transaction:
    """A posted debit or credit, seeded history or a movement the assistant executed."""

    reference: str
    posted_at: datetime
    amount_kobo: int  # always > 0; see direction
    direction: str  # "debit" | "credit"
    category: str
    merchant: str  # merchant, person or own account on the other side
    narration: str
    account: str  # "checking" | "savings"
    currency: str = "NGN"  # ISO 4217 of ``amount_kobo`` (minor units: kobo, cents, pence)

    @property
    def counterparty(self) -> str:
        return self.merchant


@dataclass(frozen=True)
class TransactionPage:
    """The newest matching transactions plus totals over every match."""

    items: tuple[Transaction, ...]
    total_count: int
    total_kobo: int  # sum of amounts over all matches in ``currency``, not just this page
    period_label: str
    period: Period
    currency: str = "NGN"  # the link's currency: what ``total_kobo`` counts


@dataclass(frozen=True)
class SpendingSummary:
    """Where the money went in a period, biggest category first."""

    period_label: str
    period: Period
    by_category: tuple[tuple[str, int], ...]  # (category, debit kobo), largest first
    total_debit_kobo: int
    total_credit_kobo: int  # money in, excluding moves between the customer's own accounts
    top_merchants: tuple[tuple[str, int], ...]  # (merchant, debit kobo), at most five, largest first
    currency: str = "NGN"  # every figure above is in the link's currency; others are not added in


@dataclass(frozen=True)
class LimitStatus:
    """Today's daily limit and what is left of it; a confirmed raise waiting out its cooling-off
    shows as ``scheduled_limit_kobo`` from ``limit_changes_at``. Amounts are minor units of
    ``currency``, the link's, as the money it limits."""

    limit_kobo: int
    spent_today_kobo: int
    remaining_kobo: int
    scheduled_limit_kobo: int | None = None
    limit_changes_at: datetime | None = None
    currency: str = "NGN"


@dataclass(frozen=True)
class PendingOperation:
    """What the customer is asked to confirm, and until when."""

    op_id: str
    kind: str  # transfer | bill | airtime | freeze | unfreeze | disconnect | set_limit
    amount_kobo: int  # the new limit for set_limit; 0 when no money moves
    source: str | None  # key of the own account money leaves from, None when no money moves
    destination_label: str
    holder_name: str | None
    expires_at: datetime
    # An unfreeze or a limit raise takes effect this long after the YES (the cooling-off); None: at once.
    cooling_off: timedelta | None = None
    source_label: str = ""  # the source account as the customer reads it (Account.label)


@dataclass(frozen=True)
class Receipt:
    """Proof that a confirmed operation ran."""

    op_id: str
    reference: str
    kind: str
    amount_kobo: int
    source: str | None
    destination_label: str
    new_balance_kobo: int | None  # of the source account; None when unknown or no money moved
    executed_at: datetime
    effective_at: datetime | None = None  # when a scheduled unfreeze or raise takes effect; None: already did
    source_label: str = ""  # the source account as the customer reads it (Account.label)

    def to_document(self) -> dict[str, Any]:
        """JSON-ready (datetimes as ISO text), so the receipt can be sealed as one value."""
        return {field.name: _iso(getattr(self, field.name)) for field in fields(self)}

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Receipt:
        values: dict[str, Any] = {field.name: document.get(field.name) for field in fields(cls)}
        for name in ("executed_at", "effective_at"):
            values[name] = _moment(values[name])
        values["source_label"] = values["source_label"] or ""  # receipts kept before accounts had labels
        return cls(**values)


@dataclass(frozen=True)
class Settled:
    """How an operation left "executing" by a worker that never finished was settled."""

    op_id: str
    kind: str
    amount_kobo: int
    destination_label: str
    outcome: str  # "executed" (it had taken effect) | "expired" (it had not, and never will)
    reference: str | None  # the receipt's reference when executed


@dataclass(frozen=True)
class ProviderPayment:
    """A confirmed money movement handed to the provider (Mono DirectPay), and what became of it.

    ``status``: "at_provider" (the customer approves it on ``url``; nothing is done until the
    provider confirms), "executed" (the provider confirmed it: ``receipt``) or "failed" (the
    provider says it was not paid: ``reason`` is its word, e.g. failed, abandoned, cancelled).
    ``changed``: this call settled it, so the customer has not been told yet.
    ``paid_after``: set when the provider confirmed it paid after we had told the customer otherwise
    or stopped things: "not_paid" (recorded as failed before), "freeze" or "disconnect".
    """

    op_id: str
    kind: str
    amount_kobo: int
    source: str | None
    destination_label: str
    status: str
    url: str | None = None
    reason: str | None = None
    receipt: Receipt | None = None
    changed: bool = False
    paid_after: str | None = None
    source_label: str = ""  # the source account as the customer reads it (Account.label)


@dataclass(frozen=True)
class ScheduledChange:
    """A confirmed unfreeze or limit raise waiting out the cooling-off; the customer may cancel it."""

    kind: str  # "unfreeze" | "raise_limit"
    effective_at: datetime
    new_limit_kobo: int | None  # the raised limit; None for an unfreeze


@dataclass(frozen=True)
class Consent:
    """What a customer agreed to share with a bank link, when, and when they took it back."""

    bank: str
    provider: str
    scopes: tuple[str, ...]
    granted_at: datetime
    revoked_at: datetime | None


def as_utc(moment: datetime) -> datetime:
    """Stored datetimes come back naive or with the driver's own UTC tzinfo; give them plain UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _iso(value: Any) -> Any:
    return as_utc(value).isoformat() if isinstance(value, datetime) else value


def _moment(value: Any) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return as_utc(value) if isinstance(value, datetime) else None


@dataclass(frozen=True)
class BankLinkInvitation:
    """The provider's page the customer opens from the chat to link (or log in to) their bank."""

    url: str | None  # None when a bank is already linked
    expires_at: datetime | None
    provider: str
    already_connected: bool = False


@dataclass(frozen=True)
class BankLinkOutcome:
    """What finishing a provider's link did: "connected", "reauthorised" or "nothing" (already done)."""

    kind: str
    profile: Profile | None
    data_ready: bool  # False: the provider is still fetching the history
