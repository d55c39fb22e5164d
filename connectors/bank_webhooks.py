"""Bank providers' webhooks, served by the WhatsApp channel's server.

``register_bank_webhooks`` adds, under the channel's blueprint (``/webhooks/whatsapp``)::

    POST /bank/mono     Mono: mono-webhook-secret header
    POST /bank/plaid    Plaid: Plaid-Verification JWT
    GET  /bank/done     where the provider's page sends the customer back: "return to WhatsApp"

A POST is handed, raw, to the action server (``actions.bank_webhooks``: Rasa's own
action endpoint and its ``ACTION_SERVER_TOKEN``), which verifies it before its body is
parsed (banking.provider_webhooks) and records it beside the bank records the actions
read; so the channel holds no provider secret and writes no bank data, and the two
processes agree even on in-memory databases. It is answered with the action server's
verdict, and its news reaches the conversation the Rasa way: an external intent
(``EXTERNAL_bank_linked``, ``EXTERNAL_bank_updated``, ``EXTERNAL_payment_updated``) triggered
in this process through the agent's processor and the channel's output channel, under the
conversation's lock, so the rules in data/rules/connections.yml and provider_payments.yml
decide what the customer sees.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from rasa.core.channels.channel import OutputChannel
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from banking.linking import Delivery
from banking.provider_webhooks import WebhookResult
from banking.providers import require_provider_settings
from connectors.whatsapp import read_body

logger = logging.getLogger(__name__)

MAX_PROVIDER_WEBHOOK_BYTES = 256 * 1024
# Verification can call the provider (Plaid's key endpoint): it runs on its own few threads,
# never on the loop's default pool that the tracker store and every conversation share, and
# beyond MAX_PENDING_WEBHOOKS waiting at once a POST is answered 503 (providers retry).
WEBHOOK_WORKERS = 2
MAX_PENDING_WEBHOOKS = 16
PROVIDERS = ("mono", "plaid")
FORWARDED_HEADERS = ("mono-webhook-secret", "plaid-verification")  # the providers' signatures, nothing else
RELAY_TIMEOUT_SECONDS = 30.0  # Plaid's key fetch and the database write, on the action server
DONE_PAGE = """<!doctype html><html><head><meta charset="utf-8"><meta name="viewport"
content="width=device-width, initial-scale=1"><title>Bank linked</title></head>
<body style="font-family:sans-serif;text-align:center;padding:3em 1em">
<h1>All done</h1><p>You can close this page and go back to WhatsApp.
We will message you there as soon as your bank confirms.</p></body></html>"""


class ActionServerRelay:
    """Hands a provider webhook to the action server and reads back its verdict (blocking: webhook threads)."""

    def __init__(self, action_url: str, headers: Mapping[str, str], timeout: float = RELAY_TIMEOUT_SECONDS) -> None:
        base = action_url.rstrip("/")
        self._base = base[: -len("/webhook")] if base.endswith("/webhook") else base
        self._headers = {name: value for name, value in headers.items() if name.lower() == "authorization"}
        self._client = httpx.Client(timeout=timeout)

    @classmethod
    def for_agent(cls, agent: Any) -> ActionServerRelay:
        """From Rasa's action endpoint (endpoints.yml), token header included."""
        endpoint = getattr(agent, "action_endpoint", None)
        if endpoint is None or not endpoint.url:
            raise RuntimeError("no action endpoint: provider webhooks are handled by the action server")
        return cls(endpoint.url, endpoint.headers or {})

    def handle(self, provider: str, body: bytes, headers: Mapping[str, str]) -> WebhookResult:
        forwarded = {name: headers[name] for name in FORWARDED_HEADERS if headers.get(name) is not None}
        try:
            answer = self._client.post(f"{self._base}/bank-webhooks/{provider}", content=body,
                                       headers={**self._headers, **forwarded,
                                                "content-type": "application/octet-stream"})
        except httpx.HTTPError as error:
            logger.error("%s webhook not handed to the action server (%s); the provider will retry", provider,
                         type(error).__name__)
            return WebhookResult(503)
        if answer.status_code != 200:
            logger.error("the action server refused a %s webhook (%d); the provider will retry", provider,
                         answer.status_code)
            return WebhookResult(503)
        verdict = answer.json()
        found = verdict.get("delivery")
        delivery = None if not found else Delivery(user=str(found["user"]), sender=str(found["sender"]),
                                                   intent=str(found["intent"]), entities=dict(found["entities"]))
        return WebhookResult(int(verdict["status"]), delivery)

    def close(self) -> None:
        self._client.close()


