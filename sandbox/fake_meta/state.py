"""What the fake Meta knows: the chats, their messages and delivery statuses, media, and
the event stream that shows every change to the chat page.

Nothing here does network I/O: the Graph API and page routes change this state, and the
running sandbox (``webhooks``) turns those changes into webhooks to the bot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox import payloads
from sandbox.config import SandboxConfig
from sandbox.media import VOICE_NOTE_MIME_TYPE, sample_voice_note
from sandbox.payloads import Business, OutboundMessage, ReadReceipt

log = logging.getLogger("sandbox")

DEFAULT_USERS: tuple[tuple[str, str], ...] = (
    ("2348000000001", "Ada Okafor"),
    ("2348000000002", "Tunde Bakare"),
)
TYPING_SECONDS = 25.0  # Meta drops a typing indicator after 25 s or at the next message
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


class ChatState:
    """The chats, media and event stream of one sandbox run, changed by the bot and the page."""

    def __init__(self, config: SandboxConfig, users: Sequence[tuple[str, str]] = DEFAULT_USERS) -> None:
        self.config = config
        self.business = Business(config.business_account_id, config.phone_number_id, config.display_phone_number)
        self.threads: dict[str, Thread] = {}
        self.media: dict[str, Media] = {}
        # What the bot did, for tests and debugging.
        self.graph_messages: list[dict[str, Any]] = []
        self.read_receipts: list[dict[str, Any]] = []
        self.bot_webhook: dict[str, str] = {"state": "unknown", "detail": "not checked yet"}
        self._messages: dict[str, ChatMessage] = {}
        self._seen: dict[str, asyncio.Event] = {}
        self._subscribers: set[asyncio.Queue[tuple[str, Any] | None]] = set()
        self._typing_timers: dict[str, asyncio.TimerHandle] = {}
        for wa_id, name in users:
            self.thread(wa_id, name)

    def stop_timers(self) -> None:
        for timer in self._typing_timers.values():
            timer.cancel()
        self._typing_timers.clear()

    # --- chats and the event stream ------------------------------------------------------

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

    def close_streams(self) -> None:
        """End every event stream, so a shutdown does not wait on open pages."""
        for queue in list(self._subscribers):
            queue.put_nowait(None)

    def publish(self, event: str, data: Any) -> None:
        for queue in self._subscribers:
            queue.put_nowait((event, data))

    def set_bot_webhook(self, result: dict[str, str]) -> None:
        """What the last check of the bot's webhook found, shown on the page."""
        if result != self.bot_webhook:
            self.bot_webhook = result
            self.publish("bot", result)

    def _add_message(self, thread: Thread, message: ChatMessage) -> None:
        thread.messages.append(message)
        self._messages[message.id] = message
        self.publish("message", message.to_json())

    def set_status(self, message: ChatMessage, status: str, error: str | None = None) -> None:
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

    async def until_seen(self, message: ChatMessage) -> None:
        """Wait until the page has shown a bot message."""
        await self._seen[message.id].wait()

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
        """Turn one page action into the message Meta would deliver, and add it to the chat."""
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
        return chat

    def inbound_webhook(self, thread: Thread, message: ChatMessage) -> dict[str, Any]:
        """The webhook Meta sends the bot for a user's message."""
        return payloads.inbound_webhook(self.business, wa_id=thread.wa_id, profile_name=thread.name,
                                        message=message.content)

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
        return message

    def bot_reads(self, receipt: ReadReceipt) -> None:
        message = self._messages.get(receipt.message_id)
        if message is None or message.sender != "user":
            raise payloads.invalid_value("message_id is not a message this business received")
        self.read_receipts.append({"message_id": receipt.message_id, "typing_indicator": receipt.typing})
        thread = self.threads[message.wa_id]
        for earlier in thread.messages:  # reading a message reads everything before it
            if earlier.sender == "user":
                self.set_status(earlier, "read")
            if earlier is message:
                break
        if receipt.typing:
            self._set_typing(thread, True)


def _subtype(body: Mapping[str, Any]) -> str:
    interactive = body.get("interactive")
    return f"/{interactive.get('type')}" if isinstance(interactive, dict) else ""
