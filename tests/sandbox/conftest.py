"""Fixtures for the sandbox tests: a fake bot and a sandbox wired to each other over real
HTTP on 127.0.0.1, on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.sandbox.sandbox_fakes import Stack, start_stack, stop_stack


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    """A sandbox whose bot webhook is a fake bot that only records what it gets."""
    running = await start_stack()
    yield running
    await stop_stack(running)
