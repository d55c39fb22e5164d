"""Local stand-ins for Meta and for Rasa, served over real HTTP on 127.0.0.1.

``FakeGraphApi`` answers like the Graph API (messages, read receipts, media uploads
and downloads) and
records every request; it can be told to fail, stall or refuse. ``WebhookServer``
mounts the channel in a real Sanic app the way ``rasa run`` does
(``rasa.core.channels.channel.register`` with ``app.ctx.agent``), with a
``RecordingAgent`` standing in for Rasa's Agent.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic

from connectors.whatsapp import WhatsAppInput

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


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    json: Any
    status: int = 0
    at: float = 0.0

    @property
    def kind(self) -> str:
        if self.path.startswith("/media/"):
            return "download"
        if self.method == "GET":
            return "lookup"
        if isinstance(self.json, dict) and self.json.get("status") == "read":
            return "read"
        return "message"


@dataclass
class Scripted:
    status: int
    body: dict[str, Any]
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Upload:
    fields: dict[str, str]
    filename: str | None
    content_type: str | None
    content: bytes
    authorization: str | None
    status: int = 0


def graph_error(code: int, message: str) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message},
            "fbtrace_id": "AbCdEfGhIjKlMnOp",
        }
    }


class FakeGraphApi:
    """Meta's Graph API as far as the channel uses it."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.media: dict[str, tuple[bytes, str]] = {}
        self.uploads: list[Upload] = []
        self._upload_script: deque[tuple[int, dict[str, Any]]] = deque()
        self._script: dict[str, deque[Scripted]] = {"message": deque(), "read": deque(), "lookup": deque()}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._sent = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/{VERSION}"

    async def start(self) -> FakeGraphApi:
        app = web.Application()
        app.router.add_post(f"/{VERSION}/{{phone_number_id}}/messages", self._messages)
        app.router.add_post(f"/{VERSION}/{{phone_number_id}}/media", self._upload)
        app.router.add_get(f"/{VERSION}/{{media_id}}", self._media_lookup)
        app.router.add_get("/media/{media_id}", self._media_download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = bound_socket()
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what the tests script -------------------------------------------------

    def fail_next(self, times: int, status: int = 500, *, kind: str = "message", code: int = 2,
                  retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        for _ in range(times):
            self._script[kind].append(Scripted(status, graph_error(code, "Service temporarily unavailable"),
                                               headers=headers))

    def refuse_next(self, code: int, message: str, *, status: int = 400, kind: str = "message") -> None:
        self._script[kind].append(Scripted(status, graph_error(code, message)))

    def stall_next(self, seconds: float, *, kind: str = "message") -> None:
        self._script[kind].append(Scripted(200, {}, delay=seconds))

    def add_media(self, media_id: str, content: bytes, mime_type: str) -> None:
        self.media[media_id] = (content, mime_type)

    def answer_next_upload(self, status: int, body: dict[str, Any]) -> None:
        self._upload_script.append((status, body))

    # -- what the tests read ---------------------------------------------------

    def of_kind(self, kind: str) -> list[Recorded]:
        return [request for request in self.requests if request.kind == kind]

    def delivered(self) -> list[dict[str, Any]]:
        """Bodies of outbound messages Meta accepted, in order."""
        return [request.json for request in self.of_kind("message") if request.status == 200]

    def delivered_texts(self) -> list[str]:
        return [message["text"]["body"] for message in self.delivered() if message.get("type") == "text"]

    async def wait_for(self, predicate: Callable[[FakeGraphApi], bool], timeout: float = 5.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self)), timeout)

    # -- handlers --------------------------------------------------------------

    async def _record(self, request: web.Request, body: Any) -> Recorded:
        recorded = Recorded(request.method, request.path, dict(request.headers), body,
                            at=asyncio.get_running_loop().time())
        self.requests.append(recorded)
        return recorded

    async def _answer(self, recorded: Recorded, status: int, body: Any, headers: dict[str, str] | None = None,
                      raw: bytes | None = None, content_type: str = "application/json") -> web.Response:
        recorded.status = status
        async with self._changed:
            self._changed.notify_all()
        if raw is not None:
            return web.Response(status=status, body=raw, content_type=content_type)
        return web.json_response(body, status=status, headers=headers)

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    async def _scripted(self, kind: str) -> Scripted | None:
        script = self._script[kind]
        if not script:
            return None
        step = script.popleft()
        if step.delay:
            await asyncio.sleep(step.delay)
        return step

    async def _messages(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        recorded = await self._record(request, body)
        if not self._authorised(request):
            return await self._answer(recorded, 401, graph_error(190, "Invalid OAuth access token"))
        if request.match_info["phone_number_id"] != PHONE_NUMBER_ID:
            return await self._answer(recorded, 400, graph_error(100, "Unknown phone number id"))
        step = await self._scripted(recorded.kind)
        if step is not None and step.status != 200:
            return await self._answer(recorded, step.status, step.body, step.headers)
        if recorded.kind == "read":
            return await self._answer(recorded, 200, {"success": True})
        self._sent += 1
        to = body.get("to") if isinstance(body, dict) else None
        return await self._answer(recorded, 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": f"wamid.fake-{self._sent}"}],
        })

    async def _media_lookup(self, request: web.Request) -> web.Response:
        recorded = await self._record(request, None)
        media_id = request.match_info["media_id"]
        if not self._authorised(request):
            return await self._answer(recorded, 401, graph_error(190, "Invalid OAuth access token"))
        step = await self._scripted("lookup")
        if step is not None and step.status != 200:
            return await self._answer(recorded, step.status, step.body, step.headers)
        if media_id not in self.media:
            return await self._answer(recorded, 404, graph_error(100, "Unsupported get request"))
        content, mime_type = self.media[media_id]
        return await self._answer(recorded, 200, {
            "messaging_product": "whatsapp",
            "url": f"{self.base_url}/media/{media_id}",
            "mime_type": mime_type,
            "sha256": hashlib.sha256(content).hexdigest(),
            "file_size": len(content),
            "id": media_id,
        })

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            file = form.get("file")
            upload = Upload(
                fields={key: value for key, value in form.items() if isinstance(value, str)},
                filename=file.filename if isinstance(file, web.FileField) else None,
                content_type=file.content_type if isinstance(file, web.FileField) else None,
                content=file.file.read() if isinstance(file, web.FileField) else b"",
                authorization=request.headers.get("Authorization"),
            )
        finally:
            for value in form.values():  # aiohttp spools uploads to temporary files
                if isinstance(value, web.FileField):
                    value.file.close()
        self.uploads.append(upload)
        if upload.authorization != f"Bearer {TOKEN}":
            status, body = 401, graph_error(190, "Invalid OAuth access token")
        elif self._upload_script:
            status, body = self._upload_script.popleft()
        elif upload.fields.get("messaging_product") != "whatsapp" or not upload.content:
            status, body = 400, graph_error(100, "Invalid parameter")
        else:
            media_id = str(4490709327384000 + len(self.uploads))
            self.add_media(media_id, upload.content, upload.fields.get("type", "application/octet-stream"))
            status, body = 200, {"id": media_id}
        upload.status = status
        return web.json_response(body, status=status)

    async def _media_download(self, request: web.Request) -> web.Response:
        recorded = await self._record(request, None)
        if not self._authorised(request):
            return await self._answer(recorded, 401, graph_error(190, "Invalid OAuth access token"))
        media = self.media.get(request.match_info["media_id"])
        if media is None:
            return await self._answer(recorded, 404, graph_error(100, "Not found"))
        return await self._answer(recorded, 200, None, raw=media[0], content_type=media[1].split(";")[0])


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
