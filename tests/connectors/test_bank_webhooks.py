"""Provider webhooks on the WhatsApp channel's own server: Mono's signed POST over real HTTP,
refused when forged, handled once when retried, and delivered to the right conversation as
an external intent under its lock; the action the rule runs answers through the Graph API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from actions import runtime
from actions.support import ActionBankLinked
from banking.errors import ConfigError
from banking.provider_webhooks import ProviderWebhooks
from banking.service import BankingService
from checks.action_runner import make_tracker
from checks.whatsapp_fakes import ADA, TUNDE, FakeGraphApi, WebhookServer
from connectors.whatsapp import WhatsAppInput
from sandbox.fake_mono import WEBHOOK_SECRET, FakeMono
from tests.connectors.external_events import ExternalEventAgent

ACCOUNT = "65aa7935564a694c67123456"


@pytest.fixture
def agent() -> ExternalEventAgent:
    return ExternalEventAgent({"EXTERNAL_bank_linked": ActionBankLinked()})


@pytest.fixture
async def bank_server(channel: WhatsAppInput, service: BankingService,
                      serve: Callable[[WhatsAppInput], Awaitable[WebhookServer]]) -> AsyncIterator[WebhookServer]:
    served = await serve(channel)
    channel.bank_webhooks._webhooks = ProviderWebhooks(service)
    yield served
    await channel.bank_webhooks.join()


async def post(server: WebhookServer, payload: Any, secret: str | None = WEBHOOK_SECRET) -> int:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["mono-webhook-secret"] = secret
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{server.port}/webhooks/whatsapp/bank/mono"
        async with session.post(url, data=json.dumps(payload).encode(), headers=headers) as response:
            return response.status


async def start_link(service: BankingService, mono: FakeMono, sender: str) -> str:
    user = runtime.customer(make_tracker(sender=sender))
    await asyncio.to_thread(service.start_bank_link, user, sender, "GTBank")
    return list(mono.sessions)[-1]


async def test_finished_page_tells_the_right_customer_connected_with_accounts(
        bank_server: WebhookServer, service: BankingService, mono: FakeMono, graph: FakeGraphApi,
        agent: ExternalEventAgent) -> None:
    await start_link(service, mono, TUNDE)
    reference = await start_link(service, mono, ADA)
    assert await post(bank_server, mono.connected_webhook(reference, ACCOUNT)) == 200
    await bank_server.channel.bank_webhooks.join()
    assert agent.triggered == [(ADA, "EXTERNAL_bank_linked", [{"entity": "bank_event", "value": "connected"}],
                                True)]
    await graph.wait_for(lambda g: any("is connected" in t for t in g.delivered_texts()))
    (sent,) = [body for body in graph.delivered() if "is connected" in json.dumps(body)]
    assert sent["to"] == ADA
    assert "✅ GTBank is connected!" in json.dumps(sent, ensure_ascii=False)
    assert "₦87,654.32" in json.dumps(sent, ensure_ascii=False)


async def test_forged_and_unsigned_webhooks_are_refused_and_reach_no_one(
        bank_server: WebhookServer, service: BankingService, mono: FakeMono, agent: ExternalEventAgent) -> None:
    reference = await start_link(service, mono, ADA)
    assert await post(bank_server, mono.connected_webhook(reference, ACCOUNT), secret=None) == 401
    assert await post(bank_server, mono.connected_webhook(reference, ACCOUNT), secret="guess") == 403
    await bank_server.channel.bank_webhooks.join()
    assert agent.triggered == []
    assert await asyncio.to_thread(service.links.status_of_latest,
                                   runtime.customer(make_tracker(sender=ADA))) == "open"


async def test_a_retried_webhook_is_delivered_once(
        bank_server: WebhookServer, service: BankingService, mono: FakeMono, agent: ExternalEventAgent,
        graph: FakeGraphApi) -> None:
    reference = await start_link(service, mono, ADA)
    for _ in range(3):
        assert await post(bank_server, mono.connected_webhook(reference, ACCOUNT)) == 200
    await bank_server.channel.bank_webhooks.join()
    assert len(agent.triggered) == 1
    with contextlib.suppress(asyncio.TimeoutError):
        await graph.wait_for(lambda g: len([t for t in g.delivered_texts() if "is connected" in t]) > 1, 0.3)
    assert len([t for t in graph.delivered_texts() if "is connected" in t]) == 1


async def test_the_page_the_customer_returns_to_says_go_back_to_whatsapp(bank_server: WebhookServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{bank_server.port}/webhooks/whatsapp/bank/done") as response:
            assert response.status == 200
            assert "go back to WhatsApp" in await response.text()


class _StalledWebhooks:
    """Provider webhook verification that blocks (a slow key fetch), counting who is waiting."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.waiting = 0

    def handle(self, provider: str, body: bytes, headers: Any) -> Any:
        self.waiting += 1
        self.release.wait(10)
        from banking.provider_webhooks import WebhookResult

        return WebhookResult(403)


async def test_a_flood_of_stalled_webhooks_leaves_the_shared_thread_pool_free(
        bank_server: WebhookServer) -> None:
    stalled = _StalledWebhooks()
    bank_server.channel.bank_webhooks._webhooks = stalled
    loop = asyncio.get_running_loop()

    async def forged() -> int:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{bank_server.port}/webhooks/whatsapp/bank/mono"
            async with session.post(url, data=b"{}", headers={"mono-webhook-secret": "x"}) as answer:
                return answer.status

    posts = [asyncio.create_task(forged()) for _ in range(40)]
    try:
        await asyncio.sleep(0.5)
        # what the tracker store and every conversation use: still answers at once
        assert await asyncio.wait_for(loop.run_in_executor(None, lambda: "free"), 1.0) == "free"
        assert stalled.waiting <= 4
    finally:
        stalled.release.set()
    statuses = await asyncio.gather(*posts)
    assert set(statuses) <= {403, 503} and 503 in statuses


async def test_in_production_the_channel_refuses_to_start_with_an_unsafe_mono_base_url(
        channel: WhatsAppInput, serve: Callable[[WhatsAppInput], Awaitable[WebhookServer]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"ENVIRONMENT": "production", "BANK_PROVIDER": "mono", "MONO_SECRET_KEY": "live_sk_" + "a1" * 12,
                        "MONO_WEBHOOK_SECRET": "w1" * 20, "MONO_BASE_URL": "http://attacker.example",
                        "BANK_LINK_REDIRECT_URL": "https://bank.example/webhooks/whatsapp/bank/done"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="refusing to start in production: MONO_BASE_URL"):
        await serve(channel)
