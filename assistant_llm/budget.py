"""In-process request budgets: per customer and for the whole action server, per minute and per day.

A spent budget means "answer deterministically", never an error to the customer.
Sliding windows, so a burst at the end of one minute cannot double up with the
start of the next. One process only: with several action-server workers each
keeps its own count (Groq's own 429 is the backstop).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

MINUTE = 60.0
DAY = 86_400.0
_MAX_USERS = 50_000  # forget the least recently seen customers beyond this


@dataclass(frozen=True)
class Limits:
    user_per_minute: int
    user_per_day: int
    global_per_minute: int
    global_per_day: int


class _Window:
    """Timestamps of granted requests within the longest window (a day)."""

    __slots__ = ("stamps",)

    def __init__(self) -> None:
        self.stamps: deque[float] = deque()

    def count_since(self, since: float) -> int:
        # stamps are in order; count from the right until one is older than ``since``
        count = 0
        for stamp in reversed(self.stamps):
            if stamp < since:
                break
            count += 1
        return count

    def forget_before(self, since: float) -> None:
        while self.stamps and self.stamps[0] < since:
            self.stamps.popleft()


class RequestBudget:
    """``try_acquire(user)`` grants one request when neither that user's nor the global budget is spent."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._global = _Window()
        self._users: dict[str, _Window] = {}
        self.refused = 0

    def try_acquire(self, user: str) -> bool:
        now = self._clock()
        with self._lock:
            window = self._users.pop(user, None) or _Window()
            self._users[user] = window  # most recently used last
            for kept in (window, self._global):
                kept.forget_before(now - DAY)
            allowed = (
                window.count_since(now - MINUTE) < self._limits.user_per_minute
                and len(window.stamps) < self._limits.user_per_day
                and self._global.count_since(now - MINUTE) < self._limits.global_per_minute
                and len(self._global.stamps) < self._limits.global_per_day
            )
            if allowed:
                window.stamps.append(now)
                self._global.stamps.append(now)
            else:
                self.refused += 1
            while len(self._users) > _MAX_USERS:
                self._users.pop(next(iter(self._users)))
            return allowed
