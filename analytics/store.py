"""Where analytics records live: a MongoDB collection, or a JSON Lines file.

With MONGODB_URI set (or a ``url`` in endpoints.yml), records go to the ``analytics_events``
collection of the banking database, beside the conversations, so `make kpis` on any
machine that reaches the database sees them. Without it they go to a local file
(``build/analytics/events.jsonl`` unless endpoints.yml's ``path`` says otherwise, and
``ANALYTICS_PATH`` wins over both; created readable by its owner only, 0600): unlike an
in-memory database, a file outlives `make run` and can be read by `make kpis` from
another process. Both hold the same records (``analytics.records``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import pymongo

from banking.config import mongodb_uri_from_env
from banking.store import DATABASE_NAME, SERVER_SELECTION_TIMEOUT_MS

logger = logging.getLogger(__name__)

DEFAULT_COLLECTION = "analytics_events"
DEFAULT_PATH = Path("build/analytics/events.jsonl")
FILE_MODE = 0o600

Record = dict[str, Any]


class AnalyticsStore(Protocol):
    """Append-only record storage, read back by time window."""

    def append(self, records: list[Record]) -> None: ...

    def read(self, since: float | None = None, until: float | None = None) -> list[Record]: ...

    def describe(self) -> str: ...


class MongoAnalyticsStore:
    """One document per record in a collection (indexed by time, and by user and time)."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self._indexed = False

    def append(self, records: list[Record]) -> None:
        if not records:
            return
        if not self._indexed:
            self.collection.create_index([("at", 1)])
            self.collection.create_index([("user", 1), ("at", 1)])
            self._indexed = True
        self.collection.insert_many([dict(record) for record in records], ordered=False)

    def read(self, since: float | None = None, until: float | None = None) -> list[Record]:
        window: dict[str, float] = {}
        if since is not None:
            window["$gte"] = since
        if until is not None:
            window["$lt"] = until
        query = {"at": window} if window else {}
        found = self.collection.find(query, {"_id": 0})
        return sorted((dict(item) for item in found), key=_order)

    def describe(self) -> str:
        return f"mongodb collection {getattr(self.collection, 'name', DEFAULT_COLLECTION)}"


class FileAnalyticsStore:
    """JSON Lines, one record per line, appended under a lock (one writer thread per process)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, records: list[Record]) -> None:
        if not records:
            return
        lines = "".join(json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n" for record in records)
        with self._lock:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # owner-only: pseudonymous, but still who talked to the bank and when
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            if os.fstat(descriptor).st_mode & 0o077:
                os.fchmod(descriptor, FILE_MODE)
            with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
                handle.write(lines)

    def read(self, since: float | None = None, until: float | None = None) -> list[Record]:
        if not self.path.exists():
            return []
        records: list[Record] = []
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    logger.warning("%s line %d is not JSON; skipped", self.path, number)
                    continue
                if _in_window(record, since, until):
                    records.append(record)
        return sorted(records, key=_order)

    def describe(self) -> str:
        return f"file {self.path}"


class MemoryAnalyticsStore:
    """A list, for tests."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._lock = threading.Lock()

    def append(self, records: list[Record]) -> None:
        with self._lock:
            self.records.extend(dict(record) for record in records)

    def read(self, since: float | None = None, until: float | None = None) -> list[Record]:
        with self._lock:
            return sorted((dict(r) for r in self.records if _in_window(r, since, until)), key=_order)

    def describe(self) -> str:
        return "memory"


def analytics_path_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    """ANALYTICS_PATH: the JSON Lines file used when there is no MongoDB; None when unset."""
    return environ.get("ANALYTICS_PATH", "").strip() or None


def open_store(
    url: str | None = None,
    *,
    collection: str = DEFAULT_COLLECTION,
    path: str | os.PathLike[str] | None = None,
    db: str = DATABASE_NAME,
    environ: Mapping[str, str] = os.environ,
) -> AnalyticsStore:
    """MongoDB when a URI is given or MONGODB_URI is set; otherwise the JSON Lines file."""
    uri = url or mongodb_uri_from_env(environ)
    if uri:
        client: pymongo.MongoClient = pymongo.MongoClient(
            uri, connect=False, serverSelectionTimeoutMS=SERVER_SELECTION_TIMEOUT_MS, tz_aware=True)
        return MongoAnalyticsStore(client[db][collection])
    chosen = path or analytics_path_from_env(environ) or DEFAULT_PATH
    return FileAnalyticsStore(chosen)


def _in_window(record: Mapping[str, Any], since: float | None, until: float | None) -> bool:
    at = record.get("at")
    if not isinstance(at, (int, float)):
        return since is None and until is None
    return (since is None or at >= since) and (until is None or at < until)


def _order(record: Mapping[str, Any]) -> tuple[float, int]:
    at = record.get("at")
    return (at if isinstance(at, (int, float)) else 0.0, record.get("seq", 0))
