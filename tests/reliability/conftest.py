"""Reliability tests: setting the process environment as a server would see it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.production_env import VARIABLES


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], None]:
    """Set exactly these variables (the rest of ours unset), as the process would see them."""

    def use(values: dict[str, str]) -> None:
        for name in VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return use
