"""Meta's Graph API as the bot calls it, over a ``ChatState``.

``POST /{version}/{phone_number_id}/messages`` (messages, read receipts, typing
indicators), ``POST /{version}/{phone_number_id}/media`` (uploads), ``GET
/{version}/{media_id}`` and ``GET /media/{media_id}`` (downloads). All check the bearer
token and answer with Meta's shapes, errors included (``sandbox.payloads``).
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import time

from aiohttp import web

from sandbox import payloads
from sandbox.fake_meta.state import ChatState, Media
from sandbox.payloads import GraphApiError, ReadReceipt

log = logging.getLogger("sandbox")


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

    def add_routes(self, app: web.Application) -> None:
        version = r"{version:v\d+\.\d+}"
        app.router.add_post(f"/{version}/{{phone_number_id}}/messages", self.messages)
        app.router.add_post(f"/{version}/{{phone_number_id}}/media", self.upload_media)
        app.router.add_get(f"/{version}/{{media_id}}", self.media_info)
        app.router.add_get("/media/{media_id}", self.media_download)

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

    async def messages(self, request: web.Request) -> web.Response:
        try:
            self._check_token(request)
            self._check_phone_number_id(request)
            try:
                body = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise payloads.invalid_parameter("the request body must be JSON") from None
            parsed = payloads.parse_graph_message(body)
            if isinstance(parsed, ReadReceipt):
                self.state.bot_reads(parsed)
                return web.json_response({"success": True})
            message = self.state.bot_sends(parsed)
        except GraphApiError as error:
            if error.http_status != 401:
                log.warning("Graph API rejected a bot request: %s", error)
            return error_response(error)
        return web.json_response(payloads.send_response(parsed.to, parsed.wa_id, message.id))

    async def upload_media(self, request: web.Request) -> web.Response:
        try:
            self._check_token(request)
            self._check_phone_number_id(request)
            if not request.content_type.startswith("multipart/"):
                raise payloads.invalid_parameter("upload media as multipart/form-data with a file field")
            form = await request.post()
            uploads = [value for value in form.values() if isinstance(value, web.FileField)]
            try:
                upload = form.get("file")
                if form.get("messaging_product") != "whatsapp" or not isinstance(upload, web.FileField):
                    raise payloads.invalid_parameter("messaging_product=whatsapp and a file are required")
                data = upload.file.read()
            finally:
                for spooled in uploads:  # aiohttp spools uploads to temporary files
                    spooled.file.close()
            mime_type = str(form.get("type") or upload.content_type or "application/octet-stream")
            media_id = payloads.new_media_id()
            self.state.media[media_id] = Media(data=data, mime_type=mime_type, filename=upload.filename)
        except GraphApiError as error:
            return error_response(error)
        return web.json_response({"id": media_id})

    async def media_info(self, request: web.Request) -> web.Response:
        media_id = request.match_info["media_id"]
        try:
            self._check_token(request)
            media = self._media(media_id)
        except GraphApiError as error:
            return error_response(error)
        url = f"{request.scheme}://{request.host}/media/{media_id}?ext={int(time.time())}"
        url += f"&hash={secrets.token_urlsafe(12)}"
        return web.json_response(payloads.media_info(media_id, url, media.mime_type, media.data))

    async def media_download(self, request: web.Request) -> web.Response:
        """The download URL from ``GET /{media_id}``; like Meta's, it wants the bearer token too."""
        try:
            self._check_token(request)
            media = self._media(request.match_info["media_id"])
        except GraphApiError as error:
            return error_response(error)
        return web.Response(body=media.data, content_type=media.mime_type)
