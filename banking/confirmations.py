"""Confirmations: the life of an operation the customer must confirm with a YES.

Every money movement and every change to a security setting is first *held*
(``BankingService.prepare_*`` calls ``hold``) and runs only when the customer
confirms that very operation before it expires. Its document in ``operations``
goes through these states; each move is one conditional update of that document,
guarded by the state it leaves (and, for a move out of executing that says nothing
happened, by the claim it saw), so of two workers racing (a double tap, a replayed
YES) exactly one makes it::

    hold ──► pending ─── a newer hold for the same customer ──────────────► superseded
              │  ▲  ├─── cancel(reason: "customer" | "closed") ───────────► cancelled
              │  │  └─── expires_at passes (written on the next look) ────► expired
   YES, while │  │ released: the database failed and nothing took effect
   unexpired: │  │ (claimed again only under the same rule: while unexpired)
        claim ▼  │
           executing ─── refused by the checks made at execution ─────────► refused
              │  ├────── expired by the time of the effect ───────────────► expired
              │  └────── the claim lapsed (EXECUTION_LEASE: its worker died or lost the
              │          database); settled on the next look, or by settle_lapsed:
              │              took effect (op id in applied_ops) ──────────► executed
              │              did not, and expired: voided ────────────────► expired
              │              did not, unexpired: a YES reclaims it and runs it;
              │                                  a cancel voids it ───────► cancelled
              ▼
           executed ── result: the receipt; a scheduled unfreeze or raise has effective_at

A money movement paid at the provider (Mono DirectPay, ``ProviderPayments``) is not moved
here: its claim is checked the same way, its amount reserved against today's limit, and it
is handed to the provider under its op id as the reference, once::

           executing ─── started at the provider ─► at_provider ── the customer approves on the
                                                        │           provider's page (or not)
                          the provider's word, verified │ by reference (GET verify), never a
                          webhook's say-so:             ├── paid ─────────────────────────► executed
                                                        └── failed, abandoned, cancelled ─► failed
           failed ─── within LATE_PAYMENT_WINDOW the provider now says paid ─► executed (paid_after
                      "not_paid": today's spending takes it again; the customer is told once)
           A freeze or disconnect cannot stop a payment at_provider: it is flagged (audited), the
           customer is warned, and one paid afterwards is executed with paid_after "freeze"/"disconnect".
           executing ─── the provider refuses to start it but holds a payment under the reference
                         (ours, started before a failure kept us from recording it) ─► at_provider (recovered)

What it guarantees:

* At most once. The effect (``banking.customers``) is one conditional update of
  the customer document that requires the op id absent from ``applied_ops`` and
  pushes it there. A double tap, a concurrent YES or a replayed YES finds the op
  executing or executed and gets AlreadyExecuted, with the receipt once it ran.
* Never after it expired, on any path. The claim requires ``expires_at`` ahead;
  a released op is claimed again under the same rule; the claimed op is checked
  once more just before its effect; and an op whose claim lapsed is settled before
  anything else happens to it. "Voided" means its id is put in the customer
  document's ``voided_ops``, which every effect requires it to be absent from, so
  a worker that stalled past its lease cannot apply an op already settled as
  expired or cancelled. ``settle_lapsed`` settles all of a customer's at once.
* The customer is told the truth when the database fails mid-confirmation: the op
  is looked at again; had it taken effect, the customer gets the receipt and it is
  recorded; had it not, it is released to pending and the customer hears "nothing
  was moved, try again" (StorageError). If the database cannot even be asked, the
  customer gets OutcomeUnknown, and the lapsed claim is settled later.
* One open confirmation per customer: holding a new op supersedes the customer's
  older pending ones.

Each step is in the audit log (requested, confirmed, initiated, executed or scheduled,
refused, failed, cancelled, superseded, expired, reclaimed), with codes, never details.
At rest, params, destination_label, holder_name, the result and the provider's page
(payment_url) are sealed
(``banking.sealing``); amount_kobo stays a number.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeGuard

from pymongo import ReturnDocument
from pymongo.errors import PyMongoError

from banking.config import Settings
from banking.crypto import CryptoError
from banking.customers import MONEY_KINDS, AuditLog, Customers
from banking.errors import (
    AlreadyExecuted,
    BankingError,
    ConfirmationExpired,
    ConfirmationSuperseded,
    NothingPending,
    OutcomeUnknown,
    PaymentAtProvider,
    ProviderUnavailable,
    StorageError,
)
from banking.models import PendingOperation, ProviderPayment, Receipt, Settled, as_utc
from banking.sealing import Sealer

logger = logging.getLogger(__name__)

COLLECTION = "operations"
STATUSES = ("pending", "executing", "at_provider", "executed", "expired", "cancelled", "superseded", "refused",
            "failed")
# What a provider's verify may say of a payment that was not made and never will be.
UNPAID_STATUSES = frozenset({"failed", "abandoned", "cancelled", "canceled", "expired", "rejected", "declined"})
# Why a customer's pending confirmation was cancelled: they said so, or the conversation moved away from it.
CANCEL_REASONS = ("customer", "closed")
# How long a claimed operation may stay "executing" before it is settled, or a new YES picks it up again.
EXECUTION_LEASE = timedelta(minutes=2)
# How long after we recorded a provider payment as not paid the provider is still asked about it: a
# customer can come back to Mono's page, and a first verdict can be wrong. Paid then, it is executed.
LATE_PAYMENT_WINDOW = timedelta(days=2)
SEALED_TEXTS = ("destination_label", "holder_name")
_CLAIM_ATTEMPTS = 2


@dataclass(frozen=True)
class ProviderPayments:
    """How money movements are paid at the provider (Mono DirectPay). ``start`` hands the opened
    operation over under its op id as the reference and returns the provider's page for the
    customer; ``verify`` is the provider's word on a payment by that reference: (status, kobo); ``find``
    the same, or None when the provider holds no payment under it."""

    start: Callable[[dict[str, Any]], str]
    verify: Callable[[str], tuple[str, int | None]]
    # The payment the provider holds under a reference, (status, kobo, page or None); None when it holds none.
    find: Callable[[str], tuple[str, int | None, str | None] | None] | None = None


class Confirmations:
    """The state machine over ``operations``; the effects themselves are ``Customers``'."""

    def __init__(self, db: Any, customers: Customers, sealer: Sealer, settings: Settings,
                 now: Callable[[], datetime], audit: AuditLog, payments: ProviderPayments | None = None) -> None:
        self._db = db
        self._payments = payments
        self._customers = customers
        self._sealer = sealer
        self._settings = settings
        self._now = now
        self._audit = audit

    @property
    def _operations(self) -> Any:
        return self._db[COLLECTION]

    # ----------------------------------------------------------------- holding

    def hold(self, user: str, kind: str, amount_kobo: int, source: str | None, label: str, holder: str | None,
             params: dict[str, str], *, link_id: str, cooling_off: timedelta | None = None,
             source_label: str = "") -> PendingOperation:
        """Store a pending operation, audit the request, and supersede the customer's older pending ones."""
        now = self._now()
        op_id = uuid.uuid4().hex
        number = self._customers.next_hold_number(user)
        pending = PendingOperation(
            op_id=op_id, kind=kind, amount_kobo=amount_kobo, source=source, destination_label=label,
            holder_name=holder, expires_at=now + timedelta(seconds=self._settings.confirmation_ttl_seconds),
            cooling_off=cooling_off, source_label=source_label,
        )
        self._operations.insert_one({
            "_id": op_id, "user": user, "kind": kind, "amount_kobo": amount_kobo, "source": source,
            "source_label": source_label,
            "params": {name: self._sealer.seal(COLLECTION, op_id, f"params.{name}", value)
                       for name, value in params.items()},
            "destination_label": self._sealer.seal(COLLECTION, op_id, "destination_label", label),
            "holder_name": self._sealer.seal(COLLECTION, op_id, "holder_name", holder),
            "link_id": link_id,
            "cooling_off_seconds": int(cooling_off.total_seconds()) if cooling_off else None,
            "created_at": now, "hold": number, "expires_at": pending.expires_at, "status": "pending",
            "result": None,
        })
        self._audit(user, kind, "requested", op_id=op_id, amount_kobo=amount_kobo)
        self._supersede_older(user, op_id, number, now)
        return pending

    def close_pending(self, user: str, reason: str) -> None:
        """Cancel every pending operation of the customer (their bank was unlinked)."""
        for operation in self._operations.find({"user": user, "status": "pending"}, {"kind": 1, "amount_kobo": 1}):
            closed = self._operations.find_one_and_update(
                {"_id": operation["_id"], "status": "pending"},
                {"$set": {"status": "cancelled", "reason": reason, "closed_at": self._now()}})
            if closed is not None:
                self._audit(user, operation["kind"], "cancelled", op_id=operation["_id"], reason=reason,
                            amount_kobo=operation["amount_kobo"])

    # ----------------------------------------------------------------- reading

    def pending(self, user: str, op_id: object) -> PendingOperation | None:
        """The operation if it is this customer's, pending and unexpired; else None."""
        if not _is_op_id(op_id):
            return None
        found = self._operations.find_one(
            {"_id": op_id, "user": user, "status": "pending", "expires_at": {"$gt": self._now()}})
        return None if found is None else self._pending_from_doc(found)

    def latest_pending(self, user: str) -> PendingOperation | None:
        """The newest unexpired pending operation, for a bare "yes" when the op id was lost."""
        found = self._operations.find(
            {"user": user, "status": "pending", "expires_at": {"$gt": self._now()}},
            sort=[("hold", -1)], limit=1,
        )
        for document in found:
            return self._pending_from_doc(document)
        return None

    def status(self, user: str, op_id: object) -> str | None:
        """One of STATUSES, or None for an unknown op or another customer's; a pending op past expiry reads
        "expired" (a read changes nothing)."""
        if not _is_op_id(op_id):
            return None
        found = self._operations.find_one({"_id": op_id, "user": user}, {"status": 1, "expires_at": 1})
        if found is None:
            return None
        if found["status"] == "pending" and as_utc(found["expires_at"]) <= self._now():
            return "expired"
        return found["status"]

    def executed_receipt(self, user: str, op_id: object) -> Receipt | None:
        """The receipt of an executed operation of this customer; None when it is not executed."""
        if not _is_op_id(op_id):
            return None
        found = self._operations.find_one({"_id": op_id, "user": user, "status": "executed"})
        return None if found is None else self._result(found)

    # ----------------------------------------------------------------- transitions

    def confirm(self, user: str, op_id: object) -> Receipt | ProviderPayment:
        """Execute a pending operation at most once, never after it expired. A money movement paid at the
        provider comes back as a ProviderPayment waiting for the customer's approval there."""
        op_id = _require_op_id(op_id)
        now = self._now()
        claimed = self._claim(user, op_id, now)
        try:
            self._audit(user, claimed["kind"], "confirmed", op_id=op_id, amount_kobo=claimed["amount_kobo"])
            if self._payments is not None and claimed["kind"] in MONEY_KINDS:
                return self._hand_to_provider(claimed, now)
            receipt = self._execute(claimed, now)
        except ConfirmationExpired:
            self._close_claimed(claimed, "expired", None)
            raise
        except OutcomeUnknown:
            raise  # whether it took effect is not known: it stays executing until its claim lapses
        except BankingError as error:
            reason = getattr(error, "reason", None)
            self._close_claimed(claimed, "refused", f"provider_{reason}" if reason else error.code)
            raise
        except PyMongoError:
            found = self._effect_after_failure(claimed, now)
            if found is None:
                raise  # nothing moved: the customer is asked to try again
            receipt = found
        self._record_executed(claimed, receipt)
        logger.info("executed %s operation %s", claimed["kind"], op_id)
        return receipt

    def cancel(self, user: str, op_id: object, reason: str = "customer") -> None:
        """Drop a pending operation; AlreadyExecuted once it ran, ConfirmationExpired once it expired,
        NothingPending (or ConfirmationSuperseded) when there is nothing of that id to cancel."""
        op_id = _require_op_id(op_id)
        if reason not in CANCEL_REASONS:
            raise ValueError(f"a cancel reason is one of {', '.join(CANCEL_REASONS)}")
        now = self._now()
        for _ in range(_CLAIM_ATTEMPTS):
            cancelled = self._operations.find_one_and_update(
                {"_id": op_id, "user": user, "status": "pending", "expires_at": {"$gt": now}},
                {"$set": {"status": "cancelled", "reason": reason, "closed_at": now}})
            if cancelled is not None:
                self._audit(user, cancelled["kind"], "cancelled", op_id=op_id, reason=reason,
                            amount_kobo=cancelled["amount_kobo"])
                return
            lapsed = self._lapsed(user, op_id, now)
            if lapsed is None:
                self._explain_unclaimed(user, op_id, now)  # returns only when it is pending again
                continue
            self._raise_if_settled(lapsed, now)
            # Taken effect or not, a stalled worker may still hold it: void it first, then close it.
            if self._customers.void(user, op_id) and self._close_claimed(lapsed, "cancelled", reason):
                return
        raise StorageError("that confirmation is busy; please try again")

    def settle_lapsed(self, user: str) -> list[Settled]:
        """Settle every operation of the customer left executing past its lease: executed when it took
        effect, expired when it did not and has expired. One that did not and is still unexpired is left
        for the customer's YES (or cancel) and not listed."""
        now = self._now()
        lapsed = self._operations.find(
            {"user": user, "status": "executing", "claimed_at": {"$lte": now - EXECUTION_LEASE}},
            sort=[("created_at", 1)])
        settled = (self._settle(operation, now) for operation in lapsed)
        return [outcome for outcome, _ in filter(None, settled)]

    # ----------------------------------------------------------------- payments at the provider

    def settle_at_provider(self, user: str, op_id: object) -> ProviderPayment | None:
        """Settle a payment handed to the provider by the provider's own word on it (verify by reference),
        never by a webhook's say-so: executed once it is paid with the amount confirmed, failed once the
        provider says it was not paid, else still at the provider. Each way is recorded and audited once
        (``changed`` on the call that did it). None when the op is not this customer's provider payment."""
        if not _is_op_id(op_id) or self._payments is None:
            return None
        operation = self._operations.find_one({"_id": op_id, "user": user})
        if operation is None or "payment_url" not in operation:
            return None
        if operation["status"] == "failed" and self._may_be_paid_late(operation):
            return self._settle_late(operation)
        if operation["status"] != "at_provider":
            return self._payment_from_doc(operation)
        status, amount = self._payments.verify(op_id)
        if status == "successful" and amount in (None, operation["amount_kobo"]):
            return self._record_paid(operation)
        if status in UNPAID_STATUSES:
            return self._record_unpaid(operation, status)
        if status == "successful":
            logger.error("operation %s: the provider reports a payment of another amount; not settled", op_id)
            self._audit(user, operation["kind"], "verify_mismatch", op_id=op_id, reason="amount",
                        amount_kobo=operation["amount_kobo"])
        return self._payment_from_doc(operation)

    def settle_all_at_provider(self, user: str) -> list[ProviderPayment]:
        """Every payment of the customer still at the provider, settled as far as the provider can say now."""
        if self._payments is None:
            return []
        recently_unpaid = {"status": "failed", "payment_url": {"$exists": True},
                           "closed_at": {"$gte": self._now() - LATE_PAYMENT_WINDOW}}
        waiting = self._operations.find({"user": user, "$or": [{"status": "at_provider"}, recently_unpaid]},
                                        {"_id": 1}, sort=[("created_at", 1)])
        return [found for found in (self.settle_at_provider(user, doc["_id"]) for doc in waiting) if found]

    def payment_owner(self, op_id: object) -> str | None:
        """Whose provider payment this reference is (a provider's webhook names only the reference)."""
        if not _is_op_id(op_id):
            return None
        found = self._operations.find_one({"_id": op_id, "payment_url": {"$exists": True}}, {"user": 1})
        return None if found is None else str(found["user"])

    def _hand_to_provider(self, operation: dict[str, Any], now: datetime) -> ProviderPayment:
        """The YES of a payment made at the provider: the deadline checked once more, the amount reserved
        against today's limit (freeze and limit checked with it), then the payment started at the provider
        under the op id. Only this claim's worker gets here, so it is started at most once; a provider
        failure closes the claim as refused, which releases the reservation."""
        if self._now() >= as_utc(operation["expires_at"]):
            raise ConfirmationExpired("that confirmation has expired; please start again")
        assert self._payments is not None
        opened = self._with_params(operation)
        self._customers.reserve_payment(opened, now)
        try:
            url = self._payments.start(opened)
        except ProviderUnavailable as refused:
            if getattr(refused, "reason", None) != "refused":
                raise
            return self._adopt_started(operation, opened, refused)
        op_id = operation["_id"]
        handed = self._operations.update_one(
            {"_id": op_id, "status": "executing", "claim": operation.get("claim")},
            {"$set": {"status": "at_provider", "at_provider_at": now,
                      "payment_url": self._sealer.seal(COLLECTION, op_id, "payment_url", url)},
             "$unset": {"claim": ""}})
        if handed.modified_count == 1:
            self._audit(operation["user"], operation["kind"], "initiated", op_id=op_id,
                        amount_kobo=operation["amount_kobo"])
        logger.info("%s operation %s is waiting for the customer's approval at the provider", operation["kind"], op_id)
        return _payment(opened, "at_provider", url=url)

    def _adopt_started(self, operation: dict[str, Any], opened: dict[str, Any],
                       refused: ProviderUnavailable) -> ProviderPayment:
        """The provider refused to start the payment: if it already holds one under our reference, that is
        ours, started before a failure kept us from recording it (e.g. the action server died just after
        the provider accepted it), so it is recorded as at the provider now and settled by what the
        provider says of it; only a refusal for a payment the provider does not hold stays a refusal."""
        assert self._payments is not None
        op_id = operation["_id"]
        if self._payments.find is None:
            raise refused
        try:
            found = self._payments.find(op_id)
        except ProviderUnavailable as failure:
            logger.warning("operation %s: the provider refused it and cannot be asked whether it holds it (%s)",
                           op_id, type(failure).__name__)
            raise OutcomeUnknown("the bank could not tell us whether this payment was started; check your "
                                 "balance before trying again") from failure
        if found is None:
            raise refused
        status, _, url = found
        adopted = self._operations.find_one_and_update(
            {"_id": op_id, "status": "executing", "claim": operation.get("claim")},
            {"$set": {"status": "at_provider", "at_provider_at": self._now(), "recovered": True,
                      "payment_url": self._sealer.seal(COLLECTION, op_id, "payment_url", url)},
             "$unset": {"claim": ""}}, return_document=ReturnDocument.AFTER)
        if adopted is None:
            current = self._operations.find_one({"_id": op_id})
            return self._payment_from_doc(current) if current is not None else _payment(opened, "at_provider")
        logger.warning("operation %s was already started at the provider before a failure; recorded now", op_id)
        self._audit(operation["user"], operation["kind"], "initiated", op_id=op_id, reason="recovered",
                    amount_kobo=operation["amount_kobo"])
        if status == "successful" or status in UNPAID_STATUSES:
            return self.settle_at_provider(operation["user"], op_id) or _payment(opened, "at_provider", url=url)
        return _payment(opened, "at_provider", url=url)

    def _record_paid(self, operation: dict[str, Any]) -> ProviderPayment:
        now = self._now()
        opened = self._with_params(operation)
        receipt = self._customers.record_provider_payment(opened, now)
        op_id = operation["_id"]
        result = self._sealer.seal_json(COLLECTION, op_id, "result", receipt.to_document())
        recorded = self._operations.find_one_and_update(
            {"_id": op_id, "status": "at_provider"},
            {"$set": {"status": "executed", "result": result, "closed_at": now}},
            projection={"flagged": 1}, return_document=ReturnDocument.AFTER)
        changed = recorded is not None
        # paid on the provider's page after the customer froze their accounts or disconnected the bank
        paid_after = (recorded or {}).get("flagged") or operation.get("flagged")
        if changed:
            if paid_after:
                self._operations.update_one({"_id": op_id}, {"$set": {"paid_after": paid_after}})
            self._audit(operation["user"], operation["kind"], "executed", op_id=op_id,
                        reason=f"paid_after_{paid_after}" if paid_after else None,
                        amount_kobo=operation["amount_kobo"])
            logger.info("%s operation %s was paid at the provider (verified)", operation["kind"], op_id)
        return _payment(opened, "executed", receipt=receipt, changed=changed, paid_after=paid_after)

    def _may_be_paid_late(self, operation: dict[str, Any]) -> bool:
        """A payment we recorded as not paid, recently enough that the provider may still report it paid
        (a customer who came back to Mono's page; a webhook or verify that was wrong first)."""
        closed = operation.get("closed_at")
        return (operation.get("reason") in UNPAID_STATUSES and closed is not None
                and self._now() - as_utc(closed) <= LATE_PAYMENT_WINDOW)

    def _settle_late(self, operation: dict[str, Any]) -> ProviderPayment:
        """Asks the provider again about a payment recorded as not paid: when it now says paid with that
        amount, the money has moved, so it is recorded as executed (today's spending takes it again, in
        the same update as the ledger), audited, and ``changed`` tells the customer the truth once."""
        assert self._payments is not None
        op_id, user = operation["_id"], operation["user"]
        status, amount = self._payments.verify(op_id)
        if status != "successful":
            return self._payment_from_doc(operation)
        if amount not in (None, operation["amount_kobo"]):
            logger.error("operation %s: the provider reports a payment of another amount; not settled", op_id)
            self._audit(user, operation["kind"], "verify_mismatch", op_id=op_id, reason="amount",
                        amount_kobo=operation["amount_kobo"])
            return self._payment_from_doc(operation)
        now = self._now()
        opened = self._with_params(operation)
        receipt = self._customers.record_provider_payment(opened, now, count_again=True)
        result = self._sealer.seal_json(COLLECTION, op_id, "result", receipt.to_document())
        recorded = self._operations.update_one(
            {"_id": op_id, "status": "failed"},
            {"$set": {"status": "executed", "result": result, "closed_at": now, "paid_after": "not_paid"}})
        changed = recorded.modified_count == 1
        if changed:
            self._audit(user, operation["kind"], "executed", op_id=op_id, reason="paid_after_not_paid",
                        amount_kobo=operation["amount_kobo"])
            logger.warning("%s operation %s was recorded as not paid, and the provider now confirms it paid; "
                           "recorded as executed", operation["kind"], op_id)
        return _payment(opened, "executed", receipt=receipt, changed=changed, paid_after="not_paid")

    def _record_unpaid(self, operation: dict[str, Any], status: str) -> ProviderPayment:
        op_id, user = operation["_id"], operation["user"]
        closed = self._operations.update_one(
            {"_id": op_id, "status": "at_provider"},
            {"$set": {"status": "failed", "reason": status, "closed_at": self._now()}})
        changed = closed.modified_count == 1
        if changed:
            self._customers.release_reservation(user, op_id)
            self._audit(user, operation["kind"], "failed", op_id=op_id, reason=status,
                        amount_kobo=operation["amount_kobo"])
        return _payment(self._with_texts(operation), "failed", reason=status, changed=changed)

    def _payment_from_doc(self, operation: dict[str, Any]) -> ProviderPayment:
        """A provider payment as it stands in the database (no call to the provider)."""
        opened = self._with_texts(operation)
        url = self._sealer.open(COLLECTION, operation["_id"], "payment_url", operation.get("payment_url"))
        status = operation["status"]
        return _payment(opened, status, url=url if status == "at_provider" else None,
                        reason=operation.get("reason") if status == "failed" else None,
                        receipt=self._result(operation) if status == "executed" else None,
                        paid_after=operation.get("paid_after"))

    # ----------------------------------------------------------------- internals: claiming

    def _claim(self, user: str, op_id: str, now: datetime) -> dict[str, Any]:
        """pending -> executing for this attempt (or a lapsed claim settled or taken over); else raise why not."""
        for _ in range(_CLAIM_ATTEMPTS):
            claim = uuid.uuid4().hex  # names this attempt, so a failure can release exactly its own claim
            try:
                claimed = self._operations.find_one_and_update(
                    {"_id": op_id, "user": user, "status": "pending", "expires_at": {"$gt": now}},
                    {"$set": {"status": "executing", "claimed_at": now, "claim": claim}},
                    return_document=ReturnDocument.AFTER,
                )
            except PyMongoError:
                self._release_claim(op_id, claim)  # the claim may have been written before the reply was lost
                raise
            if claimed is None:
                claimed = self._reclaim_lapsed(user, op_id, now)
            if claimed is not None:
                return claimed
            self._explain_unclaimed(user, op_id, now)  # returns only when it is pending and claimable again
        raise StorageError("that confirmation is busy; please try again")

    def _explain_unclaimed(self, user: str, op_id: str, now: datetime) -> None:
        """Raise the reason an operation could not be claimed or cancelled; return when it is pending and
        unexpired again (a failed attempt released it meanwhile)."""
        operation = self._operations.find_one({"_id": op_id, "user": user})
        status = None if operation is None else operation["status"]
        if status == "executed":
            raise AlreadyExecuted("this was already done", receipt=self._result(operation))
        if status == "executing":
            raise AlreadyExecuted("this is already being done", receipt=self._customers.ledger_receipt(user, op_id))
        if status == "at_provider":
            raise PaymentAtProvider("this payment is waiting for your approval on the bank's page",
                                    payment=self._payment_from_doc(operation))
        if status == "pending" and as_utc(operation["expires_at"]) > now:
            return
        if status == "pending":
            self._expire_pending(operation, now)
        if status in ("pending", "expired"):
            raise ConfirmationExpired("that confirmation has expired; please start again")
        if status == "superseded":
            raise ConfirmationSuperseded("that confirmation was replaced by a newer request")
        raise NothingPending("there is nothing waiting for your confirmation")

    def _lapsed(self, user: str, op_id: str, now: datetime) -> dict[str, Any] | None:
        return self._operations.find_one(
            {"_id": op_id, "user": user, "status": "executing", "claimed_at": {"$lte": now - EXECUTION_LEASE}})

    def _reclaim_lapsed(self, user: str, op_id: str, now: datetime) -> dict[str, Any] | None:
        """An operation left executing past its lease is settled first; only one that did not take effect
        and has not expired is claimed anew (``applied_ops`` still keeps the money from moving twice)."""
        lapsed = self._lapsed(user, op_id, now)
        if lapsed is None:
            return None
        self._raise_if_settled(lapsed, now)
        reclaimed = self._operations.find_one_and_update(
            {"_id": op_id, "status": "executing", "claim": lapsed.get("claim")},
            {"$set": {"claimed_at": now, "claim": uuid.uuid4().hex}},
            return_document=ReturnDocument.AFTER,
        )
        if reclaimed is not None:
            logger.warning("operation %s was left executing; picking it up again", op_id)
            self._audit(user, lapsed["kind"], "reclaimed", op_id=op_id, amount_kobo=lapsed["amount_kobo"])
        return reclaimed

    def _raise_if_settled(self, lapsed: dict[str, Any], now: datetime) -> None:
        """Settle a lapsed claim; AlreadyExecuted (with the receipt) or ConfirmationExpired if that decided it."""
        settled = self._settle(lapsed, now)
        if settled is None:
            return
        outcome, receipt = settled
        if outcome.outcome == "executed":
            raise AlreadyExecuted("this was already done", receipt=receipt)
        raise ConfirmationExpired("that confirmation has expired; please start again")

    def _settle(self, operation: dict[str, Any], now: datetime) -> tuple[Settled, Receipt | None] | None:
        """Decide a lapsed claim: executed if it took effect, expired (voided) if it did not and has expired;
        None when it did not and may still run."""
        user, op_id = operation["user"], operation["_id"]
        opened = self._with_texts(operation)
        try:
            receipt = self._customers.applied_receipt(opened, now)
            voided = False
        except ConfirmationExpired:
            receipt, voided = None, True  # already voided: someone settled it and was cut short
        if receipt is None and not voided:
            if now < as_utc(operation["expires_at"]):
                return None
            if not self._customers.void(user, op_id):  # it took effect between the look and the fence
                receipt = self._customers.applied_receipt(opened, now)
        if receipt is not None:
            self._record_executed(operation, receipt, reason="settled")
            return _settled(opened, "executed", receipt.reference), receipt
        self._close_claimed(operation, "expired", "claim_lapsed")
        return _settled(opened, "expired", None), None

    # ----------------------------------------------------------------- internals: executing

    def _execute(self, operation: dict[str, Any], now: datetime) -> Receipt:
        """Check the deadline once more, then apply the effect of the operation's kind."""
        if self._now() >= as_utc(operation["expires_at"]):
            raise ConfirmationExpired("that confirmation has expired; please start again")
        opened = self._with_params(operation)
        kind = opened["kind"]
        if kind in MONEY_KINDS:
            return self._customers.move_money(opened, now)
        effect = {
            "freeze": self._customers.freeze,
            "unfreeze": self._customers.unfreeze,
            "set_limit": self._customers.set_limit,
            "disconnect": self._customers.disconnect,
        }[kind]
        return effect(opened, now)

    def _effect_after_failure(self, operation: dict[str, Any], now: datetime) -> Receipt | None:
        """The database failed mid-confirmation: the receipt if the operation took effect, else None after
        putting it back to pending, so what the customer is told is true either way; OutcomeUnknown when
        the database cannot even be asked."""
        op_id = operation["_id"]
        try:
            receipt = self._customers.applied_receipt(self._with_texts(operation), now)
        except PyMongoError as error:
            logger.error("operation %s: the database failed mid-confirmation and cannot tell whether it ran (%s); "
                         "it stays executing until its claim lapses", op_id, type(error).__name__)
            raise OutcomeUnknown("the bank's records could not be reached to see whether this went through; "
                                 "check your balance before trying again") from error
        if receipt is None:
            self._release_claim(op_id, operation["claim"])
            logger.warning("operation %s did not run (database failure); it is pending again", op_id)
            return None
        logger.warning("operation %s ran before the database failed; recording its result", op_id)
        return receipt

    def _release_claim(self, op_id: str, claim: str) -> None:
        """Put an operation this attempt claimed, and did not run, back to pending (best effort)."""
        try:
            self._operations.update_one(
                {"_id": op_id, "status": "executing", "claim": claim},
                {"$set": {"status": "pending"}, "$unset": {"claimed_at": "", "claim": ""}})
        except PyMongoError as error:
            logger.error("operation %s could not be released after a database failure (%s); it stays executing "
                         "until its claim lapses (%d s)", op_id, type(error).__name__,
                         EXECUTION_LEASE.total_seconds())

    def _record_executed(self, operation: dict[str, Any], receipt: Receipt, reason: str | None = None) -> None:
        """Store the sealed result and audit it (executed, or scheduled for a change that waits out its
        cooling-off). A database failure here is retried once, then logged: the effect has happened, so
        the customer still gets the receipt, and a later look at the op finds it applied."""
        user, op_id, kind = operation["user"], operation["_id"], operation["kind"]
        outcome = "scheduled" if receipt.effective_at is not None else "executed"
        result = self._sealer.seal_json(COLLECTION, op_id, "result", receipt.to_document())
        for attempt in (1, 2):
            try:
                recorded = self._operations.update_one(
                    {"_id": op_id, "status": "executing"},
                    {"$set": {"status": "executed", "result": result, "closed_at": self._now()},
                     "$unset": {"claim": ""}})
                if recorded.modified_count == 1 or (attempt == 2 and self._db["audit"].find_one(
                        {"user": user, "op_id": op_id, "outcome": outcome}, {"_id": 1}) is None):
                    self._audit(user, kind, outcome, op_id=op_id, reason=reason, amount_kobo=operation["amount_kobo"])
                break
            except PyMongoError as error:
                failure = error
        else:
            logger.error("operation %s ran, but its result could not be recorded (%s)", op_id,
                         type(failure).__name__)
        if kind in ("freeze", "disconnect"):
            self._flag_waiting_payments(user, kind)
        if kind == "disconnect":
            self._finish_disconnect(user)

    def _flag_waiting_payments(self, user: str, kind: str) -> None:
        """A freeze or disconnect cannot stop a payment already waiting on the provider's page (Mono has
        no documented cancel for it): each is flagged and audited, so the customer is warned now
        (``waiting_payments``) and told the truth if the provider reports it paid afterwards."""
        try:
            for waiting in self._operations.find({"user": user, "status": "at_provider", "flagged": {"$exists": False}},
                                                 {"kind": 1, "amount_kobo": 1}):
                flagged = self._operations.update_one(
                    {"_id": waiting["_id"], "status": "at_provider", "flagged": {"$exists": False}},
                    {"$set": {"flagged": kind, "flagged_at": self._now()}})
                if flagged.modified_count == 1:
                    self._audit(user, waiting["kind"], "flagged", op_id=waiting["_id"], reason=kind,
                                amount_kobo=waiting["amount_kobo"])
                    logger.warning("%s operation %s is still waiting at the provider after a %s",
                                   waiting["kind"], waiting["_id"], kind)
        except PyMongoError as error:
            logger.error("a %s ran, but payments waiting at the provider could not be flagged (%s)", kind,
                         type(error).__name__)

    def waiting_payments(self, user: str) -> list[ProviderPayment]:
        """The customer's payments still waiting for approval on the provider's page, as recorded here."""
        waiting = self._operations.find({"user": user, "status": "at_provider"}, sort=[("created_at", 1)])
        return [self._payment_from_doc(operation) for operation in waiting]

    def _finish_disconnect(self, user: str) -> None:
        """What an executed disconnect leaves to the state machine, on whichever path recorded it: nothing
        else stays pending, and the link's records are gone (both safe to repeat; best effort)."""
        try:
            self.close_pending(user, "disconnected")
            self._customers.drop_link_records(user)
        except PyMongoError as error:
            logger.error("a disconnect ran, but what hung off the link could not all be removed (%s)",
                         type(error).__name__)

    # ----------------------------------------------------------------- internals: closing

    def _close_claimed(self, operation: dict[str, Any], status: str, reason: str | None) -> bool:
        """executing -> a final state, only while the claim is the one this worker saw; audited once."""
        closed = self._operations.update_one(
            {"_id": operation["_id"], "status": "executing", "claim": operation.get("claim")},
            {"$set": {"status": status, "reason": reason, "closed_at": self._now()}, "$unset": {"claim": ""}})
        if closed.modified_count == 1:
            if self._payments is not None and operation["kind"] in MONEY_KINDS:
                self._customers.release_reservation(operation["user"], operation["_id"])
            self._audit(operation["user"], operation["kind"], status, op_id=operation["_id"], reason=reason,
                        amount_kobo=operation["amount_kobo"])
        return closed.modified_count == 1

    def _expire_pending(self, operation: dict[str, Any], now: datetime) -> None:
        expired = self._operations.update_one(
            {"_id": operation["_id"], "status": "pending", "expires_at": {"$lte": now}},
            {"$set": {"status": "expired", "closed_at": now}})
        if expired.modified_count == 1:
            self._audit(operation["user"], operation["kind"], "expired", op_id=operation["_id"],
                        amount_kobo=operation["amount_kobo"])

    def _supersede_older(self, user: str, op_id: str, number: int, now: datetime) -> None:
        """Only the newest hold stays open; the hold number decides between two made at once."""
        older = self._operations.find(
            {"user": user, "status": "pending", "expires_at": {"$gt": now}, "hold": {"$lt": number}},
            {"kind": 1, "amount_kobo": 1})
        for operation in older:
            superseded = self._operations.find_one_and_update(
                {"_id": operation["_id"], "status": "pending"},
                {"$set": {"status": "superseded", "reason": "newer_request", "superseded_by": op_id,
                          "closed_at": now}})
            if superseded is not None:
                self._audit(user, operation["kind"], "superseded", op_id=operation["_id"], reason="newer_request",
                            amount_kobo=operation["amount_kobo"])

    # ----------------------------------------------------------------- internals: sealed fields

    def _with_texts(self, operation: dict[str, Any]) -> dict[str, Any]:
        """The operation with its label and holder name opened (for receipts and answers)."""
        op_id = operation["_id"]
        return {**operation, **{name: self._sealer.open(COLLECTION, op_id, name, operation.get(name))
                                for name in SEALED_TEXTS}}

    def _with_params(self, operation: dict[str, Any]) -> dict[str, Any]:
        """The operation opened to run it; one that no configured key opens cannot run."""
        op_id = operation["_id"]
        try:
            params = {name: self._sealer.open_strict(COLLECTION, op_id, f"params.{name}", value)
                      for name, value in operation["params"].items()}
        except CryptoError as error:
            logger.error("operation %s cannot be opened (%s); it is refused", op_id, type(error).__name__)
            raise ConfirmationExpired("that confirmation can no longer be read; please start again") from None
        return {**self._with_texts(operation), "params": params}

    def _result(self, operation: dict[str, Any]) -> Receipt | None:
        """The stored receipt of an executed operation (else the ledger's, if its result is lost)."""
        result = operation.get("result")
        try:
            if isinstance(result, str):
                return Receipt.from_document(self._sealer.open_json(COLLECTION, operation["_id"], "result", result))
            if isinstance(result, dict):
                return Receipt.from_document(result)  # stored before results were sealed
        except CryptoError as error:
            logger.error("the result of operation %s cannot be opened (%s)", operation["_id"], type(error).__name__)
        return self._customers.ledger_receipt(operation["user"], operation["_id"])

    def _pending_from_doc(self, document: dict[str, Any]) -> PendingOperation:
        opened = self._with_texts(document)
        seconds = document.get("cooling_off_seconds")
        return PendingOperation(
            op_id=document["_id"], kind=document["kind"], amount_kobo=document["amount_kobo"],
            source=document["source"], destination_label=opened["destination_label"],
            holder_name=opened["holder_name"], expires_at=as_utc(document["expires_at"]),
            cooling_off=timedelta(seconds=seconds) if seconds else None,
            source_label=document.get("source_label") or "",
        )


def _settled(operation: dict[str, Any], outcome: str, reference: str | None) -> Settled:
    return Settled(op_id=operation["_id"], kind=operation["kind"], amount_kobo=operation["amount_kobo"],
                   destination_label=operation["destination_label"], outcome=outcome, reference=reference)


def _payment(operation: dict[str, Any], status: str, *, url: str | None = None, reason: str | None = None,
             receipt: Receipt | None = None, changed: bool = False, paid_after: str | None = None) -> ProviderPayment:
    return ProviderPayment(op_id=operation["_id"], kind=operation["kind"], amount_kobo=operation["amount_kobo"],
                           source=operation["source"], destination_label=operation["destination_label"],
                           status=status, url=url, reason=reason, receipt=receipt, changed=changed,
                           paid_after=paid_after, source_label=operation.get("source_label") or "")


def _is_op_id(op_id: object) -> TypeGuard[str]:
    """Op ids come back from conversation slots; only a plain string may reach a query."""
    return isinstance(op_id, str) and bool(op_id)


def _require_op_id(op_id: object) -> str:
    if not _is_op_id(op_id):
        raise NothingPending("there is nothing waiting for your confirmation")
    return op_id
