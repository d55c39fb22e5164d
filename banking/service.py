"""The banking core: balances, history, and confirmed money movements.

Why the data model looks the way it does: MongoDB (and mongomock even more so)
gives us atomicity only within one document, so everything a money movement
touches — both balances, today's spent total, the ledger entry and the
"already applied" marker — lives in the customer's single profile document and
changes in ONE conditional update. An operation is first claimed
(pending -> executing) with another single-document update, so a double "yes"
or two workers racing can execute it at most once.

If the database fails in the middle of a confirmation, the operation is looked
at again: had it taken effect (its id is in the profile's ``applied_ops``), the
customer gets the receipt and the result is recorded; had it not, it goes back
to pending so the next YES runs it, and the customer hears "nothing was moved,
try again" (StorageError). If the database cannot even be asked, the customer
gets OutcomeUnknown, and the claim lapses after ``EXECUTION_LEASE`` so the next
YES finishes or reruns the operation (``applied_ops`` still guards the money).

Nothing in the database gives away an account or phone number: the customer's own
account numbers are kept masked ("******6789"; the full number is the bank's to
know), and an operation's destination details (``SEALED_PARAMS``) are sealed
with ``banking.crypto`` under ``field_context("operations", op_id, "params.<name>")``.
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn, ParamSpec, TypeVar

from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from banking import audit
from banking.catalog import BANKS, canonical_account_type, canonical_bank, canonical_biller, canonical_network
from banking.config import Settings
from banking.crypto import CryptoError, Keyring, field_context, is_sealed
from banking.errors import (
    AccountFrozen,
    AlreadyExecuted,
    BankingError,
    ConfirmationExpired,
    InsufficientFunds,
    InvalidAmount,
    InvalidDetails,
    LimitExceeded,
    NotConnected,
    NotFrozen,
    NothingPending,
    OutcomeUnknown,
    ProviderUnavailable,
    StorageError,
    UnknownAccount,
)
from banking.models import (
    ACCOUNT_ORDER,
    Account,
    Consent,
    LimitStatus,
    PendingOperation,
    Profile,
    Receipt,
    SpendingSummary,
    Transaction,
    TransactionPage,
)
from banking.money import MAX_AMOUNT_KOBO, format_naira, mask_account_number
from banking.periods import LAGOS, Period, parse_period
from banking.phone import mask_phone_number, normalise_phone_number
from banking.providers import BankProvider

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

MONEY_KINDS = frozenset({"transfer", "bill", "airtime"})
# What a customer agrees to share when linking a bank (recorded per link in `consents`).
CONSENT_SCOPES = ("accounts", "balances", "transactions", "payments")
MAX_DAILY_LIMIT_KOBO = 5_000_000 * 100  # ₦5,000,000
AIRTIME_MIN_KOBO = 50 * 100
AIRTIME_MAX_KOBO = 50_000 * 100
MAX_PAGE = 100
CATEGORIES = ("food", "transport", "airtime", "bills", "shopping", "entertainment",
              "transfers", "health", "salary", "savings")
_CATEGORY_SYNONYMS = {
    "transfer": "transfers", "bill": "bills", "utilities": "bills", "electricity": "bills",
    "data": "airtime", "recharge": "airtime", "transportation": "transport", "fuel": "transport",
    "rides": "transport", "medical": "health", "pharmacy": "health", "drugs": "health",
    "income": "salary", "groceries": "shopping", "restaurants": "food", "chop": "food",
    "movies": "entertainment", "subscriptions": "entertainment",
}
_DIRECTIONS = {
    "debit": "debit", "debits": "debit", "out": "debit", "outgoing": "debit", "sent": "debit",
    "spent": "debit", "spending": "debit", "money out": "debit",
    "credit": "credit", "credits": "credit", "in": "credit", "incoming": "credit",
    "received": "credit", "money in": "credit",
}
_MAX_APPLY_ATTEMPTS = 3
# How long a claimed operation may stay "executing" before a new YES may pick it up again.
EXECUTION_LEASE = timedelta(minutes=2)
# Operation parameters a database dump must not show: sealed when held, opened when run.
SEALED_PARAMS = ("account_number", "customer_ref", "phone")


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
        self._keys = keyring  # None: ENCRYPTION_KEY (or a throwaway development key) on first use

    @property
    def settings(self) -> Settings:
        """The deployment settings (support contacts, TTL, default limit)."""
        return self._settings

    @property
    def max_daily_limit_kobo(self) -> int:
        """The highest daily limit a customer may set."""
        return MAX_DAILY_LIMIT_KOBO

    # ----------------------------------------------------------------- linking

    @_guard_storage
    def connect_bank(self, user: str, bank: str) -> Profile:
        """Link a bank; linking again returns the existing link (one bank per customer)."""
        canonical = canonical_bank(_as_text(bank))
        if canonical is None:
            raise InvalidDetails("unknown bank")
        existing = self._db["profiles"].find_one({"_id": user})
        if existing is not None:
            return _profile_from_doc(existing)
        now = self._now()
        seeds = self._call_provider(lambda: self._provider.connect(user, canonical))
        history = self._call_provider(lambda: self._provider.seed_transactions(user, canonical, now))
        self._insert_history(user, history)
        document = {
            "_id": user,
            "bank": canonical,
            "bank_code": BANKS[canonical][0],
            "connected_at": now,
            "frozen": False,
            "frozen_at": None,
            "daily_limit_kobo": self._settings.daily_transfer_limit_kobo,
            "accounts": {seed.type: {"name": seed.name, "number": mask_account_number(seed.number),
                                     "balance_kobo": seed.balance_kobo}
                         for seed in seeds},
            "spent": {},
            "applied_ops": [],
            "ledger": [],
        }
        try:
            self._db["profiles"].insert_one(document)
        except DuplicateKeyError:
            return self.profile(user)  # a concurrent connect won; same accounts either way
        token = self._call_provider(lambda: self._provider.access_token(user, canonical))
        self._record_link(user, canonical, token, now)
        self._audit(user, "connect", "executed")
        return _profile_from_doc(document)

    @_guard_storage
    def consents(self, user: str) -> list[Consent]:
        """Every consent this customer gave, newest first, with when it was revoked."""
        records = self._db["consents"].find({"user": user}, sort=[("granted_at", -1)])
        return [Consent(bank=r["bank"], provider=r["provider"], scopes=tuple(r["scopes"]),
                        granted_at=_aware(r["granted_at"]),
                        revoked_at=_aware(r["revoked_at"]) if r.get("revoked_at") else None)
                for r in records]

    @_guard_storage
    def disconnect_bank(self, user: str) -> None:
        """Unlink now (no confirmation): drop the profile, its history and pending operations."""
        if self._db["profiles"].find_one({"_id": user}, {"_id": 1}) is None:
            raise NotConnected("no bank is linked")
        self._remove_link(user)
        self._audit(user, "disconnect", "executed")

    @_guard_storage
    def is_connected(self, user: str) -> bool:
        return self._db["profiles"].find_one({"_id": user}, {"_id": 1}) is not None

    @_guard_storage
    def profile(self, user: str) -> Profile:
        return _profile_from_doc(self._profile_doc(user))

    @_guard_storage
    def find_profile(self, user: str) -> Profile | None:
        """The profile, or None when no bank is linked (no exception for the normal case)."""
        document = self._db["profiles"].find_one({"_id": user})
        return None if document is None else _profile_from_doc(document)

    # ----------------------------------------------------------------- look-ups for forms

    def name_enquiry(self, account_number: str, bank: str) -> str:
        """The holder's name for an account at another bank, to show before asking for a YES."""
        number, canonical = _external_destination(account_number, bank)
        return self._call_provider(lambda: self._provider.name_enquiry(number, canonical))

    def validate_biller_ref(self, biller: str, customer_ref: str) -> str:
        """The name on a meter/smartcard/biller account; InvalidDetails when the reference is malformed."""
        canonical = canonical_biller(_as_text(biller))
        if canonical is None:
            raise InvalidDetails("unknown biller")
        ref = re.sub(r"[\s-]", "", _as_text(customer_ref))
        return self._call_provider(lambda: self._provider.validate_biller_ref(canonical, ref))

    # ----------------------------------------------------------------- reading

    @_guard_storage
    def balances(self, user: str, account_type: str | None = None) -> list[Account]:
        """All accounts, or just the one asked for ("current" means checking)."""
        profile = self.profile(user)
        if account_type is None:
            return list(profile.accounts)
        return [profile.account(_account_type(profile, account_type))]

    @_guard_storage
    def search_transactions(self, user: str, period_text: str | None = None, merchant: str | None = None,
                            direction: str | None = None, category: str | None = None,
                            min_kobo: int | None = None, max_kobo: int | None = None,
                            limit: int = 10) -> TransactionPage:
        """Newest-first matches in a period, with count and total over all matches."""
        document = self._profile_doc(user)
        period = parse_period(period_text, self._now())
        wanted = _TransactionFilter(
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
        return TransactionPage(
            items=tuple(matches[:size]),
            total_count=len(matches),
            total_kobo=sum(t.amount_kobo for t in matches),
            period_label=period.label,
            period=period,
        )

    @_guard_storage
    def spending_summary(self, user: str, period_text: str | None = None) -> SpendingSummary:
        """Debits by category (largest first), money in and out, and the top merchants."""
        document = self._profile_doc(user)
        period = parse_period(period_text, self._now())
        transactions = self._transactions_in(user, document, period)
        debits = [t for t in transactions if t.direction == "debit"]
        credits = [t for t in transactions if t.direction == "credit" and t.category != "savings"]
        return SpendingSummary(
            period_label=period.label,
            period=period,
            by_category=_totals(debits, "category"),
            total_debit_kobo=sum(t.amount_kobo for t in debits),
            total_credit_kobo=sum(t.amount_kobo for t in credits),
            top_merchants=_totals([t for t in debits if t.category != "savings"], "merchant")[:5],
        )

    @_guard_storage
    def get_limit(self, user: str) -> LimitStatus:
        document = self._profile_doc(user)
        limit = int(document["daily_limit_kobo"])
        spent = int(document.get("spent", {}).get(_day_key(self._now()), 0))
        return LimitStatus(limit_kobo=limit, spent_today_kobo=spent, remaining_kobo=max(0, limit - spent))

    @_guard_storage
    def receipt(self, user: str, reference: str | None = None) -> Transaction:
        """A transaction by reference; without one, the latest executed movement (else the latest transaction)."""
        document = self._profile_doc(user)
        ledger = [_ledger_debit(entry) for entry in document.get("ledger", [])]
        if reference is None:
            if ledger:
                return max(ledger, key=lambda t: t.posted_at)
            latest = self._db["transactions"].find({"user": user}, sort=[("posted_at", -1)], limit=1)
            for doc in latest:
                return _transaction_from_doc(doc)
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
        return _transaction_from_doc(found)

    @_guard_storage
    def request_handoff(self, user: str, reason: str) -> str:
        """Open a ticket for a human agent; the reason is stored with long digit runs masked."""
        ticket = f"HO-{uuid.uuid4().hex[:8].upper()}"
        self._db["handoffs"].insert_one({
            "_id": ticket, "user": user, "at": self._now(), "status": "open", "reason": _redact(reason),
        })
        self._audit(user, "handoff", "requested")
        return ticket

    # ----------------------------------------------------------------- preparing

    @_guard_storage
    def prepare_transfer(self, user: str, amount_kobo: int, source: str, *, to_account_type: str | None = None,
                         account_number: str | None = None, bank: str | None = None) -> PendingOperation:
        """Check a transfer between own accounts or to another bank and hold it for confirmation."""
        with self._refusals_audited(user, "transfer", amount_kobo):
            profile = self._money_profile(user, amount_kobo)
            src = _account_type(profile, source)
            if to_account_type is not None:
                if account_number or bank:
                    raise InvalidDetails("choose either one of your accounts or another account, not both")
                dst = _account_type(profile, to_account_type)
                if dst == src:
                    raise InvalidAmount("money cannot move from an account to itself")
                _require_funds(profile, src, amount_kobo)
                label = profile.account(dst).name
                return self._hold(user, "transfer", amount_kobo, src, label, None, {"to_account": dst})
            number, canonical = _external_destination(account_number, bank)
            _require_funds(profile, src, amount_kobo)
            self._require_within_limit(profile, amount_kobo)
            holder = self._call_provider(lambda: self._provider.name_enquiry(number, canonical))
            label = f"{holder}, {canonical} {mask_account_number(number)}"
            params = {"account_number": number, "bank": canonical, "bank_code": BANKS[canonical][0],
                      "holder_name": holder}
            return self._hold(user, "transfer", amount_kobo, src, label, holder, params)

    @_guard_storage
    def prepare_bill(self, user: str, amount_kobo: int, source: str, biller: str,
                     customer_ref: str) -> PendingOperation:
        """Check a bill payment, look up the name on the meter/smartcard, and hold it."""
        with self._refusals_audited(user, "bill", amount_kobo):
            profile = self._money_profile(user, amount_kobo)
            src = _account_type(profile, source)
            canonical = canonical_biller(_as_text(biller))
            if canonical is None:
                raise InvalidDetails("unknown biller")
            _require_funds(profile, src, amount_kobo)
            self._require_within_limit(profile, amount_kobo)
            ref = re.sub(r"[\s-]", "", _as_text(customer_ref))
            name = self._call_provider(lambda: self._provider.validate_biller_ref(canonical, ref))
            label = f"{canonical} {mask_reference(ref)} ({name})"
            params = {"biller": canonical, "customer_ref": ref, "customer_name": name}
            return self._hold(user, "bill", amount_kobo, src, label, name, params)

    @_guard_storage
    def prepare_airtime(self, user: str, amount_kobo: int, source: str, network: str,
                        phone_number: str) -> PendingOperation:
        """Check an airtime top-up (₦50 to ₦50,000) for a Nigerian mobile number and hold it."""
        with self._refusals_audited(user, "airtime", amount_kobo):
            profile = self._money_profile(user, amount_kobo)
            if not AIRTIME_MIN_KOBO <= amount_kobo <= AIRTIME_MAX_KOBO:
                raise InvalidAmount(f"airtime must be between {format_naira(AIRTIME_MIN_KOBO)} "
                                    f"and {format_naira(AIRTIME_MAX_KOBO)}")
            src = _account_type(profile, source)
            canonical = canonical_network(_as_text(network))
            if canonical is None:
                raise InvalidDetails("unknown network")
            phone = normalise_phone_number(phone_number)
            if phone is None:
                raise InvalidDetails("that is not a Nigerian mobile number")
            _require_funds(profile, src, amount_kobo)
            self._require_within_limit(profile, amount_kobo)
            label = f"{canonical} {mask_phone_number(phone)}"
            return self._hold(user, "airtime", amount_kobo, src, label, None, {"network": canonical, "phone": phone})

    @_guard_storage
    def prepare_freeze(self, user: str) -> PendingOperation:
        """Hold a freeze: once confirmed, no money leaves any account until unfrozen."""
        with self._refusals_audited(user, "freeze", None):
            profile = self.profile(user)
            if profile.frozen:
                raise AccountFrozen("your accounts are already frozen")
            return self._hold(user, "freeze", 0, None, f"all your {profile.bank} accounts", None, {})

    @_guard_storage
    def prepare_unfreeze(self, user: str) -> PendingOperation:
        with self._refusals_audited(user, "unfreeze", None):
            profile = self.profile(user)
            if not profile.frozen:
                raise NotFrozen("your accounts are not frozen")
            return self._hold(user, "unfreeze", 0, None, f"all your {profile.bank} accounts", None, {})

    @_guard_storage
    def prepare_disconnect(self, user: str) -> PendingOperation:
        with self._refusals_audited(user, "disconnect", None):
            profile = self.profile(user)
            return self._hold(user, "disconnect", 0, None, profile.bank, None, {})

    @_guard_storage
    def prepare_set_limit(self, user: str, new_limit_kobo: int) -> PendingOperation:
        """Hold a new daily limit (above ₦0, at most ₦5,000,000)."""
        with self._refusals_audited(user, "set_limit", new_limit_kobo):
            self.profile(user)
            if not _is_kobo(new_limit_kobo) or not 0 < new_limit_kobo <= MAX_DAILY_LIMIT_KOBO:
                raise InvalidAmount(
                    f"the daily limit must be above ₦0 and at most {format_naira(MAX_DAILY_LIMIT_KOBO)}")
            return self._hold(user, "set_limit", new_limit_kobo, None, "daily transfer limit", None, {})

    @_guard_storage
    def latest_pending(self, user: str) -> PendingOperation | None:
        """The newest unexpired pending operation, for a bare "yes" when the op id was lost."""
        found = self._db["operations"].find(
            {"user": user, "status": "pending", "expires_at": {"$gt": self._now()}},
            sort=[("created_at", -1)], limit=1,
        )
        for document in found:
            return _pending_from_doc(document)
        return None

    # ----------------------------------------------------------------- confirming

    @_guard_storage
    def confirm(self, user: str, op_id: str) -> Receipt:
        """Execute a pending operation at most once, re-checking freeze, funds and limit atomically."""
        _require_op_id(op_id)
        now = self._now()
        claim = uuid.uuid4().hex  # names this attempt, so a failure can release exactly its own claim
        try:
            claimed = self._db["operations"].find_one_and_update(
                {"_id": op_id, "user": user, "status": "pending", "expires_at": {"$gt": now}},
                {"$set": {"status": "executing", "claimed_at": now, "claim": claim}},
                return_document=ReturnDocument.AFTER,
            )
        except PyMongoError:
            self._release_claim(op_id, claim)  # the claim may have been written before the reply was lost
            raise
        if claimed is None:
            claimed = self._reclaim_lapsed(user, op_id, now)
        if claimed is None:
            self._explain_unclaimed(user, op_id)
        try:
            self._audit(user, claimed["kind"], "confirmed", op_id=op_id, amount_kobo=claimed["amount_kobo"])
            receipt = self._execute(claimed, now)
        except BankingError as error:
            self._db["operations"].update_one(
                {"_id": op_id, "status": "executing"}, {"$set": {"status": "refused", "reason": error.code}})
            self._audit(user, claimed["kind"], "refused", op_id=op_id, reason=error.code,
                        amount_kobo=claimed["amount_kobo"])
            raise
        except PyMongoError:
            found = self._effect_after_failure(claimed, now)
            if found is None:
                raise  # nothing moved: the customer is asked to try again
            receipt = found
        self._record_executed(claimed, receipt)
        logger.info("executed %s operation %s", claimed["kind"], op_id)
        return receipt

    @_guard_storage
    def cancel(self, user: str, op_id: str) -> None:
        """Drop a pending operation; too late once it ran (AlreadyExecuted), else NothingPending."""
        _require_op_id(op_id)
        cancelled = self._db["operations"].find_one_and_update(
            {"_id": op_id, "user": user, "status": "pending"},
            {"$set": {"status": "cancelled", "cancelled_at": self._now()}},
        )
        if cancelled is not None:
            self._audit(user, cancelled["kind"], "cancelled", op_id=op_id, amount_kobo=cancelled["amount_kobo"])
            return
        operation = self._db["operations"].find_one({"_id": op_id, "user": user})
        if operation is not None and operation["status"] in {"executing", "executed"}:
            self._explain_unclaimed(user, op_id)
        raise NothingPending("there is nothing waiting for your confirmation")

    # ----------------------------------------------------------------- internals: preparing

    def _money_profile(self, user: str, amount_kobo: int) -> Profile:
        """The checks every money operation starts with, in the order customers should hear them."""
        profile = self.profile(user)
        if profile.frozen:
            raise AccountFrozen("your accounts are frozen; unfreeze them to move money")
        if not _is_kobo(amount_kobo) or not 0 < amount_kobo <= MAX_AMOUNT_KOBO:
            raise InvalidAmount("the amount must be more than ₦0")
        return profile

    def _require_within_limit(self, profile: Profile, amount_kobo: int) -> None:
        document = self._db["profiles"].find_one({"_id": profile.user}, {"spent": 1})
        spent = int((document or {}).get("spent", {}).get(_day_key(self._now()), 0))
        remaining = max(0, profile.daily_limit_kobo - spent)
        if amount_kobo > remaining:
            raise LimitExceeded(f"only {format_naira(remaining)} of today's limit is left",
                                remaining_kobo=remaining, limit_kobo=profile.daily_limit_kobo)

    def _hold(self, user: str, kind: str, amount_kobo: int, source: str | None, label: str,
              holder: str | None, params: dict[str, Any]) -> PendingOperation:
        """Store the pending operation and audit the request."""
        now = self._now()
        op_id = uuid.uuid4().hex
        pending = PendingOperation(
            op_id=op_id, kind=kind, amount_kobo=amount_kobo, source=source,
            destination_label=label, holder_name=holder,
            expires_at=now + timedelta(seconds=self._settings.confirmation_ttl_seconds), fee_kobo=0,
        )
        self._db["operations"].insert_one({
            "_id": pending.op_id, "user": user, "kind": kind, "params": self._seal_params(op_id, params),
            "amount_kobo": amount_kobo, "source": source, "destination_label": label,
            "holder_name": holder, "fee_kobo": pending.fee_kobo, "created_at": now,
            "expires_at": pending.expires_at, "status": "pending", "result": None,
        })
        self._audit(user, kind, "requested", op_id=pending.op_id, amount_kobo=amount_kobo)
        return pending

    @contextmanager
    def _refusals_audited(self, user: str, action: str, amount_kobo: int | None) -> Iterator[None]:
        """Record a refusal at prepare time with its reason code, then let it propagate."""
        try:
            yield
        except BankingError as error:
            amount = amount_kobo if _is_kobo(amount_kobo) else None
            self._audit(user, action, "refused", reason=error.code, amount_kobo=amount)
            raise

    # ----------------------------------------------------------------- internals: executing

    def _explain_unclaimed(self, user: str, op_id: str) -> NoReturn:
        """Raise the reason an operation could not be claimed."""
        operation = self._db["operations"].find_one({"_id": op_id, "user": user})
        status = None if operation is None else operation["status"]
        if status == "executed":
            raise AlreadyExecuted("this was already done", receipt=Receipt.from_document(operation["result"]))
        if status == "executing":
            raise AlreadyExecuted("this is already being done", receipt=self._receipt_from_ledger(user, op_id))
        if status == "pending":
            expired = self._db["operations"].update_one(
                {"_id": op_id, "status": "pending"}, {"$set": {"status": "expired"}})
            if expired.modified_count == 1:
                self._audit(user, operation["kind"], "expired", op_id=op_id, amount_kobo=operation["amount_kobo"])
            raise ConfirmationExpired("that confirmation has expired; please start again")
        if status == "expired":
            raise ConfirmationExpired("that confirmation has expired; please start again")
        raise NothingPending("there is nothing waiting for your confirmation")

    def _reclaim_lapsed(self, user: str, op_id: str, now: datetime) -> dict[str, Any] | None:
        """An operation left "executing" for longer than the lease (its worker died or lost the
        database) is claimed anew; ``applied_ops`` keeps the money from moving twice."""
        reclaimed = self._db["operations"].find_one_and_update(
            {"_id": op_id, "user": user, "status": "executing", "claimed_at": {"$lte": now - EXECUTION_LEASE}},
            {"$set": {"claimed_at": now, "claim": uuid.uuid4().hex}},
            return_document=ReturnDocument.AFTER,
        )
        if reclaimed is not None:
            logger.warning("operation %s was left executing; picking it up again", op_id)
        return reclaimed

    def _release_claim(self, op_id: str, claim: str) -> None:
        """Put an operation this attempt claimed, and did not run, back to pending (best effort)."""
        try:
            self._db["operations"].update_one(
                {"_id": op_id, "status": "executing", "claim": claim},
                {"$set": {"status": "pending"}, "$unset": {"claimed_at": "", "claim": ""}})
        except PyMongoError as error:
            logger.error("operation %s could not be released after a database failure (%s); it stays executing "
                         "until its claim lapses (%d s)", op_id, type(error).__name__,
                         EXECUTION_LEASE.total_seconds())

    def _effect_after_failure(self, operation: dict[str, Any], now: datetime) -> Receipt | None:
        """The database failed mid-confirmation: the receipt if the operation took effect, else None
        after putting it back to pending, so what the customer is told is true either way; OutcomeUnknown
        when the database cannot even be asked."""
        user, op_id = operation["user"], operation["_id"]
        try:
            document = self._db["profiles"].find_one({"_id": user}, {"applied_ops": 1, "ledger": 1})
        except PyMongoError as error:
            logger.error("operation %s: the database failed mid-confirmation and cannot tell whether it ran (%s); "
                         "it stays executing until its claim lapses", op_id, type(error).__name__)
            raise OutcomeUnknown("the bank's records could not be reached to see whether this went through; "
                                 "check your balance before trying again") from error
        took_effect = (document is None if operation["kind"] == "disconnect"
                       else document is not None and op_id in document.get("applied_ops", []))
        if not took_effect:
            self._release_claim(op_id, operation["claim"])
            logger.warning("operation %s did not run (database failure); it is pending again", op_id)
            return None
        logger.warning("operation %s ran before the database failed; recording its result", op_id)
        return _ledger_receipt(document, op_id) or _receipt(operation, now, None)

    def _record_executed(self, operation: dict[str, Any], receipt: Receipt) -> None:
        """Store the result and audit it; a database failure here is retried once, then logged (the money
        has moved, so the customer still gets the receipt, and a later look at the op finds it applied)."""
        user, op_id = operation["user"], operation["_id"]
        for attempt in (1, 2):
            try:
                self._db["operations"].update_one(
                    {"_id": op_id}, {"$set": {"status": "executed", "result": receipt.to_document()},
                                     "$unset": {"claim": ""}})
                if attempt == 1 or self._db["audit"].find_one(
                        {"user": user, "op_id": op_id, "outcome": "executed"}, {"_id": 1}) is None:
                    self._audit(user, operation["kind"], "executed", op_id=op_id,
                                amount_kobo=operation["amount_kobo"])
                return
            except PyMongoError as error:
                failure = error
        logger.error("operation %s ran, but its result could not be recorded (%s)", op_id, type(failure).__name__)

    def _execute(self, operation: dict[str, Any], now: datetime) -> Receipt:
        kind = operation["kind"]
        if kind in MONEY_KINDS:
            return self._move_money(operation, now)
        if kind == "disconnect":
            if self._db["profiles"].find_one({"_id": operation["user"]}, {"_id": 1}) is None:
                raise NotConnected("no bank is linked")
            self._remove_link(operation["user"], keep_op=operation["_id"])
            return _receipt(operation, now, None)
        changes = {
            "freeze": {"frozen": True, "frozen_at": now},
            "unfreeze": {"frozen": False, "frozen_at": None},
            "set_limit": {"daily_limit_kobo": operation["amount_kobo"]},
        }[kind]
        return self._change_profile(operation, changes, now)

    def _change_profile(self, operation: dict[str, Any], changes: dict[str, Any], now: datetime) -> Receipt:
        """Apply a non-money change once, marked by the op id in applied_ops."""
        user, op_id = operation["user"], operation["_id"]
        updated = self._db["profiles"].update_one(
            {"_id": user, "applied_ops": {"$ne": op_id}},
            {"$set": changes, "$push": {"applied_ops": op_id}},
        )
        if updated.matched_count == 0 and self._db["profiles"].find_one({"_id": user}, {"_id": 1}) is None:
            raise NotConnected("no bank is linked")
        return _receipt(operation, now, None)

    def _move_money(self, operation: dict[str, Any], now: datetime) -> Receipt:
        """ONE conditional update moves the money, counts it against the limit and records it."""
        user, op_id, amount = operation["user"], operation["_id"], operation["amount_kobo"]
        source, target = operation["source"], operation["params"].get("to_account")
        counts = target is None  # moves between own accounts do not count towards the limit
        day = _day_key(now)
        entry = _ledger_entry({**operation, "params": self._open_params(operation)}, now)
        for _ in range(_MAX_APPLY_ATTEMPTS):
            current = self._db["profiles"].find_one({"_id": user}, {"daily_limit_kobo": 1})
            if current is None:
                raise NotConnected("no bank is linked")
            limit = int(current["daily_limit_kobo"])
            where: dict[str, Any] = {
                "_id": user,
                "frozen": False,
                "applied_ops": {"$ne": op_id},
                f"accounts.{source}.balance_kobo": {"$gte": amount},
            }
            increments = {f"accounts.{source}.balance_kobo": -amount}
            if target is not None:
                increments[f"accounts.{target}.balance_kobo"] = amount
            if counts:
                where["daily_limit_kobo"] = limit
                where["$or"] = _within_limit(day, limit, amount)
                increments[f"spent.{day}"] = amount
            updated = self._db["profiles"].find_one_and_update(
                where,
                {"$inc": increments, "$push": {"ledger": entry, "applied_ops": op_id}},
                projection={"accounts": 1},
                return_document=ReturnDocument.AFTER,
            )
            if updated is not None:
                return _receipt(operation, now, int(updated["accounts"][source]["balance_kobo"]))
            already = self._why_not_moved(operation, day, counts)
            if already is not None:
                return already
        raise StorageError("the balance kept changing; please try again")

    def _why_not_moved(self, operation: dict[str, Any], day: str, counts: bool) -> Receipt | None:
        """Raise the reason the conditional update matched nothing; a receipt if it had already run."""
        user, op_id, amount = operation["user"], operation["_id"], operation["amount_kobo"]
        document = self._db["profiles"].find_one({"_id": user})
        if document is None:
            raise NotConnected("no bank is linked")
        if op_id in document.get("applied_ops", []):
            return self._receipt_from_ledger(user, op_id)
        if document.get("frozen"):
            raise AccountFrozen("your accounts were frozen before this could run")
        balance = int(document["accounts"][operation["source"]]["balance_kobo"])
        if balance < amount:
            raise InsufficientFunds(f"the balance is now {format_naira(balance)}", available_kobo=balance)
        limit = int(document["daily_limit_kobo"])
        spent = int(document.get("spent", {}).get(day, 0))
        if counts and spent + amount > limit:
            remaining = max(0, limit - spent)
            raise LimitExceeded(f"only {format_naira(remaining)} of today's limit is left",
                                remaining_kobo=remaining, limit_kobo=limit)
        return None  # a concurrent change (e.g. a new limit) raced us; try again

    def _receipt_from_ledger(self, user: str, op_id: str) -> Receipt | None:
        return _ledger_receipt(self._db["profiles"].find_one({"_id": user}, {"ledger": 1}), op_id)

    def _record_link(self, user: str, bank: str, token: str, now: datetime) -> None:
        """The provider token, sealed to this customer, and what the customer agreed to share."""
        sealed = self._keyring.encrypt_text(token, field_context("connections", user, "token"))
        self._db["connections"].replace_one(
            {"_id": user},
            {"_id": user, "provider": self._provider.name, "bank": bank, "token": sealed, "created_at": now},
            upsert=True,
        )
        self._db["consents"].insert_one({
            "user": user, "bank": bank, "provider": self._provider.name, "scopes": list(CONSENT_SCOPES),
            "granted_at": now, "revoked_at": None,
        })

    def _remove_link(self, user: str, keep_op: str | None = None) -> None:
        """Delete the profile first (so the user reads as disconnected), then what hung off it:
        the provider token is deleted and the consent marked revoked (the record is kept)."""
        self._db["profiles"].delete_one({"_id": user})
        self._db["connections"].delete_one({"_id": user})
        self._db["consents"].update_many({"user": user, "revoked_at": None}, {"$set": {"revoked_at": self._now()}})
        self._db["transactions"].delete_many({"user": user})
        self._db["operations"].update_many(
            {"user": user, "status": "pending", "_id": {"$ne": keep_op}},
            {"$set": {"status": "cancelled", "cancelled_at": self._now()}},
        )

    # ----------------------------------------------------------------- internals: plumbing

    def _profile_doc(self, user: str) -> dict[str, Any]:
        document = self._db["profiles"].find_one({"_id": user})
        if document is None:
            raise NotConnected("no bank is linked")
        return document

    def _transactions_in(self, user: str, profile_doc: dict[str, Any], period: Period) -> list[Transaction]:
        """Seeded history and executed movements inside ``period``, newest first."""
        seeded = self._db["transactions"].find(
            {"user": user, "posted_at": {"$gte": period.start, "$lt": period.end}})
        moved = (view for entry in profile_doc.get("ledger", []) for view in _ledger_views(entry))
        combined = [_transaction_from_doc(doc) for doc in seeded]
        combined += [t for t in moved if period.contains(t.posted_at)]
        return sorted(combined, key=lambda t: (t.posted_at, t.reference), reverse=True)

    def _insert_history(self, user: str, history: list[dict[str, Any]]) -> None:
        """Insert seeded transactions; duplicates from an interrupted earlier connect are fine."""
        if not history:
            return
        try:
            self._db["transactions"].insert_many([{**doc, "user": user} for doc in history], ordered=False)
        except BulkWriteError as error:
            if any(item.get("code") != 11000 for item in error.details.get("writeErrors", [])):
                raise

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
        if self._keys is None:
            self._keys = Keyring.from_env()
        return self._keys

    def _seal_params(self, op_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """The parameters as stored: account, meter and phone numbers sealed to this operation."""
        return {name: (self._keyring.encrypt_text(value, field_context("operations", op_id, f"params.{name}"))
                       if name in SEALED_PARAMS and isinstance(value, str) else value)
                for name, value in params.items()}

    def _open_params(self, operation: dict[str, Any]) -> dict[str, Any]:
        """The parameters in clear, to run the operation; one that no configured key opens cannot run."""
        opened = {}
        for name, value in operation["params"].items():
            if is_sealed(value):
                try:
                    value = self._keyring.decrypt_text(value, field_context("operations", operation["_id"],
                                                                            f"params.{name}"))
                except CryptoError as error:
                    logger.error("operation %s cannot be opened (%s); it is refused", operation["_id"],
                                 type(error).__name__)
                    raise ConfirmationExpired("that confirmation can no longer be read; please start again") from None
            opened[name] = value
        return opened

    def _now(self) -> datetime:
        """The clock in UTC, truncated to milliseconds as MongoDB stores it."""
        now = _aware(self._clock()).astimezone(timezone.utc)
        return now.replace(microsecond=now.microsecond // 1000 * 1000)


class _TransactionFilter:
    """One place that decides whether a transaction matches the customer's filters."""

    def __init__(self, merchant: str | None, direction: str | None, category: str | None,
                 min_kobo: int | None, max_kobo: int | None) -> None:
        self.merchant, self.direction, self.category = merchant, direction, category
        self.min_kobo, self.max_kobo = min_kobo, max_kobo

    def matches(self, transaction: Transaction) -> bool:
        return all((
            self.merchant is None or self.merchant in _merchant_key(transaction.merchant),
            self.direction is None or transaction.direction == self.direction,
            self.category is None or transaction.category == self.category,
            self.min_kobo is None or transaction.amount_kobo >= self.min_kobo,
            self.max_kobo is None or transaction.amount_kobo <= self.max_kobo,
        ))


# --------------------------------------------------------------------- pure helpers


def mask_reference(ref: str) -> str:
    """Meter, smartcard and biller references shown like account numbers: "******2345"."""
    return "******" + ref[-4:] if len(ref) > 4 else "******"


def _as_text(value: object) -> str:
    """Slots can hold lists or numbers; anything but a string is treated as nothing typed."""
    return value if isinstance(value, str) else ""


def _require_op_id(op_id: object) -> None:
    """Op ids come back from conversation slots; only a plain string may reach a query."""
    if not isinstance(op_id, str) or not op_id:
        raise NothingPending("there is nothing waiting for your confirmation")


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


def _account_type(profile: Profile, text: object) -> str:
    canonical = canonical_account_type(_as_text(text))
    if canonical is None or canonical not in {account.type for account in profile.accounts}:
        raise UnknownAccount("you have no account of that type")
    return canonical


def _require_funds(profile: Profile, source: str, amount_kobo: int) -> None:
    balance = profile.account(source).balance_kobo
    if balance < amount_kobo:
        raise InsufficientFunds(f"your {profile.account(source).name} balance is {format_naira(balance)}",
                                available_kobo=balance)


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
    key = " ".join(text.lower().split())
    found = key if key in CATEGORIES else _CATEGORY_SYNONYMS.get(key)
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


def _within_limit(day: str, limit: int, amount: int) -> list[dict[str, Any]]:
    """Filter clauses true when today's spent total plus ``amount`` stays within ``limit``.

    A missing total counts as zero only when the amount alone fits, so an amount
    above the whole limit never matches.
    """
    clauses: list[dict[str, Any]] = [{f"spent.{day}": {"$lte": limit - amount}}]
    if amount <= limit:
        clauses.append({f"spent.{day}": {"$exists": False}})
    return clauses


def _day_key(moment: datetime) -> str:
    """The Lagos calendar day the daily limit counts against."""
    return moment.astimezone(LAGOS).date().isoformat()


def _reference(op_id: str) -> str:
    return f"SBX-{op_id[:16].upper()}"


def _receipt(operation: dict[str, Any], now: datetime, new_balance: int | None) -> Receipt:
    return Receipt(
        op_id=operation["_id"], reference=_reference(operation["_id"]), kind=operation["kind"],
        amount_kobo=operation["amount_kobo"], source=operation["source"],
        destination_label=operation["destination_label"], new_balance_kobo=new_balance, executed_at=now,
    )


def _ledger_entry(operation: dict[str, Any], now: datetime) -> dict[str, Any]:
    """How an executed movement is recorded on the profile (no full account or phone number)."""
    kind, params = operation["kind"], operation["params"]
    target = params.get("to_account")
    if kind == "transfer" and target is not None:
        category, counterparty, narration = "savings", target.title(), f"TRF TO OWN {target.upper()} ACCOUNT"
    elif kind == "transfer":
        counterparty = params["holder_name"]
        category, narration = "transfers", f"NIP TRF TO {counterparty} {params['bank'].upper()}"
    elif kind == "bill":
        counterparty = params["biller"]
        category, narration = "bills", f"{counterparty.upper()} {mask_reference(params['customer_ref'])}"
    else:
        counterparty = params["network"]
        category, narration = "airtime", f"{counterparty.upper()} AIRTIME {mask_phone_number(params['phone'])}"
    return {
        "reference": _reference(operation["_id"]), "op_id": operation["_id"], "kind": kind,
        "account": operation["source"], "to_account": target, "amount_kobo": operation["amount_kobo"],
        "direction": "debit", "category": category, "merchant": counterparty, "narration": narration,
        "destination_label": operation["destination_label"], "posted_at": now,
    }


def _ledger_receipt(document: dict[str, Any] | None, op_id: str) -> Receipt | None:
    """The receipt of an operation from the profile's ledger, if it is there."""
    for entry in (document or {}).get("ledger", []):
        if entry["op_id"] == op_id:
            return Receipt(op_id=op_id, reference=entry["reference"], kind=entry["kind"],
                           amount_kobo=entry["amount_kobo"], source=entry["account"],
                           destination_label=entry["destination_label"], new_balance_kobo=None,
                           executed_at=_aware(entry["posted_at"]))
    return None


def _ledger_debit(entry: dict[str, Any]) -> Transaction:
    return Transaction(
        reference=entry["reference"], posted_at=_aware(entry["posted_at"]), amount_kobo=int(entry["amount_kobo"]),
        direction="debit", category=entry["category"], merchant=entry["merchant"],
        narration=entry["narration"], account=entry["account"],
    )


def _ledger_views(entry: dict[str, Any]) -> list[Transaction]:
    """A ledger entry as account statement lines: the debit, plus the credit side of an own-account move."""
    debit = _ledger_debit(entry)
    target = entry.get("to_account")
    if target is None:
        return [debit]
    credit = Transaction(
        reference=debit.reference, posted_at=debit.posted_at, amount_kobo=debit.amount_kobo,
        direction="credit", category=debit.category, merchant=entry["account"].title(),
        narration=f"TRF FROM OWN {entry['account'].upper()} ACCOUNT", account=target,
    )
    return [debit, credit]


def _transaction_from_doc(document: dict[str, Any]) -> Transaction:
    return Transaction(
        reference=document["_id"], posted_at=_aware(document["posted_at"]),
        amount_kobo=int(document["amount_kobo"]), direction=document["direction"],
        category=document["category"], merchant=document["merchant"],
        narration=document["narration"], account=document["account"],
    )


def _profile_from_doc(document: dict[str, Any]) -> Profile:
    accounts = document["accounts"]
    return Profile(
        user=document["_id"], bank=document["bank"], bank_code=document["bank_code"],
        connected_at=_aware(document["connected_at"]), frozen=bool(document["frozen"]),
        frozen_at=_aware(document["frozen_at"]) if document.get("frozen_at") else None,
        daily_limit_kobo=int(document["daily_limit_kobo"]),
        accounts=tuple(
            Account(type=kind, name=accounts[kind]["name"], number=mask_account_number(accounts[kind]["number"]),
                    balance_kobo=int(accounts[kind]["balance_kobo"]))
            for kind in ACCOUNT_ORDER if kind in accounts
        ),
    )


def _pending_from_doc(document: dict[str, Any]) -> PendingOperation:
    return PendingOperation(
        op_id=document["_id"], kind=document["kind"], amount_kobo=document["amount_kobo"],
        source=document["source"], destination_label=document["destination_label"],
        holder_name=document["holder_name"], expires_at=_aware(document["expires_at"]),
        fee_kobo=document.get("fee_kobo", 0),
    )


def _redact(text: str, limit: int = 300) -> str:
    """Mask digit runs that look like phone or account numbers, and cap the length."""
    masked = re.sub(r"\+?\d[\d\s-]{5,}\d", lambda m: "******" + re.sub(r"\D", "", m.group())[-4:], text)
    return masked[:limit]


def _aware(moment: datetime) -> datetime:
    """Stored datetimes come back naive or with the driver's own UTC tzinfo; give them plain UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
