"""The fake Meta: an aiohttp app standing in for WhatsApp's Cloud API, plus a chat page.

Two sides meet here:

- **The bot's side, Meta's Graph API**: ``POST /{version}/{phone_number_id}/messages``
  (messages, read receipts, typing indicators), ``POST /{version}/{phone_number_id}/media``
  (uploads), ``GET /{version}/{media_id}`` and ``GET /media/{media_id}`` (downloads). All
  check the bearer token and answer with Meta's shapes, errors included.
- **The user's side, the chat page** at ``/``: its backend (``/api/...``) turns what a
  simulated user does into real, signed webhooks to the bot, and pushes what the bot
  sends to the page over Server-Sent Events (``GET /api/events``).

Like Meta, the sandbox answers the bot's delivery with ``sent``/``delivered`` status
webhooks, and ``read`` once the page has shown the message. Logs never carry phone
numbers or tokens: users appear as "user 1", "user 2".
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from sandbox import payloads
from sandbox.config import SandboxConfig, check_allowed
from sandbox.media import VOICE_NOTE_MIME_TYPE, sample_voice_note
from sandbox.payloads import Business, GraphApiError, OutboundMessage, ReadReceipt

log = logging.getLogger("sandbox")

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_USERS: tuple[tuple[str, str], ...] = (
    ("2348000000001", "Ada Okafor"),
    ("2348000000002", "Tunde Bakare"),
)
TYPING_SECONDS = 25.0  # Meta drops a typing indicator after 25 s or at the next message
PROBE_INTERVAL_SECONDS = 2.0
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
STATUS_RANK = {"pending": 0, "failed": 0, "sent": 1, "delivered": 2, "read": 3}


@dataclass
class ChatMessage:
    """One bubble: a user's message (its webhook ``messages[0]``) or a bot's (its Graph body)."""

    id: str
    wa_id: str
    sender: str  # "user" or "bot"
    type: str
    content: dict[str, Any]
    timestamp: int
    status: str = "pending"
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "wa_id": self.wa_id,
            "from": self.sender,
            "type": self.type,
            "content": self.content,
            "timestamp": self.timestamp,
            "status": self.status,
            "error": self.error,
        }


@dataclass
class Thread:
    """A simulated WhatsApp user and their chat with the business."""

    wa_id: str
    name: str
    label: str  # what logs say instead of the phone number
    messages: list[ChatMessage] = field(default_factory=list)
    typing: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "wa_id": self.wa_id,
            "name": self.name,
            "typing": self.typing,
            "messages": [message.to_json() for message in self.messages],
        }


@dataclass(frozen=True)
class Media:
    data: bytes
    mime_type: str
    filename: str | None = None


class PageError(Exception):
    """A page API request that cannot be done (answered 400 with the reason)."""


class Sandbox:
    """The running sandbox: chats, media, the event stream and webhook delivery to the bot."""

    def __init__(self, config: SandboxConfig, users: Sequence[tuple[str, str]] = DEFAULT_USERS) -> None:
        self.config = config
        self.business = Business(config.business_account_id, config.phone_number_id, config.display_phone_number)
        self.threads: dict[str, Thread] = {}
        self.media: dict[str, Media] = {}
        # What the bot did, for tests and debugging.
        self.graph_messages: list[dict[str, Any]] = []
        self.read_receipts: list[dict[str, Any]] = []
        self.webhook_deliveries: list[dict[str, Any]] = []
        self.bot_webhook: dict[str, str] = {"state": "unknown", "detail": "not checked yet"}
        self._messages: dict[str, ChatMessage] = {}
        self._seen: dict[str, asyncio.Event] = {}
        self._subscribers: set[asyncio.Queue[tuple[str, Any] | None]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._typing_timers: dict[str, asyncio.TimerHandle] = {}
        self._session: aiohttp.ClientSession | None = None
        for wa_id, name in users:
            self.thread(wa_id, name)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60, connect=5),
            headers={"User-Agent": "facebookexternalua"},
        )
        if self.config.verify_webhook_on_start:
            self.spawn(self._probe_bot_webhook())

    async def close_streams(self) -> None:
        """End every event stream, so a shutdown does not wait on open pages."""
        for queue in list(self._subscribers):
            queue.put_nowait(None)

    async def stop(self) -> None:
        for timer in self._typing_timers.values():
            timer.cancel()
        self._typing_timers.clear()
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

    # --- state and the event stream ------------------------------------------------------

    def thread(self, wa_id: str, name: str | None = None) -> Thread:
        thread = self.threads.get(wa_id)
        if thread is None:
            thread = Thread(wa_id=wa_id, name=name or "Sandbox user", label=f"user {len(self.threads) + 1}")
            self.threads[wa_id] = thread
            self.publish("user", {"wa_id": wa_id, "name": thread.name})
        elif name and name != thread.name:
            thread.name = name
            self.publish("user", {"wa_id": wa_id, "name": thread.name})
        return thread

    def snapshot(self) -> dict[str, Any]:
        return {
            "business": {
                "name": self.config.business_name,
                "display_phone_number": self.config.display_phone_number,
                "phone_number_id": self.config.phone_number_id,
            },
            "graph_api_url": self.config.graph_api_url,
            "bot_webhook_url": self.config.bot_webhook_url,
            "bot_webhook": dict(self.bot_webhook),
            "users": [thread.to_json() for thread in self.threads.values()],
        }

    def subscribe(self) -> asyncio.Queue[tuple[str, Any] | None]:
        queue: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, Any] | None]) -> None:
        self._subscribers.discard(queue)

    def publish(self, event: str, data: Any) -> None:
        for queue in self._subscribers:
            queue.put_nowait((event, data))

    def _add_message(self, thread: Thread, message: ChatMessage) -> None:
        thread.messages.append(message)
        self._messages[message.id] = message
        self.publish("message", message.to_json())

    def _set_status(self, message: ChatMessage, status: str, error: str | None = None) -> None:
        upgrade = STATUS_RANK[status] > STATUS_RANK.get(message.status, 0)
        if status != "failed" and message.status != "failed" and not upgrade:
            return  # a late "delivered" never undoes "read"
        message.status = status
        message.error = error
        self.publish("status", {"wa_id": message.wa_id, "id": message.id, "status": status, "error": error})

    def _set_typing(self, thread: Thread, typing: bool) -> None:
        timer = self._typing_timers.pop(thread.wa_id, None)
        if timer is not None:
            timer.cancel()
        if typing:
            loop = asyncio.get_running_loop()
            self._typing_timers[thread.wa_id] = loop.call_later(TYPING_SECONDS, self._set_typing, thread, False)
        if thread.typing != typing:
            thread.typing = typing
            self.publish("typing", {"wa_id": thread.wa_id, "typing": typing})

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
            self._set_status(message, "delivered")
        else:
            log.warning("%s -> bot: %s message not delivered: %s", thread.label, message.type, error)
            self._set_status(message, "failed", error)
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
        await self._seen[message.id].wait()
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
        if result != self.bot_webhook:
            self.bot_webhook = result
            self.publish("bot", result)
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

    # --- what the simulated user does -------------------------------------------------------

    def _bot_message_in(self, thread: Thread, context_id: Any, interactive_type: str) -> dict[str, Any]:
        message = self._messages.get(context_id) if isinstance(context_id, str) else None
        if message is None or message.wa_id != thread.wa_id or message.sender != "bot":
            raise PageError("context_id must be a bot message of this chat")
        interactive = message.content.get("interactive") or {}
        if message.type != "interactive" or interactive.get("type") != interactive_type:
            raise PageError(f"that bot message has no {interactive_type} to choose from")
        return interactive

    def user_sends(self, thread: Thread, request: Mapping[str, Any]) -> ChatMessage:
        """Turn one page action into the webhook Meta would send, and deliver it in the background."""
        kind = request.get("type")
        wa_id = thread.wa_id
        if kind == "text":
            text = request.get("text")
            if not isinstance(text, str) or not text.strip() or len(text) > payloads.MAX_TEXT_BODY:
                raise PageError(f"text must be 1 to {payloads.MAX_TEXT_BODY} characters")
            message = payloads.text_message(wa_id, text)
        elif kind == "button_reply":
            interactive = self._bot_message_in(thread, request.get("context_id"), "button")
            buttons = [b.get("reply", {}) for b in interactive.get("action", {}).get("buttons", [])]
            button = next((b for b in buttons if b.get("id") == request.get("id")), None)
            if button is None:
                raise PageError("no such button on that message")
            message = payloads.button_reply_message(
                self.business, wa_id, context_id=request["context_id"], reply_id=button["id"], title=button["title"]
            )
        elif kind == "list_reply":
            interactive = self._bot_message_in(thread, request.get("context_id"), "list")
            rows = [row for s in interactive.get("action", {}).get("sections", []) for row in s.get("rows", [])]
            row = next((r for r in rows if r.get("id") == request.get("id")), None)
            if row is None:
                raise PageError("no such row in that list")
            message = payloads.list_reply_message(
                self.business,
                wa_id,
                context_id=request["context_id"],
                reply_id=row["id"],
                title=row["title"],
                description=row.get("description"),
            )
        elif kind == "voice":
            data = sample_voice_note()
            media_id = payloads.new_media_id()
            self.media[media_id] = Media(data=data, mime_type=VOICE_NOTE_MIME_TYPE, filename="voice-note.wav")
            message = payloads.audio_message(
                wa_id, media_id=media_id, mime_type=VOICE_NOTE_MIME_TYPE, sha256_b64=payloads.sha256_base64(data)
            )
        else:
            raise PageError("type must be one of text, button_reply, list_reply, voice")
        payload = payloads.inbound_webhook(self.business, wa_id=wa_id, profile_name=thread.name, message=message)
        chat = ChatMessage(
            id=message["id"],
            wa_id=wa_id,
            sender="user",
            type=message["type"],
            content=message,
            timestamp=int(message["timestamp"]),
            status="sent",
        )
        self._add_message(thread, chat)
        self.spawn(self._deliver_user_message(thread, chat, payload))
        return chat

    def user_sees(self, thread: Thread) -> int:
        """The page showed the chat: the bot's messages in it become "read"."""
        count = 0
        for message in thread.messages:
            seen = self._seen.get(message.id)
            if message.sender == "bot" and seen is not None and not seen.is_set():
                seen.set()
                count += 1
        return count

    # --- what the bot does (Graph API) ---------------------------------------------------------

    def bot_sends(self, outbound: OutboundMessage) -> ChatMessage:
        thread = self.thread(outbound.wa_id)
        wamid = payloads.new_wamid()
        self.graph_messages.append({"id": wamid, **outbound.body})
        message = ChatMessage(
            id=wamid,
            wa_id=outbound.wa_id,
            sender="bot",
            type=outbound.message_type,
            content=outbound.body,
            timestamp=int(time.time()),
            status="accepted",
        )
        self._seen[wamid] = asyncio.Event()
        self._set_typing(thread, False)
        self._add_message(thread, message)
        log.info("bot -> %s: %s%s", thread.label, outbound.message_type, _subtype(outbound.body))
        self.spawn(self._status_flow(message))
        return message

    def bot_reads(self, receipt: ReadReceipt) -> None:
        message = self._messages.get(receipt.message_id)
        if message is None or message.sender != "user":
            raise payloads.invalid_value("message_id is not a message this business received")
        self.read_receipts.append({"message_id": receipt.message_id, "typing_indicator": receipt.typing})
        thread = self.threads[message.wa_id]
        for earlier in thread.messages:  # reading a message reads everything before it
            if earlier.sender == "user":
                self._set_status(earlier, "read")
            if earlier is message:
                break
        if receipt.typing:
            self._set_typing(thread, True)


