"""The banking core's facade: linking, balances and history, and operations the customer confirms.

The assistant's actions call ``BankingService`` and nothing else. It checks what the
customer asked for (``prepare_*``: refusals in the order a customer should hear
them), reads balances and history, and hands the rest to:

    banking.customers       the customer document: the controls that outlive any bank link
                            (freeze, daily limit, today's spending, scheduled unfreeze or raise
                            with its cooling-off) and the link (accounts, ledger); the ONE
                            conditional update in which money moves
    banking.confirmations   the confirmation state machine (hold, confirm, cancel, expiry,
                            supersede, settling lapsed claims): at most once, never after expiry;
                            with Mono, money movements paid on Mono's page (DirectPay) and settled
                            by Mono's verified word
    banking.sealing         which stored fields are sealed, and how

Nothing in the database gives away an account or phone number or whom money went
to: the customer's own account numbers are kept masked ("******6789"; the full
number is the bank's to know), and destinations, names, narrations and handoff
reasons are sealed with ``banking.crypto`` (see banking.sealing for the list).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn, ParamSpec, TypeVar

from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from banking import audit
from banking.catalog import (
    BANKS,
    SPENDING_CATEGORIES,
    canonical_account_type,
    canonical_bank,
    canonical_biller,
    canonical_category,
    canonical_network,
)
from banking.config import Settings
from banking.confirmations import CANCEL_REASONS, EXECUTION_LEASE, Confirmations, ProviderPayments
from banking.crypto import CryptoError, Keyring, field_context
from banking.customers import (
    MONEY_KINDS,
    Customers,
    limit_status,
    link_currency,
    mask_reference,
    new_link,
    profile_from_doc,
)
from banking.customers import reference as receipt_reference
from banking.errors import (
    AccountFrozen,
    BankingError,
    BillsUnavailable,
    ChangeAlreadyScheduled,
    InsufficientFunds,
    InvalidAmount,
    InvalidDetails,
    LimitExceeded,
    LinkPending,
    NotConnected,
    NotFrozen,
    ProviderUnavailable,
    ReadOnlyLink,
    StorageError,
    UnknownAccount,
)
from banking.hosted import HostedLinkProvider, LinkedAccount, ProviderTransaction
from banking.identity import keyed_hash
from banking.linking import BankLinks
from banking.models import (
    Account,
    BankLinkInvitation,
    BankLinkOutcome,
    Consent,
    LimitStatus,
    PendingOperation,
    Profile,
    ProviderPayment,
    Receipt,
    ScheduledChange,
    Settled,
    SpendingSummary,
    Transaction,
    TransactionPage,
    as_utc,
)
from banking.money import MAX_AMOUNT_KOBO, format_money, format_naira, mask_account_number
from banking.periods import Period, parse_period
from banking.phone import mask_phone_number, normalise_phone_number
from banking.providers import BankProvider
from banking.sealing import Sealer

__all__ = ["CANCEL_REASONS", "CATEGORIES", "EXECUTION_LEASE", "MONEY_KINDS", "BankingService", "mask_reference"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# What a customer agrees to share when linking a bank (recorded per link in `consents`).
CONSENT_SCOPES = ("accounts", "balances", "transactions", "payments")
MAX_DAILY_LIMIT_KOBO = 5_000_000 * 100  # ₦5,000,000
AIRTIME_MIN_KOBO = 50 * 100
AIRTIME_MAX_KOBO = 50_000 * 100
MAX_PAGE = 100
CATEGORIES = tuple(SPENDING_CATEGORIES)  # and what customers call each: banking.catalog
_DIRECTIONS = {
    "debit": "debit", "debits": "debit", "out": "debit", "outgoing": "debit", "sent": "debit",
    "spent": "debit", "spending": "debit", "money out": "debit",
    "credit": "credit", "credits": "credit", "in": "credit", "incoming": "credit",
    "received": "credit", "money in": "credit",
}
# Imported history: who was paid and the narration name people (friends' names appear here).
HISTORY_TEXTS = ("merchant", "narration")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _guard_storage(method: Callable[P, R]) -> Callable[P, R]:
    """Turn driver failures into StorageError so callers handle one failure type."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except PyMongoError as error:
            logger.error("database error in %s: %s", method.__name__, type(error).__name__)
            raise StorageError("bank records are unavailable right now; try again shortly") from error

    return wrapper


