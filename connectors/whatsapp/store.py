"""What the WhatsApp channel keeps in MongoDB: seen message ids and delivery statuses.

``whatsapp_inbound``  one document per processed message, ``_id`` = keyed hash of the message id,
                      so a second insert of a retried or concurrent delivery fails with
                      DuplicateKeyError; a TTL index on ``received_at`` keeps ids 7 days.
``whatsapp_statuses`` one document per (message id, status): sent, delivered, read,
                      failed (with Meta's numeric error code, and its title sealed with
                      banking.crypto under ``field_context(collection, _id, "error_title")``,
                      so scripts/reencrypt.py re-seals it after a key rotation); the
                      recipient is stored only as its ``user_key`` hash.

Nothing else is kept: no phone number, no profile name, no message text, no wamid.

pymongo blocks, so every call runs in the loop's default executor; a slow database
must not stall other customers' conversations.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, TypeVar

from pymongo.errors import DuplicateKeyError, PyMongoError

from banking.crypto import Keyring, field_context
from banking.identity import keyed_hash, user_key
from connectors.whatsapp.inbound import InboundMessage, StatusUpdate

logger = logging.getLogger(__name__)

INBOUND_COLLECTION = "whatsapp_inbound"
STATUS_COLLECTION = "whatsapp_statuses"
DEDUP_RETENTION = timedelta(days=7)
LOCAL_MEMORY = 10_000  # ids remembered in-process while the database is unreachable

T = TypeVar("T")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class WhatsAppStore:
    """Deduplication and status records over a pymongo (or mongomock) database."""

    def __init__(self, database: Any, salt: str, clock: Callable[[], datetime] = _utcnow,
                 keyring: Keyring | None = None) -> None:
        """``keyring`` seals Meta's error texts; by default ENCRYPTION_KEY (and ENCRYPTION_OLD_KEYS)."""
        self._db = database
        self._salt = salt
        self._clock = clock
        self._keyring = keyring or Keyring.from_env()
        self._recent: OrderedDict[str, None] = OrderedDict()

    def message_key(self, message_id: str) -> str:
        """A keyed hash of a WhatsApp message id: Meta's ids are base64 of a record that
        starts with the customer's phone number, so they are never stored as they come."""
        return keyed_hash(message_id, self._salt)

    async def ensure_indexes(self) -> None:
        await self._run(self._ensure_indexes)

    def _ensure_indexes(self) -> None:
        self._db[INBOUND_COLLECTION].create_index(
            "received_at", expireAfterSeconds=int(DEDUP_RETENTION.total_seconds()), name="received_at_ttl"
        )
        self._db[STATUS_COLLECTION].create_index([("message_id", 1), ("at", 1)], name="message_id_at")
        self._db[STATUS_COLLECTION].create_index([("recipient", 1), ("at", -1)], name="recipient_at")

    async def claim(self, message: InboundMessage) -> bool:
        """True the first time a message id is seen, False for every later delivery of it.

        If the database fails, an in-process memory of recent ids stands in, so a
        customer is still answered (once per process) rather than ignored.
        """
        try:
            return await self._run(self._claim, message)
        except PyMongoError as exc:
            logger.error("Could not record an inbound WhatsApp message (%s); deduplicating in memory only",
                         type(exc).__name__)
            return self._claim_locally(message.message_id)

    def _claim(self, message: InboundMessage) -> bool:
        document = {
            "_id": self.message_key(message.message_id),
            "received_at": self._clock(),
            "user": user_key(message.sender, self._salt),
            "type": message.kind,
        }
        try:
            self._db[INBOUND_COLLECTION].insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    def _claim_locally(self, message_id: str) -> bool:
        if message_id in self._recent:
            return False
        self._recent[message_id] = None
        while len(self._recent) > LOCAL_MEMORY:
            self._recent.popitem(last=False)
        return True

    async def record_status(self, status: StatusUpdate) -> bool:
        """Store one delivery status (idempotently); False if the database failed."""
        try:
            await self._run(self._record_status, status)
        except PyMongoError as exc:
            logger.error("Could not record a WhatsApp delivery status (%s)", type(exc).__name__)
            return False
        return True

    def _record_status(self, status: StatusUpdate) -> None:
        first_error = status.errors[0] if status.errors else None
        message_id = self.message_key(status.message_id)
        document_id = f"{message_id}:{status.status}"
        title = first_error.title if first_error else None
        document = {
            "message_id": message_id,
            "status": status.status,
            "at": datetime.fromtimestamp(status.timestamp, timezone.utc) if status.timestamp is not None else None,
            "recipient": user_key(status.recipient, self._salt) if status.recipient else None,
            "error_code": first_error.code if first_error else None,
            # Meta's texts may quote the message or the customer: sealed like everything else at rest
            "error_title": self._keyring.encrypt_text(title, field_context(STATUS_COLLECTION, document_id,
                                                                           "error_title")) if title else None,
            "recorded_at": self._clock(),
        }
        self._db[STATUS_COLLECTION].update_one({"_id": document_id}, {"$setOnInsert": document}, upsert=True)

    def error_title(self, document: dict[str, Any]) -> str | None:
        """Meta's error title of a stored status, opened (None when it had none)."""
        sealed = document.get("error_title")
        if not sealed:
            return None
        return self._keyring.decrypt_text(sealed, field_context(STATUS_COLLECTION, document["_id"], "error_title"))

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, partial(function, *args))