def _subtype(body: Mapping[str, Any]) -> str:
    interactive = body.get("interactive")
    return f"/{interactive.get('type')}" if isinstance(interactive, dict) else ""


SANDBOX_KEY = web.AppKey("sandbox", Sandbox)


# --- Graph API routes ---------------------------------------------------------------------


def _graph_error(error: GraphApiError) -> web.Response:
    headers = {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token"'} if error.http_status == 401 else None
    return web.json_response(error.to_json(), status=error.http_status, headers=headers)


def _check_token(request: web.Request, sandbox: Sandbox) -> None:
    header = request.headers.get("Authorization", "")
    token = header[len("Bearer ") :] if header.startswith("Bearer ") else request.query.get("access_token", "")
    if not hmac.compare_digest(token.encode("utf-8"), sandbox.config.access_token.encode("utf-8")):
        log.warning("Graph API call to %s with a wrong or missing access token: 401", request.method)
        raise payloads.invalid_token()


def _check_phone_number_id(request: web.Request, sandbox: Sandbox) -> None:
    phone_number_id = request.match_info["phone_number_id"]
    if phone_number_id != sandbox.config.phone_number_id:
        raise payloads.unknown_object(phone_number_id)


async def graph_messages(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    try:
        _check_token(request, sandbox)
        _check_phone_number_id(request, sandbox)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise payloads.invalid_parameter("the request body must be JSON") from None
        parsed = payloads.parse_graph_message(body)
        if isinstance(parsed, ReadReceipt):
            sandbox.bot_reads(parsed)
            return web.json_response({"success": True})
        message = sandbox.bot_sends(parsed)
    except GraphApiError as error:
        if error.http_status != 401:
            log.warning("Graph API rejected a bot request: %s", error)
        return _graph_error(error)
    return web.json_response(payloads.send_response(parsed.to, parsed.wa_id, message.id))


async def graph_upload_media(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    try:
        _check_token(request, sandbox)
        _check_phone_number_id(request, sandbox)
        if not request.content_type.startswith("multipart/"):
            raise payloads.invalid_parameter("upload media as multipart/form-data with a file field")
        form = await request.post()
        uploads = [value for value in form.values() if isinstance(value, web.FileField)]
        try:
            upload = form.get("file")
            if form.get("messaging_product") != "whatsapp" or not isinstance(upload, web.FileField):
                raise payloads.invalid_parameter("messaging_product=whatsapp and a file are required")
            data = upload.file.read()
        finally:
            for spooled in uploads:  # aiohttp spools uploads to temporary files
                spooled.file.close()
        mime_type = str(form.get("type") or upload.content_type or "application/octet-stream")
        media_id = payloads.new_media_id()
        sandbox.media[media_id] = Media(data=data, mime_type=mime_type, filename=upload.filename)
    except GraphApiError as error:
        return _graph_error(error)
    return web.json_response({"id": media_id})


def _media_or_error(sandbox: Sandbox, media_id: str) -> Media:
    media = sandbox.media.get(media_id)
    if media is None:
        raise GraphApiError(
            400,
            100,
            f"Unsupported get request. Object with ID '{media_id}' does not exist, cannot be loaded due to "
            "missing permissions, or does not support this operation.",
            error_type="GraphMethodException",
            subcode=33,
        )
    return media


async def graph_media_info(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    media_id = request.match_info["media_id"]
    try:
        _check_token(request, sandbox)
        media = _media_or_error(sandbox, media_id)
    except GraphApiError as error:
        return _graph_error(error)
    url = f"{request.scheme}://{request.host}/media/{media_id}?ext={int(time.time())}&hash={secrets.token_urlsafe(12)}"
    return web.json_response(payloads.media_info(media_id, url, media.mime_type, media.data))


async def graph_media_download(request: web.Request) -> web.Response:
    """The download URL from ``GET /{media_id}``; like Meta's, it wants the bearer token too."""
    sandbox = request.app[SANDBOX_KEY]
    try:
        _check_token(request, sandbox)
        media = _media_or_error(sandbox, request.match_info["media_id"])
    except GraphApiError as error:
        return _graph_error(error)
    return web.Response(body=media.data, content_type=media.mime_type)


# --- chat page routes ------------------------------------------------------------------


def _page_error(reason: str, status: int = 400) -> web.Response:
    return web.json_response({"error": reason}, status=status)


async def _page_json(request: web.Request) -> dict[str, Any]:
    # Only the page's own fetch() sends JSON; a cross-site form post cannot (no CORS here).
    if request.content_type != "application/json":
        raise PageError("send application/json")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise PageError("the body must be JSON") from None
    if not isinstance(body, dict):
        raise PageError("the body must be a JSON object")
    return body


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})


async def api_state(request: web.Request) -> web.Response:
    return web.json_response(request.app[SANDBOX_KEY].snapshot())


async def api_add_user(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    try:
        body = await _page_json(request)
        wa_id = payloads.normalize_wa_id(body.get("wa_id"))
        if wa_id is None:
            raise PageError("enter a phone number with country code (7 to 15 digits)")
        name = str(body.get("name") or "").strip()[:40] or None
    except PageError as error:
        return _page_error(str(error))
    thread = sandbox.thread(wa_id, name)
    return web.json_response({"wa_id": thread.wa_id, "name": thread.name})


def _thread_for(request: web.Request) -> Thread:
    wa_id = payloads.normalize_wa_id(request.match_info["wa_id"])
    if wa_id is None:
        raise PageError("not a phone number")
    return request.app[SANDBOX_KEY].thread(wa_id)


async def api_send(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    try:
        body = await _page_json(request)
        message = sandbox.user_sends(_thread_for(request), body)
    except PageError as error:
        return _page_error(str(error))
    return web.json_response({"message": message.to_json()}, status=202)


async def api_seen(request: web.Request) -> web.Response:
    try:
        thread = _thread_for(request)
    except PageError as error:
        return _page_error(str(error))
    return web.json_response({"read": request.app[SANDBOX_KEY].user_sees(thread)})


async def api_verify(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SANDBOX_KEY].verify_bot_webhook())


async def api_media(request: web.Request) -> web.Response:
    """Media for the page itself (playing a voice note, opening an uploaded document)."""
    media = request.app[SANDBOX_KEY].media.get(request.match_info["media_id"])
    if media is None:
        raise web.HTTPNotFound()
    headers = {}
    if media.filename:
        headers["Content-Disposition"] = f'inline; filename="{media.filename}"'
    return web.Response(body=media.data, content_type=media.mime_type, headers=headers)


def sse_event(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def api_events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: a snapshot first, then every change."""
    sandbox = request.app[SANDBOX_KEY]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    queue = sandbox.subscribe()
    try:
        await response.write(b"retry: 1500\n\n" + sse_event("snapshot", sandbox.snapshot()))
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=15)
            except asyncio.TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if item is None:
                break
            await response.write(sse_event(*item))
    except (ConnectionResetError, ConnectionError):
        pass  # the page went away
    finally:
        sandbox.unsubscribe(queue)
    return response


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


# --- the application ----------------------------------------------------------------------


def create_app(
    config: SandboxConfig,
    *,
    environ: Mapping[str, str] | None = None,
    users: Sequence[tuple[str, str]] = DEFAULT_USERS,
) -> web.Application:
    """The fake Meta and chat page; refuses where ``ENVIRONMENT=production``."""
    check_allowed(os.environ if environ is None else environ)
    sandbox = Sandbox(config, users)
    app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
    app[SANDBOX_KEY] = sandbox

    async def on_startup(app: web.Application) -> None:
        await sandbox.start()

    async def on_shutdown(app: web.Application) -> None:
        await sandbox.close_streams()

    async def on_cleanup(app: web.Application) -> None:
        await sandbox.stop()

    # The ignores: aiohttp 3.9 types its signals for aiosignal < 1.4, and 1.4 made Signal generic another way.
    app.on_startup.append(on_startup)  # type: ignore[arg-type]
    app.on_shutdown.append(on_shutdown)  # type: ignore[arg-type]
    app.on_cleanup.append(on_cleanup)  # type: ignore[arg-type]

    version = r"{version:v\d+\.\d+}"
    app.router.add_post(f"/{version}/{{phone_number_id}}/messages", graph_messages)
    app.router.add_post(f"/{version}/{{phone_number_id}}/media", graph_upload_media)
    app.router.add_get(f"/{version}/{{media_id}}", graph_media_info)
    app.router.add_get("/media/{media_id}", graph_media_download)
    app.router.add_get("/", index)
    app.router.add_static("/static", STATIC_DIR)
    app.router.add_get("/api/state", api_state)
    app.router.add_get("/api/events", api_events)
    app.router.add_post("/api/users", api_add_user)
    app.router.add_post("/api/users/{wa_id}/messages", api_send)
    app.router.add_post("/api/users/{wa_id}/read", api_seen)
    app.router.add_post("/api/verify-webhook", api_verify)
    app.router.add_get("/api/media/{media_id}", api_media)
    app.router.add_get("/healthz", healthz)
    return app


@dataclass
class RunningSandbox:
    """A started sandbox server; ``config.port`` is the real port (also when asked for 0)."""

    runner: web.AppRunner
    sandbox: Sandbox

    @property
    def config(self) -> SandboxConfig:
        return self.sandbox.config

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_server(
    config: SandboxConfig,
    *,
    environ: Mapping[str, str] | None = None,
    users: Sequence[tuple[str, str]] = DEFAULT_USERS,
) -> RunningSandbox:
    """Start the sandbox on ``config.host``/``config.port`` (0 picks a free port)."""
    app = create_app(config, environ=environ, users=users)
    # No access log: page API paths carry the simulated users' phone numbers.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    sandbox = app[SANDBOX_KEY]
    with contextlib.suppress(IndexError, TypeError):
        sandbox.config = config.with_port(int(runner.addresses[0][1]))
    return RunningSandbox(runner=runner, sandbox=sandbox)
