"""The channel hands provider webhooks to the action server, where the bank records live: the
real rasa-sdk app with the project's plugin on 127.0.0.1, its token required, the webhook
verified there before parsing, and the verdict (status, whom to tell) handed back."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from rasa_sdk.endpoint import create_app
from rasa_sdk.plugin import plugin_manager
from sanic import Sanic

from banking.service import BankingService
from checks.action_runner import SENDER
from connectors.bank_webhooks import ActionServerRelay
from sandbox.fake_mono import WEBHOOK_SECRET, FakeMono

TOKEN = "r" * 20 + uuid.uuid4().hex
ACCOUNT = "65aa7935564a694c67123456"
USER = "f1" * 32


@pytest.fixture
async def action_server(monkeypatch: pytest.MonkeyPatch, service: BankingService) -> AsyncIterator[str]:
    monkeypatch.setenv("ACTION_SERVER_TOKEN", TOKEN)
    monkeypatch.delenv("ACTION_SERVER_HOST", raising=False)
    monkeypatch.setattr(Sanic, "test_mode", True)
    app = create_app("actions")
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.after_start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/webhook"  # Rasa's action endpoint URL
    await server.before_stop()
    await server.close()
    await server.after_stop()


def connected(mono: FakeMono, service: BankingService) -> bytes:
    service.start_bank_link(USER, SENDER, "GTBank")
    return json.dumps(mono.connected_webhook(list(mono.sessions)[-1], ACCOUNT)).encode()


async def test_a_signed_webhook_is_recorded_by_the_action_server_and_names_whom_to_tell(
        action_server: str, mono: FakeMono, service: BankingService) -> None:
    relay = ActionServerRelay(action_server, {"Authorization": f"Bearer {TOKEN}", "X-Other": "not sent"})
    body = await asyncio.to_thread(connected, mono, service)
    result = await asyncio.to_thread(relay.handle, "mono", body, {"mono-webhook-secret": WEBHOOK_SECRET})
    assert result.status == 200 and result.delivery is not None
    assert (result.delivery.sender, result.delivery.intent) == (SENDER, "EXTERNAL_bank_linked")
    assert service.links.status_of_latest(USER) == "authorised"  # where the action that completes it looks
    again = await asyncio.to_thread(relay.handle, "mono", body, {"mono-webhook-secret": WEBHOOK_SECRET})
    assert (again.status, again.delivery) == (200, None)  # a provider retry: handled once
    relay.close()


async def test_a_forged_webhook_is_refused_there_and_tells_no_one(
        action_server: str, mono: FakeMono, service: BankingService) -> None:
    relay = ActionServerRelay(action_server, {"Authorization": f"Bearer {TOKEN}"})
    body = await asyncio.to_thread(connected, mono, service)
    unsigned = await asyncio.to_thread(relay.handle, "mono", body, {})
    forged = await asyncio.to_thread(relay.handle, "mono", body, {"mono-webhook-secret": "guess"})
    assert [(r.status, r.delivery) for r in (unsigned, forged)] == [(401, None), (403, None)]
    assert service.links.status_of_latest(USER) == "open"
    relay.close()


async def test_without_the_token_the_action_server_records_nothing(
        action_server: str, mono: FakeMono, service: BankingService) -> None:
    body = await asyncio.to_thread(connected, mono, service)
    relay = ActionServerRelay(action_server, {"Authorization": "Bearer wrong"})
    result = await asyncio.to_thread(relay.handle, "mono", body, {"mono-webhook-secret": WEBHOOK_SECRET})
    assert (result.status, result.delivery) == (503, None)  # the provider retries; nothing was recorded
    async with aiohttp.ClientSession() as http:
        url = action_server.replace("/webhook", "/bank-webhooks/mono")
        async with http.post(url, data=body, headers={"mono-webhook-secret": WEBHOOK_SECRET}) as answer:
            assert answer.status == 401
    assert service.links.status_of_latest(USER) == "open"
    relay.close()


async def test_an_action_server_that_is_down_means_retry_later() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    relay = ActionServerRelay(f"http://127.0.0.1:{port}/webhook", {"Authorization": f"Bearer {TOKEN}"}, timeout=2)
    result = await asyncio.to_thread(relay.handle, "mono", b"{}", {"mono-webhook-secret": WEBHOOK_SECRET})
    assert (result.status, result.delivery) == (503, None)
    relay.close()
