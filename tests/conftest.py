"""Fixtures every test may use: a clock the test moves by hand and a fresh in-memory banking
database. The helpers behind them (trackers, running an action) are in checks/action_runner.py;
each directory's conftest.py adds what only its tests need."""

from __future__ import annotations

from typing import Any

import pytest

from banking.store import ensure_indexes, in_memory_database
from checks.clock import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db() -> Any:
    """A fresh in-memory banking database with the production indexes."""
    database = in_memory_database()
    ensure_indexes(database)
    return database
