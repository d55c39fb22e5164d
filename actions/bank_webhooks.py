"""Provider webhooks, handled where the bank records live: on the action server.

The providers POST to the channel's server (``connectors.bank_webhooks``), the one that faces
the internet; it hands each raw body with the provider's signature header to this route,
over the action server's own authenticated channel (``ACTION_SERVER_TOKEN``, loopback or a
private network), and gets back what to answer the provider and whom to tell::

    POST /bank-webhooks/<provider>    body: the provider's bytes, untouched
                                      headers: mono-webhook-secret / plaid-verification
    200  {"status": 200|401|403|400|503|500, "delivery": {"sender", "intent", "entities"} | null}

Verification still comes before parsing (``banking.provider_webhooks``), now next to the
database the action server writes: so a webhook's record and the action that completes the
link always see the same store, even when each process keeps its own in-memory database
(no ``MONGODB_URI``: ``make run``, the whole-stack tests). Registered by ``rasa_sdk_plugins``.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import pluggy
from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, json

from actions.runtime import banking
from banking.provider_webhooks import ProviderWebhooks, WebhookResult

logger = logging.getLogger(__name__)

hookimpl = pluggy.HookimplMarker("rasa_sdk")

ROUTE = "/bank-webhooks/<provider:str>"
FORWARDED_HEADERS = ("mono-webhook-secret", "plaid-verification")
MAX_BODY_BYTES = 256 * 1024  # as the channel's route; it never forwards more
# Verification may call the provider (Plaid's key endpoint): its own threads, not the pool actions use.
_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bank-webhooks")
    return _executor


def handle(provider: str, body: bytes, headers: dict[str, str]) -> WebhookResult:
    return ProviderWebhooks(banking()).handle(provider, body, headers)


async def receive(request: Request, provider: str) -> HTTPResponse:
    body = request.body or b""
    if len(body) > MAX_BODY_BYTES:
        return json({"status": 413, "delivery": None})
    headers = {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}
    result = await asyncio.get_running_loop().run_in_executor(_pool(), handle, provider, body, headers)
    delivery = asdict(result.delivery) if result.delivery is not None else None
    return json({"status": result.status, "delivery": delivery})


@hookimpl
def attach_sanic_app_extensions(app: Sanic) -> None:
    """Add the route; the token check of ``actions.server_auth`` guards it like every other."""
    app.add_route(receive, ROUTE, methods=["POST"], name="bank_webhooks")
