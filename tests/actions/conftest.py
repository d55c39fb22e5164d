"""Action tests: a real banking service on an in-memory database, wired into the action
server's runtime. Trackers and running an action as rasa-sdk does: checks/action_runner.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actions import runtime
from banking.config import Settings
from banking.sandbox import SandboxProvider
from banking.service import BankingService
from checks.action_runner import Clock, make_tracker


@pytest.fixture
def service(db: Any, clock: Clock) -> Iterator[BankingService]:
    settings = Settings(user_id_salt="action-tests", support_phone="+234 1 700 0000")
    banking = BankingService(db, SandboxProvider(), settings, clock=clock)
    runtime.use_service(banking)
    yield banking
    runtime.use_service(None)


@pytest.fixture
def connected(service: BankingService) -> str:
    """The customer's stored key, with GTBank linked in the sandbox."""
    user = runtime.customer(make_tracker())
    service.connect_bank(user, "GTBank")
    return user
