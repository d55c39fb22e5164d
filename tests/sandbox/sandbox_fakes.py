"""Test doubles for the sandbox tests: a fake bot (what the Rasa WhatsApp channel does, in
miniature) and a reader for the page's Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.config import SandboxConfig
from sandbox.fake_meta.app import RunningSandbox, start_server
from sandbox.fake_meta.webhooks import Sandbox


def own_signature_ok(app_secret: str, body: bytes, header: str | None) -> bool:
    """The bot-side check, written here independently of the sandbox's code."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len("sha256=") :])


Reply = Callable[["FakeBot", dict[str, Any]], Awaitable[None]]


class FakeBot:
    """An aiohttp webhook on 127.0.0.1 that checks Meta's signature and records every payload.

    ``on_message`` (optional) answers a user's message through the sandbox's Graph API,
    the way the real channel does: mark read with a typing indicator, then send.
    """

    def __init__(
        self,
        app_secret: str,
        verify_token: str,
        *,
        on_message: Reply | None = None,
        answer_status: int = 200,
    ) -> None:
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.on_message = on_message
        self.answer_status = answer_status
        self.graph_api_url = ""
        self.access_token = ""
        self.phone_number_id = ""
        self.payloads: list[dict[str, Any]] = []
        self.raw: list[tuple[dict[str, str], bytes]] = []
        self.bad_signatures = 0
        self.graph_answers: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/whatsapp/webhook"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhooks/whatsapp/webhook", self._post)
        app.router.add_get("/webhooks/whatsapp/webhook", self._verify)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def connect(self, graph_api_url: str, access_token: str, phone_number_id: str) -> None:
        self.graph_api_url = graph_api_url
        self.access_token = access_token
        self.phone_number_id = phone_number_id

    async def _verify(self, request: web.Request) -> web.Response:
        if request.query.get("hub.mode") == "subscribe" and request.query.get("hub.verify_token") == self.verify_token:
            return web.Response(text=request.query.get("hub.challenge", ""))
        return web.Response(status=403, text="wrong verify token")

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not own_signature_ok(self.app_secret, body, request.headers.get("X-Hub-Signature-256")):
            self.bad_signatures += 1
            return web.Response(status=403)
        self.raw.append((dict(request.headers), body))
        payload = json.loads(body)
        self.payloads.append(payload)
        value = payload["entry"][0]["changes"][0]["value"]
        if self.on_message is not None and "messages" in value and self.answer_status == 200:
            await self.on_message(self, value["messages"][0])
        return web.Response(status=self.answer_status, text="ok")

    # --- what the channel calls --------------------------------------------------------

    async def graph(self, body: dict[str, Any]) -> dict[str, Any]:
        assert self._session is not None
        async with self._session.post(
            f"{self.graph_api_url}/{self.phone_number_id}/messages",
            json=body,
            headers={"Authorization": f"Bearer {self.access_token}"},
        ) as response:
            answer = await response.json()
            assert response.status == 200, answer
        self.graph_answers.append(answer)
        return answer

    async def mark_read(self, message_id: str, typing: bool = True) -> None:
        body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
        if typing:
            body["typing_indicator"] = {"type": "text"}
        await self.graph(body)

    async def send_text(self, to: str, text: str) -> str:
        answer = await self.graph(
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "text",
                "text": {"body": text},
            }
        )
        return answer["messages"][0]["id"]

    async def send_buttons(self, to: str, text: str, buttons: list[tuple[str, str]]) -> str:
        answer = await self.graph(
            {
                "messaging_product": "whatsapp",
                "to": to,
                "type": "interactive",
                "interactive": {
                    "type": "button",
                    "body": {"text": text},
                    "action": {"buttons": [{"type": "reply", "reply": {"id": i, "title": t}} for i, t in buttons]},
                },
            }
        )
        return answer["messages"][0]["id"]

    async def send_list(self, to: str, text: str, button: str, rows: list[tuple[str, str, str]]) -> str:
        answer = await self.graph(
            {
                "messaging_product": "whatsapp",
                "to": to,
                "type": "interactive",
                "interactive": {
                    "type": "list",
                    "body": {"text": text},
                    "action": {
                        "button": button,
                        "sections": [
                            {"title": "Accounts", "rows": [{"id": i, "title": t, "description": d} for i, t, d in rows]}
                        ],
                    },
                },
            }
        )
        return answer["messages"][0]["id"]

    # --- what tests look at -------------------------------------------------------------------

    def messages(self) -> list[dict[str, Any]]:
        found = []
        for payload in self.payloads:
            found.extend(payload["entry"][0]["changes"][0]["value"].get("messages", []))
        return found

    def statuses(self) -> list[dict[str, Any]]:
        found = []
        for payload in self.payloads:
            found.extend(payload["entry"][0]["changes"][0]["value"].get("statuses", []))
        return found


