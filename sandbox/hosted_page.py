"""The page a fake provider shows where the real one hosts its own (Mono Connect, Plaid Hosted
Link, Mono DirectPay's checkout): the customer "logs in" with one button, or approves or
declines a payment, the fake sends its signed webhook to our server, and the browser goes on
to our "back to WhatsApp" page, as after the real thing."""

from __future__ import annotations

import asyncio
import html
import logging
from typing import Any

import aiohttp
from aiohttp import web

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 30

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><meta name="viewport"
content="width=device-width, initial-scale=1"><title>{provider} (sandbox)</title></head>
<body style="font-family:sans-serif;max-width:28em;margin:3em auto;padding:0 1em;text-align:center">
<p style="color:#777">{provider} sandbox: a stand-in for the provider's own page</p>
<h1>Link {bank}</h1><p>{detail}</p>
<form method="post"><button type="submit" id="link" style="font-size:1.2em;padding:.6em 1.4em">
Link my account</button></form></body></html>"""

_PAYMENT = """<!doctype html><html><head><meta charset="utf-8"><meta name="viewport"
content="width=device-width, initial-scale=1"><title>{provider} (sandbox)</title></head>
<body style="font-family:sans-serif;max-width:28em;margin:3em auto;padding:0 1em;text-align:center">
<p style="color:#777">{provider} sandbox: a stand-in for the provider's own page</p>
<h1>Approve {amount}</h1><p>{detail}</p>
<form method="post"><button type="submit" name="decision" value="approve" id="approve"
style="font-size:1.2em;padding:.6em 1.4em">Approve</button>
<button type="submit" name="decision" value="decline" id="decline"
style="font-size:1.2em;padding:.6em 1.4em">Decline</button></form></body></html>"""

_DONE = """<!doctype html><html><head><meta charset="utf-8"><title>{provider} (sandbox)</title></head>
<body style="font-family:sans-serif;text-align:center;padding:3em 1em"><h1>Linked</h1>
<p>You can close this page and go back to WhatsApp.</p></body></html>"""


def login_page(provider: str, bank: str | None, detail: str) -> web.Response:
    return web.Response(text=_PAGE.format(provider=html.escape(provider), bank=html.escape(bank or "your bank"),
                                          detail=html.escape(detail)),
                        content_type="text/html", headers={"Cache-Control": "no-store"})


def payment_page(provider: str, amount: str, detail: str) -> web.Response:
    """A payment to approve: an Approve and a Decline button, each POSTing ``decision``."""
    return web.Response(text=_PAYMENT.format(provider=html.escape(provider), amount=html.escape(amount),
                                             detail=html.escape(detail)),
                        content_type="text/html", headers={"Cache-Control": "no-store"})


def finished(provider: str, redirect_url: str | None) -> web.Response:
    """Where the browser goes once the customer finished: the redirect the link asked for, else a done page."""
    if redirect_url:
        raise web.HTTPSeeOther(redirect_url)
    return web.Response(text=_DONE.format(provider=html.escape(provider)), content_type="text/html")


class WebhookSender:
    """Sends a fake provider's webhooks in the background (the customer's browser never waits for them)
    and keeps each delivery's HTTP status for tests to read."""

    def __init__(self) -> None:
        self.deliveries: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, url: str | None, body: bytes, headers: dict[str, str]) -> None:
        if not url:
            logger.warning("a fake provider has no webhook URL to send to; the webhook was not sent")
            return
        task = asyncio.get_running_loop().create_task(self._post(url, body, headers))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        delivery: dict[str, Any] = {"url": url, "status": None}
        self.deliveries.append(delivery)
        try:
            timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(url, data=body, headers={"content-type": "application/json", **headers}) as r:
                    delivery["status"] = r.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            delivery["status"] = type(error).__name__
            logger.warning("a fake provider's webhook could not be delivered (%s)", type(error).__name__)
