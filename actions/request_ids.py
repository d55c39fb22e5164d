"""The request id on the action server: taken from Rasa's ``X-Request-ID`` header for each call,
so the action server's log lines name the same id as Rasa's for the same customer message.
Registered with rasa-sdk's plugin hook beside the token check (``rasa_sdk_plugins``)."""

from __future__ import annotations

from typing import Any

import pluggy
from sanic import Sanic
from sanic.request import Request

from banking.request_context import HEADER, REQUEST_ID, accept_request_id, install_logging

hookimpl = pluggy.HookimplMarker("rasa_sdk")


def track_request_ids(app: Sanic) -> None:
    @app.on_request
    async def take_request_id(request: Request) -> None:
        request.ctx.request_id_token = REQUEST_ID.set(accept_request_id(request.headers.get(HEADER)))

    @app.on_response
    async def give_back_request_id(request: Request, response: Any) -> None:
        token = getattr(request.ctx, "request_id_token", None)
        if token is not None:
            response.headers[HEADER] = REQUEST_ID.get() or ""
            REQUEST_ID.reset(token)

    @app.listener("before_server_start")
    async def stamp_logs(*_: Any) -> None:
        install_logging("actions")


@hookimpl  # type: ignore[misc]
def attach_sanic_app_extensions(app: Sanic) -> None:
    track_request_ids(app)
