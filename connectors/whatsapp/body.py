"""Reading a webhook's body with a size cap, before anything else is done with it."""

from __future__ import annotations

from sanic.request import Request

__all__ = ["MAX_WEBHOOK_BYTES", "read_body"]

MAX_WEBHOOK_BYTES = 3 * 1024 * 1024  # Meta's largest webhook payload; anything bigger is not from Meta


async def read_body(request: Request, limit: int) -> bytes | None:
    """A streamed request's body, or None as soon as it is known to exceed ``limit`` bytes.

    A declared Content-Length over the limit is refused before any of the body is
    read; a chunked body is counted as it arrives and refused at the first byte over.
    A malformed Content-Length never gets here: the server-wide guard this channel
    installs (``connectors.sanic_guard``) answers it with 400 before routing.
    """
    if request.stream is None:  # a route that is not streamed: Sanic has read the body already
        return request.body if len(request.body) <= limit else None
    declared = request.headers.getall("content-length", [])
    if declared:
        if int(declared[0]) > limit:
            _stop_reading(request, limit)
            return None
    chunks: list[bytes] = []
    size = 0
    while (chunk := await request.stream.read()) is not None:
        if not chunk:  # the stream has nothing more to give; never spin on empty reads
            break
        size += len(chunk)
        if size > limit:
            _stop_reading(request, limit)
            return None
        chunks.append(chunk)
    return b"".join(chunks)

def _stop_reading(request: Request, limit: int) -> None:
    """Sanic would otherwise drain the unread rest (up to its 100 MB limit) to keep the connection open."""
    if request.stream is not None:
        request.stream.request_max_size = limit  # over it, Sanic closes the connection instead
