"""Meta's WhatsApp Cloud API payload shapes, as pure functions.

Webhooks the sandbox sends to the bot (inbound messages and delivery statuses), the
``X-Hub-Signature-256`` header that signs them, and the checks and answers of the Graph
API endpoints the bot calls. Shapes follow Meta's webhook and Messages API references;
nothing here does I/O.

Errors the Graph API answers with are ``GraphApiError``: ``to_json`` gives Meta's
``{"error": {message, type, code, error_data?, error_subcode?, fbtrace_id}}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

MAX_TEXT_BODY = 4096
MAX_BUTTON_BODY = 1024
MAX_BUTTON_TITLE = 20
MAX_BUTTON_ID = 256
MAX_BUTTONS = 3
MAX_LIST_BUTTON = 20
MAX_LIST_SECTIONS = 10
MAX_LIST_ROWS = 10
MAX_ROW_TITLE = 24
MAX_ROW_ID = 200
MAX_ROW_DESCRIPTION = 72
MAX_SECTION_TITLE = 24
MAX_HEADER_TEXT = 60
MAX_FOOTER_TEXT = 60
MAX_CAPTION = 1024

MESSAGE_TYPES = (
    "audio",
    "contacts",
    "document",
    "image",
    "interactive",
    "location",
    "reaction",
    "sticker",
    "template",
    "text",
    "video",
)
MEDIA_TYPES = ("audio", "document", "image", "sticker", "video")


@dataclass(frozen=True)
class Business:
    """The business phone number a webhook is about (``entry[].id`` and ``metadata``)."""

    business_account_id: str
    phone_number_id: str
    display_phone_number: str


class GraphApiError(Exception):
    """An error the fake Graph API answers with, in Meta's JSON shape."""

    def __init__(
        self,
        http_status: int,
        code: int,
        message: str,
        *,
        details: str | None = None,
        error_type: str = "OAuthException",
        subcode: int | None = None,
    ) -> None:
        super().__init__(message if details is None else f"{message}: {details}")
        self.http_status = http_status
        self.code = code
        self.message = message
        self.details = details
        self.error_type = error_type
        self.subcode = subcode

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.error_type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.details is not None:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
        return {"error": error}


def invalid_token() -> GraphApiError:
    return GraphApiError(401, 190, "Invalid OAuth access token - Cannot parse access token")


def unknown_object(object_id: str) -> GraphApiError:
    return GraphApiError(
        400,
        100,
        f"Unsupported post request. Object with ID '{object_id}' does not exist, cannot be loaded due "
        "to missing permissions, or does not support this operation.",
        error_type="GraphMethodException",
        subcode=33,
    )


def invalid_parameter(details: str) -> GraphApiError:
    return GraphApiError(400, 100, "(#100) Invalid parameter", details=details)


def invalid_value(details: str) -> GraphApiError:
    return GraphApiError(400, 131009, "(#131009) Parameter value is not valid", details=details)


# --- identifiers, time and signatures ---------------------------------------------------


def new_wamid() -> str:
    """A WhatsApp message id: ``wamid.`` and an opaque base64 string."""
    return "wamid." + base64.b64encode(b"\x15\x02\x00\x11\x18\x12" + secrets.token_bytes(24)).decode()


def new_media_id() -> str:
    return str(10**15 + secrets.randbelow(9 * 10**15))


def unix_timestamp(now: float | None = None) -> str:
    """Webhook timestamps are Unix seconds, as a string."""
    return str(int(time.time() if now is None else now))


def signature_header(app_secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256`` for ``body``: HMAC-SHA256 with the app secret, hex, ``sha256=`` prefix."""
    digest = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def normalize_wa_id(number: Any) -> str | None:
    """A phone number as WhatsApp ids it: digits only, country code first (7 to 15 digits)."""
    if not isinstance(number, str):
        return None
    digits = re.sub(r"[\s()+\-.]", "", number)
    if not digits.isdigit() or not 7 <= len(digits) <= 15:
        return None
    return digits


# --- webhooks the sandbox sends --------------------------------------------------------


def webhook_envelope(business: Business, value: dict[str, Any]) -> dict[str, Any]:
    """The ``whatsapp_business_account`` envelope around one ``messages`` change."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": business.business_account_id,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": business.display_phone_number,
                                "phone_number_id": business.phone_number_id,
                            },
                            **value,
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def _base_message(wa_id: str, message_type: str, wamid: str | None, timestamp: str | None) -> dict[str, Any]:
    return {
        "from": wa_id,
        "id": wamid or new_wamid(),
        "timestamp": timestamp or unix_timestamp(),
        "type": message_type,
    }


def text_message(wa_id: str, body: str, *, wamid: str | None = None, timestamp: str | None = None) -> dict[str, Any]:
    message = _base_message(wa_id, "text", wamid, timestamp)
    message["text"] = {"body": body}
    return message


def _reply_context(business: Business, context_id: str) -> dict[str, str]:
    return {"from": business.display_phone_number, "id": context_id}


