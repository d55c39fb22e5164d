"""A database whose every collection call passes a hook first, for the banking tests and the
storage-faults check: a fault (raise before or after the call took effect, once or from then
on), a pause (hold a worker at one call while the test does something else) or a trace. The hook
runs outside the in-memory database's lock, so a paused worker blocks no one else."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from pymongo.errors import AutoReconnect, OperationFailure, PyMongoError


class InterposedDatabase:
    """Wraps a database; ``before``/``after`` hooks see (collection, method) around each call."""

    def __init__(self, database: Any) -> None:
        self._database = database
        self.reset()

    def reset(self) -> None:
        """No hooks: every call goes straight through."""
        self.before: Callable[[str, str], None] = lambda collection, method: None
        self.after: Callable[[str, str], None] = lambda collection, method: None

    def __getitem__(self, name: str) -> _InterposedCollection:
        return _InterposedCollection(self._database[name], name, self)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._database, name)


class _InterposedCollection:
    def __init__(self, collection: Any, name: str, owner: InterposedDatabase) -> None:
        self._collection, self._name, self._owner = collection, name, owner

    @property
    def name(self) -> str:
        return self._name

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)
        attribute = getattr(self._collection, method)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._owner.before(self._name, method)
            result = attribute(*args, **kwargs)
            self._owner.after(self._name, method)
            return result

        return call


class Fault:
    """Raise ``error`` at the ``nth`` call of collection.method, before it applied or after (reply lost);
    ``persistent``: and at every later call too, until ``heal()``."""

    def __init__(self, db: InterposedDatabase, collection: str, method: str, *, nth: int = 1, after: bool = False,
                 persistent: bool = False, error: type[PyMongoError] = AutoReconnect) -> None:
        self.collection, self.method, self.nth, self.when_after = collection, method, nth, after
        self.persistent, self.error = persistent, error
        self.calls, self.fired, self.healed = 0, False, False
        db.before = lambda collection, method: self._hit(collection, method, after=False)
        db.after = lambda collection, method: self._hit(collection, method, after=True)

    def heal(self) -> None:
        self.healed = True

    def describe(self) -> str:
        when = "after it was applied (reply lost)" if self.when_after else "before it was applied"
        down = ", database down from then on" if self.persistent else ""
        return f"{self.error.__name__} at {self.collection}.{self.method} #{self.nth} {when}{down}"

    def _hit(self, collection: str, method: str, after: bool) -> None:
        if self.healed:
            return
        if self.fired:
            if self.persistent and not after:
                raise self.error("injected: database still unreachable")
            return
        if (collection, method) != (self.collection, self.method):
            return
        if not after:
            self.calls += 1
        if self.calls == self.nth and after == self.when_after:
            self.fired = True
            if self.error is OperationFailure:
                raise OperationFailure("injected: write conflict", code=112)
            raise self.error("injected: connection reset by peer")


class Pause:
    """Hold the first call of collection.method until ``release()``; ``reached`` is set when it gets there."""

    def __init__(self, db: InterposedDatabase, collection: str, method: str) -> None:
        self.reached, self._go = threading.Event(), threading.Event()
        self._armed = True

        def before(name: str, called: str) -> None:
            if self._armed and (name, called) == (collection, method):
                self._armed = False
                self.reached.set()
                assert self._go.wait(10), "the paused call was never released"

        db.before = before

    def release(self) -> None:
        self._go.set()


class Trace:
    """Record every collection call (collection, method), in order, until ``db.reset()``."""

    def __init__(self, db: InterposedDatabase) -> None:
        self.calls: list[tuple[str, str]] = []
        db.before = lambda collection, method: self.calls.append((collection, method))
