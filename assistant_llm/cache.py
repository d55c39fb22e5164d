"""A small TTL cache for identical insight questions over unchanged data.

Keys are digests the caller builds from (customer key, normalised question,
language, fingerprint of the customer's data), so a money movement, a new
day or a different wording is a different key; the question text itself is
never stored, only its hash.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


def cache_key(*parts: str) -> str:
    """A fixed-length digest of the parts (so nothing readable is kept in memory as a key)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x1f")
    return digest.hexdigest()


def normalise_question(text: str) -> str:
    """Lower case, words only: "How much on FOOD??" and "how much on food" are the same question."""
    return " ".join(re.findall(r"[\w₦]+", text.lower()))


class TTLCache(Generic[V]):
    """At most ``size`` entries, each forgotten ``ttl`` seconds after it was stored."""

    def __init__(self, ttl: float, size: int = 256, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] <= self._clock():
                self._items.pop(key, None)
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: str, value: V) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            self._items[key] = (self._clock() + self._ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
