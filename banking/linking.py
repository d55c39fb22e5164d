"""Links a customer opens on a provider's hosted page, and the provider webhooks that finish them.

A customer asks to connect; the action server stores a *link reference* and sends the
provider's page in the chat. The provider tells the channel's server by webhook, and
the conversation hears about it as an external event. Both processes share this
database (``bank_links``, ``bank_events``)::

    bank_links   _id        SHA-256 of the reference: the reference itself only travels to the
                            provider and back, so a database dump holds nothing that opens a link
                 user       the customer's hashed key (never the phone number)
                 provider   "mono" | "plaid";  purpose  "connect" | "reauth"
                 bank       the bank the customer picked (None for reauth)
                 sender     the conversation to tell, sealed (Rasa replies to it)
                 provider_key  SHA-256 of the provider's own handle (Plaid's link_token), for look-up
                 status     open ─ webhook ─► authorised ─ action ─► completing ─► completed
                                  ├─ expires_at passes: never authorised; a webhook after it is told once
                                  │  (finished_late_at) to ask for a fresh link
                                  └─ the customer asks again: replaced (a newer link is theirs now)
                 finished_late_at  a replaced or expired link the customer finished anyway: never authorised, its
                            credential dropped; the conversation is told once what to do now
                 credential the provider's result (Mono account id, Plaid public token), sealed
    bank_events  _id        provider:event key; one per webhook delivery handled, so a retry of
                            the same delivery is answered 200 and does nothing

A reference is opaque (random, 32 bytes), expires (LINK_TTL), and is used once: only an
``open`` unexpired link can become ``authorised``, and only one worker can move it on to
``completing``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from banking.crypto import CryptoError
from banking.models import as_utc
from banking.sealing import Sealer

logger = logging.getLogger(__name__)

LINKS = "bank_links"
EVENTS = "bank_events"
LINK_TTL = timedelta(minutes=30)
# How long an "authorised" link waits for the action server before a new webhook may deliver it again.
COMPLETION_LEASE = timedelta(minutes=2)
PURPOSES = ("connect", "reauth")


def reference_key(reference: str) -> str:
    """Where a reference is stored: its SHA-256, never the reference itself."""
    return hashlib.sha256(reference.encode()).hexdigest()


def new_reference() -> str:
    """An opaque, unguessable reference for one link."""
    return "lnk_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class LinkStart:
    """A link just opened: the reference to give the provider, and until when it works."""

    reference: str
    key: str
    expires_at: datetime


@dataclass(frozen=True)
class Delivery:
    """Who to tell about a provider event, and which external intent tells them."""

    user: str
    sender: str
    intent: str
    entities: dict[str, str]


@dataclass(frozen=True)
class AuthorisedLink:
    """A link the provider finished, claimed by one worker to complete it."""

    key: str
    user: str
    provider: str
    purpose: str
    bank: str | None
    credential: str
    data_status: str | None


class BankLinks:
    """Link references and webhook deliveries; every move is one conditional update."""

    def __init__(self, db: Any, sealer: Sealer, now: Callable[[], datetime]) -> None:
        self._db = db
        self._sealer = sealer
        self._now = now

    @property
    def _links(self) -> Any:
        return self._db[LINKS]

    def ensure_indexes(self) -> None:
        self._links.create_index([("user", 1), ("status", 1)])
        self._links.create_index([("provider_key", 1)])

    # ----------------------------------------------------------------- opening (action server)

    def open(self, user: str, sender: str, provider: str, purpose: str, bank: str | None,
             ttl: timedelta = LINK_TTL) -> LinkStart:
        """Store a new link reference for this customer; older open links of theirs are closed."""
        if purpose not in PURPOSES:
            raise ValueError(f"a link purpose is one of {', '.join(PURPOSES)}")
        now = self._now()
        reference = new_reference()
        key = reference_key(reference)
        self._links.update_many({"user": user, "status": "open"},
                                {"$set": {"status": "replaced", "closed_at": now}})
        self._links.insert_one({
            "_id": key, "user": user, "provider": provider, "purpose": purpose, "bank": bank,
            "sender": self._sealer.seal(LINKS, key, "sender", sender), "status": "open",
            "created_at": now, "expires_at": now + ttl, "credential": None, "provider_key": None,
        })
        return LinkStart(reference=reference, key=key, expires_at=now + ttl)

    def remember_provider_handle(self, key: str, handle: str) -> None:
        """The provider's own name for the session (Plaid's link_token), for webhooks that carry only it."""
        self._links.update_one({"_id": key}, {"$set": {"provider_key": reference_key(handle)}})

    def discard(self, key: str) -> None:
        """The provider refused to open the page: the reference can never be used."""
        self._links.update_one({"_id": key, "status": "open"}, {"$set": {"status": "failed"}})

    # ----------------------------------------------------------------- webhooks (channel's server)

    def first_delivery(self, provider: str, event_key: str) -> bool:
        """Record a webhook delivery; False when this very delivery was handled before (a provider retry)."""
        try:
            self._db[EVENTS].insert_one({"_id": f"{provider}:{event_key}", "at": self._now()})
        except DuplicateKeyError:
            return False
        return True

    def forget_delivery(self, provider: str, event_key: str) -> None:
        """Handling failed on our side: let the provider's retry be handled again."""
        self._db[EVENTS].delete_one({"_id": f"{provider}:{event_key}"})

    def authorise(self, provider: str, *, reference: str | None = None, handle: str | None = None,
                  credential: str, data_status: str | None = None) -> Delivery | None:
        """The provider finished the customer's link: open -> authorised, once, before it expires.

        Returns whom to tell, or None for an unknown, expired, used or foreign reference.
        A second webhook for a link authorised but not yet completed is delivered again
        (the first delivery may have been lost); completing stays at most once.
        """
        if reference:
            wanted: dict[str, Any] = {"_id": reference_key(reference)}
        elif handle:
            wanted = {"provider_key": reference_key(handle)}
        else:
            return None
        now = self._now()
        found = self._links.find_one({**wanted, "provider": provider})
        if found is None:
            logger.warning("a %s webhook named no link of ours; ignored", provider)
            return None
        key = found["_id"]
        updated = self._links.find_one_and_update(
            {"_id": key, "provider": provider, "status": "open", "expires_at": {"$gt": now}},
            {"$set": {"status": "authorised", "authorised_at": now, "data_status": data_status,
                      "credential": self._sealer.seal(LINKS, key, "credential", credential)}},
            return_document=ReturnDocument.AFTER)
        if updated is None:
            redelivery = found["status"] == "authorised" and self._same_credential(found, credential)
            if not redelivery and found["status"] in ("replaced", "open"):  # open: past its expiry
                return self._finished_late(found, provider, now,
                                           "replaced" if found["status"] == "replaced" else "expired")
            if not redelivery:
                logger.warning("a %s webhook for a link that is %s was ignored", provider, found["status"])
                return None
            updated = found
        return self._delivery(updated, "EXTERNAL_bank_linked", {"bank_event": "connected"})

    def delivery_for_user(self, user: str, provider: str, intent: str,
                          entities: dict[str, str]) -> Delivery | None:
        """Whom to tell about an event on a link already made (data synced, login needed)."""
        found = self._links.find(
            {"user": user, "provider": provider, "status": "completed"}, sort=[("created_at", -1)], limit=1)
        for document in found:
            return self._delivery(document, intent, entities)
        return None

    def _finished_late(self, found: dict[str, Any], provider: str, now: datetime, why: str) -> Delivery | None:
        """The customer finished a link page too late: the link was ``replaced`` by a newer one they asked
        for, or had ``expired``. It links nothing (a link is made once, within LINK_TTL, and the newest is
        the one they asked for) and its credential is not kept; they are told once, however often the
        provider sends it (``bank_event`` link_replaced / link_expired)."""
        still = {"status": "replaced"} if why == "replaced" else {"status": "open", "expires_at": {"$lte": now}}
        first = self._links.find_one_and_update(
            {"_id": found["_id"], **still, "finished_late_at": {"$exists": False}},
            {"$set": {"finished_late_at": now}})
        if first is None:
            logger.info("a %s webhook for a link %s and already told about; ignored", provider, why)
            return None
        logger.info("a %s webhook finished a link %s; nothing linked, the customer is told", provider, why)
        return self._delivery(found, "EXTERNAL_bank_updated", {"bank_event": f"link_{why}"})

    def open_until(self, user: str) -> datetime | None:
        """When the customer's newest link expires, if it is still open and unexpired; else None."""
        found = self._links.find({"user": user, "status": "open", "expires_at": {"$gt": self._now()}},
                                 sort=[("created_at", -1)], limit=1)  # opening one replaces the others
        for document in found:
            return as_utc(document["expires_at"])
        return None

    # ----------------------------------------------------------------- completing (action server)

    def claim_authorised(self, user: str) -> AuthorisedLink | None:
        """The customer's newest authorised link, claimed for completion (one worker only)."""
        now = self._now()
        claimed = self._links.find_one_and_update(
            {"user": user, "$or": [
                {"status": "authorised"},
                {"status": "completing", "claimed_at": {"$lte": now - COMPLETION_LEASE}},
            ]},
            {"$set": {"status": "completing", "claimed_at": now}},
            sort=[("authorised_at", -1)], return_document=ReturnDocument.AFTER)
        if claimed is None:
            return None
        try:
            credential = self._sealer.open_strict(LINKS, claimed["_id"], "credential", claimed["credential"])
        except CryptoError:
            logger.error("a bank link's credential could not be opened; the link is failed")
            self.fail(claimed["_id"])
            return None
        return AuthorisedLink(key=claimed["_id"], user=user, provider=claimed["provider"],
                              purpose=claimed["purpose"], bank=claimed.get("bank"), credential=credential,
                              data_status=claimed.get("data_status"))

    def complete(self, key: str) -> None:
        self._links.update_one({"_id": key, "status": "completing"},
                               {"$set": {"status": "completed", "completed_at": self._now(), "credential": None}})

    def release(self, key: str) -> None:
        """The provider failed while completing: the next delivery (or the customer) may try again."""
        self._links.update_one({"_id": key, "status": "completing"}, {"$set": {"status": "authorised"}})

    def fail(self, key: str) -> None:
        self._links.update_one({"_id": key}, {"$set": {"status": "failed", "credential": None}})

    def status_of_latest(self, user: str) -> str | None:
        """The newest link's status for this customer ("open" while they have not finished), or None."""
        for document in self._links.find({"user": user}, sort=[("created_at", -1)], limit=1):
            if document["status"] == "open" and as_utc(document["expires_at"]) <= self._now():
                return "expired"
            return str(document["status"])
        return None

    # ----------------------------------------------------------------- internals

    def _same_credential(self, document: dict[str, Any], credential: str) -> bool:
        try:
            stored = self._sealer.open_strict(LINKS, document["_id"], "credential", document.get("credential"))
        except CryptoError:
            return False
        return isinstance(stored, str) and secrets.compare_digest(stored, credential)

    def _delivery(self, document: dict[str, Any], intent: str, entities: dict[str, str]) -> Delivery | None:
        try:
            sender = self._sealer.open_strict(LINKS, document["_id"], "sender", document["sender"])
        except CryptoError:
            logger.error("a bank link's conversation could not be opened; the customer is not told")
            return None
        return Delivery(user=document["user"], sender=sender, intent=intent, entities=entities)
