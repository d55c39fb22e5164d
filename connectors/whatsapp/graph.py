"""The one HTTP client the WhatsApp channel uses to talk to Meta's Graph API.

One aiohttp session per client, made on first use (inside the running loop),
explicit timeouts, and bounded retries: 429, 5xx, Meta's throttling codes,
timeouts and connection errors are retried with exponential backoff plus jitter,
at most ``RetryPolicy.max_attempts`` times and within ``RetryPolicy.total_timeout``
seconds; anything else is logged and given up at once. Logs name the operation,
the HTTP status and Meta's error code, never the token, a phone number or a
message id (a ``wamid`` encodes the user's number).

    WhatsAppApiError                  every failure of a Graph API call
    ├── ReengagementRequired          131047: the 24-hour window is closed; only a template may be sent
    ├── RequestRejected               another 4xx (bad request, token, permissions): not retried
    └── GraphUnavailable              retries exhausted or time budget spent (429, 5xx, network)
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from banking.log_redaction import redact_numbers

logger = logging.getLogger(__name__)

REENGAGEMENT_REQUIRED = 131047
# Meta answers some throttling with HTTP 400 and one of these codes; they are a 429 in all but name.
THROTTLING_CODES = frozenset({4, 80007, 130429, 131056})
MEDIA_SIZE_LIMIT = 16 * 1024 * 1024  # WhatsApp's largest audio file
# Upload limits from the Cloud API's supported media types: images 5 MB; anything else is
# left to Meta to judge up to its largest (documents, 100 MB).
UPLOAD_SIZE_LIMITS = {"image/jpeg": 5 * 1024 * 1024, "image/png": 5 * 1024 * 1024}
UPLOAD_SIZE_LIMIT = 100 * 1024 * 1024
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5, sock_read=10)



class WhatsAppApiError(Exception):
    """A Graph API call failed; ``status`` and ``code`` say how (both may be None)."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ReengagementRequired(WhatsAppApiError):
    """The user last wrote more than 24 hours ago: free-form messages are refused."""


class RequestRejected(WhatsAppApiError):
    """Meta refused the request itself; sending it again would not help."""


class GraphUnavailable(WhatsAppApiError):
    """Meta did not accept the request within the retry budget."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``max_attempts`` calls in at most ``total_timeout`` seconds."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.5  # each delay grows by a random 0..50 %
    total_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < self.base_delay or self.jitter < 0 or self.total_timeout <= 0:
            raise ValueError("delays and the time budget must be positive, with max_delay >= base_delay")


NO_RETRY = RetryPolicy(max_attempts=1, total_timeout=10.0)


def backoff_delay(
    attempt: int, policy: RetryPolicy, retry_after: float | None = None, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    ``base_delay * 2**(attempt-1)``, plus up to ``jitter`` of it so that many
    senders do not retry in step, never more than ``max_delay``; a server's
    Retry-After is honoured up to ``max_delay``.
    """
    exponential = policy.base_delay * 2 ** (attempt - 1)
    delay = min(policy.max_delay, exponential * (1 + policy.jitter * rand()))
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_delay))
    return delay


@dataclass(frozen=True)
class Media:
    content: bytes
    mime_type: str


