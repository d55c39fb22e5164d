"""Meta's Graph API as the bot calls it, over a ``ChatState``.

``POST /{version}/{phone_number_id}/messages`` (messages, read receipts, typing
indicators), ``POST /{version}/{phone_number_id}/media`` (uploads), ``GET
/{version}/{media_id}`` and ``GET /media/{media_id}`` (downloads). All check the bearer
token and answer with Meta's shapes, errors included (``sandbox.payloads``).

Every call is recorded with its kind (``message``, ``read``, ``lookup``, ``download``;
uploads apart, with their form), and a test can script the next answers of a kind: fail
(5xx with a Meta error code, optionally ``Retry-After``), refuse (4xx with Meta's
error), or stall before answering as usual.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox import payloads
from sandbox.fake_meta.state import ChatState, Media
from sandbox.payloads import GraphApiError, ReadReceipt

log = logging.getLogger("sandbox")

MAX_UPLOAD_BYTES = 100 * 1024 * 1024
KINDS = ("message", "read", "lookup", "download")


@dataclass
class GraphCall:
    """One call to the Graph API (uploads apart) and the HTTP status it was answered with."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    status: int = 0
    at: float = 0.0

    @property
    def kind(self) -> str:
        if self.path.startswith("/media/"):
            return "download"
        if self.method == "GET":
            return "lookup"
        if isinstance(self.json, dict) and self.json.get("status") == "read":
            return "read"
        return "message"


@dataclass
class Upload:
    """One media upload: its form fields, its file, and the HTTP status it was answered with."""

    fields: dict[str, str]
    filename: str | None
    content_type: str | None
    content: bytes
    authorization: str | None
    status: int = 0


@dataclass
class Scripted:
    """An answer given instead of the usual one (after ``delay``); a 200 only delays the usual one."""

    status: int
    body: dict[str, Any]
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def graph_error(code: int, message: str) -> dict[str, Any]:
    """Meta's error body with ``code`` and ``message`` (repeated in ``error_data.details``)."""
    return GraphApiError(400, code, message, details=message).to_json()


