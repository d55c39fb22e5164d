"""The customer document: a customer's own controls, and the bank link hanging off it.

One document per customer in ``profiles``, keyed by the hashed user id::

    _id, created_at
    frozen, frozen_at, daily_limit_kobo      the customer's controls: they outlive every bank link
    spent: {<Lagos day>: kobo}               outgoing payments counted against the daily limit
    holds                                    how many operations were held (orders them; see next_hold_number)
    applied_ops: [op id]                     operations that took effect, each at most once
    voided_ops: [op id]                      claimed operations settled as never to take effect
    reserved: {<op id>: {day, amount_kobo}}  payments handed to the provider (Mono DirectPay) and not
                                             settled yet: counted in ``spent`` until paid or released
    scheduled: {unfreeze: {op_id, effective_at},
                raise_limit: {op_id, effective_at, new_limit_kobo}}
    link: {id, bank, bank_code, connected_at,           present exactly while a bank is linked
           accounts: {<type>: {name, number (masked), balance_kobo}},
           ledger: {<op id>: movement}}      texts sealed, see banking.sealing

Why one document: MongoDB is atomic per document, so a money movement checks and
changes the balance, the ledger, today's spent total, the limit, the freeze, the
applied marker and the void marker in ONE conditional update, and a freeze or a
new limit confirmed meanwhile is either seen by it or waits for it. Unlinking
removes ``link`` (accounts and ledger with it) and keeps the rest, so freezing,
unlinking and linking again, to this bank or another, neither lifts the freeze,
resets the limit, nor forgets today's spending. The link's records elsewhere (the
provider token, the consent, the imported history) go with the link.

Cooling-off: freezing and lowering the limit act at once. Unfreezing and raising
the limit are *scheduled* ``Settings.cooling_off`` after the YES and applied
lazily: every read of the document (``current``) first applies a change that has
come due, in a conditional update naming it, and a money movement reads the
document that way before its own update, so a due unfreeze is honoured and an
undue one never is. Freezing again cancels a scheduled unfreeze; a new limit that
is no raise cancels a scheduled raise; a second unfreeze or raise while one is
scheduled is refused (ChangeAlreadyScheduled), never silently replaced. The audit
log has each step: ``scheduled`` (the confirmation's own outcome), ``applied`` and
``schedule_cancelled``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from banking.config import Settings
from banking.errors import (
    AccountFrozen,
    ChangeAlreadyScheduled,
    ConfirmationExpired,
    InsufficientFunds,
    LimitExceeded,
    NotConnected,
    NotFrozen,
    StorageError,
)
from banking.models import ACCOUNT_ORDER, Account, LimitStatus, Profile, Receipt, ScheduledChange, Transaction, as_utc
from banking.money import format_money, format_naira, mask_account_number
from banking.periods import LAGOS
from banking.phone import mask_phone_number
from banking.sealing import Sealer

COLLECTION = "profiles"
MONEY_KINDS = frozenset({"transfer", "bill", "airtime"})
MAX_APPLY_ATTEMPTS = 3
LEDGER_TEXTS = ("merchant", "narration", "destination_label")
# The operation kind (audit action) behind each kind of scheduled change.
SCHEDULED_ACTIONS = {"unfreeze": "unfreeze", "raise_limit": "set_limit"}

AuditLog = Callable[..., None]


class Customers:
    """Reads and changes customer documents; every change is one conditional single-document update."""

    def __init__(self, db: Any, sealer: Sealer, settings: Settings, now: Callable[[], datetime],
                 audit: AuditLog, revoke: Callable[[str], None] | None = None) -> None:
        self._db = db
        self._revoke = revoke  # unlinks at the provider before the token is deleted (Mono, Plaid)
        self._sealer = sealer
        self._settings = settings
        self._now = now
        self._audit = audit

    @property
    def _profiles(self) -> Any:
        return self._db[COLLECTION]

    # ----------------------------------------------------------------- reading

    def current(self, user: str) -> dict[str, Any] | None:
        """The customer's document with every change that has come due applied first; None for a stranger."""
        document = self._profiles.find_one({"_id": user})
        if document is not None and self._apply_due(document):
            document = self._profiles.find_one({"_id": user})
        return document

    def connected(self, user: str) -> dict[str, Any]:
        """The current document of a customer with a bank linked; NotConnected otherwise."""
        document = self.current(user)
        if document is None or "link" not in document:
            raise NotConnected("no bank is linked")
        return document

    def next_hold_number(self, user: str) -> int:
        """A number per customer that grows with each held operation: orders holds made in the same instant."""
        counted = self._profiles.find_one_and_update({"_id": user}, {"$inc": {"holds": 1}}, projection={"holds": 1},
                                                     return_document=ReturnDocument.AFTER)
        if counted is None:
            raise NotConnected("no bank is linked")
        return int(counted["holds"])

    def is_connected(self, user: str) -> bool:
        return self._profiles.find_one({"_id": user, "link": {"$exists": True}}, {"_id": 1}) is not None

    def scheduled_changes(self, user: str) -> list[ScheduledChange]:
        return scheduled_changes(self.current(user))

    def cancel_scheduled_changes(self, user: str, reason: str = "customer") -> list[ScheduledChange]:
        """Drop every change still waiting out its cooling-off; what was dropped, soonest first."""
        document = self.current(user)
        cancelled = []
        for key, entry in sorted((document or {}).get("scheduled", {}).items()):
            if self._unschedule(user, key, entry, reason):
                cancelled.append(_scheduled_change(key, entry))
        return sorted(cancelled, key=lambda change: change.effective_at)

    def ledger_transactions(self, document: dict[str, Any]) -> list[Transaction]:
        """The link's executed movements as statement lines (both sides of a move between own accounts)."""
        user = document["_id"]
        entries = document.get("link", {}).get("ledger", {}).values()
        return [view for entry in entries for view in _ledger_views(self._open_entry(user, entry))]

    def ledger_receipt(self, user: str, op_id: str) -> Receipt | None:
        """The receipt of a movement from the link's ledger, if it is there."""
        document = self._profiles.find_one({"_id": user}, {f"link.ledger.{op_id}": 1})
        entry = (document or {}).get("link", {}).get("ledger", {}).get(op_id)
        if entry is None:
            return None
        entry = self._open_entry(user, entry)
        return Receipt(op_id=op_id, reference=entry["reference"], kind=entry["kind"],
                       amount_kobo=entry["amount_kobo"], source=entry["account"],
                       destination_label=entry["destination_label"], new_balance_kobo=None,
                       executed_at=as_utc(entry["posted_at"]), source_label=entry.get("account_label") or "")

    # ----------------------------------------------------------------- linking

    def attach_link(self, user: str, link: dict[str, Any], now: datetime) -> bool:
        """Link a bank, creating the customer on their first link; False when a bank is already linked."""
        try:
            self._profiles.insert_one({
                "_id": user, "created_at": now, "frozen": False, "frozen_at": None,
                "daily_limit_kobo": self._settings.daily_transfer_limit_kobo, "spent": {},
                "applied_ops": [], "voided_ops": [], "scheduled": {}, "link": link,
            })
            return True
        except DuplicateKeyError:
            pass  # a returning customer: their controls stay as they are
        attached = self._profiles.update_one({"_id": user, "link": {"$exists": False}}, {"$set": {"link": link}})
        return attached.matched_count == 1

    def detach_link(self, user: str) -> bool:
        """Unlink at once (no confirmation); False when no bank was linked."""
        return self._profiles.update_one(
            {"_id": user, "link": {"$exists": True}}, {"$unset": {"link": ""}}).matched_count == 1

    def drop_link_records(self, user: str) -> None:
        """What hung off a link, once it is gone: the token is deleted, the consent marked revoked (the
        record stays) and the imported history deleted. Safe to repeat."""
        if self._revoke is not None:
            self._revoke(user)
        self._db["connections"].delete_one({"_id": user})
        self._db["consents"].update_many({"user": user, "revoked_at": None}, {"$set": {"revoked_at": self._now()}})
        self._db["transactions"].delete_many({"user": user})

    # ----------------------------------------------------------------- effects of confirmed operations
    # Each takes the claimed operation with its texts and params opened, applies it at most once
    # (marking it in applied_ops in the same update), and returns the receipt.

    def move_money(self, operation: dict[str, Any], now: datetime) -> Receipt:
        """ONE conditional update moves the money, counts it against the limit and records it."""
        user, op_id, amount = operation["user"], operation["_id"], operation["amount_kobo"]
        source, target = operation["source"], operation["params"].get("to_account")
        counts = target is None  # moves between own accounts do not count towards the limit
        day = day_key(now)
        entry = self._ledger_entry(operation, now)
        for _ in range(MAX_APPLY_ATTEMPTS):
            document = self.current(user)  # a due unfreeze or raise is applied before the checks below
            if document is None:
                raise NotConnected("no bank is linked")
            limit = int(document["daily_limit_kobo"])
            where: dict[str, Any] = {
                **_unapplied(user, op_id), "frozen": False, **_same_link(operation),
                f"link.accounts.{source}.balance_kobo": {"$gte": amount},
            }
            increments = {f"link.accounts.{source}.balance_kobo": -amount}
            if target is not None:
                increments[f"link.accounts.{target}.balance_kobo"] = amount
            if counts:
                where["daily_limit_kobo"] = limit
                where["$or"] = _within_limit(day, limit, amount)
                increments[f"spent.{day}"] = amount
            updated = self._profiles.find_one_and_update(
                where,
                {"$inc": increments, "$set": {f"link.ledger.{op_id}": entry}, "$push": {"applied_ops": op_id}},
                projection={f"link.accounts.{source}": 1},
                return_document=ReturnDocument.AFTER,
            )
            if updated is not None:
                return receipt(operation, now, int(updated["link"]["accounts"][source]["balance_kobo"]))
            already = self._why_not_moved(operation, day, counts, now)
            if already is not None:
                return already
        raise StorageError("the balance kept changing; please try again")

    def freeze(self, operation: dict[str, Any], now: datetime) -> Receipt:
        """Freeze at once; freezing again while an unfreeze is scheduled cancels the unfreeze."""
        user, op_id = operation["user"], operation["_id"]
        for _ in range(MAX_APPLY_ATTEMPTS):
            document = self._document(user)
            if document.get("frozen"):
                changes: dict[str, Any] = {"$unset": {"scheduled.unfreeze": ""}}
            else:
                changes = {"$set": {"frozen": True, "frozen_at": now}, "$unset": {"scheduled.unfreeze": ""}}
            before = self._profiles.find_one_and_update(
                {**_unapplied(user, op_id), "frozen": bool(document.get("frozen"))},
                {**changes, "$push": {"applied_ops": op_id}}, projection={"scheduled": 1})
            if before is not None:
                unfreeze = (before.get("scheduled") or {}).get("unfreeze")
                if unfreeze is not None:
                    self._audit(user, "unfreeze", "schedule_cancelled", op_id=unfreeze["op_id"], reason="frozen_again",
                                amount_kobo=0)
                return receipt(operation, now, None)
            already = self.applied_receipt(operation, now)
            if already is not None:
                return already
        raise StorageError("your settings kept changing; please try again")

    def unfreeze(self, operation: dict[str, Any], now: datetime) -> Receipt:
        """Schedule the unfreeze after the cooling-off; the accounts stay frozen until then."""
        user, op_id = operation["user"], operation["_id"]
        effective_at = now + self._settings.cooling_off
        for _ in range(MAX_APPLY_ATTEMPTS):
            document = self._document(user)
            if _seen(document, op_id):
                return self._applied(operation, now)
            if not document.get("frozen"):
                raise NotFrozen("your accounts are not frozen")
            _refuse_if_scheduled(document, "unfreeze")
            scheduled = self._profiles.update_one(
                {**_unapplied(user, op_id), "frozen": True, "scheduled.unfreeze": {"$exists": False}},
                {"$set": {"scheduled.unfreeze": {"op_id": op_id, "effective_at": effective_at}},
                 "$push": {"applied_ops": op_id}})
            if scheduled.matched_count == 1:
                return receipt(operation, now, None, effective_at)
            already = self.applied_receipt(operation, now)
            if already is not None:
                return already
        raise StorageError("your settings kept changing; please try again")

    def set_limit(self, operation: dict[str, Any], now: datetime) -> Receipt:
        """A limit that is no raise applies at once and cancels a scheduled raise; a raise is scheduled."""
        user, op_id, new_limit = operation["user"], operation["_id"], operation["amount_kobo"]
        for _ in range(MAX_APPLY_ATTEMPTS):
            document = self._document(user)
            if _seen(document, op_id):
                return self._applied(operation, now)
            limit = int(document["daily_limit_kobo"])
            guard = {**_unapplied(user, op_id), "daily_limit_kobo": limit}
            if new_limit <= limit:
                before = self._profiles.find_one_and_update(
                    guard, {"$set": {"daily_limit_kobo": new_limit}, "$unset": {"scheduled.raise_limit": ""},
                            "$push": {"applied_ops": op_id}}, projection={"scheduled": 1})
                if before is not None:
                    raise_ = (before.get("scheduled") or {}).get("raise_limit")
                    if raise_ is not None:
                        self._audit(user, "set_limit", "schedule_cancelled", op_id=raise_["op_id"],
                                    reason="limit_lowered", amount_kobo=raise_["new_limit_kobo"])
                    return receipt(operation, now, None)
            else:
                _refuse_if_scheduled(document, "raise_limit")
                effective_at = now + self._settings.cooling_off
                scheduled = self._profiles.update_one(
                    {**guard, "scheduled.raise_limit": {"$exists": False}},
                    {"$set": {"scheduled.raise_limit": {"op_id": op_id, "effective_at": effective_at,
                                                        "new_limit_kobo": new_limit}},
                     "$push": {"applied_ops": op_id}})
                if scheduled.matched_count == 1:
                    return receipt(operation, now, None, effective_at)
            already = self.applied_receipt(operation, now)
            if already is not None:
                return already
        raise StorageError("your settings kept changing; please try again")

    def disconnect(self, operation: dict[str, Any], now: datetime) -> Receipt:
        """Unlink the bank the operation was asked for; the customer's controls stay."""
        user, op_id = operation["user"], operation["_id"]
        unlinked = self._profiles.update_one(
            {**_unapplied(user, op_id), "link": {"$exists": True}, **_same_link(operation)},
            {"$unset": {"link": ""}, "$push": {"applied_ops": op_id}})
        if unlinked.matched_count == 0:
            already = self.applied_receipt(operation, now)
            if already is not None:
                return already
            raise NotConnected("the bank this was asked for is no longer linked")
        return receipt(operation, now, None)  # the link's records go next (Confirmations._finish_disconnect)

    # ----------------------------------------------------------------- payments made at the provider
    # Mono DirectPay: the customer approves the debit on Mono's page, so the money moves at their bank,
    # not here. The YES reserves the amount against today's limit (freeze and limit checked in the same
    # update); the provider's verified word then records the payment once, or releases the reservation.

    def reserve_payment(self, operation: dict[str, Any], now: datetime) -> None:
        """Count a payment about to be handed to the provider against today's limit, in ONE conditional
        update that also requires the accounts unfrozen and the link the customer was shown; so two
        payments waiting at the provider cannot together pass the limit. Safe to repeat."""
        user, op_id, amount = operation["user"], operation["_id"], operation["amount_kobo"]
        counts = operation["params"].get("to_account") is None
        day = day_key(now)
        for _ in range(MAX_APPLY_ATTEMPTS):
            document = self._document(user)
            if op_id in document.get("reserved", {}):
                return
            where: dict[str, Any] = {**_unapplied(user, op_id), "frozen": False, **_same_link(operation),
                                     f"reserved.{op_id}": {"$exists": False}}
            changes: dict[str, Any] = {"$set": {f"reserved.{op_id}": {"day": day,
                                                                      "amount_kobo": amount if counts else 0}}}
            if counts:
                limit = int(document["daily_limit_kobo"])
                where["daily_limit_kobo"] = limit
                where["$or"] = _within_limit(day, limit, amount)
                changes["$inc"] = {f"spent.{day}": amount}
            if self._profiles.update_one(where, changes).matched_count == 1:
                return
            self._why_not_reserved(operation, day, counts)
        raise StorageError("the balance kept changing; please try again")

    def release_reservation(self, user: str, op_id: str) -> bool:
        """The provider did not take the payment, or says it was not paid: today's spending goes back
        down by what was reserved. True when this call released it (at most once)."""
        document = self._profiles.find_one({"_id": user}, {f"reserved.{op_id}": 1})
        entry = ((document or {}).get("reserved") or {}).get(op_id)
        if entry is None:
            return False
        changes: dict[str, Any] = {"$unset": {f"reserved.{op_id}": ""}}
        if entry.get("amount_kobo"):
            changes["$inc"] = {f"spent.{entry['day']}": -int(entry["amount_kobo"])}
        released = self._profiles.update_one({"_id": user, f"reserved.{op_id}.day": entry["day"]}, changes)
        return released.modified_count == 1

    def record_provider_payment(self, operation: dict[str, Any], now: datetime, *,
                                count_again: bool = False) -> Receipt:
        """The provider confirmed the payment: it goes in the link's ledger and off the shown balance,
        once. Nothing here may refuse it (the money has moved at the bank); its amount was counted
        against the limit when it was reserved. ``count_again``: the reservation was released (we had
        recorded it as not paid), so today's spending takes the amount again, in the same update."""
        user, op_id, amount, source = operation["user"], operation["_id"], operation["amount_kobo"], operation["source"]
        spent = ({f"spent.{day_key(now)}": amount}
                 if count_again and operation["params"].get("to_account") is None else {})
        updated = self._profiles.find_one_and_update(
            {**_unapplied(user, op_id), "link": {"$exists": True}, **_same_link(operation)},
            {"$inc": {f"link.accounts.{source}.balance_kobo": -amount, **spent},
             "$set": {f"link.ledger.{op_id}": self._ledger_entry(operation, now)},
             "$push": {"applied_ops": op_id}, "$unset": {f"reserved.{op_id}": ""}},
            projection={f"link.accounts.{source}": 1}, return_document=ReturnDocument.AFTER)
        if updated is not None:
            return receipt(operation, now, int(updated["link"]["accounts"][source]["balance_kobo"]))
        already = self.applied_receipt(operation, now)
        if already is not None:
            return already
        # the link it was paid from is gone (disconnected meanwhile): the payment is still one that was made
        self._profiles.update_one(_unapplied(user, op_id),
                                  {"$push": {"applied_ops": op_id}, "$unset": {f"reserved.{op_id}": ""},
                                   **({"$inc": spent} if spent else {})})
        return receipt(operation, now, None)

    def applied_receipt(self, operation: dict[str, Any], now: datetime) -> Receipt | None:
        """The receipt if the operation took effect, else None; ConfirmationExpired if it was voided."""
        user, op_id = operation["user"], operation["_id"]
        document = self._profiles.find_one({"_id": user}, {"applied_ops": 1, "voided_ops": 1, "scheduled": 1})
        if document is None:
            return None
        if op_id in document.get("voided_ops", []):
            raise ConfirmationExpired("that confirmation has expired; please start again")
        if op_id not in document.get("applied_ops", []):
            return None
        if operation["kind"] in MONEY_KINDS:
            return self.ledger_receipt(user, op_id) or receipt(operation, now, None)
        return receipt(operation, now, None, _effective_at(document, operation, self._settings))

    def _applied(self, operation: dict[str, Any], now: datetime) -> Receipt:
        """The receipt of an operation known to be applied (or ConfirmationExpired if it was voided)."""
        already = self.applied_receipt(operation, now)
        if already is None:
            raise StorageError("your settings kept changing; please try again")
        return already

    def void(self, user: str, op_id: str) -> bool:
        """Make sure an operation can never take effect: True when voided (or never possible), False
        when it had already taken effect. Done in the customer's document, where effects are applied."""
        voided = self._profiles.update_one({"_id": user, "applied_ops": {"$ne": op_id}},
                                           {"$addToSet": {"voided_ops": op_id}})
        if voided.matched_count == 1:
            return True
        return self._profiles.find_one({"_id": user}, {"_id": 1}) is None

    # ----------------------------------------------------------------- internals

    def _document(self, user: str) -> dict[str, Any]:
        document = self.current(user)
        if document is None:
            raise NotConnected("no bank is linked")
        return document

    def _apply_due(self, document: dict[str, Any]) -> bool:
        """Apply each scheduled change whose time has come; True when any was due."""
        user, now = document["_id"], self._now()
        due = [(key, entry) for key, entry in sorted(document.get("scheduled", {}).items())
               if as_utc(entry["effective_at"]) <= now]
        for key, entry in due:
            changes = ({"frozen": False, "frozen_at": None} if key == "unfreeze"
                       else {"daily_limit_kobo": entry["new_limit_kobo"]})
            applied = self._profiles.update_one(
                {"_id": user, f"scheduled.{key}.op_id": entry["op_id"],
                 f"scheduled.{key}.effective_at": {"$lte": now}},
                {"$set": changes, "$unset": {f"scheduled.{key}": ""}})
            if applied.modified_count == 1:
                self._audit(user, SCHEDULED_ACTIONS[key], "applied", op_id=entry["op_id"],
                            amount_kobo=entry.get("new_limit_kobo", 0))
        return bool(due)

    def _unschedule(self, user: str, key: str, entry: dict[str, Any], reason: str) -> bool:
        """Drop a change that has not come due; one due by now is left for ``current`` to apply."""
        dropped = self._profiles.update_one(
            {"_id": user, f"scheduled.{key}.op_id": entry["op_id"],
             f"scheduled.{key}.effective_at": {"$gt": self._now()}},
            {"$unset": {f"scheduled.{key}": ""}})
        if dropped.modified_count == 1:
            self._audit(user, SCHEDULED_ACTIONS[key], "schedule_cancelled", op_id=entry["op_id"], reason=reason,
                        amount_kobo=entry.get("new_limit_kobo", 0))
            return True
        return False

    def _why_not_moved(self, operation: dict[str, Any], day: str, counts: bool, now: datetime) -> Receipt | None:
        """Raise the reason the conditional update matched nothing; a receipt if it had already run."""
        amount = operation["amount_kobo"]
        already = self.applied_receipt(operation, now)
        if already is not None:
            return already
        document = self._still_linked(operation)
        if document.get("frozen"):
            raise AccountFrozen("your accounts were frozen before this could run")
        balance = int(document["link"]["accounts"][operation["source"]]["balance_kobo"])
        if balance < amount:
            raise InsufficientFunds(f"the balance is now {format_naira(balance)}", available_kobo=balance)
        _refuse_over_limit(document, day, amount, counts)
        return None  # a concurrent change (e.g. a new limit) raced us; try again

    def _why_not_reserved(self, operation: dict[str, Any], day: str, counts: bool) -> None:
        """Raise the reason a reservation matched nothing; return when a concurrent change raced it."""
        document = self._still_linked(operation)
        if _seen(document, operation["_id"]):
            raise ConfirmationExpired("that confirmation can no longer run; please start again")
        if document.get("frozen"):
            raise AccountFrozen("your accounts were frozen before this could run")
        _refuse_over_limit(document, day, operation["amount_kobo"], counts)

    def _still_linked(self, operation: dict[str, Any]) -> dict[str, Any]:
        """The customer's profile, if it still has the link the operation was asked on."""
        document = self._profiles.find_one({"_id": operation["user"]})
        if document is None or "link" not in document or not _same_link_as(document, operation):
            raise NotConnected("the bank this was asked for is no longer linked")
        return document

    def _ledger_entry(self, operation: dict[str, Any], now: datetime) -> dict[str, Any]:
        """How an executed movement is recorded on the link: names and narration sealed, no full number."""
        user, op_id = operation["user"], operation["_id"]
        kind, params = operation["kind"], operation["params"]
        target = params.get("to_account")
        if kind == "transfer" and target is not None:  # the label is the own account's name
            counterparty = operation["destination_label"]
            category, narration = "savings", f"TRF TO OWN {counterparty.upper()} ACCOUNT"
        elif kind == "transfer":
            counterparty = params["holder_name"]
            category, narration = "transfers", f"NIP TRF TO {counterparty} {params['bank'].upper()}"
        elif kind == "bill":
            counterparty = params["biller"]
            category, narration = "bills", f"{counterparty.upper()} {mask_reference(params['customer_ref'])}"
        else:
            counterparty = params["network"]
            category, narration = "airtime", f"{counterparty.upper()} AIRTIME {mask_phone_number(params['phone'])}"
        texts = {"merchant": counterparty, "narration": narration, "destination_label": operation["destination_label"]}
        return {
            "reference": reference(op_id), "op_id": op_id, "kind": kind, "account": operation["source"],
            "account_label": operation.get("source_label") or "",
            "to_account": target, "amount_kobo": operation["amount_kobo"], "direction": "debit",
            "category": category, "posted_at": now,
            **{name: self._sealer.seal(COLLECTION, user, f"link.ledger.{op_id}.{name}", text)
               for name, text in texts.items()},
        }

    def _open_entry(self, user: str, entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry, **{name: self._sealer.open(COLLECTION, user, f"link.ledger.{entry['op_id']}.{name}",
                                                    entry.get(name))
                            for name in LEDGER_TEXTS}}


