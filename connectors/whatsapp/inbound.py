"""What a WhatsApp Cloud API webhook carries, read into small typed records.

Pure functions only: no I/O, no logging, no Rasa. A webhook body is
``{"object": "whatsapp_business_account", "entry": [{"changes": [{"field":
"messages", "value": {...}}]}]}``; each ``value`` holds ``messages`` (what users
sent) and/or ``statuses`` (what happened to what we sent). A part that cannot be
read is skipped and described in ``WebhookBatch.problems`` (descriptions never
carry a phone number, a message id or a message text), so one bad message never
costs the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

WHATSAPP_OBJECT = "whatsapp_business_account"

# How the channel treats an inbound message.
FOR_RASA = "rasa"  # text, reply buttons, list rows, template quick replies
VOICE = "voice"  # audio and voice notes: transcribe, then Rasa
UNSUPPORTED = "unsupported"  # images, stickers, locations, ...: a polite answer


class UnexpectedPayload(ValueError):
    """Well-formed JSON that is not a WhatsApp Business Account webhook."""


@dataclass(frozen=True)
class InboundMessage:
    """One message a WhatsApp user sent to the business."""

    message_id: str
    sender: str  # the user's wa_id (their phone number): Rasa's sender_id, never logged
    kind: str  # "text", "button_reply", "list_reply", "button", "audio", or the WhatsApp type
    handling: str  # FOR_RASA, VOICE or UNSUPPORTED
    text: str | None = None  # what Rasa receives (a reply id carries a payload such as "/affirm")
    timestamp: int | None = None
    media_id: str | None = None
    mime_type: str | None = None
    voice: bool = False
    reply_to: str | None = None  # id of the business message the user replied to
    phone_number_id: str | None = None  # the business number that received it


@dataclass(frozen=True)
class StatusError:
    code: int | None
    title: str | None


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery receipt for a message the business sent (sent, delivered, read, failed)."""

    message_id: str
    status: str
    timestamp: int | None
    recipient: str | None  # a wa_id: store only its user_key hash
    errors: tuple[StatusError, ...] = ()
    phone_number_id: str | None = None


@dataclass
class WebhookBatch:
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse_webhook(payload: Any) -> WebhookBatch:
    """Read a decoded webhook body; raise UnexpectedPayload if it is not one at all."""
    if not isinstance(payload, Mapping):
        raise UnexpectedPayload(f"top level is a {type(payload).__name__}, not an object")
    if payload.get("object") != WHATSAPP_OBJECT:
        raise UnexpectedPayload("'object' is not whatsapp_business_account")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise UnexpectedPayload("'entry' is not a list")

    batch = WebhookBatch()
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, Mapping) else None
        if not isinstance(changes, list):
            batch.problems.append("an entry without a 'changes' list")
            continue
        for change in changes:
            _read_change(change, batch)
    return batch


def _read_change(change: Any, batch: WebhookBatch) -> None:
    if not isinstance(change, Mapping):
        batch.problems.append("a change that is not an object")
        return
    if change.get("field", "messages") != "messages":
        batch.problems.append(f"a change for field {_safe_label(change.get('field'))!r}, which is not handled")
        return
    value = change.get("value")
    if not isinstance(value, Mapping):
        batch.problems.append("a change without a 'value' object")
        return
    metadata = value.get("metadata")
    phone_number_id = _text(metadata.get("phone_number_id")) if isinstance(metadata, Mapping) else None

    for raw in _list(value, "messages", batch):
        message = parse_message(raw, phone_number_id)
        if isinstance(message, InboundMessage):
            batch.messages.append(message)
        else:
            batch.problems.append(message)
    for raw in _list(value, "statuses", batch):
        status = parse_status(raw, phone_number_id)
        if isinstance(status, StatusUpdate):
            batch.statuses.append(status)
        else:
            batch.problems.append(status)
    for error in _list(value, "errors", batch):
        code = error.get("code") if isinstance(error, Mapping) else None
        batch.problems.append(f"WhatsApp reported an error on the webhook (code {_safe_label(code)})")


