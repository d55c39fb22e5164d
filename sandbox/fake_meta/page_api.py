"""The chat page and its backend (``/api/...``): what a simulated user does becomes a
webhook to the bot, and every change reaches the page over Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox import payloads
from sandbox.fake_meta.state import PageError, Thread
from sandbox.fake_meta.webhooks import Sandbox

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SANDBOX_KEY = web.AppKey("sandbox", Sandbox)


def _page_error(reason: str, status: int = 400) -> web.Response:
    return web.json_response({"error": reason}, status=status)


async def _page_json(request: web.Request) -> dict[str, Any]:
    # Only the page's own fetch() sends JSON; a cross-site form post cannot (no CORS here).
    if request.content_type != "application/json":
        raise PageError("send application/json")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise PageError("the body must be JSON") from None
    if not isinstance(body, dict):
        raise PageError("the body must be a JSON object")
    return body


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})


async def api_state(request: web.Request) -> web.Response:
    return web.json_response(request.app[SANDBOX_KEY].snapshot())


async def api_add_user(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    try:
        body = await _page_json(request)
        wa_id = payloads.normalize_wa_id(body.get("wa_id"))
        if wa_id is None:
            raise PageError("enter a phone number with country code (7 to 15 digits)")
        name = str(body.get("name") or "").strip()[:40] or None
    except PageError as error:
        return _page_error(str(error))
    thread = sandbox.thread(wa_id, name)
    return web.json_response({"wa_id": thread.wa_id, "name": thread.name})


def _thread_for(request: web.Request) -> Thread:
    wa_id = payloads.normalize_wa_id(request.match_info["wa_id"])
    if wa_id is None:
        raise PageError("not a phone number")
    return request.app[SANDBOX_KEY].thread(wa_id)


async def api_send(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    try:
        body = await _page_json(request)
        message = sandbox.user_sends(_thread_for(request), body)
    except PageError as error:
        return _page_error(str(error))
    return web.json_response({"message": message.to_json()}, status=202)


async def api_seen(request: web.Request) -> web.Response:
    try:
        thread = _thread_for(request)
    except PageError as error:
        return _page_error(str(error))
    return web.json_response({"read": request.app[SANDBOX_KEY].user_sees(thread)})


async def api_verify(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SANDBOX_KEY].verify_bot_webhook())


async def api_media(request: web.Request) -> web.Response:
    """Media for the page itself (playing a voice note, opening an uploaded document)."""
    media = request.app[SANDBOX_KEY].media.get(request.match_info["media_id"])
    if media is None:
        raise web.HTTPNotFound()
    headers = {}
    if media.filename:
        headers["Content-Disposition"] = f'inline; filename="{media.filename}"'
    return web.Response(body=media.data, content_type=media.mime_type, headers=headers)


def sse_event(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def api_events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: a snapshot first, then every change."""
    sandbox = request.app[SANDBOX_KEY]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    queue = sandbox.subscribe()
    try:
        await response.write(b"retry: 1500\n\n" + sse_event("snapshot", sandbox.snapshot()))
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=15)
            except asyncio.TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if item is None:
                break
            await response.write(sse_event(*item))
    except (ConnectionResetError, ConnectionError):
        pass  # the page went away
    finally:
        sandbox.unsubscribe(queue)
    return response


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def add_routes(app: web.Application, sandbox: Sandbox) -> None:
    """The page and its API, answering from ``sandbox``."""
    app[SANDBOX_KEY] = sandbox
    app.router.add_get("/", index)
    app.router.add_static("/static", STATIC_DIR)
    app.router.add_get("/api/state", api_state)
    app.router.add_get("/api/events", api_events)
    app.router.add_post("/api/users", api_add_user)
    app.router.add_post("/api/users/{wa_id}/messages", api_send)
    app.router.add_post("/api/users/{wa_id}/read", api_seen)
    app.router.add_post("/api/verify-webhook", api_verify)
    app.router.add_get("/api/media/{media_id}", api_media)
    app.router.add_get("/healthz", healthz)
