"""Fixtures for the LLM tests: the fake Groq on 127.0.0.1, a banking service with two
customers on an in-memory database, and the action server's runtimes wired to both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from actions import runtime
from assistant_llm import runtime as llm_runtime
from assistant_llm.config import LLMConfig
from assistant_llm.runtime import Assistant
from banking.config import Settings
from banking.identity import user_key
from banking.sandbox import SandboxProvider
from banking.service import BankingService
from checks.action_runner import SENDER
from checks.clock import Clock
from checks.llm_support import OTHER_SENDER, Ticker, llm_config, make_assistant
from sandbox.fake_groq import FakeGroq

SALT = "llm-tests"


@pytest.fixture
async def groq() -> AsyncIterator[FakeGroq]:
    fake = await FakeGroq().start()
    yield fake
    await fake.stop()


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
def config(groq: FakeGroq) -> LLMConfig:
    return llm_config(groq.base_url)


@pytest.fixture
async def llm(config: LLMConfig, ticker: Ticker) -> AsyncIterator[Assistant]:
    """The assistant the actions use, talking to the fake Groq."""
    assistant = make_assistant(config, ticker)
    llm_runtime.use_assistant(assistant)
    yield assistant
    llm_runtime.use_assistant(None)
    await assistant.chat.aclose()


@pytest.fixture
def offline() -> Iterator[Assistant]:
    """No GROQ_API_KEY: what a deployment without Groq runs."""
    assistant = Assistant.from_config(LLMConfig(api_key=None))
    llm_runtime.use_assistant(assistant)
    yield assistant
    llm_runtime.use_assistant(None)


@pytest.fixture
def service(db: Any, clock: Clock) -> Iterator[BankingService]:
    banking = BankingService(db, SandboxProvider(), Settings(user_id_salt=SALT), clock=clock)
    runtime.use_service(banking)
    yield banking
    runtime.use_service(None)


@pytest.fixture
def customer(service: BankingService) -> str:
    """The customer's key, with GTBank linked."""
    key = user_key(SENDER, SALT)
    service.connect_bank(key, "GTBank")
    return key


@pytest.fixture
def other_customer(service: BankingService) -> str:
    key = user_key(OTHER_SENDER, SALT)
    service.connect_bank(key, "Access Bank")
    return key


@pytest.fixture(autouse=True)
def no_charts(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv("CHART_BASE_URL", raising=False)
    monkeypatch.setenv("CHART_DIR", str(tmp_path / "charts"))
