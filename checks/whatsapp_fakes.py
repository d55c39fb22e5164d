"""Local stand-ins for Meta and for Rasa, served over real HTTP on 127.0.0.1.

``FakeGraphApi`` serves the sandbox's Graph API (``sandbox.fake_meta.graph_api``:
messages, read receipts, media uploads and downloads), which records every request and
can be told to fail, stall or refuse. ``WebhookServer`` mounts the channel in a real
Sanic app the way ``rasa run`` does (``rasa.core.channels.channel.register`` with
``app.ctx.agent``), with a ``RecordingAgent`` standing in for Rasa's Agent.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic

from connectors.whatsapp import WhatsAppInput
from sandbox.config import SandboxConfig
from sandbox.fake_meta.graph_api import MAX_UPLOAD_BYTES, GraphApi
from sandbox.fake_meta.state import ChatState
from sandbox.payloads import ReadReceipt

PAYLOADS = Path(__file__).parent / "payloads"
VERSION = "v25.0"
PHONE_NUMBER_ID = "106540352242922"
TOKEN = "EAAG-test-token-not-real"
VERIFY_TOKEN = "verify-me-please"
APP_SECRET = "app-secret-for-tests"
SALT = "test-salt"
ADA = "2348031234567"  # the sender of the recorded payloads
TUNDE = "2348059876543"


def load_payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def text_webhook(sender: str, message_id: str, body: str, timestamp: int = 1732872000) -> dict[str, Any]:
    """A text-message webhook shaped like the recorded ``text.json``."""
    payload = load_payload("text")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = sender
    value["messages"][0].update({"from": sender, "id": message_id, "timestamp": str(timestamp)})
    value["messages"][0]["text"]["body"] = body
    return payload


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


class ChannelTestChats(ChatState):
    """The sandbox's chat state for channel tests, which post their webhooks to the bot
    themselves: the state never saw the messages the bot marks read, so every read
    receipt is accepted (and recorded)."""

    def bot_reads(self, receipt: ReadReceipt) -> None:
        self.read_receipts.append({"message_id": receipt.message_id, "typing_indicator": receipt.typing})


class FakeGraphApi(GraphApi):
    """The sandbox's Graph API alone on 127.0.0.1, with this module's token and phone number id.

    Recording and scripted faults (``fail_next``, ``refuse_next``, ``stall_next``,
    ``answer_next_upload``, ``add_media``) are the sandbox's; this adds the server and
    what the channel tests read.
    """

    def __init__(self) -> None:
        config = SandboxConfig.generate(
            app_secret=APP_SECRET, access_token=TOKEN, verify_token=VERIFY_TOKEN, phone_number_id=PHONE_NUMBER_ID,
            verify_webhook_on_start=False,
        )
        super().__init__(ChannelTestChats(config, users=()))
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/{VERSION}"

    async def start(self) -> FakeGraphApi:
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = bound_socket()
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def media(self) -> dict[str, tuple[bytes, str]]:
        """Uploaded and added media: id to (bytes, MIME type)."""
        return {media_id: (media.data, media.mime_type) for media_id, media in self.state.media.items()}

    def delivered(self) -> list[dict[str, Any]]:
        """Bodies of outbound messages Meta accepted, in order."""
        return [request.json for request in self.of_kind("message") if request.status == 200]

    def delivered_texts(self) -> list[str]:
        return [message["text"]["body"] for message in self.delivered() if message.get("type") == "text"]

    async def wait_for(self, predicate: Callable[[FakeGraphApi], bool], timeout: float = 5.0) -> None:
        await self.until(lambda: predicate(self), timeout)


Responder = Callable[[UserMessage], Awaitable[Any]]


async def echo(message: UserMessage) -> None:
    await message.output_channel.send_text_message(message.sender_id, f"You said: {message.text}")


class RecordingAgent:
    """Stands in for rasa.core.agent.Agent: records each UserMessage and answers through its channel."""

    def __init__(self) -> None:
        self.messages: list[UserMessage] = []
        self.responder: Responder = echo
        self._changed = asyncio.Condition()

    async def handle_message(self, message: UserMessage) -> None:
        self.messages.append(message)
        async with self._changed:
            self._changed.notify_all()
        await self.responder(message)

    @property
    def texts(self) -> list[str]:
        return [message.text or "" for message in self.messages]

    async def wait_for_messages(self, count: int, timeout: float = 5.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.messages) >= count), timeout)


class WebhookServer:
    """The channel served by Sanic on a random port, plus an HTTP client to call it."""

    def __init__(self, channel: WhatsAppInput, agent: RecordingAgent) -> None:
        self.channel = channel
        self.agent = agent
        self.app = Sanic(f"whatsapp_test_{uuid.uuid4().hex}", configure_logging=False)
        self.app.ctx.agent = agent
        register([channel], self.app, route="/webhooks/")
        self._server: Any = None
        self._http: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/whatsapp/webhook"

    async def start(self) -> WebhookServer:
        sock = bound_socket()
        self.port = sock.getsockname()[1]
        self._server = await self.app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
        try:
            await self._server.startup()
            await self._server.before_start()  # the channel's start-up listeners, as app.run runs them
            await self._server.after_start()
        except BaseException:
            await self._server.close()
            raise
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        return self

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._server is not None and self._server.is_serving():
            await self._server.before_stop()
            await self._server.close()
            await self._server.after_stop()  # runs the channel's after_server_stop listener

    async def post(self, payload: Any = None, *, raw: bytes | None = None, signature: str | None = "sign",
                   secret: str = APP_SECRET) -> tuple[int, str]:
        """POST a webhook; signed with ``secret`` unless a signature (or None for none) is given."""
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "sign":
            headers["X-Hub-Signature-256"] = sign(body, secret)
        elif signature is not None:
            headers["X-Hub-Signature-256"] = signature
        assert self._http is not None
        async with self._http.post(self.webhook_url, data=body, headers=headers) as response:
            return response.status, await response.text()

    async def get(self, params: dict[str, str]) -> tuple[int, str, str]:
        assert self._http is not None
        async with self._http.get(self.webhook_url, params=params) as response:
            return response.status, response.headers.get("Content-Type", ""), await response.text()

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until the channel has handled everything it accepted."""
        assert await self.channel.join(timeout), "the channel did not finish its work in time"