def button_reply_message(
    business: Business,
    wa_id: str,
    *,
    context_id: str,
    reply_id: str,
    title: str,
    wamid: str | None = None,
    timestamp: str | None = None,
) -> dict[str, Any]:
    """A tap on a reply button of the bot's message ``context_id``."""
    message = {"context": _reply_context(business, context_id), **_base_message(wa_id, "interactive", wamid, timestamp)}
    message["interactive"] = {"type": "button_reply", "button_reply": {"id": reply_id, "title": title}}
    return message


def list_reply_message(
    business: Business,
    wa_id: str,
    *,
    context_id: str,
    reply_id: str,
    title: str,
    description: str | None = None,
    wamid: str | None = None,
    timestamp: str | None = None,
) -> dict[str, Any]:
    """A row chosen from the list of the bot's message ``context_id``."""
    reply = {"id": reply_id, "title": title}
    if description:
        reply["description"] = description
    message = {"context": _reply_context(business, context_id), **_base_message(wa_id, "interactive", wamid, timestamp)}
    message["interactive"] = {"type": "list_reply", "list_reply": reply}
    return message


def audio_message(
    wa_id: str,
    *,
    media_id: str,
    mime_type: str,
    sha256_b64: str,
    voice: bool = True,
    wamid: str | None = None,
    timestamp: str | None = None,
) -> dict[str, Any]:
    """A voice note (``voice: true``) or audio file; the bytes are fetched by media id."""
    message = _base_message(wa_id, "audio", wamid, timestamp)
    message["audio"] = {"mime_type": mime_type, "sha256": sha256_b64, "id": media_id, "voice": voice}
    return message


def inbound_webhook(business: Business, *, wa_id: str, profile_name: str, message: dict[str, Any]) -> dict[str, Any]:
    """A user's message as Meta delivers it to the bot's webhook."""
    return webhook_envelope(
        business,
        {"contacts": [{"profile": {"name": profile_name}, "wa_id": wa_id}], "messages": [message]},
    )


def status_webhook(
    business: Business, *, message_id: str, status: str, recipient_id: str, timestamp: str | None = None
) -> dict[str, Any]:
    """A delivery status (sent, delivered, read) of a message the bot sent."""
    entry: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": timestamp or unix_timestamp(),
        "recipient_id": recipient_id,
    }
    if status in {"sent", "delivered"}:
        # Per-message pricing: a reply inside the customer service window is free.
        entry["pricing"] = {
            "billable": False,
            "pricing_model": "PMP",
            "category": "service",
            "type": "free_customer_service",
        }
    return webhook_envelope(business, {"statuses": [entry]})


def verification_query(verify_token: str, challenge: str) -> dict[str, str]:
    """The query string of Meta's GET webhook verification."""
    return {"hub.mode": "subscribe", "hub.verify_token": verify_token, "hub.challenge": challenge}


# --- the Graph API endpoints the bot calls ------------------------------------------------


@dataclass(frozen=True)
class ReadReceipt:
    message_id: str
    typing: bool


@dataclass(frozen=True)
class OutboundMessage:
    wa_id: str
    to: str
    message_type: str
    body: dict[str, Any]


def _text(value: Any, where: str, limit: int, *, required: bool = True) -> str | None:
    if not required and value in (None, ""):
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid_parameter(f"{where} is required and must be a non-empty string")
    if len(value) > limit:
        raise invalid_value(f"{where} is longer than {limit} characters")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_parameter(f"{where} is required and must be an object")
    return value


def _check_header_footer(interactive: dict[str, Any]) -> None:
    header = interactive.get("header")
    if header is not None:
        header = _object(header, "interactive.header")
        if header.get("type", "text") == "text":
            _text(header.get("text"), "interactive.header.text", MAX_HEADER_TEXT)
    footer = interactive.get("footer")
    if footer is not None:
        _text(_object(footer, "interactive.footer").get("text"), "interactive.footer.text", MAX_FOOTER_TEXT)


def _check_buttons(interactive: dict[str, Any]) -> None:
    _text(_object(interactive.get("body"), "interactive.body").get("text"), "interactive.body.text", MAX_BUTTON_BODY)
    buttons = _object(interactive.get("action"), "interactive.action").get("buttons")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_BUTTONS:
        raise invalid_value(f"interactive.action.buttons must hold 1 to {MAX_BUTTONS} buttons")
    ids, titles = set(), set()
    for index, button in enumerate(buttons):
        where = f"interactive.action.buttons[{index}]"
        button = _object(button, where)
        if button.get("type") != "reply":
            raise invalid_value(f"{where}.type must be 'reply'")
        reply = _object(button.get("reply"), f"{where}.reply")
        reply_id = _text(reply.get("id"), f"{where}.reply.id", MAX_BUTTON_ID)
        title = _text(reply.get("title"), f"{where}.reply.title", MAX_BUTTON_TITLE)
        if reply_id in ids or title in titles:
            raise invalid_value("button ids and titles must be unique")
        ids.add(reply_id)
        titles.add(title)


