"""Per-user inbound rate limit for the WhatsApp channel: a sliding window, in process.

Each user (by ``user_key`` hash, never the number) may have ``messages`` messages
handled in any ``window_seconds``. The first message over the limit gets one
polite answer (at most one per window); it and every further message until the
window has room again are dropped: Meta still gets its 200, Rasa never sees them.
Only handled messages fill the window, so someone who keeps flooding is served
at the limit's pace, not shut out. A redelivery of a message id that is already
in the window does not count twice (the dedup store decides what it is).

The state lives in this process only (a few deques per active user, swept as
windows expire, at most ``MAX_TRACKED_USERS`` users): with several Rasa
processes behind one webhook each enforces the limit on what it receives, so
the effective limit is up to one per process.

    RATE_LIMIT_MESSAGES=20        messages per window; 0 turns the limit off
    RATE_LIMIT_WINDOW_SECONDS=60  the window's length
"""

from __future__ import annotations

import enum
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from banking.errors import ConfigError

__all__ = ["RateLimitConfig", "RateLimiter", "RateLimitStats", "Verdict"]

DEFAULT_MESSAGES = 20
DEFAULT_WINDOW_SECONDS = 60.0
MAX_TRACKED_USERS = 100_000


class Verdict(enum.Enum):
    """What to do with one inbound message."""

    ALLOW = "allow"  # hand it on as usual
    NOTIFY = "notify"  # over the limit: drop it and tell the user (once per window)
    DROP = "drop"  # over the limit and already told: drop it quietly


@dataclass(frozen=True)
class RateLimitConfig:
    """How many messages per user per window; ``messages == 0`` turns the limit off."""

    messages: int = DEFAULT_MESSAGES
    window_seconds: float = DEFAULT_WINDOW_SECONDS

    def __post_init__(self) -> None:
        if isinstance(self.messages, bool) or not isinstance(self.messages, int) or self.messages < 0:
            raise ConfigError("RATE_LIMIT_MESSAGES must be a whole number, 0 or more (0 turns the limit off)")
        if not isinstance(self.window_seconds, (int, float)) or not 0 < self.window_seconds <= 86_400:
            raise ConfigError("RATE_LIMIT_WINDOW_SECONDS must be a number of seconds above 0, at most a day")

    @property
    def enabled(self) -> bool:
        return self.messages > 0

    @classmethod
    def unlimited(cls) -> RateLimitConfig:
        """No limit (load tests, or a deployment that limits in front of Rasa)."""
        return cls(messages=0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> RateLimitConfig:
        """RATE_LIMIT_MESSAGES and RATE_LIMIT_WINDOW_SECONDS; empty values count as unset."""
        raw_messages = environ.get("RATE_LIMIT_MESSAGES", "").strip()
        raw_window = environ.get("RATE_LIMIT_WINDOW_SECONDS", "").strip()
        try:
            messages = int(raw_messages) if raw_messages else DEFAULT_MESSAGES
        except ValueError:
            raise ConfigError(f"RATE_LIMIT_MESSAGES={raw_messages!r} is not a whole number") from None
        try:
            window = float(raw_window) if raw_window else DEFAULT_WINDOW_SECONDS
        except ValueError:
            raise ConfigError(f"RATE_LIMIT_WINDOW_SECONDS={raw_window!r} is not a number of seconds") from None
        return cls(messages=messages, window_seconds=window)

    def describe(self) -> str:
        if not self.enabled:
            return "off"
        return f"{self.messages} messages per {self.window_seconds:g} s per user"


@dataclass
class RateLimitStats:
    """Counts since start: what was let through, and what was dropped (with or without a notice)."""

    allowed: int = 0
    notified: int = 0
    dropped: int = 0

    @property
    def rate_limited(self) -> int:
        return self.notified + self.dropped


@dataclass
class _UserWindow:
    handled: deque[tuple[float, str | None]] = field(default_factory=deque)  # (time, message id), oldest first
    notified_at: float | None = None
    last_seen: float = 0.0


class RateLimiter:
    """Sliding-window limiter keyed by user key; call ``check`` from one thread (the event loop)."""

    def __init__(self, config: RateLimitConfig | None = None, *, clock: Callable[[], float] = time.monotonic,
                 max_users: int = MAX_TRACKED_USERS) -> None:
        self.config = config or RateLimitConfig()
        self._clock = clock
        self._max_users = max_users
        self._users: OrderedDict[str, _UserWindow] = OrderedDict()  # least recently seen first
        self.stats = RateLimitStats()

    def check(self, key: str, message_id: str | None = None) -> Verdict:
        """Count one inbound message of ``key`` now and say what to do with it."""
        if not self.config.enabled:
            self.stats.allowed += 1
            return Verdict.ALLOW
        now = self._clock()
        window = self.config.window_seconds
        self._sweep(now)
        state = self._users.get(key)
        if state is None:
            state = self._users[key] = _UserWindow()
        self._users.move_to_end(key)
        state.last_seen = now
        while state.handled and now - state.handled[0][0] >= window:
            state.handled.popleft()
        if message_id is not None and any(seen == message_id for _, seen in state.handled):
            self.stats.allowed += 1
            return Verdict.ALLOW  # a redelivery: already counted, and dedup will recognise it
        if len(state.handled) < self.config.messages:
            state.handled.append((now, message_id))
            self.stats.allowed += 1
            return Verdict.ALLOW
        if state.notified_at is None or now - state.notified_at >= window:
            state.notified_at = now
            self.stats.notified += 1
            return Verdict.NOTIFY
        self.stats.dropped += 1
        return Verdict.DROP

    @property
    def tracked_users(self) -> int:
        return len(self._users)

    def _sweep(self, now: float) -> None:
        """Forget users idle for a whole window (their state is empty by then), and the oldest past the cap."""
        window = self.config.window_seconds
        while self._users:
            key, state = next(iter(self._users.items()))
            if now - state.last_seen < window and len(self._users) < self._max_users:
                break
            del self._users[key]