def parse_message(raw: Any, phone_number_id: str | None = None) -> InboundMessage | str:
    """One entry of ``value.messages``, or a description of why it cannot be read."""
    if not isinstance(raw, Mapping):
        return "a message that is not an object"
    message_id = _text(raw.get("id"))
    sender = _text(raw.get("from"))
    kind = _text(raw.get("type"))
    if message_id is None or sender is None or kind is None:
        return "a message without an id, a sender or a type"
    context = raw.get("context")
    common: dict[str, Any] = {
        "message_id": message_id,
        "sender": sender,
        "timestamp": _epoch(raw.get("timestamp")),
        "reply_to": _text(context.get("id")) if isinstance(context, Mapping) else None,
        "phone_number_id": phone_number_id,
    }
    body = raw.get(kind)
    fields: Mapping[str, Any] = body if isinstance(body, Mapping) else {}

    if kind == "text":
        text = _text(fields.get("body"))
        if text is None:
            return "a text message without a body"
        return InboundMessage(kind="text", handling=FOR_RASA, text=_not_external(text), **common)

    if kind == "interactive":
        reply_kind = _text(fields.get("type"))
        if reply_kind in ("button_reply", "list_reply"):
            reply = fields.get(reply_kind)
            payload = _reply_payload(reply, "id", "title")
            if payload is None:
                return f"an interactive {reply_kind} without an id or title"
            return InboundMessage(kind=reply_kind, handling=FOR_RASA, text=payload, **common)
        return InboundMessage(kind=f"interactive:{reply_kind or 'unknown'}", handling=UNSUPPORTED, **common)

    if kind == "button":  # a quick-reply button of a template message
        payload = _reply_payload(body, "payload", "text")
        if payload is None:
            return "a template button reply without a payload or text"
        return InboundMessage(kind="button", handling=FOR_RASA, text=payload, **common)

    if kind in ("audio", "voice"):
        media_id = _text(fields.get("id"))
        if media_id is None:
            return "an audio message without a media id"
        return InboundMessage(
            kind="audio",
            handling=VOICE,
            media_id=media_id,
            mime_type=_text(fields.get("mime_type")) or "audio/ogg",
            voice=bool(fields.get("voice", kind == "voice")),
            **common,
        )

    return InboundMessage(kind=kind, handling=UNSUPPORTED, **common)


def parse_status(raw: Any, phone_number_id: str | None = None) -> StatusUpdate | str:
    """One entry of ``value.statuses``, or a description of why it cannot be read."""
    if not isinstance(raw, Mapping):
        return "a status that is not an object"
    message_id = _text(raw.get("id"))
    status = _text(raw.get("status"))
    if message_id is None or status is None:
        return "a status without a message id or a status"
    errors = tuple(
        StatusError(code=_int(error.get("code")), title=_text(error.get("title")))
        for error in raw.get("errors") or ()
        if isinstance(error, Mapping)
    )
    return StatusUpdate(
        message_id=message_id,
        status=status,
        timestamp=_epoch(raw.get("timestamp")),
        recipient=_text(raw.get("recipient_id")),
        errors=errors,
        phone_number_id=phone_number_id,
    )


def _reply_payload(reply: Any, key: str, fallback: str) -> str | None:
    if not isinstance(reply, Mapping):
        return None
    payload = _text(reply.get(key)) or _text(reply.get(fallback))
    return None if payload is None else _not_external(payload)


def _not_external(text: str) -> str:
    """A typed ``/EXTERNAL_...`` intent payload loses its slash: only the providers' verified webhooks
    trigger EXTERNAL_ intents; from a customer it is plain text for the NLU."""
    stripped = text.lstrip()
    if stripped.startswith("/") and stripped.lstrip("/ \t").upper().startswith("EXTERNAL_"):
        return stripped.lstrip("/ \t")
    return text


def _list(value: Mapping[str, Any], key: str, batch: WebhookBatch) -> list[Any]:
    items = value.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        batch.problems.append(f"'{key}' is not a list")
        return []
    return items


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _epoch(value: Any) -> int | None:
    """Meta sends Unix seconds as a string ("1706745600")."""
    return _int(value)


def _safe_label(value: Any) -> str:
    """A short label from a payload field that is safe to log (no digits runs, no long text)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.replace("_", "").isalpha():
        return value[:40]
    return "?"
