"""A clock that only moves when a check or a test says so."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

# Saturday 15 March 2025, 10:30 in Lagos.
START = datetime(2025, 3, 15, 9, 30, tzinfo=timezone.utc)


class Clock:
    """A clock that only moves when a test says so: call it for the time, `advance` it or set `now`."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
