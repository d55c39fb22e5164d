"""Fixtures for the WhatsApp channel: a fake Graph API, an in-memory MongoDB, and the
channel served by a real Sanic app, all on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from sanic import Sanic

from actions import runtime
from banking.service import BankingService
from banking.store import in_memory_database
from checks.clock import Clock
from checks.whatsapp_fakes import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    SALT,
    TOKEN,
    VERIFY_TOKEN,
    FakeGraphApi,
    RecordingAgent,
    WebhookServer,
)
from connectors.whatsapp import WhatsAppConfig, WhatsAppInput
from connectors.whatsapp.graph import RetryPolicy
from sandbox.fake_mono import FakeMono, MonoAccount, sample_transactions
from tests.provider_customers import MONO_ACCOUNT, fake_mono, mono_services

# Real backoff, shrunk so a test with retries takes milliseconds.
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, jitter=0.5, total_timeout=5.0)


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphApi]:
    fake = await FakeGraphApi().start()
    yield fake
    await fake.stop()


@pytest.fixture
def config(graph: FakeGraphApi) -> WhatsAppConfig:
    return WhatsAppConfig(
        phone_number_id=PHONE_NUMBER_ID,
        api_token=TOKEN,
        verify_token=VERIFY_TOKEN,
        app_secret=APP_SECRET,
        api_url=graph.api_url,
        user_id_salt=SALT,
    )


@pytest.fixture
def database() -> Any:
    return in_memory_database()


@pytest.fixture
def make_channel(config: WhatsAppConfig, database: Any) -> Callable[..., WhatsAppInput]:
    def build(**overrides: Any) -> WhatsAppInput:
        options: dict[str, Any] = {"database": database, "retry": FAST_RETRY}
        options.update(overrides)
        return WhatsAppInput(config, **options)

    return build


@pytest.fixture
def channel(make_channel: Callable[..., WhatsAppInput]) -> WhatsAppInput:
    return make_channel()


@pytest.fixture
def agent() -> RecordingAgent:
    return RecordingAgent()


@pytest.fixture
async def serve(
    agent: RecordingAgent, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[[WhatsAppInput], Awaitable[WebhookServer]]]:
    """Start a Sanic app serving a channel; every app started is stopped after the test."""
    # Sanic 21.12 rewrites its own protocol methods when an app starts, which breaks the
    # second app in a process unless it runs in test mode (as sanic-testing sets it).
    monkeypatch.setattr(Sanic, "test_mode", True)
    started: list[WebhookServer] = []

    async def start(channel: WhatsAppInput) -> WebhookServer:
        served = await WebhookServer(channel, agent).start()
        started.append(served)
        return served

    yield start
    for served in reversed(started):
        await served.stop()


@pytest.fixture
async def server(
    channel: WhatsAppInput, serve: Callable[[WhatsAppInput], Awaitable[WebhookServer]]
) -> WebhookServer:
    return await serve(channel)


@pytest.fixture
def mono() -> Iterator[FakeMono]:
    """The fake Mono, with one account of five transactions."""
    with fake_mono(MonoAccount(MONO_ACCOUNT, transactions=sample_transactions(5))) as fake:
        yield fake


@pytest.fixture
def service(database: Any, mono: FakeMono) -> Iterator[BankingService]:
    """The actions' banking service on the fake Mono (DirectPay on)."""
    with mono_services(database, Clock(datetime.now(timezone.utc)), mono, SALT) as build:
        banking = build()
        runtime.use_service(banking)
        yield banking
        runtime.use_service(None)
