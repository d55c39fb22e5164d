"""Action tests: a real banking service on an in-memory database (or on the fake Mono), wired
into the action server's runtime. Trackers and running an action as rasa-sdk does: checks/action_runner.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from actions import runtime
from banking.config import Settings
from banking.sandbox import SandboxProvider
from banking.service import BankingService
from checks.action_runner import make_tracker
from checks.clock import Clock
from sandbox.fake_mono import FakeMono, MonoAccount
from tests.provider_customers import MONO_ACCOUNT, fake_mono, link_at_mono


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


@pytest.fixture
def serve() -> Iterator[Callable[[BankingService], BankingService]]:
    """Puts a banking service into the action server's runtime; taken out again after the test."""

    def use(banking: BankingService) -> BankingService:
        runtime.use_service(banking)
        return banking

    yield use
    runtime.use_service(None)


@pytest.fixture
def mono() -> Iterator[FakeMono]:
    """The fake Mono on 127.0.0.1, serving one account (MONO_ACCOUNT)."""
    with fake_mono(MonoAccount(MONO_ACCOUNT)) as fake:
        yield fake


@pytest.fixture
def mono_customer(mono: FakeMono,
                  serve: Callable[[BankingService], BankingService]) -> Callable[[BankingService], BankingService]:
    """Serves a banking service on the fake Mono, the tracker's customer's GTBank linked through it."""
    return lambda banking: link_at_mono(serve(banking), mono, runtime.customer(make_tracker()), MONO_ACCOUNT)
