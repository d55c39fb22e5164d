"""Guards for the project's Sanic servers (rasa run and the action server), run before routing.

Sanic 21.12 takes a Content-Length of "-1" at its word and then reads, or drains, the body
forever on empty reads, stalling every other request of the process. Both servers refuse
such a request before any route or middleware reads its body, and close the connection.
"""

from __future__ import annotations

import re
from typing import Any

from sanic.request import Request
from sanic.response import HTTPResponse, json

_PLAIN_LENGTH = re.compile(r"[0-9]{1,19}")


def has_malformed_length(request: Request) -> bool:
    """A Content-Length that is not one plain number. Sanic 21.12 takes "-1" at its word and then
    spins forever on empty reads, so such a request must never be read or drained."""
    declared = request.headers.getall("content-length", [])
    return bool(declared) and (len(declared) > 1 or not _PLAIN_LENGTH.fullmatch(declared[0].strip()))


def close_unread(request: Request) -> None:
    """Answer without reading or draining the body, and close the connection after the answer."""
    stream = request.stream
    if stream is not None:
        stream.request_body = None
        stream.request_bytes_left = 0
        stream.keep_alive = False


async def _skip_malformed_body(request: Request, **_: Any) -> None:
    """Before routing (so before Sanic preloads a body): a malformed length is never read."""
    if has_malformed_length(request):
        close_unread(request)
        request.ctx.malformed_length = True


async def _refuse_malformed(request: Request) -> HTTPResponse | None:
    if getattr(request.ctx, "malformed_length", False):
        return json({"error": "malformed Content-Length"}, status=400)
    return None


def guard_app(app: Any) -> None:
    """Install the guard on a server (before it starts: Sanic fixes signals and middleware then)."""
    app.signal("http.routing.before")(_skip_malformed_body)
    app.register_middleware(_refuse_malformed, "request")
