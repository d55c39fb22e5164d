"""Mono DirectPay's webhook on the WhatsApp channel's own server, over real HTTP: the fake Mono
settles a payment and POSTs its signed webhook; the channel verifies it, triggers
EXTERNAL_payment_updated for the right conversation once, and the action the rule runs
tells the customer only what Mono's verify confirms."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from actions import runtime
from actions.payments import ActionPaymentUpdated
from banking.models import ProviderPayment
from banking.provider_webhooks import ProviderWebhooks
from banking.service import BankingService
from checks.action_runner import make_tracker
from checks.whatsapp_fakes import ADA, FakeGraphApi, WebhookServer
from connectors.whatsapp import WhatsAppInput
from sandbox.fake_mono import FakeMono
from tests.connectors.external_events import ExternalEventAgent

ACCOUNT = "65aa7935564a694c67123456"


@pytest.fixture
def agent() -> ExternalEventAgent:
    return ExternalEventAgent({"EXTERNAL_payment_updated": ActionPaymentUpdated()})


@pytest.fixture
async def bank_server(channel: WhatsAppInput, service: BankingService, mono: FakeMono,
                      serve: Callable[[WhatsAppInput], Awaitable[WebhookServer]]) -> AsyncIterator[WebhookServer]:
    served = await serve(channel)
    channel.bank_webhooks._webhooks = ProviderWebhooks(service)
    mono.webhook_url = f"http://127.0.0.1:{served.port}/webhooks/whatsapp/bank/mono"
    yield served
    await channel.bank_webhooks.join()


async def paying_customer(service: BankingService, mono: FakeMono, server: WebhookServer,
                          agent: ExternalEventAgent) -> str:
    """Ada linked GTBank through Mono and said YES to a ₦10,000 transfer: it waits at Mono."""
    user = runtime.customer(make_tracker(sender=ADA))
    await asyncio.to_thread(service.start_bank_link, user, ADA, "GTBank")
    status, _ = await asyncio.to_thread(mono.send_webhook, mono.connected_webhook(list(mono.sessions)[-1], ACCOUNT))
    assert status == 200
    await server.channel.bank_webhooks.join()
    assert (await asyncio.to_thread(service.complete_bank_link, user)).kind == "connected"
    operation = await asyncio.to_thread(service.prepare_transfer, user, 1_000_000, "savings",
                                        account_number="0123456780", bank="Zenith Bank")
    started = await asyncio.to_thread(service.confirm, user, operation.op_id)
    assert isinstance(started, ProviderPayment)
    agent.triggered.clear()
    return operation.op_id


async def test_approval_on_monos_page_reaches_the_customer_as_done_after_verify(
        bank_server: WebhookServer, service: BankingService, mono: FakeMono, graph: FakeGraphApi,
        agent: ExternalEventAgent) -> None:
    op_id = await paying_customer(service, mono, bank_server, agent)
    status, _ = await asyncio.to_thread(mono.settle_payment, op_id, "successful")
    assert status == 200
    await bank_server.channel.bank_webhooks.join()
    assert agent.triggered == [(ADA, "EXTERNAL_payment_updated", [{"entity": "payment_ref", "value": op_id}], True)]
    await graph.wait_for(lambda g: any("confirmed it" in t for t in g.delivered_texts()))
    (sent,) = [body for body in graph.delivered() if "confirmed it" in json.dumps(body)]
    assert sent["to"] == ADA and "₦10,000" in json.dumps(sent, ensure_ascii=False)
    assert any(r["path"] == f"/v2/payments/verify/{op_id}" for r in mono.requests)


async def test_a_forged_payment_webhook_is_refused_and_reaches_no_one(
        bank_server: WebhookServer, service: BankingService, mono: FakeMono, agent: ExternalEventAgent) -> None:
    op_id = await paying_customer(service, mono, bank_server, agent)
    mono.payments[op_id]["status"] = "successful"
    payload = mono.payment_webhook(op_id, "successful")
    assert (await asyncio.to_thread(mono.send_webhook, payload, None))[0] == 401
    assert (await asyncio.to_thread(mono.send_webhook, payload, "guessed-secret"))[0] == 403
    await bank_server.channel.bank_webhooks.join()
    assert agent.triggered == []
    assert not any(r["path"].startswith("/v2/payments/verify/") for r in mono.requests)


async def test_a_replayed_payment_webhook_tells_the_customer_once(
        bank_server: WebhookServer, service: BankingService, mono: FakeMono, graph: FakeGraphApi,
        agent: ExternalEventAgent) -> None:
    op_id = await paying_customer(service, mono, bank_server, agent)
    mono.payments[op_id]["status"] = "successful"
    payload = mono.payment_webhook(op_id, "successful")
    for _ in range(3):
        assert (await asyncio.to_thread(mono.send_webhook, payload))[0] == 200
    await bank_server.channel.bank_webhooks.join()
    assert len(agent.triggered) == 1
    await graph.wait_for(lambda g: any("confirmed it" in t for t in g.delivered_texts()))
    with contextlib.suppress(asyncio.TimeoutError):
        await graph.wait_for(lambda g: len([t for t in g.delivered_texts() if "confirmed it" in t]) > 1, 0.3)
    assert len([t for t in graph.delivered_texts() if "confirmed it" in t]) == 1


async def test_a_declined_payment_is_told_as_not_paid(
        bank_server: WebhookServer, service: BankingService, mono: FakeMono, graph: FakeGraphApi,
        agent: ExternalEventAgent) -> None:
    op_id = await paying_customer(service, mono, bank_server, agent)
    assert (await asyncio.to_thread(mono.settle_payment, op_id, "failed"))[0] == 200
    await graph.wait_for(lambda g: any("did not go through" in t for t in g.delivered_texts()))
    assert not any("confirmed it" in t for t in graph.delivered_texts())


@pytest.mark.parametrize(("decision", "told"), [("approve", "confirmed it"), ("decline", "was not approved")])
async def test_the_fake_monos_payment_page_settles_it_and_its_webhook_tells_the_customer(
        bank_server: WebhookServer, service: BankingService, mono: FakeMono, graph: FakeGraphApi,
        agent: ExternalEventAgent, decision: str, told: str) -> None:
    """``make run BANK_PROVIDER=mono``: the link after YES opens the fake's DirectPay page; Approve or
    Decline there settles the payment, sends the browser back, and the signed webhook reaches the chat."""
    op_id = await paying_customer(service, mono, bank_server, agent)
    page = mono.payment_page_url(op_id)
    assert page is not None and page.startswith(f"{mono.base_url}/pay/")
    async with aiohttp.ClientSession() as http:
        async with http.get(page) as shown:
            text = await shown.text()
            assert shown.status == 200 and "Approve ₦10,000.00" in text and "Decline" in text
        async with http.post(page, data={"decision": decision}, allow_redirects=False) as done:
            assert done.status == 303 and done.headers["Location"].endswith("/webhooks/whatsapp/bank/done")
        async with http.post(page, data={"decision": "approve"}, allow_redirects=False) as again:
            assert again.status == 404  # a page is used once
    await graph.wait_for(lambda g: any(told in t for t in g.delivered_texts()))
    assert mono.payments[op_id]["status"] == ("successful" if decision == "approve" else "cancelled")
    assert [d["status"] for d in mono.webhooks.deliveries] == [200]
    assert mono.initiations(op_id) == 1
