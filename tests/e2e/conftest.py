"""End-to-end tests: the real stack (fake Meta, action server, ``rasa run`` with the trained
model) on free ports of 127.0.0.1. They need ``models/banking.tar.gz`` and take about a
minute and a half, so the unit run leaves them out (``pytest --ignore=tests/e2e``) and
``make test-e2e`` runs them after training (``pytest tests/e2e``)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: runs the real bot stack (needs the trained model; about 90 s): `make test-e2e`"
    )