class GraphApiClient:
    """Messages, read receipts, media uploads and downloads for one WhatsApp business number."""

    def __init__(
        self,
        api_url: str,
        phone_number_id: str,
        api_token: str,
        *,
        retry: RetryPolicy | None = None,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        media_size_limit: int = MEDIA_SIZE_LIMIT,
    ) -> None:
        self._api_url = api_url.rstrip("/")
        self._phone_number_id = phone_number_id
        self._token = api_token
        self.retry = retry or RetryPolicy()
        self._timeout = timeout
        self._media_size_limit = media_size_limit
        self._session: aiohttp.ClientSession | None = None

    @property
    def messages_url(self) -> str:
        return f"{self._api_url}/{self._phone_number_id}/messages"

    @property
    def media_url(self) -> str:
        return f"{self._api_url}/{self._phone_number_id}/media"

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {self._token}"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def send_message(self, payload: Mapping[str, Any], *, purpose: str = "message") -> dict[str, Any]:
        """POST /{phone_number_id}/messages; Meta's answer (with the new message id) on success."""
        answer = await self._request("POST", self.messages_url, purpose=f"send {purpose}", json=dict(payload))
        return answer if isinstance(answer, dict) else {}

    async def mark_read(self, message_id: str, *, typing: bool = True) -> None:
        """Blue ticks on the user's message and, while the bot works, a typing indicator.

        Best effort: tried once, since a late receipt is worth less than the reply.
        """
        payload: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
        if typing:
            payload["typing_indicator"] = {"type": "text"}
        await self._request("POST", self.messages_url, purpose="read receipt", json=payload, policy=NO_RETRY)

    async def download_media(self, media_id: str) -> Media:
        """GET /{media_id} for a short-lived URL, then GET that URL (both with the bearer token)."""
        info = await self._request("GET", f"{self._api_url}/{media_id}", purpose="media lookup")
        url = info.get("url") if isinstance(info, Mapping) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            logger.error("WhatsApp media lookup answered without a usable download URL")
            raise RequestRejected("media lookup without a URL")
        content = await self._request("GET", url, purpose="media download", expect_bytes=True)
        mime_type = info.get("mime_type") if isinstance(info.get("mime_type"), str) else "application/octet-stream"
        return Media(content=content, mime_type=mime_type)

    async def upload_media(self, content: bytes, mime_type: str, filename: str) -> str:
        """POST /{phone_number_id}/media (multipart/form-data); the media id to send by.

        Meta takes images (JPEG, PNG) of at most 5 MB; a larger one is refused here, unsent.
        """
        limit = UPLOAD_SIZE_LIMITS.get(mime_type, UPLOAD_SIZE_LIMIT)
        if len(content) > limit:
            logger.error(
                "WhatsApp media upload not tried: %d bytes of %s is over Meta's limit", len(content), mime_type
            )
            raise RequestRejected(f"{mime_type} of {len(content)} bytes is over the {limit}-byte limit")

        def form() -> aiohttp.FormData:  # a FormData is spent once sent: one per attempt
            data = aiohttp.FormData()
            data.add_field("messaging_product", "whatsapp")
            data.add_field("type", mime_type)
            data.add_field("file", content, filename=filename, content_type=mime_type)
            return data

        answer = await self._request("POST", self.media_url, purpose="media upload", form=form)
        media_id = answer.get("id") if isinstance(answer, Mapping) else None
        if isinstance(media_id, int) and not isinstance(media_id, bool):
            media_id = str(media_id)
        if not isinstance(media_id, str) or not media_id.strip():
            logger.error("WhatsApp media upload answered without a media id")
            raise RequestRejected("media upload without an id")
        return media_id.strip()

    async def _request(
        self,
        method: str,
        url: str,
        *,
        purpose: str,
        json: dict[str, Any] | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
        policy: RetryPolicy | None = None,
        expect_bytes: bool = False,
    ) -> Any:
        """One Graph API call with retries; ``form`` builds a fresh multipart body for each attempt."""
        policy = policy or self.retry
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + policy.total_timeout
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                remaining = max(deadline - loop.time(), 0.001)
                timeout = aiohttp.ClientTimeout(
                    total=min(self._timeout.total or remaining, remaining),
                    connect=self._timeout.connect,
                    sock_read=self._timeout.sock_read,
                )
                data = form() if form is not None else None
                async with self._client_session().request(
                    method, url, json=json, data=data, timeout=timeout
                ) as response:
                    if response.status < 400:
                        return await (self._read_bytes(response) if expect_bytes else _read_json(response))
                    error = _error_from_response(response.status, await _read_json(response))
                    retry_after = _retry_after(response.headers.get("Retry-After"))
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as exc:
                error = GraphUnavailable(f"{type(exc).__name__} talking to the Graph API")
            except aiohttp.ClientError as exc:  # an invalid URL, too many redirects: trying again cannot help
                error = RequestRejected(f"{type(exc).__name__} talking to the Graph API")

            if isinstance(error, ReengagementRequired):
                logger.warning(
                    "WhatsApp %s refused (code %s): the 24-hour customer service window is closed, "
                    "a re-engagement template message is required; not retried",
                    purpose,
                    REENGAGEMENT_REQUIRED,
                )
                raise error
            if isinstance(error, RequestRejected):
                logger.error("WhatsApp %s rejected, not retried: %s", purpose, error)
                raise error

            delay = backoff_delay(attempt, policy, retry_after)
            elapsed = loop.time() - started
            if attempt >= policy.max_attempts or elapsed + delay >= policy.total_timeout:
                logger.error(
                    "WhatsApp %s failed; giving up after %d attempt(s) in %.1f s: %s",
                    purpose,
                    attempt,
                    elapsed,
                    error,
                )
                raise GraphUnavailable(str(error), status=error.status, code=error.code) from error
            logger.warning(
                "WhatsApp %s failed (attempt %d of %d): %s; retrying in %.2f s",
                purpose,
                attempt,
                policy.max_attempts,
                error,
                delay,
            )
            await asyncio.sleep(delay)

    async def _read_bytes(self, response: aiohttp.ClientResponse) -> bytes:
        if response.content_length is not None and response.content_length > self._media_size_limit:
            raise RequestRejected(f"media of {response.content_length} bytes is over the limit")
        content = await response.content.read(self._media_size_limit + 1)
        if len(content) > self._media_size_limit:
            raise RequestRejected("media is over the size limit")
        return content


async def _read_json(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except ValueError:
        return None


def _error_from_response(status: int, body: Any) -> WhatsAppApiError:
    """Meta's ``{"error": {"code", "message", "error_data": {"details"}, ...}}`` as an exception."""
    error = body.get("error") if isinstance(body, Mapping) else None
    error = error if isinstance(error, Mapping) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    title = redact(str(error.get("message") or "no error message"))
    description = f"HTTP {status}, code {code}: {title}"
    if code == REENGAGEMENT_REQUIRED:
        return ReengagementRequired(description, status=status, code=code)
    if status == 429 or status >= 500 or code in THROTTLING_CODES:
        return GraphUnavailable(description, status=status, code=code)
    return RequestRejected(description, status=status, code=code)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def redact(text: str) -> str:
    """Meta's error texts may quote a phone number; keep them out of the logs (and short)."""
    return redact_numbers(text)[:300]