def error_response(error: GraphApiError) -> web.Response:
    headers = {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token"'} if error.http_status == 401 else None
    return web.json_response(error.to_json(), status=error.http_status, headers=headers)


def unknown_media(media_id: str) -> GraphApiError:
    return GraphApiError(
        400,
        100,
        f"Unsupported get request. Object with ID '{media_id}' does not exist, cannot be loaded due to "
        "missing permissions, or does not support this operation.",
        error_type="GraphMethodException",
        subcode=33,
    )


class GraphApi:
    """The Graph API routes, answering from and changing one ``ChatState``."""

    def __init__(self, state: ChatState) -> None:
        self.state = state
        self.requests: list[GraphCall] = []
        self.uploads: list[Upload] = []
        self._script: dict[str, deque[Scripted]] = {kind: deque() for kind in KINDS}
        self._upload_script: deque[tuple[int, dict[str, Any]]] = deque()
        self._changed = asyncio.Condition()

    def add_routes(self, app: web.Application) -> None:
        version = r"{version:v\d+\.\d+}"
        app.router.add_post(f"/{version}/{{phone_number_id}}/messages", self.messages)
        app.router.add_post(f"/{version}/{{phone_number_id}}/media", self.upload_media)
        app.router.add_get(f"/{version}/{{media_id}}", self.media_info)
        app.router.add_get("/media/{media_id}", self.media_download)

    # --- what a test scripts ------------------------------------------------------------

    def fail_next(self, times: int, status: int = 500, *, kind: str = "message", code: int = 2,
                  retry_after: str | None = None) -> None:
        """The next ``times`` calls of ``kind`` fail with ``status`` and Meta's error ``code``."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        for _ in range(times):
            self._script[kind].append(Scripted(status, graph_error(code, "Service temporarily unavailable"),
                                               headers=headers))

    def refuse_next(self, code: int, message: str, *, status: int = 400, kind: str = "message") -> None:
        """The next call of ``kind`` is refused with Meta's error ``code`` and ``message``."""
        self._script[kind].append(Scripted(status, graph_error(code, message)))

    def stall_next(self, seconds: float, *, kind: str = "message") -> None:
        """The next call of ``kind`` is answered as usual, ``seconds`` late."""
        self._script[kind].append(Scripted(200, {}, delay=seconds))

    def answer_next_upload(self, status: int, body: dict[str, Any]) -> None:
        self._upload_script.append((status, body))

    def add_media(self, media_id: str, content: bytes, mime_type: str) -> None:
        """Media the bot can look up and download, as if a user had sent it."""
        self.state.media[media_id] = Media(data=content, mime_type=mime_type)

    # --- what a test reads ----------------------------------------------------------------

    def of_kind(self, kind: str) -> list[GraphCall]:
        return [call for call in self.requests if call.kind == kind]

    async def until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``condition`` holds, checked after every answered call."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)

    # --- recording and scripted answers ---------------------------------------------------

    def _record(self, request: web.Request, body: Any) -> GraphCall:
        call = GraphCall(request.method, request.path, dict(request.headers), body,
                         at=asyncio.get_running_loop().time())
        self.requests.append(call)
        return call

    async def _answer(self, call: GraphCall, response: web.Response) -> web.Response:
        call.status = response.status
        async with self._changed:
            self._changed.notify_all()
        return response

    async def _scripted(self, kind: str) -> Scripted | None:
        script = self._script[kind]
        if not script:
            return None
        step = script.popleft()
        if step.delay:
            await asyncio.sleep(step.delay)
        return step

    async def _scripted_response(self, kind: str) -> web.Response | None:
        step = await self._scripted(kind)
        if step is None or step.status == 200:
            return None
        return web.json_response(step.body, status=step.status, headers=step.headers)

    # --- checks ---------------------------------------------------------------------------

    def _check_token(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else request.query.get("access_token", "")
        if not hmac.compare_digest(token.encode("utf-8"), self.state.config.access_token.encode("utf-8")):
            log.warning("Graph API call to %s with a wrong or missing access token: 401", request.method)
            raise payloads.invalid_token()

    def _check_phone_number_id(self, request: web.Request) -> None:
        phone_number_id = request.match_info["phone_number_id"]
        if phone_number_id != self.state.config.phone_number_id:
            raise payloads.unknown_object(phone_number_id)

    def _media(self, media_id: str) -> Media:
        media = self.state.media.get(media_id)
        if media is None:
            raise unknown_media(media_id)
        return media

    # --- routes ---------------------------------------------------------------------------

    async def messages(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:  # not JSON, or not UTF-8
            body = None
        call = self._record(request, body)
        try:
            self._check_token(request)
            self._check_phone_number_id(request)
            scripted = await self._scripted_response(call.kind)
            if scripted is not None:
                return await self._answer(call, scripted)
            if body is None:
                raise payloads.invalid_parameter("the request body must be JSON")
            parsed = payloads.parse_graph_message(body)
            if isinstance(parsed, ReadReceipt):
                self.state.bot_reads(parsed)
                return await self._answer(call, web.json_response({"success": True}))
            message = self.state.bot_sends(parsed)
        except GraphApiError as error:
            if error.http_status != 401:
                log.warning("Graph API rejected a bot request: %s", error)
            return await self._answer(call, error_response(error))
        answer = payloads.send_response(parsed.to, parsed.wa_id, message.id)
        return await self._answer(call, web.json_response(answer))

    async def _read_upload(self, request: web.Request) -> Upload:
        form = await request.post()
        try:
            file = form.get("file")
            upload = Upload(
                fields={key: value for key, value in form.items() if isinstance(value, str)},
                filename=file.filename if isinstance(file, web.FileField) else None,
                content_type=file.content_type if isinstance(file, web.FileField) else None,
                content=file.file.read() if isinstance(file, web.FileField) else b"",
                authorization=request.headers.get("Authorization"),
            )
        finally:
            for value in form.values():  # aiohttp spools uploads to temporary files
                if isinstance(value, web.FileField):
                    value.file.close()
        self.uploads.append(upload)
        return upload

    async def upload_media(self, request: web.Request) -> web.Response:
        upload = await self._read_upload(request)
        try:
            self._check_token(request)
            self._check_phone_number_id(request)
            if self._upload_script:
                status, body = self._upload_script.popleft()
                upload.status = status
                return web.json_response(body, status=status)
            if not request.content_type.startswith("multipart/"):
                raise payloads.invalid_parameter("upload media as multipart/form-data with a file field")
            if upload.fields.get("messaging_product") != "whatsapp" or not upload.content:
                raise payloads.invalid_parameter("messaging_product=whatsapp and a file are required")
        except GraphApiError as error:
            upload.status = error.http_status
            return error_response(error)
        mime_type = upload.fields.get("type") or upload.content_type or "application/octet-stream"
        media_id = payloads.new_media_id()
        self.state.media[media_id] = Media(data=upload.content, mime_type=mime_type, filename=upload.filename)
        upload.status = 200
        return web.json_response({"id": media_id})

    async def media_info(self, request: web.Request) -> web.Response:
        media_id = request.match_info["media_id"]
        call = self._record(request, None)
        try:
            self._check_token(request)
            scripted = await self._scripted_response("lookup")
            if scripted is not None:
                return await self._answer(call, scripted)
            media = self._media(media_id)
        except GraphApiError as error:
            return await self._answer(call, error_response(error))
        url = f"{request.scheme}://{request.host}/media/{media_id}?ext={int(time.time())}"
        url += f"&hash={secrets.token_urlsafe(12)}"
        answer = payloads.media_info(media_id, url, media.mime_type, media.data)
        return await self._answer(call, web.json_response(answer))

    async def media_download(self, request: web.Request) -> web.Response:
        """The download URL from ``GET /{media_id}``; like Meta's, it wants the bearer token too."""
        call = self._record(request, None)
        try:
            self._check_token(request)
            scripted = await self._scripted_response("download")
            if scripted is not None:
                return await self._answer(call, scripted)
            media = self._media(request.match_info["media_id"])
        except GraphApiError as error:
            return await self._answer(call, error_response(error))
        response = web.Response(body=media.data, content_type=media.mime_type.split(";")[0])
        return await self._answer(call, response)