def new_link(bank: str, bank_code: str, now: datetime, accounts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The link part of a customer document, for ``Customers.attach_link``."""
    return {"id": uuid.uuid4().hex, "bank": bank, "bank_code": bank_code, "connected_at": now,
            "accounts": accounts, "ledger": {}}


def profile_from_doc(document: dict[str, Any]) -> Profile:
    link, accounts = document["link"], document["link"]["accounts"]
    scheduled = document.get("scheduled", {})
    raise_ = scheduled.get("raise_limit")
    return Profile(
        user=document["_id"], bank=link["bank"], bank_code=link["bank_code"],
        connected_at=as_utc(link["connected_at"]), frozen=bool(document["frozen"]),
        frozen_at=as_utc(document["frozen_at"]) if document.get("frozen_at") else None,
        daily_limit_kobo=int(document["daily_limit_kobo"]),
        accounts=tuple(
            Account(type=accounts[key].get("type", key), name=accounts[key]["name"],
                    number=mask_account_number(accounts[key]["number"]),
                    balance_kobo=int(accounts[key]["balance_kobo"]), currency=accounts[key].get("currency", "NGN"),
                    key=key)
            for key in sorted(accounts, key=lambda key: _account_order(key, accounts[key]))
        ),
        unfreezes_at=as_utc(scheduled["unfreeze"]["effective_at"]) if "unfreeze" in scheduled else None,
        scheduled_limit_kobo=int(raise_["new_limit_kobo"]) if raise_ else None,
        limit_changes_at=as_utc(raise_["effective_at"]) if raise_ else None,
    )


def _account_order(key: str, entry: dict[str, Any]) -> tuple[int, int]:
    """Checking before savings, and within a type in the order the bank listed them ("checking_2")."""
    kind = entry.get("type", key)
    _, _, number = key.partition("_")
    return (ACCOUNT_ORDER.index(kind) if kind in ACCOUNT_ORDER else len(ACCOUNT_ORDER),
            int(number) if number.isdigit() else 1)


def limit_status(document: dict[str, Any], now: datetime) -> LimitStatus:
    limit = int(document["daily_limit_kobo"])
    spent = int(document.get("spent", {}).get(day_key(now), 0))
    raise_ = document.get("scheduled", {}).get("raise_limit")
    return LimitStatus(limit_kobo=limit, spent_today_kobo=spent, remaining_kobo=max(0, limit - spent),
                       scheduled_limit_kobo=int(raise_["new_limit_kobo"]) if raise_ else None,
                       limit_changes_at=as_utc(raise_["effective_at"]) if raise_ else None,
                       currency=link_currency(document))


def link_currency(document: dict[str, Any]) -> str:
    """The currency of the link's accounts (checking first): what totals, summaries and the limit count.
    One link is one bank, so its accounts share a currency; a transaction in another one is
    listed in its own currency and left out of the totals rather than added as if it were."""
    accounts = document.get("link", {}).get("accounts", {})
    for key in sorted(accounts, key=lambda key: _account_order(key, accounts[key])):
        return str(accounts[key].get("currency") or "NGN")
    return "NGN"


def scheduled_changes(document: dict[str, Any] | None) -> list[ScheduledChange]:
    """The changes a customer document has waiting, soonest first."""
    changes = [_scheduled_change(key, entry) for key, entry in (document or {}).get("scheduled", {}).items()]
    return sorted(changes, key=lambda change: change.effective_at)


def day_key(moment: datetime) -> str:
    """The Lagos calendar day the daily limit counts against."""
    return moment.astimezone(LAGOS).date().isoformat()


def reference(op_id: str) -> str:
    return f"SBX-{op_id[:16].upper()}"


def receipt(operation: dict[str, Any], now: datetime, new_balance: int | None,
            effective_at: datetime | None = None) -> Receipt:
    """The receipt of an operation whose texts are opened."""
    return Receipt(
        op_id=operation["_id"], reference=reference(operation["_id"]), kind=operation["kind"],
        amount_kobo=operation["amount_kobo"], source=operation["source"],
        destination_label=operation["destination_label"], new_balance_kobo=new_balance, executed_at=now,
        effective_at=effective_at, source_label=operation.get("source_label") or "",
    )


def mask_reference(ref: str) -> str:
    """Meter, smartcard and biller references shown like account numbers: "******2345"."""
    return "******" + ref[-4:] if len(ref) > 4 else "******"


def _unapplied(user: str, op_id: str) -> dict[str, Any]:
    """The filter every effect carries: not applied yet, and not voided."""
    return {"_id": user, "applied_ops": {"$ne": op_id}, "voided_ops": {"$ne": op_id}}


def _seen(document: dict[str, Any], op_id: str) -> bool:
    """Applied or voided already: what happened to it is decided, and must not be redone."""
    return op_id in document.get("applied_ops", []) or op_id in document.get("voided_ops", [])


def _same_link(operation: dict[str, Any]) -> dict[str, Any]:
    """Money moves, and a bank is unlinked, only on the link the customer was shown."""
    return {"link.id": operation["link_id"]} if operation.get("link_id") else {}


def _same_link_as(document: dict[str, Any], operation: dict[str, Any]) -> bool:
    return not operation.get("link_id") or document["link"].get("id") == operation["link_id"]


def _refuse_over_limit(document: dict[str, Any], day: str, amount: int, counts: bool) -> None:
    """Raise LimitExceeded if ``amount`` counts towards today's limit and would go over it."""
    limit = int(document["daily_limit_kobo"])
    spent = int(document.get("spent", {}).get(day, 0))
    if counts and spent + amount > limit:
        remaining, currency = max(0, limit - spent), link_currency(document)
        raise LimitExceeded(f"only {format_money(remaining, currency)} of today's limit is left",
                            remaining_kobo=remaining, limit_kobo=limit, currency=currency)


def _refuse_if_scheduled(document: dict[str, Any], key: str) -> None:
    entry = document.get("scheduled", {}).get(key)
    if entry is not None:
        change = _scheduled_change(key, entry)
        what = "an unfreeze" if key == "unfreeze" else "a higher limit"
        raise ChangeAlreadyScheduled(f"{what} is already scheduled; cancel it first to ask again", change=change)


def _scheduled_change(key: str, entry: dict[str, Any]) -> ScheduledChange:
    return ScheduledChange(kind=key, effective_at=as_utc(entry["effective_at"]),
                           new_limit_kobo=entry.get("new_limit_kobo"))


def _effective_at(document: dict[str, Any], operation: dict[str, Any], settings: Settings) -> datetime | None:
    """When an applied unfreeze or raise takes effect: from its schedule, or worked out from its claim."""
    if operation["kind"] not in ("unfreeze", "set_limit"):
        return None
    for entry in document.get("scheduled", {}).values():
        if entry["op_id"] == operation["_id"]:
            return as_utc(entry["effective_at"])
    if operation["kind"] == "set_limit":
        return None  # a limit that is no raise applied at once (a raise already applied cannot be told apart)
    claimed_at = operation.get("claimed_at")
    return as_utc(claimed_at) + settings.cooling_off if claimed_at else None


def _within_limit(day: str, limit: int, amount: int) -> list[dict[str, Any]]:
    """Filter clauses true when today's spent total plus ``amount`` stays within ``limit``.

    A missing total counts as zero only when the amount alone fits, so an amount
    above the whole limit never matches.
    """
    clauses: list[dict[str, Any]] = [{f"spent.{day}": {"$lte": limit - amount}}]
    if amount <= limit:
        clauses.append({f"spent.{day}": {"$exists": False}})
    return clauses


def _ledger_debit(entry: dict[str, Any]) -> Transaction:
    return Transaction(
        reference=entry["reference"], posted_at=as_utc(entry["posted_at"]), amount_kobo=int(entry["amount_kobo"]),
        direction="debit", category=entry["category"], merchant=entry["merchant"],
        narration=entry["narration"], account=entry["account"],
    )


def _own_account_name(entry: dict[str, Any]) -> str:
    """The source account as the customer reads it ("Savings", "Gold (******2222)"); entries kept before
    labels: its type."""
    return str(entry.get("account_label") or entry["account"].title())


def _ledger_views(entry: dict[str, Any]) -> list[Transaction]:
    """A ledger entry as account statement lines: the debit, plus the credit side of an own-account move."""
    debit = _ledger_debit(entry)
    target = entry.get("to_account")
    if target is None:
        return [debit]
    source = _own_account_name(entry)
    credit = Transaction(
        reference=debit.reference, posted_at=debit.posted_at, amount_kobo=debit.amount_kobo,
        direction="credit", category=debit.category, merchant=source,
        narration=f"TRF FROM OWN {source.upper()} ACCOUNT", account=target,
    )
    return [debit, credit]
