"""Rasa responses as WhatsApp Cloud API message bodies (pure functions, no I/O).

Meta's limits, from the Cloud API message reference: a text body holds 4096
characters; an interactive body 1024; up to 3 reply buttons with 20-character
titles and 256-character ids; a list has up to 10 rows with 24-character titles,
72-character descriptions and 200-character ids, opened by a button label of at
most 20 characters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from connectors.whatsapp.texts import language_of_text, say

TEXT_LIMIT = 4096
INTERACTIVE_BODY_LIMIT = 1024
MAX_REPLY_BUTTONS = 3
BUTTON_TITLE_LIMIT = 20
BUTTON_ID_LIMIT = 256
MAX_LIST_ROWS = 10
LIST_ROW_TITLE_LIMIT = 24
LIST_ROW_ID_LIMIT = 200
LIST_ROW_DESCRIPTION_LIMIT = 72
ELLIPSIS = "…"

MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")


@dataclass(frozen=True)
class Choice:
    """A Rasa button: what the user sees and the payload Rasa gets back when it is tapped."""

    title: str
    payload: str


def choices_from_buttons(buttons: Iterable[Any]) -> list[Choice]:
    """Rasa buttons ({"title", "payload"}) with a usable title or payload; the other falls back to it."""
    choices = []
    for button in buttons or ():
        if not isinstance(button, Mapping):
            continue
        title = _clean(button.get("title"))
        payload = _clean(button.get("payload"))
        if title or payload:
            choices.append(Choice(title=title or payload, payload=payload or title))
    return choices


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters; a cut is shown with an ellipsis."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at a line break, else a space, else anywhere.

    A cut in the first half of a piece would leave a stub, so a break that early is
    used only when there is no later one.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2")
    rest = text.strip()
    pieces: list[str] = []
    while len(rest) > limit:
        cut = _cut_position(rest, limit)
        piece, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if piece:
            pieces.append(piece)
    if rest:
        pieces.append(rest)
    return pieces


def _cut_position(text: str, limit: int) -> int:
    window = text[: limit + 1]  # a break right after the limit still leaves a full piece
    for separators in (("\n",), (" ", "\t")):
        cut = max(window.rfind(separator) for separator in separators)
        if cut > limit // 2:
            return cut
    cut = max(window.rfind(separator) for separator in ("\n", " ", "\t"))
    return cut if cut > 0 else limit


def envelope(to: str, kind: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
        kind: content,
    }


def text_messages(to: str, text: str) -> list[dict[str, Any]]:
    """One text message per 4096-character piece (none for blank text)."""
    return [envelope(to, "text", {"preview_url": False, "body": piece}) for piece in split_text(text)]


def choice_messages(to: str, text: str, choices: list[Choice]) -> list[dict[str, Any]]:
    """Reply buttons for up to 3 choices, else a one-section list of the first 10.

    An interactive message needs a body of at most 1024 characters: a longer text
    goes first as text message(s) and the buttons follow under a short prompt.
    """
    if not choices:
        return text_messages(to, text)
    text = text.strip()
    language = language_of_text(text)  # the channel's words go in the response's language
    messages: list[dict[str, Any]] = []
    body = text
    if not text:
        body = say("choice_prompt", language)
    elif len(text) > INTERACTIVE_BODY_LIMIT:
        messages.extend(text_messages(to, text))
        body = say("choice_prompt", language)
    if len(choices) <= MAX_REPLY_BUTTONS:
        messages.append(envelope(to, "interactive", reply_buttons(body, choices)))
    else:
        messages.append(envelope(to, "interactive", list_of_choices(body, choices[:MAX_LIST_ROWS], language)))
    return messages


def reply_buttons(body: str, choices: list[Choice]) -> dict[str, Any]:
    return {
        "type": "button",
        "body": {"text": body},
        "action": {
            "buttons": [
                {
                    "type": "reply",
                    "reply": {
                        "id": choice.payload[:BUTTON_ID_LIMIT],
                        "title": truncate(choice.title, BUTTON_TITLE_LIMIT),
                    },
                }
                for choice in choices[:MAX_REPLY_BUTTONS]
            ]
        },
    }


def list_of_choices(body: str, choices: list[Choice], language: str | None = None) -> dict[str, Any]:
    rows = []
    for choice in choices[:MAX_LIST_ROWS]:
        row = {"id": choice.payload[:LIST_ROW_ID_LIMIT], "title": truncate(choice.title, LIST_ROW_TITLE_LIMIT)}
        if len(choice.title) > LIST_ROW_TITLE_LIMIT:
            # The whole title still reaches the user, under the cut one.
            row["description"] = truncate(choice.title, LIST_ROW_DESCRIPTION_LIMIT)
        rows.append(row)
    return {
        "type": "list",
        "body": {"text": body},
        "action": {"button": say("list_button", language), "sections": [{"rows": rows}]},
    }


def image_message(
    to: str, url: str | None = None, caption: str | None = None, *, media_id: str | None = None
) -> dict[str, Any]:
    """An image by link (Meta fetches it) or by the id of an upload; exactly one of the two."""
    if (url is None) == (media_id is None):
        raise ValueError("an image message needs either a url or a media_id")
    content: dict[str, Any] = {"link": url} if url is not None else {"id": media_id}
    if caption:
        content["caption"] = truncate(caption, INTERACTIVE_BODY_LIMIT)
    return envelope(to, "image", content)


def attachment_message(to: str, attachment: Any) -> dict[str, Any] | None:
    """A document by link (or image/video/audio when a dict says so); None if there is no link.

    Rasa attachments are a URL, or a dict such as {"url", "filename", "caption"} or
    Facebook's {"type": "file", "payload": {"url": ...}}.
    """
    if isinstance(attachment, str):
        url, filename, caption, kind = attachment.strip(), None, None, "document"
    elif isinstance(attachment, Mapping):
        payload = attachment.get("payload")
        inner: Mapping[str, Any] = payload if isinstance(payload, Mapping) else {}
        url = _clean(attachment.get("url") or attachment.get("link") or inner.get("url") or inner.get("link"))
        filename = _clean(attachment.get("filename") or attachment.get("name") or inner.get("filename"))
        caption = _clean(attachment.get("caption") or inner.get("caption"))
        declared = attachment.get("type")
        kind = declared if isinstance(declared, str) and declared in MEDIA_TYPES else "document"
    else:
        return None
    if not url:
        return None
    content: dict[str, Any] = {"link": url}
    if kind == "document":
        content["filename"] = filename or filename_from_url(url)
    if caption and kind in ("document", "image", "video"):
        content["caption"] = truncate(caption, INTERACTIVE_BODY_LIMIT)
    return envelope(to, kind, content)


def filename_from_url(url: str) -> str:
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]).strip()
    return name or "document"


def custom_message(to: str, custom: Mapping[str, Any]) -> dict[str, Any]:
    """A custom Rasa payload (a template, a location, ...) sent as the message body.

    The recipient is always the conversation's user: a response must not be able
    to redirect a bank's message to another number.
    """
    message = dict(custom)
    message["messaging_product"] = "whatsapp"
    message.setdefault("recipient_type", "individual")
    message["to"] = to
    return message


def _clean(value: Any) -> str:
    if value is None or isinstance(value, (Mapping, list)):
        return ""
    return str(value).strip()
