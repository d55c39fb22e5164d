"""Rasa's Mongo tracker store, with conversations that a database dump cannot read.

Configured in endpoints.yml (Rasa imports it by module path and passes ``url`` as
``host`` plus every other key as a keyword argument)::

    tracker_store:
      type: connectors.tracker_store.EncryptedMongoTrackerStore
      db: banking
      collection: conversations

One document per conversation::

    _id            user_key(sender_id, USER_ID_SALT): the hashed key the banking core uses too
    sender         the sender id, sealed (Rasa must reply to it, `rasa export` lists it)
    events         one sealed value per Rasa event, bound to its key and position
    event_count    how many events are stored (a compare-and-set guard for saves)
    session_start  index of the latest `session_started` event (so `retrieve` opens only that session)
    created_at, updated_at

Nothing else is stored in clear: no slots, no latest message, no phone number.
Without MONGODB_URI (and no ``url``) it uses an in-memory database and says so
once. Blocking pymongo calls run in a worker thread, off Sanic's event loop.

A message costs the same however long the conversation has been going (Meta keeps one
going for months; Rasa starts a new session after an hour of silence): ``retrieve``
reads the two counters, then only the latest session's events (a ``$slice`` of the array)
and opens only those; ``save`` reads the counters, then seals and appends only the
events the store does not have (``$push`` guarded by ``event_count``, a compare-and-set),
never rewriting or re-reading the history.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import pymongo
from pymongo.errors import DuplicateKeyError
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SerializedTrackerAsText, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker

from banking.config import Settings, encryption_key_from_env
from banking.crypto import CryptoError, Keyring, field_context, require_production_secrets, require_user_id_salt
from banking.errors import ConfigError
from banking.identity import user_key
from banking.store import DATABASE_NAME, SERVER_SELECTION_TIMEOUT_MS, in_memory_database

logger = logging.getLogger(__name__)

DEFAULT_COLLECTION = "conversations"
RETENTION_INDEX = "updated_at_retention"
MAX_SAVE_ATTEMPTS = 5
LATEST_SESSION_LIMIT = 2**31 - 1  # a $slice's count: every event from the session's start on
SECONDS_PER_DAY = 86_400

_warned: set[str] = set()
_warned_lock = threading.Lock()


class ConversationConflict(RuntimeError):
    """Another writer kept changing the conversation while this one tried to save."""


class EncryptedMongoTrackerStore(TrackerStore, SerializedTrackerAsText):
    """Conversations in MongoDB under hashed keys, every event sealed with AES-256-GCM."""

    def __init__(
        self,
        domain: Domain | None = None,
        host: str | None = None,
        db: str = DATABASE_NAME,
        username: str | None = None,
        password: str | None = None,
        auth_source: str | None = "admin",
        collection: str = DEFAULT_COLLECTION,
        event_broker: EventBroker | None = None,
        retention_days: int | None = None,
        *,
        database: Any = None,
        keyring: Keyring | None = None,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        **kwargs: Any,
    ) -> None:
        """`host` is endpoints.yml's `url` (MONGODB_URI when absent); `database` and `keyring` are for tests."""
        try:
            settings = Settings.from_env(environ)
            require_production_secrets(environ)
            uri = host or settings.mongodb_uri
            if database is None:
                require_user_id_salt(environ, uri)  # endpoints.yml's url persists as much as MONGODB_URI
            if keyring is None and database is None and uri and not encryption_key_from_env(environ):
                raise ConfigError("ENCRYPTION_KEY is unset but conversations go to a persistent MongoDB; a "
                                  "throwaway key would leave them unreadable after a restart. Set ENCRYPTION_KEY "
                                  "(64 hex characters)")
            self.keyring = keyring or Keyring.from_env(environ)
            self._salt = settings.user_id_salt
            if settings.is_development:
                _warn_once("salt", "USER_ID_SALT is unset: conversation keys use the development salt")
            self.collection = collection
            self.retention_days = _retention_days(retention_days, settings)
            self._clock = clock
            self.db = database if database is not None else _open_database(
                uri, db, username, password, auth_source, settings)
            super().__init__(domain, event_broker, **kwargs)
            self._ensure_indexes()
        except (AttributeError, ImportError) as error:
            # Rasa swallows these two and quietly falls back to an unencrypted in-memory store.
            raise RuntimeError(f"EncryptedMongoTrackerStore could not start: {error}") from error

    @property
    def conversations(self) -> Any:
        """The collection holding one document per conversation."""
        return self.db[self.collection]

    # ------------------------------------------------------------ Rasa's API

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Append the events the store does not have yet (Rasa's Mongo semantics)."""
        await self.stream_events(tracker)
        await asyncio.to_thread(self._save, tracker.sender_id, list(tracker.events))

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """Rasa's: the events the store does not have yet go to the event broker. Rasa finds them by
        opening the stored session (every event decrypted and parsed, on every save) only to count
        its events; the stored counts say the same."""
        if self.event_broker is None:
            return
        stored = await asyncio.to_thread(self._stored_session_length, tracker.sender_id)
        if stored is None:  # a session start the store cannot vouch for: Rasa's way
            await super().stream_events(tracker)
            return
        new_events = list(itertools.islice(tracker.events, stored, None))
        await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The tracker with the events of the latest session only."""
        return self._tracker(sender_id, await self._retrieve(sender_id, fetch_events_from_all_sessions=False))

    async def retrieve_full_tracker(self, conversation_id: str) -> DialogueStateTracker | None:
        """The tracker with the events of every session (export, interactive learning, `/tracker`)."""
        events = await self._retrieve(conversation_id, fetch_events_from_all_sessions=True)
        return self._tracker(conversation_id, events)

    async def _retrieve(self, sender_id: str,
                        fetch_events_from_all_sessions: bool) -> list[dict[str, Any]] | None:
        return await asyncio.to_thread(self._load, sender_id, fetch_events_from_all_sessions)

    async def exists(self, conversation_id: str) -> bool:
        key = self._key(conversation_id)
        found = await asyncio.to_thread(self.conversations.find_one, {"_id": key}, {"_id": 1})
        return found is not None

    async def keys(self) -> Iterable[str]:
        """The real sender ids, opened from their sealed copies."""
        return await asyncio.to_thread(self._sender_ids)

    # ------------------------------------------------------------ storage

    def _save(self, sender_id: str, tracker_events: list[Event]) -> None:
        """``tracker_events``: the caller's tracker, which holds the latest session (as Rasa's stores assume)."""
        key = self._key(sender_id)
        for _ in range(MAX_SAVE_ATTEMPTS):
            stored = self.conversations.find_one({"_id": key}, {"event_count": 1, "session_start": 1})
            count = stored.get("event_count", 0) if stored else 0
            session_start = stored.get("session_start", 0) if stored else 0
            new_events = [event.as_dict() for event in tracker_events[count - session_start:]]
            if stored is not None and not new_events:
                return
            sealed = [self._seal_event(key, count + offset, event) for offset, event in enumerate(new_events)]
            latest_start = max((count + offset for offset, event in enumerate(new_events)
                                if event.get("event") == SessionStarted.type_name), default=session_start)
            now = self._clock()
            if stored is None:
                try:
                    self.conversations.insert_one({
                        "_id": key,
                        "sender": self.keyring.encrypt_text(sender_id, self._context(key, "sender")),
                        "events": sealed, "event_count": len(sealed), "session_start": latest_start,
                        "created_at": now, "updated_at": now,
                    })
                    return
                except DuplicateKeyError:
                    continue  # a concurrent first save won; append after it
            result = self.conversations.update_one(
                {"_id": key, "event_count": count},
                {"$push": {"events": {"$each": sealed}},
                 "$set": {"event_count": count + len(sealed), "session_start": latest_start, "updated_at": now}},
            )
            if result.matched_count:
                return
        raise ConversationConflict(f"conversation {key[:12]}… kept changing; gave up after {MAX_SAVE_ATTEMPTS} tries")

    def _stored_session_length(self, sender_id: str) -> int | None:
        """How many events of the latest session are stored (what ``retrieve`` would return), without
        opening any; None when the stored session start is not a plain position."""
        head = self.conversations.find_one({"_id": self._key(sender_id)}, {"event_count": 1, "session_start": 1})
        if head is None:
            return 0
        count, start = head.get("event_count", 0), head.get("session_start", 0)
        if not (isinstance(count, int) and isinstance(start, int) and 0 <= start <= count):
            return None
        return min(count - start, LATEST_SESSION_LIMIT)

    def _load(self, sender_id: str, all_sessions: bool) -> list[dict[str, Any]] | None:
        key = self._key(sender_id)
        if all_sessions:
            stored = self.conversations.find_one({"_id": key})
            if stored is None:
                return None
            return self._open_events(key, 0, stored.get("events", []))
        head = self.conversations.find_one({"_id": key}, {"event_count": 1, "session_start": 1})
        if head is None:
            return None
        hint = head.get("session_start", 0)
        if isinstance(hint, int) and hint >= 0:
            # The latest session only: from its start to the end (with whatever was appended meanwhile),
            # trusted only if the event there really is a session start.
            stored = self.conversations.find_one({"_id": key}, {"events": {"$slice": [hint, LATEST_SESSION_LIMIT]}})
            events = self._open_events(key, hint, stored.get("events", []) if stored else [])
            if hint == 0 or (events and events[0].get("event") == SessionStarted.type_name):
                return events
        logger.warning("conversation %s…: stored session start is wrong; scanning its events", key[:12])
        stored = self.conversations.find_one({"_id": key})
        if stored is None:
            return None
        events = self._open_events(key, 0, stored.get("events", []))
        starts = [index for index, event in enumerate(events) if event.get("event") == SessionStarted.type_name]
        return events[starts[-1] if starts else 0:]

    def _open_events(self, key: str, first: int, sealed: list[str]) -> list[dict[str, Any]]:
        """Open sealed events stored from position ``first`` on (each is bound to its position)."""
        return [self._open_event(key, first + offset, token) for offset, token in enumerate(sealed)]

    def _sender_ids(self) -> list[str]:
        senders, unreadable = [], 0
        for document in self.conversations.find({}, {"sender": 1}):
            try:
                senders.append(self.keyring.decrypt_text(document["sender"],
                                                         self._context(document["_id"], "sender")))
            except (CryptoError, KeyError):
                unreadable += 1
        if unreadable:
            logger.warning("%d conversations could not be opened (unknown key or tampered); they are left out",
                           unreadable)
        return senders

    def _ensure_indexes(self) -> None:
        """`_id` (the hashed key) is unique by nature; an optional TTL index enforces retention."""
        existing = self.conversations.index_information().get(RETENTION_INDEX)
        seconds = self.retention_days * SECONDS_PER_DAY if self.retention_days else None
        if existing is not None and existing.get("expireAfterSeconds") != seconds:
            self.conversations.drop_index(RETENTION_INDEX)
            existing = None
        if seconds is not None and existing is None:
            self.conversations.create_index([("updated_at", 1)], name=RETENTION_INDEX, expireAfterSeconds=seconds)

    # ------------------------------------------------------------ helpers

    def _key(self, sender_id: str) -> str:
        return user_key(str(sender_id), self._salt)

    def _context(self, key: str, path: str) -> str:
        return field_context(self.collection, key, path)

    def _seal_event(self, key: str, index: int, event: dict[str, Any]) -> str:
        return self.keyring.encrypt_json(event, self._context(key, f"events.{index}"))

    def _open_event(self, key: str, index: int, token: str) -> dict[str, Any]:
        return self.keyring.decrypt_json(token, self._context(key, f"events.{index}"))

    def _tracker(self, sender_id: str, events: list[dict[str, Any]] | None) -> DialogueStateTracker | None:
        if not events:
            return None
        return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)


def _open_database(uri: str | None, name: str, username: str | None, password: str | None,
                   auth_source: str | None, settings: Settings) -> Any:
    if uri:
        client: pymongo.MongoClient = pymongo.MongoClient(
            uri, username=username, password=password, authSource=auth_source,
            connect=False, serverSelectionTimeoutMS=SERVER_SELECTION_TIMEOUT_MS, tz_aware=True,
        )
        return client[name]
    if settings.is_production:
        raise ConfigError("MONGODB_URI is missing: production must not keep conversations in memory")
    _warn_once("memory", "MONGODB_URI is unset: conversations are kept in an in-memory database; "
                         "they are lost on exit")
    return in_memory_database()


def _retention_days(configured: Any, settings: Settings) -> int | None:
    """endpoints.yml's retention_days wins over CONVERSATION_RETENTION_DAYS; both must be whole days > 0."""
    if configured is None or configured == "":
        return settings.conversation_retention_days
    try:
        days = int(configured)
    except (TypeError, ValueError):
        raise ConfigError(f"tracker_store retention_days={configured!r} is not a whole number of days") from None
    if days <= 0 or str(days) != str(configured).strip():
        raise ConfigError(f"tracker_store retention_days={configured!r} must be a whole number of days above zero")
    return days


def _warn_once(topic: str, message: str) -> None:
    with _warned_lock:
        if topic in _warned:
            return
        _warned.add(topic)
    logger.warning(message)