def _check_list(interactive: dict[str, Any]) -> None:
    _text(_object(interactive.get("body"), "interactive.body").get("text"), "interactive.body.text", MAX_TEXT_BODY)
    action = _object(interactive.get("action"), "interactive.action")
    _text(action.get("button"), "interactive.action.button", MAX_LIST_BUTTON)
    sections = action.get("sections")
    if not isinstance(sections, list) or not 1 <= len(sections) <= MAX_LIST_SECTIONS:
        raise invalid_value(f"interactive.action.sections must hold 1 to {MAX_LIST_SECTIONS} sections")
    row_ids: set[str] = set()
    for s_index, section in enumerate(sections):
        where = f"interactive.action.sections[{s_index}]"
        section = _object(section, where)
        _text(section.get("title"), f"{where}.title", MAX_SECTION_TITLE, required=len(sections) > 1)
        rows = section.get("rows")
        if not isinstance(rows, list) or not rows:
            raise invalid_value(f"{where}.rows must hold at least one row")
        for r_index, row in enumerate(rows):
            row_where = f"{where}.rows[{r_index}]"
            row = _object(row, row_where)
            row_id = _text(row.get("id"), f"{row_where}.id", MAX_ROW_ID)
            _text(row.get("title"), f"{row_where}.title", MAX_ROW_TITLE)
            _text(row.get("description"), f"{row_where}.description", MAX_ROW_DESCRIPTION, required=False)
            if row_id in row_ids:
                raise invalid_value("list row ids must be unique")
            row_ids.add(row_id or "")
    if len(row_ids) > MAX_LIST_ROWS:
        raise invalid_value(f"a list holds at most {MAX_LIST_ROWS} rows across all sections")


def _check_media(body: dict[str, Any], message_type: str) -> None:
    media = _object(body.get(message_type), message_type)
    if not media.get("link") and not media.get("id"):
        raise invalid_parameter(f"{message_type} needs a link or an id")
    if media.get("link") is not None and not re.match(r"^https?://", str(media["link"])):
        raise invalid_value(f"{message_type}.link must be an http(s) URL")
    if "caption" in media:
        _text(media["caption"], f"{message_type}.caption", MAX_CAPTION)


def parse_graph_message(body: Any) -> ReadReceipt | OutboundMessage:
    """Check a ``POST /{phone_number_id}/messages`` body the way Meta would, a little.

    Returns what it asks for (a read receipt, optionally with a typing indicator, or a
    message to deliver) or raises ``GraphApiError`` naming the first problem.
    """
    if not isinstance(body, dict):
        raise invalid_parameter("the request body must be a JSON object")
    if body.get("messaging_product") != "whatsapp":
        raise invalid_parameter("The parameter messaging_product is required and must be 'whatsapp'")
    if "status" in body:
        if body["status"] != "read":
            raise invalid_value("status must be 'read'")
        message_id = _text(body.get("message_id"), "message_id", 512) or ""
        typing = body.get("typing_indicator")
        if typing is not None and _object(typing, "typing_indicator").get("type") != "text":
            raise invalid_value("typing_indicator.type must be 'text'")
        return ReadReceipt(message_id=message_id, typing=typing is not None)
    to = body.get("to")
    wa_id = normalize_wa_id(to)
    if wa_id is None:
        raise invalid_parameter("to must be the recipient's phone number (7 to 15 digits)")
    message_type = body.get("type", "text")
    if message_type not in MESSAGE_TYPES:
        raise invalid_parameter(f"Param type must be one of {{{', '.join(t.upper() for t in MESSAGE_TYPES)}}}")
    if message_type == "text":
        _text(_object(body.get("text"), "text").get("body"), "text.body", MAX_TEXT_BODY)
    elif message_type == "interactive":
        interactive = _object(body.get("interactive"), "interactive")
        kind = interactive.get("type")
        if kind == "button":
            _check_buttons(interactive)
        elif kind == "list":
            _check_list(interactive)
        elif not isinstance(kind, str):
            raise invalid_parameter("interactive.type is required")
        _check_header_footer(interactive)
    elif message_type in MEDIA_TYPES:
        _check_media(body, message_type)
    elif message_type == "template":
        template = _object(body.get("template"), "template")
        _text(template.get("name"), "template.name", 512)
        _text(_object(template.get("language"), "template.language").get("code"), "template.language.code", 16)
    elif message_type == "contacts":
        if not isinstance(body.get("contacts"), list) or not body["contacts"]:
            raise invalid_parameter("contacts must be a non-empty list")
    else:  # location, reaction
        _object(body.get(message_type), message_type)
    return OutboundMessage(wa_id=wa_id, to=str(to), message_type=message_type, body=body)


def send_response(to: str, wa_id: str, wamid: str) -> dict[str, Any]:
    """What Meta answers to an accepted message."""
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": wa_id}],
        "messages": [{"id": wamid}],
    }


def media_info(media_id: str, url: str, mime_type: str, data: bytes) -> dict[str, Any]:
    """What ``GET /{media_id}`` answers: a short-lived download URL and the file's facts."""
    return {
        "messaging_product": "whatsapp",
        "url": url,
        "mime_type": mime_type,
        "sha256": hashlib.sha256(data).hexdigest(),
        "file_size": len(data),
        "id": media_id,
    }


def sha256_base64(data: bytes) -> str:
    """The ``sha256`` of a media object inside a webhook (base64 of the digest)."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()
