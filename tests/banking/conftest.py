"""Fixtures for the banking core: a service on the shared in-memory database and clock
(checks/action_runner.py), and a customer with a bank linked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from banking.config import Settings
from banking.sandbox import SandboxProvider
from banking.service import BankingService
from checks.clock import Clock


@pytest.fixture
def settings() -> Settings:
    return Settings(user_id_salt="test-salt")


@pytest.fixture
def make_service(db: Any, clock: Clock) -> Callable[..., BankingService]:
    def build(settings: Settings | None = None) -> BankingService:
        return BankingService(db, SandboxProvider(), settings or Settings(user_id_salt="test-salt"), clock=clock)

    return build


@pytest.fixture
def service(make_service: Callable[..., BankingService], settings: Settings) -> BankingService:
    return make_service(settings)


@pytest.fixture
def user(service: BankingService) -> str:
    """A customer with GTBank linked."""
    key = "a1" * 32
    service.connect_bank(key, "gtbank")
    return key
