"""The MongoDB handle the banking core writes to.

Nothing connects at import time. Without MONGODB_URI the core runs on an
in-process mongomock database; mongomock is not atomic when threads share it
(its find_one_and_update is a find followed by an update), so that database is
wrapped to run each collection call under one lock, which gives it MongoDB's
guarantee that a single-document write is atomic.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import mongomock
import pymongo
from pymongo.database import Database

from banking import audit
from banking.config import Settings

logger = logging.getLogger(__name__)

DATABASE_NAME = "banking"
SERVER_SELECTION_TIMEOUT_MS = 5_000


def connect_database(settings: Settings) -> Database:
    """A database on MONGODB_URI, or an in-memory one (with a warning) when it is unset."""
    if not settings.mongodb_uri:
        logger.warning("MONGODB_URI is unset: using an in-memory database; data is lost on exit")
        return in_memory_database()
    client: pymongo.MongoClient = pymongo.MongoClient(
        settings.mongodb_uri,
        serverSelectionTimeoutMS=SERVER_SELECTION_TIMEOUT_MS,
        tz_aware=True,
    )
    return client[DATABASE_NAME]


def in_memory_database() -> Any:
    """A fresh, private, thread-safe mongomock database (for development and tests)."""
    client: mongomock.MongoClient = mongomock.MongoClient(tz_aware=True)
    return SerializedDatabase(client[DATABASE_NAME], threading.RLock())


def ensure_indexes(db: Database) -> None:
    """Create the indexes the service's queries rely on; safe to call on every start."""
    db["transactions"].create_index([("user", 1), ("posted_at", -1)])
    db["operations"].create_index([("user", 1), ("status", 1)])
    db["audit"].create_index([("user", 1), ("at", -1)])
    audit.ensure_indexes(db)
    db["handoffs"].create_index([("user", 1), ("status", 1)])
    # One provider account (Mono account, Plaid item), one customer: the keyed hash of its id is unique
    # among the links, so two customers finishing a link to the same account at once cannot both win.
    db["connections"].create_index("lookup", unique=True, sparse=True)


class SerializedDatabase:
    """A mongomock database whose collections run one call at a time."""

    def __init__(self, database: mongomock.Database, lock: threading.RLock) -> None:
        self._database = database
        self._lock = lock

    def __getitem__(self, name: str) -> SerializedCollection:
        return SerializedCollection(self._database[name], self._lock)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        attribute = getattr(self._database, name)
        if isinstance(attribute, mongomock.Collection):
            return SerializedCollection(attribute, self._lock)
        return attribute


class SerializedCollection:
    """Proxy that holds the database lock for each call and materialises cursors inside it."""

    def __init__(self, collection: mongomock.Collection, lock: threading.RLock) -> None:
        self._collection = collection
        self._lock = lock

    @property
    def name(self) -> str:
        return self._collection.name

    def find(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._collection.find(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        attribute = getattr(self._collection, name)
        if not callable(attribute):
            return attribute
        return self._locked(attribute)

    def _locked(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return call
