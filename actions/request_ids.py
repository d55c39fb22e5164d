"""The request id on the action server: taken from Rasa's ``X-Request-ID`` header for each call,
so the action server's log lines name the same id as Rasa's for the same customer message.
Taken only from calls that carry ACTION_SERVER_TOKEN, and never echoed back.
Registered with rasa-sdk's plugin hook beside the token check (``rasa_sdk_plugins``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pluggy
from sanic import Sanic
from sanic.request import Request

from actions.server_auth import action_server_token, is_valid_bearer
from banking.request_context import HEADER, REQUEST_ID, accept_request_id, install_logging

hookimpl = pluggy.HookimplMarker("rasa_sdk")


def track_request_ids(app: Sanic, environ: Mapping[str, str] = os.environ) -> None:
    """Each call runs under a request id: Rasa's, when the call carries ACTION_SERVER_TOKEN (only our
    own ``rasa run`` does), else a new one. The id is never sent back in the response."""
    token = action_server_token(environ)

    @app.on_request
    async def take_request_id(request: Request) -> None:
        trusted = is_valid_bearer(token, request.headers.get("Authorization"))
        offered = request.headers.get(HEADER) if trusted else None
        request.ctx.request_id_token = REQUEST_ID.set(accept_request_id(offered))

    @app.on_response
    async def forget_request_id(request: Request, response: Any) -> None:
        previous = getattr(request.ctx, "request_id_token", None)
        if previous is not None:
            REQUEST_ID.reset(previous)

    async def stamp_logs(*_: Any) -> None:
        install_logging("actions")

    # register_listener rather than @app.listener(event): Sanic 21.12 types the decorator form wrongly.
    app.register_listener(stamp_logs, "before_server_start")


@hookimpl
def attach_sanic_app_extensions(app: Sanic) -> None:
    track_request_ids(app)
