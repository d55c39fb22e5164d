"""The request id on the Rasa side: set per incoming message, sent to the action server.

``with_request_id`` wraps the channel's ``on_new_message``: everything Rasa does for that
message runs in the same task, so its log lines and its calls to the action server see
the id. ``send_request_ids`` makes Rasa's endpoint calls (the action server's among them)
carry it in ``X-Request-ID``; installed once, by the channel.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.utils.endpoints import EndpointConfig

from banking.request_context import HEADER, REQUEST_ID, install_logging, new_request_id

logger = logging.getLogger(__name__)

_original_request = EndpointConfig.request


def with_request_id(on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Callable[[UserMessage], Awaitable[Any]]:
    """The handler, run under a fresh request id for each message."""

    @functools.wraps(on_new_message)
    async def handle(message: UserMessage) -> Any:
        token = REQUEST_ID.set(new_request_id())
        try:
            logger.debug("Handling a message on channel %s", message.input_channel)
            return await on_new_message(message)
        finally:
            REQUEST_ID.reset(token)

    return handle


async def _request_with_id(self: EndpointConfig, *args: Any, **kwargs: Any) -> Any:
    request_id = REQUEST_ID.get()
    if request_id:
        kwargs["headers"] = {**(kwargs.get("headers") or {}), HEADER: request_id}
    return await _original_request(self, *args, **kwargs)


def send_request_ids() -> None:
    """Rasa's endpoint calls carry the current request id; request ids go on every log line. Idempotent."""
    if EndpointConfig.request is not _request_with_id:
        EndpointConfig.request = _request_with_id
    install_logging("rasa")
