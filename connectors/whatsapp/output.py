"""Rasa's responses out through the Graph API (``WhatsAppOutput``).

Responses become Graph API message bodies in ``outbound``; charts are uploaded first
(``charts``); a failed send is logged, never raised, and a response with an unfilled
``{name}`` placeholder is replaced by an apology (``model_domain``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rasa.core.channels.channel import OutputChannel

from assistant_llm.charts import ChartStore
from connectors.whatsapp.charts import CHART_MIME_TYPE, UPLOAD_FILENAME, chart_name, read_chart, wait_for_chart
from connectors.whatsapp.graph import GraphApiClient, WhatsAppApiError
from connectors.whatsapp.model_domain import unfilled_placeholders
from connectors.whatsapp.outbound import (
    BUTTON_ID_LIMIT,
    LIST_ROW_ID_LIMIT,
    MAX_LIST_ROWS,
    MAX_REPLY_BUTTONS,
    attachment_message,
    choice_messages,
    choices_from_buttons,
    custom_message,
    image_message,
    text_messages,
)
from connectors.whatsapp.texts import language_of_text, say

__all__ = ["WhatsAppOutput"]

logger = logging.getLogger(__name__)


class WhatsAppOutput(OutputChannel):
    """Sends Rasa's responses through the Graph API; a failed send is logged, never raised."""

    @classmethod
    def name(cls) -> str:
        return "whatsapp"

    def __init__(
        self,
        client: GraphApiClient,
        describe: Callable[[str], str] = lambda _: "a user",
        charts: ChartStore | None = None,
    ) -> None:
        self.client = client
        self._describe = describe
        self._charts = charts
        self.replied = False  # a message of this turn has reached Meta

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """Rasa's order: text (with buttons or quick replies), then custom, image, attachment, elements.
        A response with a ``{name}`` placeholder left unfilled is never sent (its Yes could be live):
        an apology without buttons goes instead (connectors.whatsapp.model_domain)."""
        unfilled = unfilled_placeholders(message)
        if unfilled:
            response = message.get("utter_action")
            logger.error("A response (%s) to %s had unfilled placeholders %s; sent an apology instead",
                         response if isinstance(response, str) else "unnamed", self._describe(recipient_id),
                         ", ".join(unfilled))
            await self.send_text_message(recipient_id, say("response_not_shown", language_of_text(message.get("text"))))
            return
        message = dict(message)
        text = message.pop("text", None) or ""
        quick_replies = message.pop("quick_replies", None)
        buttons = message.pop("buttons", None)
        if quick_replies:
            await self.send_quick_replies(recipient_id, text, quick_replies, **message)
        elif buttons:
            await self.send_text_with_buttons(recipient_id, text, buttons, **message)
        elif text:
            await self.send_text_message(recipient_id, text, **message)
        if message.get("custom"):
            await self.send_custom_json(recipient_id, message.pop("custom"), **message)
        if message.get("image"):
            await self.send_image_url(recipient_id, message.pop("image"), **message)
        if message.get("attachment"):
            await self.send_attachment(recipient_id, message.pop("attachment"), **message)
        if message.get("elements"):
            await self.send_elements(recipient_id, message.pop("elements"), **message)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self._send_all(recipient_id, text_messages(recipient_id, text or ""), "text")

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        choices = choices_from_buttons(buttons)
        if len(choices) > MAX_LIST_ROWS:
            logger.warning(
                "A response to %s has %d buttons; WhatsApp lists hold %d, so only the first %d are shown",
                self._describe(recipient_id),
                len(choices),
                MAX_LIST_ROWS,
                MAX_LIST_ROWS,
            )
        id_limit = BUTTON_ID_LIMIT if len(choices) <= MAX_REPLY_BUTTONS else LIST_ROW_ID_LIMIT
        if any(len(choice.payload) > id_limit for choice in choices):
            logger.warning("A button payload is longer than WhatsApp's %d characters and was cut", id_limit)
        await self._send_all(recipient_id, choice_messages(recipient_id, text or "", choices), "buttons")

    async def send_quick_replies(
        self, recipient_id: str, text: str, quick_replies: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_text_with_buttons(recipient_id, text, quick_replies, **kwargs)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        """One of our charts goes by media id (uploaded first); any other image, or a failed upload, by link."""
        if not isinstance(image, str) or not image.strip():
            return
        url = image.strip()
        name = chart_name(self._charts, url) if self._charts is not None else None
        if name is not None and self._charts is not None:
            state = await wait_for_chart(self._charts, name)  # drawn after the text went, as a rule
            if state in ("pending", "failed"):
                logger.warning("A spending chart for %s was not drawn (%s); not sent", self._describe(recipient_id),
                               "still drawing" if state == "pending" else "the drawing failed")
                return
        message = await self._uploaded_chart(recipient_id, url)
        await self._send_all(recipient_id, [message or image_message(recipient_id, url)], "image")

    async def _uploaded_chart(self, recipient_id: str, url: str) -> dict[str, Any] | None:
        """The image message for a chart uploaded to Meta; None when ``url`` is no chart of ours or it failed."""
        if self._charts is None:
            return None
        name = chart_name(self._charts, url)
        if name is None:
            return None
        who = self._describe(recipient_id)
        png = await read_chart(self._charts, name)
        if png is None:
            logger.warning("A spending chart for %s is not on disk (pruned?); sending its link", who)
            return None
        try:
            media_id = await self.client.upload_media(png, CHART_MIME_TYPE, UPLOAD_FILENAME)
        except WhatsAppApiError:
            logger.warning("A spending chart for %s could not be uploaded to WhatsApp; sending it by link", who)
            return None
        except Exception as exc:  # the link still works: an upload bug must not cost the customer the chart
            logger.error("Uploading a spending chart for %s failed (%s); sending it by link", who,
                         type(exc).__name__, exc_info=exc)
            return None
        return image_message(recipient_id, media_id=media_id)

    async def send_attachment(self, recipient_id: str, attachment: Any, **kwargs: Any) -> None:
        message = attachment_message(recipient_id, attachment)
        if message is None:
            logger.warning("An attachment for %s has no link; not sent", self._describe(recipient_id))
            return
        await self._send_all(recipient_id, [message], "attachment")

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any) -> None:
        if not isinstance(json_message, Mapping):
            logger.warning("A custom response for %s is not an object; not sent", self._describe(recipient_id))
            return
        if json_message.get("to") not in (None, recipient_id):
            logger.warning("A custom response named another recipient; it goes to the conversation's user")
        await self._send_all(recipient_id, [custom_message(recipient_id, json_message)], "custom message")

    async def _send_all(self, recipient_id: str, messages: Iterable[dict[str, Any]], purpose: str) -> bool:
        """Send in order; stop at the first failure so the user never gets the tail without the head."""
        for message in messages:
            try:
                await self.client.send_message(message, purpose=purpose)
            except WhatsAppApiError:
                logger.warning("A %s response to %s was not delivered", purpose, self._describe(recipient_id))
                return False
            self.replied = True
            logger.debug("Sent a %s response to %s", purpose, self._describe(recipient_id))
        return True
