"""The running sandbox: the chat state plus what Meta sends the bot.

A user's message from the page becomes a signed webhook; every bot message gets its
``sent`` and ``delivered`` status webhooks, and ``read`` once the page has shown it; the
bot's webhook is checked with Meta's GET verification handshake when it comes up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import aiohttp

from sandbox import payloads
from sandbox.config import SandboxConfig
from sandbox.fake_meta.state import DEFAULT_USERS, ChatMessage, ChatState, Thread
from sandbox.payloads import OutboundMessage

log = logging.getLogger("sandbox")

PROBE_INTERVAL_SECONDS = 2.0


class Sandbox(ChatState):
    """The running sandbox: chats, media, the event stream and webhook delivery to the bot."""

    def __init__(self, config: SandboxConfig, users: Sequence[tuple[str, str]] = DEFAULT_USERS) -> None:
        super().__init__(config, users)
        self.webhook_deliveries: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60, connect=5),
            headers={"User-Agent": "facebookexternalua"},
        )
        if self.config.verify_webhook_on_start:
            self.spawn(self._probe_bot_webhook())

    async def stop(self) -> None:
        self.stop_timers()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a sandbox background task failed", exc_info=task.exception())

    # --- what users and the bot do, delivered ---------------------------------------------

    def user_sends(self, thread: Thread, request: Mapping[str, Any]) -> ChatMessage:
        """Turn one page action into the webhook Meta would send, and deliver it in the background."""
        message = super().user_sends(thread, request)
        self.spawn(self._deliver_user_message(thread, message, self.inbound_webhook(thread, message)))
        return message

    def bot_sends(self, outbound: OutboundMessage) -> ChatMessage:
        message = super().bot_sends(outbound)
        self.spawn(self._status_flow(message))
        return message

    # --- webhooks to the bot --------------------------------------------------------------

    async def post_webhook(self, kind: str, payload: dict[str, Any]) -> tuple[int | None, str | None]:
        """POST one signed webhook to the bot; returns (HTTP status, error) and records it."""
        # Meta sends compact JSON with non-ASCII escaped; the signature covers these exact bytes.
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": payloads.signature_header(self.config.app_secret, body),
        }
        status: int | None = None
        error: str | None = None
        assert self._session is not None, "the sandbox is not started"
        try:
            async with self._session.post(self.config.bot_webhook_url, data=body, headers=headers) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            url = self.config.bot_webhook_url
            error = f"bot webhook unreachable ({type(exc).__name__}): is the bot running at {url}?"
        else:
            if status == 401 or status == 403:
                error = f"bot webhook answered {status}: signature rejected? Is WHATSAPP_APP_SECRET this sandbox's?"
            elif not 200 <= status < 300:
                error = f"bot webhook answered HTTP {status}"
        self.webhook_deliveries.append({"kind": kind, "payload": payload, "status": status, "error": error})
        return status, error

    async def _deliver_user_message(self, thread: Thread, message: ChatMessage, payload: dict[str, Any]) -> None:
        status, error = await self.post_webhook("message", payload)
        if error is None:
            log.info("%s -> bot: %s message delivered (webhook %s)", thread.label, message.type, status)
            self.set_status(message, "delivered")
        else:
            log.warning("%s -> bot: %s message not delivered: %s", thread.label, message.type, error)
            self.set_status(message, "failed", error)
            self.publish("notice", {"wa_id": thread.wa_id, "level": "error", "text": error})

    async def _send_status(self, message: ChatMessage, status: str) -> None:
        payload = payloads.status_webhook(
            self.business, message_id=message.id, status=status, recipient_id=message.wa_id
        )
        _, error = await self.post_webhook(f"status:{status}", payload)
        if error is None:
            message.status = status
        else:
            log.warning("status %s of a bot message not delivered: %s", status, error)

    async def _status_flow(self, message: ChatMessage) -> None:
        """sent, delivered, then read once the page has shown the message (like a phone)."""
        delay = max(self.config.status_delay, 0.0)
        await asyncio.sleep(max(delay, 0.05))  # never before the bot has its Graph API answer
        await self._send_status(message, "sent")
        await asyncio.sleep(delay)
        await self._send_status(message, "delivered")
        await self.until_seen(message)
        await self._send_status(message, "read")

    async def verify_bot_webhook(self) -> dict[str, str]:
        """Meta's GET verification handshake against the bot's webhook."""
        challenge = str(secrets.randbelow(10**9))
        query = payloads.verification_query(self.config.verify_token, challenge)
        assert self._session is not None, "the sandbox is not started"
        try:
            async with self._session.get(
                self.config.bot_webhook_url, params=query, timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                text = (await response.text()).strip()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            result = {"state": "unreachable", "detail": f"no answer from {self.config.bot_webhook_url} yet"}
        else:
            if response.status == 200 and text == challenge:
                result = {"state": "verified", "detail": "webhook verified: the bot echoed hub.challenge"}
            elif response.status in (401, 403):
                result = {
                    "state": "rejected",
                    "detail": f"the bot answered {response.status} to the verify token: is WHATSAPP_VERIFY_TOKEN "
                    "this sandbox's?",
                }
            else:
                result = {"state": "error", "detail": f"the bot answered HTTP {response.status} to GET verification"}
        self.set_bot_webhook(result)
        return result

    async def _probe_bot_webhook(self) -> None:
        """Verify the bot's webhook as soon as it is up (the bot may start after the sandbox)."""
        while True:
            result = await self.verify_bot_webhook()
            if result["state"] != "unreachable":
                level = logging.INFO if result["state"] == "verified" else logging.WARNING
                log.log(level, "bot %s; chat at %s/", result["detail"], self.config.base_url)
                return
            await asyncio.sleep(PROBE_INTERVAL_SECONDS)
