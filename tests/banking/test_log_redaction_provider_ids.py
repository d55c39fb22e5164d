"""Provider ids stay out of the logs: httpx logs every request's URL at INFO, and Mono's URLs
name the customer's Mono account (``GET /v2/accounts/<id>/transactions``). With the redaction
installed (both processes install it at start-up), no level of httpx or httpcore writes the id."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from banking.log_redaction import NumberRedactingFilter, install, redact
from banking.mono import MonoClient
from sandbox.fake_mono import FakeMono, MonoAccount
from tests.provider_customers import fake_mono, mono_config

ACCOUNT = "65aa7935564a694c67abcdef"


@pytest.fixture
def mono() -> Iterator[FakeMono]:
    with fake_mono(MonoAccount(ACCOUNT)) as fake:
        yield fake


@pytest.fixture
def redacted(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog's handler with the redaction on it, as install() puts it on every handler at start-up."""
    install()
    try:
        yield caplog
    finally:
        for existing in [f for f in caplog.handler.filters if isinstance(f, NumberRedactingFilter)]:
            caplog.handler.removeFilter(existing)


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_httpx_request_lines_never_name_a_mono_account(
        mono: FakeMono, redacted: pytest.LogCaptureFixture, level: int) -> None:
    client = MonoClient(mono_config(mono))
    try:
        with redacted.at_level(level):
            client.get(f"/v2/accounts/{ACCOUNT}")
            client.get(f"/v2/accounts/{ACCOUNT}/transactions", params={"paginate": "true"})
    finally:
        client.close()
    lines = [record.getMessage() for record in redacted.records if record.name.startswith(("httpx", "httpcore"))]
    assert any("/v2/accounts/[id]/transactions" in line for line in lines), lines
    assert ACCOUNT not in redacted.text and all(ACCOUNT not in line for line in lines)


@pytest.mark.parametrize(("text", "expected"), [
    ("GET http://mono/v2/accounts/65aa7935564a694c67abcdef/balance", "GET http://mono/v2/accounts/[id]/balance"),
    ("GET /v2/payments/verify/392cbd366d40479887ce9e7b3a065db9 200", "GET /v2/payments/verify/[id] 200"),
    ("GET /accounts/acc_live_1234abcd5678efgh", "GET /accounts/[id]"),
    ("the account 65aa7935564a694c67abcdef was linked", "the account [id] was linked"),
])
def test_provider_ids_are_replaced(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "POST http://127.0.0.1:5005/webhooks/whatsapp/bank/mono 200",
    "GET /v2/accounts/[id]/transactions?paginate=true&start=04-09-2026",
    'File "/work/main/.venv/lib/python3.10/site-packages/httpx/_client.py", line 1013',
    "user e7343d8f693d, ref SBX-A19184F69B944973, operation 392cbd366d40479887ce9e7b3a065db9",
])
def test_routes_hashes_references_and_our_operation_ids_stay_readable(text: str) -> None:
    assert redact(text) == text
