"""End-to-end tests: the real stack (fake Meta, action server, ``rasa run`` with the trained
model) on free ports of 127.0.0.1. They need ``models/banking.tar.gz`` and take about a
minute and a half, so the unit run leaves them out (``pytest --ignore=tests/e2e``) and
``make test-e2e`` runs them after training (``pytest tests/e2e``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from checks.stack import BotStack, bot_stack


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: runs the real bot stack (needs the trained model; about 90 s): `make test-e2e`"
    )


@pytest.fixture(scope="session")
def event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for the session, so that a stack can serve more than one test."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
async def unlimited_stack() -> AsyncIterator[BotStack]:
    """One stack, the rate limit off (a customer sends many turns in a row), shared by the tests that
    look only at their own customer's conversation: a stack start is most of a test's time."""
    async with bot_stack(environment={"RATE_LIMIT_MESSAGES": "0"}) as stack:
        yield stack