async def eventually(check: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (or fail after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class EventStream:
    """Reads ``GET /api/events`` (Server-Sent Events) into (event, data) pairs."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url
        self._response: aiohttp.ClientResponse | None = None
        self.events: list[tuple[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventStream:
        self._response = await self._session.get(self._url, timeout=aiohttp.ClientTimeout(total=None))
        assert self._response.headers["Content-Type"].startswith("text/event-stream")
        self._task = asyncio.ensure_future(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None and self._response is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._response.close()

    async def _read(self) -> None:
        assert self._response is not None
        event, data = "message", []
        while True:
            line = (await self._response.content.readline()).decode()
            if not line:
                return
            line = line.rstrip("\n")
            if line.startswith("event:"):
                event = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].strip())
            elif line == "":
                if data:
                    self.events.append((event, json.loads("\n".join(data))))
                event, data = "message", []

    async def wait_for(self, event: str, predicate: Callable[[Any], bool] = lambda data: True) -> Any:
        def found() -> Any:
            return next((d for e, d in self.events if e == event and predicate(d)), None)

        return await eventually(found, what=f"a {event!r} event")


USER = "2348000000001"  # one of the sandbox's default simulated users


@dataclass
class Stack:
    bot: FakeBot
    running: RunningSandbox
    http: aiohttp.ClientSession

    @property
    def config(self) -> SandboxConfig:
        return self.running.config

    @property
    def base(self) -> str:
        return self.config.base_url

    @property
    def sandbox(self) -> Sandbox:
        return self.running.sandbox

    async def page_send(self, body: dict, wa_id: str = USER) -> dict:
        async with self.http.post(f"{self.base}/api/users/{wa_id}/messages", json=body) as response:
            answer = await response.json()
            assert response.status == 202, answer
            return answer["message"]

    async def page_seen(self, wa_id: str = USER) -> int:
        async with self.http.post(f"{self.base}/api/users/{wa_id}/read", json={}) as response:
            assert response.status == 200
            return (await response.json())["read"]


def sandbox_config(**overrides: object) -> SandboxConfig:
    values: dict = {"port": 0, "status_delay": 0.01, "verify_webhook_on_start": False}
    values.update(overrides)
    return SandboxConfig.generate(**values)


async def start_stack(bot: FakeBot | None = None, **overrides: object) -> Stack:
    config = sandbox_config(**overrides)
    bot = bot or FakeBot(config.app_secret, config.verify_token)
    bot.app_secret, bot.verify_token = config.app_secret, config.verify_token
    await bot.start()
    running = await start_server(replace(config, bot_webhook_url=bot.webhook_url), environ={})
    bot.connect(running.config.graph_api_url, config.access_token, config.phone_number_id)
    return Stack(bot=bot, running=running, http=aiohttp.ClientSession())


async def stop_stack(stack: Stack) -> None:
    await stack.http.close()
    await stack.running.stop()
    await stack.bot.stop()


# ---------------------------------------------------------------- ``python -m sandbox`` as a user runs it

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX_", "WHATSAPP_")) and k != "ENVIRONMENT"}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def sandbox_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "sandbox", *args]