class BankingService:
    """Every banking action the assistant can take, for one hashed user key at a time."""

    def __init__(self, db: Any, provider: BankProvider, settings: Settings,
                 clock: Callable[[], datetime] = utc_now, keyring: Keyring | None = None) -> None:
        self._db = db
        self._provider = provider
        self._settings = settings
        self._clock = clock
        self._sealer = Sealer(keyring)  # None: ENCRYPTION_KEY (or a throwaway development key) on first use
        self._customers = Customers(db, self._sealer, settings, self._now, self._audit,
                                    revoke=self._revoke_at_provider if self.links_by_webhook else None)
        self._links = BankLinks(db, self._sealer, self._now)
        # Payments already at the provider are still settled when MONO_DIRECTPAY was turned off since.
        payments = (ProviderPayments(start=self._start_payment, verify=self._verify_payment, find=self._find_payment)
                    if self.links_by_webhook and getattr(provider, "moves_money", False) else None)
        self._confirmations = Confirmations(db, self._customers, self._sealer, settings, self._now, self._audit,
                                            payments=payments)

    @property
    def settings(self) -> Settings:
        """The deployment settings (support contacts, TTL, default limit, cooling-off)."""
        return self._settings

    @property
    def max_daily_limit_kobo(self) -> int:
        """The highest daily limit a customer may set."""
        return MAX_DAILY_LIMIT_KOBO

    # ----------------------------------------------------------------- linking

    @property
    def links_by_webhook(self) -> bool:
        """True when the provider links on its own hosted page and tells us by webhook (Mono, Plaid)."""
        return isinstance(self._provider, HostedLinkProvider)

    @property
    def provider_name(self) -> str:
        return self._provider.name

    @property
    def provider_moves_money(self) -> bool:
        """False for a read-only provider (Plaid)."""
        return not self.links_by_webhook or self.pays_at_provider

    @property
    def pays_at_provider(self) -> bool:
        """True when a confirmed money movement is paid on the provider's page (Mono DirectPay) and is
        done only once the provider confirms it, instead of moving here at once. Off unless MONO_DIRECTPAY
        is on: DirectPay collects into the operator's own account and nothing pays the recipient on yet."""
        return (self.links_by_webhook and bool(getattr(self._provider, "moves_money", False))
                and self._settings.mono_directpay)

    @property
    def provider(self) -> Any:
        """The bank provider (its webhook checks need its settings)."""
        return self._provider

    @property
    def links(self) -> BankLinks:
        """Link references and webhook deliveries (banking.linking)."""
        return self._links

    @_guard_storage
    def start_bank_link(self, user: str, sender: str, bank: str | None) -> BankLinkInvitation:
        """Open the provider's hosted page for this customer; the link is finished by the provider's webhook.

        ``sender`` (the conversation to tell) is stored sealed beside the opaque reference."""
        provider = self._hosted()
        canonical = canonical_bank(_as_text(bank)) if bank else None
        if self._customers.is_connected(user):
            return BankLinkInvitation(url=None, expires_at=None, provider=provider.name, already_connected=True)
        start = self._links.open(user, sender, provider.name, "connect", canonical)
        try:
            page = self._call_provider(lambda: provider.start_link(start.reference, user, canonical))
        except ProviderUnavailable as error:
            self._links.discard(start.key)
            self._audit(user, "connect", "failed", reason=_provider_reason(error))
            raise
        if page.handle:
            self._links.remember_provider_handle(start.key, page.handle)
        self._audit(user, "connect", "link_sent")
        return BankLinkInvitation(url=page.url, expires_at=start.expires_at, provider=provider.name)

    @_guard_storage
    def start_bank_reauth(self, user: str, sender: str) -> BankLinkInvitation:
        """A page where the customer logs in to their bank again (Mono reauth, Plaid update mode)."""
        provider = self._hosted()
        token = self._token(user)
        start = self._links.open(user, sender, provider.name, "reauth", None)
        try:
            page = self._call_provider(lambda: provider.start_reauth(start.reference, token, user))
        except ProviderUnavailable as error:
            self._links.discard(start.key)
            self._audit(user, "reauth", "failed", reason=_provider_reason(error))
            raise
        if page.handle:
            self._links.remember_provider_handle(start.key, page.handle)
        self._audit(user, "reauth", "link_sent")
        return BankLinkInvitation(url=page.url, expires_at=start.expires_at, provider=provider.name)

    @_guard_storage
    def complete_bank_link(self, user: str) -> BankLinkOutcome:
        """Finish the link the provider's webhook authorised: accounts, balances, history; at most once.

        ``outcome.kind``: "connected", "reauthorised", or "nothing" (already done, or no link finished);
        LinkPending while the customer has a page open and has not finished there."""
        provider = self._hosted()
        claimed = self._links.claim_authorised(user)
        if claimed is None:
            if self._links.status_of_latest(user) == "open":
                raise LinkPending("the bank's page has not been finished yet")
            return BankLinkOutcome(kind="nothing", profile=self.find_profile(user), data_ready=True)
        if claimed.purpose == "reauth":
            self._links.complete(claimed.key)
            self._audit(user, "reauth", "executed")
            return BankLinkOutcome(kind="reauthorised", profile=self.find_profile(user), data_ready=True)
        try:
            result = self._call_provider(lambda: provider.finish_link(claimed.credential))
            lookup = result.item_id or result.token
            if self._held_by_another(user, lookup):
                self._refuse_held_link(user, claimed.key)
            now = self._now()
            bank = claimed.bank or "Your bank"
            accounts = self._link_accounts(user, result.accounts)
            if not self._customers.attach_link(user, new_link(bank, BANKS.get(bank, ("",))[0], now, accounts), now):
                self._links.complete(claimed.key)
                return BankLinkOutcome(kind="nothing", profile=self.find_profile(user), data_ready=True)
            try:
                self._record_link(user, bank, result.token, now, lookup=lookup)
            except DuplicateKeyError:
                # Another customer's link to the same account was recorded between the check above and
                # here: the unique index on the account's hash decides, and the link just attached goes.
                self._customers.detach_link(user)
                self._refuse_held_link(user, claimed.key)
            if result.data_ready:
                self._import_provider_history(user, result.token, now)
        except ProviderUnavailable as error:
            self._links.release(claimed.key)
            self._audit(user, "connect", "failed", reason=_provider_reason(error))
            raise
        self._links.complete(claimed.key)
        self._audit(user, "connect", "executed")
        return BankLinkOutcome(kind="connected", profile=self.profile(user), data_ready=result.data_ready)

    @_guard_storage
    def open_link_until(self, user: str) -> datetime | None:
        """Until when the newest link sent to this customer still works; None when none is open."""
        return self._links.open_until(user)

    @_guard_storage
    def sync_bank_data(self, user: str) -> int:
        """Import what the provider has now (its data finished syncing); how many transactions are known."""
        self._hosted()
        token = self._token(user)
        self._import_provider_history(user, token, self._now())
        self._audit(user, "sync", "executed")
        return len(self._db["transactions"].find({"user": user}, {"_id": 1}))

    @_guard_storage
    def user_for_provider_key(self, key: str) -> str | None:
        """Whose link a provider's account or item id names (webhooks name links by it)."""
        found = self._db["connections"].find_one({"lookup": keyed_hash(key, self._settings.user_id_salt)},
                                                 {"_id": 1})
        return None if found is None else str(found["_id"])

    @_guard_storage
    def connect_bank(self, user: str, bank: str) -> Profile:
        """Link a bank; linking again returns the existing link (one bank per customer). A returning
        customer keeps their freeze, limit, today's spending and scheduled changes."""
        canonical = canonical_bank(_as_text(bank))
        if canonical is None:
            raise InvalidDetails("unknown bank")
        existing = self._customers.current(user)
        if existing is not None and "link" in existing:
            return profile_from_doc(existing)
        now = self._now()
        seeds = self._call_provider(lambda: self._provider.connect(user, canonical))
        history = self._call_provider(lambda: self._provider.seed_transactions(user, canonical, now))
        self._insert_history(user, history)
        accounts = {seed.type: {"name": seed.name, "number": mask_account_number(seed.number),
                                "balance_kobo": seed.balance_kobo}
                    for seed in seeds}
        if not self._customers.attach_link(user, new_link(canonical, BANKS[canonical][0], now, accounts), now):
            return self.profile(user)  # a concurrent connect won; same accounts either way
        token = self._call_provider(lambda: self._provider.access_token(user, canonical))
        self._record_link(user, canonical, token, now)
        self._audit(user, "connect", "executed")
        return self.profile(user)

    @_guard_storage
    def consents(self, user: str) -> list[Consent]:
        """Every consent this customer gave, newest first, with when it was revoked."""
        records = self._db["consents"].find({"user": user}, sort=[("granted_at", -1)])
        return [Consent(bank=r["bank"], provider=r["provider"], scopes=tuple(r["scopes"]),
                        granted_at=as_utc(r["granted_at"]),
                        revoked_at=as_utc(r["revoked_at"]) if r.get("revoked_at") else None)
                for r in records]

    @_guard_storage
    def disconnect_bank(self, user: str) -> None:
        """Unlink now (no confirmation): the link, its history and pending operations go; the customer's
        freeze, limit, today's spending and scheduled changes stay."""
        if not self._customers.detach_link(user):
            raise NotConnected("no bank is linked")
        self._audit(user, "disconnect", "executed")
        self._confirmations.close_pending(user, "disconnected")
        self._customers.drop_link_records(user)

    @_guard_storage
    def is_connected(self, user: str) -> bool:
        return self._customers.is_connected(user)

    @_guard_storage
    def profile(self, user: str) -> Profile:
        return profile_from_doc(self._customers.connected(user))

    @_guard_storage
    def find_profile(self, user: str) -> Profile | None:
        """The profile, or None when no bank is linked (no exception for the normal case)."""
        document = self._customers.current(user)
        return None if document is None or "link" not in document else profile_from_doc(document)

    # ----------------------------------------------------------------- look-ups for forms

    def check_can_pay(self, kind: str) -> None:
        """Why a money movement of this kind ("transfer", "bill", "airtime") cannot start from this
        provider's links, before the customer is asked anything: ReadOnlyLink (Plaid reads only),
        BillsUnavailable (Mono pays transfers and airtime, but has no biller look-up)."""
        if not self.provider_moves_money:
            raise ReadOnlyLink(f"{self._provider.name} links are read-only here: money cannot move from this chat")
        if kind == "bill":
            self._biller_directory()

    def name_enquiry(self, account_number: str, bank: str) -> str:
        """The holder's name for an account at another bank, to show before asking for a YES."""
        number, canonical = _external_destination(account_number, bank)
        enquire = getattr(self._provider, "name_enquiry", None)
        if enquire is None:  # Plaid: no name enquiry, and no money moves from its links in the chat
            raise ReadOnlyLink(f"{self._provider.name} links are read-only here: money cannot move from this chat")
        return self._call_provider(lambda: enquire(number, canonical))

    def validate_biller_ref(self, biller: str, customer_ref: str) -> str:
        """The name on a meter/smartcard/biller account; InvalidDetails when the reference is malformed."""
        canonical = canonical_biller(_as_text(biller))
        if canonical is None:
            raise InvalidDetails("unknown biller")
        ref = re.sub(r"[\s-]", "", _as_text(customer_ref))
        return self._call_provider(lambda: self._biller_directory().validate_biller_ref(canonical, ref))

    # ----------------------------------------------------------------- reading

    @_guard_storage
    def balances(self, user: str, account_type: str | None = None) -> list[Account]:
        """All accounts, or the ones asked for: every account of a type ("current" means checking),
        or one by its key."""
        if self.links_by_webhook:
            self._refresh_balances(user)
        profile = self.profile(user)
        if account_type is None:
            return list(profile.accounts)
        return _accounts_named(profile, account_type)

    @_guard_storage
    def search_transactions(self, user: str, period_text: str | None = None, merchant: str | None = None,
                            direction: str | None = None, category: str | None = None,
                            min_kobo: int | None = None, max_kobo: int | None = None,
                            limit: int = 10, account: str | None = None) -> TransactionPage:
        """Newest-first matches in a period, with count and total over all matches; on one account (by its
        key) or the accounts of one type when ``account`` names them."""
        document = self._customers.connected(user)
        period = parse_period(period_text, self._now())
        on = _accounts_named(profile_from_doc(document), account) if account else None
        wanted = _TransactionFilter(
            accounts=frozenset(a.key for a in on) if on is not None else None,
            merchant=_merchant_key(merchant or "") or None,
            direction=_direction(direction),
            category=_category(category),
            min_kobo=_optional_amount(min_kobo),
            max_kobo=_optional_amount(max_kobo),
        )
        if wanted.min_kobo is not None and wanted.max_kobo is not None and wanted.min_kobo > wanted.max_kobo:
            raise InvalidAmount("the minimum is above the maximum")
        matches = [t for t in self._transactions_in(user, document, period) if wanted.matches(t)]
        size = max(1, min(limit, MAX_PAGE))
        currency = link_currency(document)
        return TransactionPage(
            items=tuple(matches[:size]),
            total_count=len(matches),
            total_kobo=sum(t.amount_kobo for t in matches if t.currency == currency),
            period_label=period.label,
            period=period,
            currency=currency,
        )

    @_guard_storage
    def spending_summary(self, user: str, period_text: str | None = None) -> SpendingSummary:
        """Debits by category (largest first), money in and out, and the top merchants."""
        document = self._customers.connected(user)
        period = parse_period(period_text, self._now())
        currency = link_currency(document)
        transactions = [t for t in self._transactions_in(user, document, period) if t.currency == currency]
        debits = [t for t in transactions if t.direction == "debit"]
        credits = [t for t in transactions if t.direction == "credit" and t.category != "savings"]
        return SpendingSummary(
            period_label=period.label,
            period=period,
            by_category=_totals(debits, "category"),
            total_debit_kobo=sum(t.amount_kobo for t in debits),
            total_credit_kobo=sum(t.amount_kobo for t in credits),
            top_merchants=_totals([t for t in debits if t.category != "savings"], "merchant")[:5],
            currency=currency,
        )

    @_guard_storage
    def get_limit(self, user: str) -> LimitStatus:
        """Today's limit and what is left; a raise waiting out its cooling-off is shown with its time."""
        return limit_status(self._customers.connected(user), self._now())

    @_guard_storage
    def receipt(self, user: str, reference: str | None = None) -> Transaction:
        """A transaction by reference; without one, the latest executed movement (else the latest transaction)."""
        document = self._customers.connected(user)
        ledger = [t for t in self._customers.ledger_transactions(document) if t.direction == "debit"]
        if reference is None:
            if ledger:
                return max(ledger, key=lambda t: t.posted_at)
            latest = self._db["transactions"].find({"user": user}, sort=[("posted_at", -1)], limit=1)
            for doc in latest:
                return self._history_line(doc)
            raise UnknownAccount("there are no transactions yet")
        if not isinstance(reference, str):
            raise UnknownAccount("no transaction has that reference")
        wanted = reference.strip().upper()
        for transaction in ledger:
            if transaction.reference == wanted:
                return transaction
        found = self._db["transactions"].find_one({"_id": wanted, "user": user})
        if found is None:
            raise UnknownAccount("no transaction has that reference")
        return self._history_line(found)

    @_guard_storage
    def request_handoff(self, user: str, reason: str) -> str:
        """Open a ticket for a human agent; the reason is stored sealed, long digit runs masked first."""
        ticket = f"HO-{uuid.uuid4().hex[:8].upper()}"
        self._db["handoffs"].insert_one({
            "_id": ticket, "user": user, "at": self._now(), "status": "open",
            "reason": self._sealer.seal("handoffs", ticket, "reason", _redact(reason)),
        })
        self._audit(user, "handoff", "requested")
        return ticket

    # ----------------------------------------------------------------- customer-level controls

    @_guard_storage
    def scheduled_changes(self, user: str) -> list[ScheduledChange]:
        """Unfreeze or limit raise confirmed and waiting out the cooling-off, soonest first."""
        return self._customers.scheduled_changes(user)

    @_guard_storage
    def cancel_scheduled_changes(self, user: str) -> list[ScheduledChange]:
        """Cancel every scheduled unfreeze or raise (nothing changes); what was cancelled, soonest first."""
        return self._customers.cancel_scheduled_changes(user, reason="customer")

    # ----------------------------------------------------------------- preparing

    @_guard_storage
    def prepare_transfer(self, user: str, amount_kobo: int, source: str, *, to_account_type: str | None = None,
                         account_number: str | None = None, bank: str | None = None) -> PendingOperation:
        """Check a transfer between own accounts or to another bank and hold it for confirmation."""
        with self._refusals_audited(user, "transfer", amount_kobo):
            document, profile = self._money_profile(user, amount_kobo)
            src = _account_key(profile, source)
            if to_account_type is not None:
                if account_number or bank:
                    raise InvalidDetails("choose either one of your accounts or another account, not both")
                dst = _account_key(profile, to_account_type)
                if dst == src:
                    raise InvalidAmount("money cannot move from an account to itself")
                _require_funds(profile, src, amount_kobo)
                label = profile.account(dst).label
                return self._hold(document, "transfer", amount_kobo, src, label, None, {"to_account": dst})
            number, canonical = _external_destination(account_number, bank)
            _require_funds(profile, src, amount_kobo)
            _require_within_limit(document, amount_kobo, self._now())
            holder = self._call_provider(lambda: self._provider.name_enquiry(number, canonical))
            label = f"{holder}, {canonical} {mask_account_number(number)}"
            params = {"account_number": number, "bank": canonical, "bank_code": BANKS[canonical][0],
                      "holder_name": holder}
            return self._hold(document, "transfer", amount_kobo, src, label, holder, params)

    @_guard_storage
    def prepare_bill(self, user: str, amount_kobo: int, source: str, biller: str,
                     customer_ref: str) -> PendingOperation:
        """Check a bill payment, look up the name on the meter/smartcard, and hold it."""
        with self._refusals_audited(user, "bill", amount_kobo):
            document, profile = self._money_profile(user, amount_kobo)
            src = _account_key(profile, source)
            canonical = canonical_biller(_as_text(biller))
            if canonical is None:
                raise InvalidDetails("unknown biller")
            _require_funds(profile, src, amount_kobo)
            _require_within_limit(document, amount_kobo, self._now())
            ref = re.sub(r"[\s-]", "", _as_text(customer_ref))
            name = self._call_provider(lambda: self._biller_directory().validate_biller_ref(canonical, ref))
            label = f"{canonical} {mask_reference(ref)} ({name})"
            params = {"biller": canonical, "customer_ref": ref, "customer_name": name}
            return self._hold(document, "bill", amount_kobo, src, label, name, params)

    @_guard_storage
    def prepare_airtime(self, user: str, amount_kobo: int, source: str, network: str,
                        phone_number: str) -> PendingOperation:
        """Check an airtime top-up (₦50 to ₦50,000) for a Nigerian mobile number and hold it."""
        with self._refusals_audited(user, "airtime", amount_kobo):
            document, profile = self._money_profile(user, amount_kobo)
            if not AIRTIME_MIN_KOBO <= amount_kobo <= AIRTIME_MAX_KOBO:
                raise InvalidAmount(f"airtime must be between {format_naira(AIRTIME_MIN_KOBO)} "
                                    f"and {format_naira(AIRTIME_MAX_KOBO)}")
            src = _account_key(profile, source)
            canonical = canonical_network(_as_text(network))
            if canonical is None:
                raise InvalidDetails("unknown network")
            phone = normalise_phone_number(phone_number)
            if phone is None:
                raise InvalidDetails("that is not a Nigerian mobile number")
            _require_funds(profile, src, amount_kobo)
            _require_within_limit(document, amount_kobo, self._now())
            label = f"{canonical} {mask_phone_number(phone)}"
            return self._hold(document, "airtime", amount_kobo, src, label, None,
                              {"network": canonical, "phone": phone})

    @_guard_storage
    def prepare_freeze(self, user: str) -> PendingOperation:
        """Hold a freeze: once confirmed, no money leaves any account until an unfreeze takes effect.
        Already frozen with an unfreeze scheduled, the freeze (confirmed) cancels that unfreeze."""
        with self._refusals_audited(user, "freeze", None):
            document = self._customers.connected(user)
            profile = profile_from_doc(document)
            if profile.frozen and profile.unfreezes_at is None:
                raise AccountFrozen("your accounts are already frozen")
            return self._hold(document, "freeze", 0, None, f"all your {profile.bank} accounts", None, {})

    @_guard_storage
    def prepare_unfreeze(self, user: str) -> PendingOperation:
        """Hold an unfreeze; confirmed, it is scheduled and takes effect after the cooling-off.
        ChangeAlreadyScheduled when one is already waiting (it is never silently replaced)."""
        with self._refusals_audited(user, "unfreeze", None):
            document = self._customers.connected(user)
            profile = profile_from_doc(document)
            if not profile.frozen:
                raise NotFrozen("your accounts are not frozen")
            if profile.unfreezes_at is not None:
                raise ChangeAlreadyScheduled(
                    "an unfreeze is already scheduled; cancel it first to ask again",
                    change=ScheduledChange(kind="unfreeze", effective_at=profile.unfreezes_at, new_limit_kobo=None))
            return self._hold(document, "unfreeze", 0, None, f"all your {profile.bank} accounts", None, {},
                              cooling_off=self._settings.cooling_off)

    @_guard_storage
    def prepare_disconnect(self, user: str) -> PendingOperation:
        with self._refusals_audited(user, "disconnect", None):
            document = self._customers.connected(user)
            return self._hold(document, "disconnect", 0, None, document["link"]["bank"], None, {})

    @_guard_storage
    def prepare_set_limit(self, user: str, new_limit_kobo: int) -> PendingOperation:
        """Hold a new daily limit (above ₦0, at most ₦5,000,000). Lower (or the same) applies on the YES
        and cancels a scheduled raise; higher is scheduled after the cooling-off, and refused
        (ChangeAlreadyScheduled) while another raise is waiting."""
        with self._refusals_audited(user, "set_limit", new_limit_kobo):
            document = self._customers.connected(user)
            if not self.provider_moves_money:  # no money leaves this link here: a limit on it would limit nothing
                raise ReadOnlyLink(f"{self._provider.name} links are read-only here: money cannot move from this chat")
            if not _is_kobo(new_limit_kobo) or not 0 < new_limit_kobo <= MAX_DAILY_LIMIT_KOBO:
                raise InvalidAmount(
                    f"the daily limit must be above ₦0 and at most {format_naira(MAX_DAILY_LIMIT_KOBO)}")
            profile = profile_from_doc(document)
            cooling_off = None
            if new_limit_kobo > profile.daily_limit_kobo:
                if profile.limit_changes_at is not None:
                    raise ChangeAlreadyScheduled(
                        "a higher limit is already scheduled; cancel it first to ask again",
                        change=ScheduledChange(kind="raise_limit", effective_at=profile.limit_changes_at,
                                               new_limit_kobo=profile.scheduled_limit_kobo))
                cooling_off = self._settings.cooling_off
            return self._hold(document, "set_limit", new_limit_kobo, None, "daily transfer limit", None, {},
                              cooling_off=cooling_off)

    # ----------------------------------------------------------------- confirmations (banking.confirmations)

    @_guard_storage
    def latest_pending(self, user: str) -> PendingOperation | None:
        """The newest unexpired pending operation, for a bare "yes" when the op id was lost."""
        return self._confirmations.latest_pending(user)

    @_guard_storage
    def pending_operation(self, user: str, op_id: str) -> PendingOperation | None:
        """The operation if it is this customer's, pending and unexpired; else None."""
        return self._confirmations.pending(user, op_id)

    @_guard_storage
    def operation_status(self, user: str, op_id: str) -> str | None:
        """"pending", "executing", "executed", "expired", "cancelled", "superseded" or "refused"; None for
        an unknown op or another customer's. A pending op past its expiry reads "expired"."""
        return self._confirmations.status(user, op_id)

    @_guard_storage
    def executed_receipt(self, user: str, op_id: str) -> Receipt | None:
        """The receipt of this customer's executed operation; None when it has not executed."""
        return self._confirmations.executed_receipt(user, op_id)

    @_guard_storage
    def confirm(self, user: str, op_id: str) -> Receipt | ProviderPayment:
        """Execute a pending operation at most once and never after it expired, re-checking freeze, funds
        and limit atomically. A scheduled unfreeze or raise comes back with ``effective_at``. With Mono, a
        money movement comes back as a ProviderPayment "at_provider": started once, under the op id as
        Mono's reference, and waiting for the customer's approval on ``url``."""
        return self._confirmations.confirm(user, op_id)

    @_guard_storage
    def settle_payment(self, user: str, op_id: str) -> ProviderPayment | None:
        """Mono's verified word on one payment of this customer (GET verify by reference): "executed" once
        paid, "failed" once Mono says it was not, else still "at_provider". ``changed`` is set on the one
        call that settled it. None when the op is not this customer's payment at the provider."""
        return self._verified(user, lambda: self._confirmations.settle_at_provider(user, op_id))

    @_guard_storage
    def settle_payments(self, user: str) -> list[ProviderPayment]:
        """Every payment of this customer still waiting at the provider, each verified with it now."""
        return self._verified(user, lambda: self._confirmations.settle_all_at_provider(user))

    @_guard_storage
    def waiting_payments(self, user: str) -> list[ProviderPayment]:
        """Payments still waiting for the customer's approval on the provider's page (no provider call):
        a freeze or disconnect cannot stop them, so the customer is told."""
        return self._confirmations.waiting_payments(user)

    def payment_owner(self, reference: str) -> str | None:
        """Whose payment at the provider a webhook's reference names (None: not one of ours)."""
        return self._confirmations.payment_owner(reference)

    @_guard_storage
    def cancel(self, user: str, op_id: str, reason: str = "customer") -> None:
        """Drop a pending operation. ``reason``: "customer" (they said no) or "closed" (the conversation
        moved away from it); recorded on the op and in the audit. Too late once it ran (AlreadyExecuted),
        ConfirmationExpired once expired, else NothingPending."""
        self._confirmations.cancel(user, op_id, reason)

    @_guard_storage
    def settle_lapsed(self, user: str) -> list[Settled]:
        """Settle the customer's operations left executing past their lease (a worker died or lost the
        database): "executed" with its reference when it took effect, "expired" when it did not and has
        expired; nothing moves either way. Unexpired ones that did not run wait for the customer's YES."""
        return self._confirmations.settle_lapsed(user)

    # ----------------------------------------------------------------- internals: preparing

    def _money_profile(self, user: str, amount_kobo: int) -> tuple[dict[str, Any], Profile]:
        """The checks every money operation starts with, in the order customers should hear them."""
        document = self._customers.connected(user)
        profile = profile_from_doc(document)
        if self.links_by_webhook and not self.pays_at_provider:
            raise ReadOnlyLink(f"{self._provider.name} links are read-only here: money cannot move from this chat")
        if profile.frozen:
            raise AccountFrozen("your accounts are frozen; unfreeze them to move money")
        if not _is_kobo(amount_kobo) or not 0 < amount_kobo <= MAX_AMOUNT_KOBO:
            raise InvalidAmount("the amount must be more than ₦0")
        return document, profile

    def _hold(self, document: dict[str, Any], kind: str, amount_kobo: int, source: str | None, label: str,
              holder: str | None, params: dict[str, str], cooling_off: timedelta | None = None) -> PendingOperation:
        """Hold the operation for the link the customer is looking at."""
        source_label = profile_from_doc(document).account(source).label if source is not None else ""
        return self._confirmations.hold(document["_id"], kind, amount_kobo, source, label, holder, params,
                                        link_id=document["link"]["id"], cooling_off=cooling_off,
                                        source_label=source_label)

    @contextmanager
    def _refusals_audited(self, user: str, action: str, amount_kobo: int | None) -> Iterator[None]:
        """Record a refusal at prepare time with its reason code, then let it propagate."""
        try:
            yield
        except BankingError as error:
            amount = amount_kobo if _is_kobo(amount_kobo) else None
            self._audit(user, action, "refused", reason=error.code, amount_kobo=amount)
            raise

    # ----------------------------------------------------------------- internals: plumbing

    def _call_provider(self, call: Callable[[], R]) -> R:
        """Network trouble at the provider becomes ProviderUnavailable; nothing was changed."""
        try:
            return call()
        except OSError as error:
            logger.warning("bank provider %s failed: %s", self._provider.name, type(error).__name__)
            raise ProviderUnavailable("the bank is not answering; try again shortly") from error

    def _audit(self, user: str, action: str, outcome: str, *, op_id: str | None = None,
               reason: str | None = None, amount_kobo: int | None = None) -> None:
        """Append-only, hash-chained record of who did what with which result; codes only, never details."""
        audit.append(self._db, {
            "user": user, "action": action, "outcome": outcome, "op_id": op_id,
            "reason": reason, "amount_kobo": amount_kobo, "at": self._now(),
        })

    @property
    def _keyring(self) -> Keyring:
        return self._sealer.keyring

    def _now(self) -> datetime:
        """The clock in UTC, truncated to milliseconds as MongoDB stores it."""
        now = as_utc(self._clock())
        return now.replace(microsecond=now.microsecond // 1000 * 1000)

    def _record_link(self, user: str, bank: str, token: str, now: datetime, lookup: str | None = None) -> None:
        """The provider token, sealed to this customer, and what the customer agreed to share. ``lookup``
        (the provider's account or item id) is kept as a keyed hash, for webhooks that name only it."""
        sealed = self._keyring.encrypt_text(token, field_context("connections", user, "token"))
        record = {"_id": user, "provider": self._provider.name, "bank": bank, "token": sealed, "created_at": now}
        if lookup:
            record["lookup"] = keyed_hash(lookup, self._settings.user_id_salt)
        self._db["connections"].replace_one({"_id": user}, record, upsert=True)
        self._db["consents"].insert_one({
            "user": user, "bank": bank, "provider": self._provider.name, "scopes": list(CONSENT_SCOPES),
            "granted_at": now, "revoked_at": None,
        })

    def _biller_directory(self) -> Any:
        """Who knows the name on a meter or smartcard: the provider, when it has a biller look-up (Mono has
        none, so bills cannot be paid through it from the chat)."""
        if not hasattr(self._provider, "validate_biller_ref"):
            raise BillsUnavailable("bills cannot be paid from this bank in the chat")
        return self._provider

    def _start_payment(self, operation: dict[str, Any]) -> str:
        """Start the payment at Mono under the op id as our reference; the page where the customer approves it."""
        provider: Any = self._hosted()
        user = operation["user"]
        token = self._token(user)
        page = self._call_provider(lambda: provider.start_payment(
            reference=operation["_id"], amount_kobo=operation["amount_kobo"], account_token=token,
            description=_payment_description(operation), user=user))
        return page.url

    def _verify_payment(self, reference: str) -> tuple[str, int | None]:
        provider: Any = self._hosted()
        return self._call_provider(lambda: provider.payment_status(reference))

    def _find_payment(self, reference: str) -> tuple[str, int | None, str | None] | None:
        provider: Any = self._hosted()
        return self._call_provider(lambda: provider.find_payment(reference))

    def _verified(self, user: str, settle: Callable[[], R]) -> R:
        """Run a settlement that asks the provider; a provider failure is audited before it is raised."""
        try:
            return settle()
        except ProviderUnavailable as error:
            self._audit(user, "payment", "verify_failed", reason=_provider_reason(error))
            raise

    def _hosted(self) -> HostedLinkProvider:
        if not isinstance(self._provider, HostedLinkProvider):
            raise InvalidDetails('this bank connects straight from the chat, with no bank page to open; '
                                 'say "connect bank"')
        return self._provider

    def _token(self, user: str) -> str:
        """The provider credential of the customer's link, opened; NotConnected without one."""
        record = self._db["connections"].find_one({"_id": user})
        if record is None:
            raise NotConnected("no bank is linked")
        try:
            return self._keyring.decrypt_text(record["token"], field_context("connections", user, "token"))
        except CryptoError as error:
            logger.error("a bank link's token could not be opened (%s)", type(error).__name__)
            raise ProviderUnavailable("this bank link cannot be used; please connect it again") from error

    def _link_accounts(self, user: str, accounts: Iterable[LinkedAccount]) -> dict[str, dict[str, Any]]:
        """The provider's accounts as the link stores them, every one, ids sealed. An account alone of its
        type is keyed by the type, as the sandbox's are; two or more of a type are "savings_1",
        "savings_2", ..., so "my savings" names none of them alone and the customer is asked which."""
        listed = list(accounts)
        of_type = Counter(account.type for account in listed)
        stored: dict[str, dict[str, Any]] = {}
        for account in listed:
            seen = sum(1 for entry in stored.values() if entry["type"] == account.type)
            key = account.type if of_type[account.type] == 1 else f"{account.type}_{seen + 1}"
            stored[key] = {
                "type": account.type, "name": account.name, "number": mask_account_number(account.mask),
                "balance_kobo": account.balance_minor, "currency": account.currency,
                "provider_id": self._sealer.seal("profiles", user, f"link.accounts.{key}.provider_id",
                                                 account.provider_id),
            }
        return stored

    def _account_keys(self, user: str) -> dict[str, str]:
        """Provider account id -> the account's key on the customer's link."""
        document = self._customers.connected(user)
        return {self._sealer.open("profiles", user, f"link.accounts.{key}.provider_id", entry.get("provider_id")):
                key for key, entry in document["link"]["accounts"].items() if entry.get("provider_id")}

    def _refresh_balances(self, user: str) -> None:
        """Balances as the provider has them now, written onto the link."""
        provider = self._hosted()
        token = self._token(user)
        fresh = self._call_provider(lambda: provider.accounts(token))
        keys = self._account_keys(user)
        changes = {f"link.accounts.{keys[a.provider_id]}.balance_kobo": a.balance_minor
                   for a in fresh if a.provider_id in keys}
        if changes:
            self._db["profiles"].update_one({"_id": user, "link": {"$exists": True}}, {"$set": changes})

    def _import_provider_history(self, user: str, token: str, now: datetime) -> None:
        provider = self._hosted()
        found = self._call_provider(lambda: provider.transactions(token, now - timedelta(days=90)))
        keys = self._account_keys(user)
        self._insert_history(user, [_history_document(provider.name, t, keys) for t in found
                                    if t.account_id in keys and t.provider_id])

    def _refuse_held_link(self, user: str, link_key: str) -> NoReturn:
        """One provider account, one customer: else one's disconnect would unlink the other's at the
        provider (and a forwarded link page would put someone's bank in this chat twice)."""
        self._links.complete(link_key)
        self._audit(user, "connect", "refused", reason="linked_to_another_customer")
        raise InvalidDetails("that bank account is already connected to another WhatsApp number, "
                             "so it can't be connected here too")

    def _held_by_another(self, user: str, key: str | None) -> bool:
        """Whether another customer's link names this provider account or item."""
        if not key:
            return False
        return self._db["connections"].find_one(
            {"lookup": keyed_hash(key, self._settings.user_id_salt), "_id": {"$ne": user}}, {"_id": 1}) is not None

    def _revoke_at_provider(self, user: str) -> None:
        """Unlink at Mono or Plaid before the token is deleted; a failure is logged and audited. Never
        while another customer's link names the same provider account (theirs would go too)."""
        try:
            token = self._token(user)
        except BankingError:
            return
        record = self._db["connections"].find_one({"_id": user}, {"lookup": 1}) or {}
        if record.get("lookup") and self._db["connections"].find_one(
                {"lookup": record["lookup"], "_id": {"$ne": user}}, {"_id": 1}) is not None:
            self._audit(user, "revoke", "skipped", reason="held_by_another_customer")
            return
        try:
            self._call_provider(lambda: self._hosted().revoke(token))
            self._audit(user, "revoke", "executed")
        except ProviderUnavailable as error:
            logger.warning("the bank link could not be revoked at %s (%s)", self._provider.name,
                           _provider_reason(error))
            self._audit(user, "revoke", "failed", reason=_provider_reason(error))

    def _transactions_in(self, user: str, document: dict[str, Any], period: Period) -> list[Transaction]:
        """Imported history and executed movements inside ``period``, newest first."""
        seeded = self._db["transactions"].find(
            {"user": user, "posted_at": {"$gte": period.start, "$lt": period.end}})
        combined = [self._history_line(doc) for doc in seeded]
        combined += [t for t in self._customers.ledger_transactions(document) if period.contains(t.posted_at)]
        return sorted(combined, key=lambda t: (t.posted_at, t.reference), reverse=True)

    def _insert_history(self, user: str, history: list[dict[str, Any]]) -> None:
        """Insert imported transactions, names and narrations sealed; duplicates from an interrupted
        earlier connect are fine."""
        if not history:
            return
        documents = [{**doc, "user": user, **{name: self._sealer.seal("transactions", doc["_id"], name, doc[name])
                                              for name in HISTORY_TEXTS}}
                     for doc in history]
        try:
            self._db["transactions"].insert_many(documents, ordered=False)
        except BulkWriteError as error:
            if any(item.get("code") != 11000 for item in error.details.get("writeErrors", [])):
                raise

    def _history_line(self, document: dict[str, Any]) -> Transaction:
        texts = {name: self._sealer.open("transactions", document["_id"], name, document[name])
                 for name in HISTORY_TEXTS}
        return Transaction(
            reference=document["_id"], posted_at=as_utc(document["posted_at"]),
            amount_kobo=int(document["amount_kobo"]), direction=document["direction"],
            category=document["category"], merchant=texts["merchant"],
            narration=texts["narration"], account=document["account"], currency=document.get("currency") or "NGN",
        )


class _TransactionFilter:
    """One place that decides whether a transaction matches the customer's filters."""

    def __init__(self, merchant: str | None, direction: str | None, category: str | None,
                 min_kobo: int | None, max_kobo: int | None, accounts: frozenset[str] | None = None) -> None:
        self.merchant, self.direction, self.category = merchant, direction, category
        self.min_kobo, self.max_kobo, self.accounts = min_kobo, max_kobo, accounts

    def matches(self, transaction: Transaction) -> bool:
        return all((
            self.accounts is None or transaction.account in self.accounts,
            self.merchant is None or self.merchant in _merchant_key(transaction.merchant),
            self.direction is None or transaction.direction == self.direction,
            self.category is None or transaction.category == self.category,
            self.min_kobo is None or transaction.amount_kobo >= self.min_kobo,
            self.max_kobo is None or transaction.amount_kobo <= self.max_kobo,
        ))


# --------------------------------------------------------------------- pure helpers


def _provider_reason(error: BankingError) -> str:
    return getattr(error, "reason", None) or error.code


def _history_document(provider: str, transaction: ProviderTransaction, keys: dict[str, str]) -> dict[str, Any]:
    """A provider transaction as a `transactions` document; its id is a hash of the provider's, so a
    second import of the same transaction is a duplicate, not a copy."""
    reference = f"{provider[:3].upper()}-{hashlib.sha256(transaction.provider_id.encode()).hexdigest()[:16].upper()}"
    return {
        "_id": reference, "reference": reference, "account": keys[transaction.account_id],
        "posted_at": transaction.posted_at, "amount_kobo": transaction.amount_minor,
        "direction": transaction.direction, "category": transaction.category,
        "merchant": transaction.merchant, "narration": transaction.narration, "currency": transaction.currency,
    }


def _payment_description(operation: dict[str, Any]) -> str:
    """What the customer reads on Mono's page: the kind and our receipt reference, never a name or number."""
    what = {"transfer": "Transfer", "bill": "Bill payment", "airtime": "Airtime"}[operation["kind"]]
    return f"{what} {receipt_reference(operation['_id'])}"


def _as_text(value: object) -> str:
    """Slots can hold lists or numbers; anything but a string is treated as nothing typed."""
    return value if isinstance(value, str) else ""


def _external_destination(account_number: str | None, bank: str | None) -> tuple[str, str]:
    if not account_number or not bank:
        raise InvalidDetails("say which account to send to: one of yours, or an account number and bank")
    number = re.sub(r"[\s-]", "", _as_text(account_number))
    if not re.fullmatch(r"\d{10}", number):
        raise InvalidDetails("an account number has exactly 10 digits")
    canonical = canonical_bank(_as_text(bank))
    if canonical is None:
        raise InvalidDetails("unknown bank")
    return number, canonical


def _accounts_named(profile: Profile, text: object) -> list[Account]:
    """The accounts the customer means: one by its key ("checking_2", as buttons send it), else every
    account of the type named ("current" is checking); UnknownAccount, listing theirs, if none."""
    key = _as_text(text)
    found = [account for account in profile.accounts if account.key == key]
    if not found:
        canonical = canonical_account_type(key)
        found = profile.of_type(canonical) if canonical is not None else []
    if not found:
        raise UnknownAccount("you have no account of that type",
                             accounts=tuple(account.label for account in profile.accounts))
    return found


def _account_key(profile: Profile, text: object) -> str:
    """The one account money moves from or to. A type the customer holds twice is never guessed:
    the forms ask which, by the accounts' own names."""
    found = _accounts_named(profile, text)
    if len(found) > 1:
        raise UnknownAccount("you have more than one account of that type; say which one",
                             accounts=tuple(account.label for account in found))
    return found[0].key


def _require_funds(profile: Profile, source: str, amount_kobo: int) -> None:
    account = profile.account(source)
    if account.balance_kobo < amount_kobo:
        raise InsufficientFunds(f"your {account.label} balance is {format_naira(account.balance_kobo)}",
                                available_kobo=account.balance_kobo, account=account.label)


def _require_within_limit(document: dict[str, Any], amount_kobo: int, now: datetime) -> None:
    status = limit_status(document, now)
    if amount_kobo > status.remaining_kobo:
        raise LimitExceeded(f"only {format_money(status.remaining_kobo, status.currency)} of today's limit is left",
                            remaining_kobo=status.remaining_kobo, limit_kobo=status.limit_kobo,
                            currency=status.currency)


def _is_kobo(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_amount(value: int | None) -> int | None:
    if value is None:
        return None
    if not _is_kobo(value) or value < 0:
        raise InvalidAmount("amounts in a search must be zero or more")
    return value


def _direction(text: str | None) -> str | None:
    if text is None:
        return None
    found = _DIRECTIONS.get(" ".join(text.lower().split()))
    if found is None:
        raise InvalidDetails("direction must be money in or money out")
    return found


def _category(text: str | None) -> str | None:
    if text is None:
        return None
    found = canonical_category(text)
    if found is None:
        raise InvalidDetails(f"unknown category; use one of {', '.join(CATEGORIES)}")
    return found


def _merchant_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _totals(transactions: Iterable[Transaction], field: str) -> tuple[tuple[str, int], ...]:
    """(name, total kobo) per value of ``field``, largest total first."""
    totals: dict[str, int] = defaultdict(int)
    for transaction in transactions:
        totals[getattr(transaction, field)] += transaction.amount_kobo
    return tuple(sorted(totals.items(), key=lambda row: (-row[1], row[0])))


def _redact(text: str, limit: int = 300) -> str:
    """Mask digit runs that look like phone or account numbers, and cap the length."""
    masked = re.sub(r"\+?\d[\d\s-]{5,}\d", lambda m: "******" + re.sub(r"\D", "", m.group())[-4:], text)
    return masked[:limit]