class BankWebhooks:
    """Routes for the providers' webhooks; each POST is handed to the action server, off the loop."""

    def __init__(self, output_channel: Callable[[], OutputChannel], describe: Callable[[str], str],
                 webhooks: Any = None) -> None:
        self._output_channel = output_channel
        self._describe = describe
        self._webhooks = webhooks
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(max_workers=WEBHOOK_WORKERS, thread_name_prefix="bank-webhooks")
        self._pending = 0

    async def webhooks(self, agent: Any) -> Any:
        """What handles a webhook: the relay to the action server (tests may put a handler here)."""
        if self._webhooks is None:
            async with self._lock:
                if self._webhooks is None:
                    self._webhooks = ActionServerRelay.for_agent(agent)
        return self._webhooks

    async def receive(self, request: Request, provider: str) -> HTTPResponse:
        if provider not in PROVIDERS:
            return response.json({"status": "not found"}, status=404)
        body = await read_body(request, MAX_PROVIDER_WEBHOOK_BYTES)
        if body is None:
            return response.json({"status": "rejected"}, status=413)
        if self._pending >= MAX_PENDING_WEBHOOKS:
            logger.warning("%s webhook refused for now: %d already waiting", provider, self._pending)
            return response.json({"status": "busy"}, status=503)
        self._pending += 1
        try:
            webhooks = await self.webhooks(request.app.ctx.agent)
            headers = {name.lower(): value for name, value in request.headers.items()}
            result = await asyncio.get_running_loop().run_in_executor(
                self._executor, webhooks.handle, provider, body, _Headers(headers))
        finally:
            self._pending -= 1
        if result.delivery is not None:
            self._spawn(self.deliver(request.app.ctx.agent, result.delivery))
        return response.json({"status": "ok" if result.status == 200 else "rejected"}, status=result.status)

    async def deliver(self, agent: Any, delivery: Delivery) -> None:
        """Trigger the external intent for that conversation, as Rasa's trigger_intent endpoint does."""
        output = self._output_channel()
        entities = [{"entity": name, "value": value} for name, value in delivery.entities.items()]
        try:
            async with agent.lock_store.lock(delivery.sender):
                tracker = await agent.processor.fetch_tracker_and_update_session(delivery.sender, output)
                await agent.trigger_intent(delivery.intent, entities, output, tracker)
        except Exception as error:  # the provider got its 200; the customer hears on their next message
            logger.error("%s could not be told about their bank (%s)", self._describe(delivery.sender),
                         type(error).__name__, exc_info=error)
            return
        logger.info("%s told about their bank (%s)", self._describe(delivery.sender), delivery.intent)

    async def join(self) -> None:
        """Wait for every delivery started so far (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def close(self) -> None:
        """Stop the webhook threads (after the server stopped); nothing new is accepted."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        if isinstance(self._webhooks, ActionServerRelay):
            self._webhooks.close()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _Headers(dict):
    """Lower-cased request headers, looked up case-insensitively."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


def register_bank_webhooks(blueprint: Blueprint, channel: Any) -> BankWebhooks:
    """Add the providers' routes to the WhatsApp channel's blueprint; the one call the channel makes."""
    hooks = BankWebhooks(channel.get_output_channel, channel.describe_user)

    @blueprint.route("/bank/<provider:str>", methods=["POST"], stream=True)
    async def provider_webhook(request: Request, provider: str) -> HTTPResponse:
        return await hooks.receive(request, provider)

    @blueprint.route("/bank/done", methods=["GET"])
    async def back_to_whatsapp(_: Request) -> HTTPResponse:
        return response.html(DONE_PAGE, headers={"Cache-Control": "no-store"})

    @blueprint.listener("before_server_start")
    async def check_provider_settings(*_: Any) -> None:
        """Production refuses to start on unsafe or missing bank provider settings (not at first use)."""
        require_provider_settings()

    @blueprint.listener("after_server_stop")
    async def finish_deliveries(*_: Any) -> None:
        await hooks.join()
        hooks.close()

    channel.bank_webhooks = hooks
    return hooks
