"""Rasa input/output channel for Meta's WhatsApp Cloud API.

Register it in credentials.yml by dotted path (secrets come from the environment)::

    connectors.whatsapp.WhatsAppInput:

and Meta's webhook is ``/webhooks/whatsapp/webhook``: GET answers Meta's
verification challenge, POST receives messages and delivery statuses. A POST is
checked against ``X-Hub-Signature-256`` before anything is parsed (a body over
Meta's 3 MB maximum is refused with 413 before its signature is computed), answered at
once, and handled in the background: deduplicated by message id in MongoDB,
one user's messages in arrival order, different users side by side. The read
receipt (with the typing indicator) goes beside the message, a bounded number at
once, and is never waited for (connectors.whatsapp_lanes.SideCalls). A user who
sends faster than RATE_LIMIT_MESSAGES per RATE_LIMIT_WINDOW_SECONDS is told once
to slow down and the excess is dropped (see connectors.whatsapp_ratelimit).
A spending chart the action server wrote under CHART_DIR is uploaded to Meta and
sent by media id; if the upload fails it goes by its CHART_BASE_URL link, which
``/webhooks/whatsapp/charts/<name>`` serves (see connectors.whatsapp_charts).
With ENVIRONMENT=production the channel refuses to start on missing or default
secrets (banking.crypto.require_production_secrets).

Nothing happens at import time: the Graph API session and the database are made
on first use. Logs never carry a phone number, a message id or a message text;
users appear as a short prefix of their ``user_key`` hash.

    WhatsAppConfigError(ConfigError)  a missing or unusable setting, raised at start-up
    WhatsAppApiError                  a Graph API call failed (see connectors.whatsapp_graph)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import aiohttp
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from assistant_llm.charts import ChartStore
from assistant_llm.transcriber import Transcript, heard_message
from banking import log_redaction
from banking.config import (
    DEVELOPMENT_SALT,
    WHATSAPP_VARIABLES,
    ConfigError,
    environment_from_env,
    mongodb_uri_from_env,
    user_id_salt_from_env,
    whatsapp_settings_from_env,
)
from banking.crypto import require_production_secrets
from banking.identity import user_key
from connectors.health import register_health
from connectors.model_domain import APOLOGY, check_model_domain, unfilled_placeholders
from connectors.rasa_server import exposure_problems
from connectors.request_ids import send_request_ids, with_request_id
from connectors.sanic_guard import guard_app
from connectors.whatsapp_charts import CHART_MIME_TYPE, UPLOAD_FILENAME, chart_name, read_chart, wait_for_chart
from connectors.whatsapp_graph import (
    DEFAULT_TIMEOUT,
    REENGAGEMENT_REQUIRED,
    GraphApiClient,
    RetryPolicy,
    WhatsAppApiError,
    redact,
)
from connectors.whatsapp_inbound import (
    FOR_RASA,
    VOICE,
    InboundMessage,
    StatusUpdate,
    UnexpectedPayload,
    WebhookBatch,
    parse_webhook,
)
from connectors.whatsapp_lanes import SenderLanes, SideCalls
from connectors.whatsapp_outbound import (
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
from connectors.whatsapp_ratelimit import RateLimitConfig, RateLimiter, Verdict, rate_limited_reply
from connectors.whatsapp_store import WhatsAppStore

__all__ = [
    "DEFAULT_API_URL",
    "NoTranscriber",
    "RateLimitConfig",
    "Transcriber",
    "Transcript",
    "WhatsAppApiError",
    "WhatsAppConfig",
    "WhatsAppConfigError",
    "WhatsAppInput",
    "WhatsAppOutput",
    "is_valid_signature",
    "verification_challenge",
]

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://graph.facebook.com/v25.0"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_WEBHOOK_BYTES = 3 * 1024 * 1024  # Meta's largest webhook payload; anything bigger is not from Meta
SHUTDOWN_GRACE_SECONDS = 10.0

_SETTINGS = WHATSAPP_VARIABLES  # credentials.yml key -> environment variable
_REQUIRED = ("phone_number_id", "api_token", "verify_token", "app_secret")
_OTHER_CREDENTIALS = ("transcriber",)

VOICE_NOT_SUPPORTED = (
    "Sorry, I can't listen to voice notes yet. Please type your message and I'll help right away."
)
SOMETHING_WENT_WRONG = "Sorry, something went wrong on our side. Please try again in a moment."
_UNSUPPORTED_NAMES = {
    "image": "photos",
    "sticker": "stickers",
    "location": "shared locations",
    "contacts": "contact cards",
    "document": "documents",
    "video": "videos",
    "reaction": "reactions",
}


def unsupported_reply(kind: str) -> str:
    """What the user is told when they send something the assistant cannot read."""
    what = _UNSUPPORTED_NAMES.get(kind, "this kind of message")
    return (
        f"Sorry, I can't read {what} yet. I understand typed messages and taps on my buttons "
        "and lists, so please type what you need."
    )


class WhatsAppConfigError(ConfigError):
    """A WhatsApp setting is missing or unusable; the message names the variable."""


@dataclass(frozen=True)
class WhatsAppConfig:
    """Everything the channel needs from the deployment, read once."""

    phone_number_id: str
    api_token: str = field(repr=False)
    verify_token: str = field(repr=False)
    app_secret: str = field(repr=False)
    api_url: str = DEFAULT_API_URL
    mongodb_uri: str | None = field(default=None, repr=False)
    user_id_salt: str = field(default=DEVELOPMENT_SALT, repr=False)
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    charts: ChartStore = field(default_factory=lambda: ChartStore.from_env({}))

    @property
    def uses_development_salt(self) -> bool:
        return self.user_id_salt == DEVELOPMENT_SALT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> WhatsAppConfig:
        """WHATSAPP_*, MONGODB_URI, USER_ID_SALT, RATE_LIMIT_* and CHART_*; empty values count as unset."""
        return cls.from_credentials(None, environ)

    @classmethod
    def from_credentials(
        cls, credentials: Mapping[str, Any] | None, environ: Mapping[str, str] = os.environ
    ) -> WhatsAppConfig:
        """The environment, with non-empty credentials.yml keys taking precedence.

        With ENVIRONMENT=production, every missing or default secret is named at once
        (the WhatsApp ones as the channel would use them) and nothing starts.
        """
        credentials = credentials or {}
        unknown = sorted(str(key) for key in credentials if key not in _SETTINGS and key not in _OTHER_CREDENTIALS)
        if unknown:
            logger.warning("Ignoring unknown WhatsApp credentials keys: %s", ", ".join(unknown))
        values = whatsapp_settings_from_env(environ)
        for key in _SETTINGS:
            value = _setting(credentials.get(key))
            if value:
                values[key] = value
        effective = dict(environ)
        effective.update({_SETTINGS[key]: value for key, value in values.items() if value})
        try:
            require_production_secrets(effective)
        except ConfigError as error:
            raise WhatsAppConfigError(str(error)) from None
        required = {key: value for key in _REQUIRED if (value := values[key])}
        missing = [_SETTINGS[key] for key in _REQUIRED if key not in required]
        if missing:
            raise WhatsAppConfigError(
                f"WhatsApp channel is missing {', '.join(missing)}: set the environment variable(s) "
                "or the matching key(s) in credentials.yml"
            )
        api_url = (values["api_url"] or DEFAULT_API_URL).rstrip("/")
        if not api_url.startswith(("https://", "http://")):
            raise WhatsAppConfigError(f"WHATSAPP_API_URL must be an http(s) URL, not {api_url!r}")
        return cls(
            phone_number_id=required["phone_number_id"],
            api_token=required["api_token"],
            verify_token=required["verify_token"],
            app_secret=required["app_secret"],
            api_url=api_url,
            mongodb_uri=mongodb_uri_from_env(environ),
            user_id_salt=user_id_salt_from_env(environ) or DEVELOPMENT_SALT,
            rate_limit=RateLimitConfig.from_env(environ),
            charts=ChartStore.from_env(environ),
        )


def _setting(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    return text or None


@runtime_checkable
class Transcriber(Protocol):
    """Speech to text for voice notes (a Groq Whisper one plugs in here later)."""

    async def transcribe(self, audio: bytes, mime_type: str) -> Transcript | None:
        """The words in ``audio``, or None when they cannot be made out."""
        ...


class NoTranscriber:
    """The default: voice notes are not understood, and the user is asked to type."""

    async def transcribe(self, audio: bytes, mime_type: str) -> Transcript | None:
        return None


def is_valid_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``sha256=<hex HMAC-SHA256 of the raw body under the app secret>``."""
    if not secret or not header:
        return False
    scheme, separator, signature = header.strip().partition("=")
    if not separator or scheme.strip().lower() != "sha256" or not signature.strip():
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    given = signature.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected.encode("ascii"), given)


def verification_challenge(query: Mapping[str, Any], verify_token: str) -> str | None:
    """The ``hub.challenge`` to echo when Meta's subscription request carries our token, else None."""
    mode = _first(query.get("hub.mode"))
    token = _first(query.get("hub.verify_token"))
    challenge = _first(query.get("hub.challenge"))
    if mode != "subscribe" or token is None or not challenge or not verify_token:
        return None
    if not hmac.compare_digest(token.encode("utf-8"), verify_token.encode("utf-8")):
        return None
    return challenge


def _first(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return value if isinstance(value, str) else None


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


class WebhookBlueprint(Blueprint):
    """The channel's routes; registering them also guards the whole server (every route, Rasa's
    own included) against a malformed Content-Length, the one place a channel reaches the app."""

    def register(self, app: Any, options: Any) -> None:
        super().register(app, options)
        guard_app(app)
        register_health(app)  # GET /health for operators (connectors/health.py)
        send_request_ids()  # one request id per message, through Rasa to the action server


def _stop_reading(request: Request, limit: int) -> None:
    """Sanic would otherwise drain the unread rest (up to its 100 MB limit) to keep the connection open."""
    if request.stream is not None:
        request.stream.request_max_size = limit  # over it, Sanic closes the connection instead


def _reference(message_id: str) -> str:
    """A log-safe handle on a message id (a wamid encodes the sender's phone number)."""
    return hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:10]


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
        an apology without buttons goes instead (connectors.model_domain)."""
        unfilled = unfilled_placeholders(message)
        if unfilled:
            response = message.get("utter_action")
            logger.error("A response (%s) to %s had unfilled placeholders %s; sent an apology instead",
                         response if isinstance(response, str) else "unnamed", self._describe(recipient_id),
                         ", ".join(unfilled))
            await self.send_text_message(recipient_id, APOLOGY)
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


class WhatsAppInput(InputChannel):
    """Receives WhatsApp Cloud API webhooks at /webhooks/whatsapp/webhook."""

    @classmethod
    def name(cls) -> str:
        return "whatsapp"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WhatsAppInput:
        """Settings from credentials.yml over the environment; ``transcriber`` names a class by dotted path.

        Raises WhatsAppConfigError (naming the variables) on a missing setting, and with
        ENVIRONMENT=production on any missing or default secret.
        """
        config = WhatsAppConfig.from_credentials(credentials)
        # `rasa run` builds its channels after configuring logging: from here on no log line,
        # Rasa's own DEBUG ones included, carries a phone or account number.
        log_redaction.install()
        return cls(config, transcriber=load_transcriber((credentials or {}).get("transcriber")))

    def __init__(
        self,
        config: WhatsAppConfig,
        *,
        transcriber: Transcriber | None = None,
        database: Any = None,
        retry: RetryPolicy | None = None,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.config = config
        self.transcriber: Transcriber = transcriber or NoTranscriber()
        self.client = GraphApiClient(
            config.api_url, config.phone_number_id, config.api_token, retry=retry, timeout=timeout
        )
        self._database = database
        self._store: WhatsAppStore | None = None
        self._store_lock: asyncio.Lock | None = None
        self._lanes = SenderLanes(describe=self.describe_user)
        self._side_calls = SideCalls(self._lanes)
        self.rate_limiter = rate_limiter or RateLimiter(config.rate_limit)
        if not self.rate_limiter.config.enabled:
            logger.warning("WhatsApp per-user rate limit is off (RATE_LIMIT_MESSAGES=0)")
        if config.uses_development_salt:
            logger.warning("USER_ID_SALT is unset: user keys in logs and records use the development salt")

    def describe_user(self, sender: str) -> str:
        """How a user appears in logs: a prefix of their user_key hash, never the number."""
        try:
            return f"user {user_key(sender, self.config.user_id_salt)[:12]}"
        except ValueError:
            return "an unknown user"

    def get_output_channel(self) -> WhatsAppOutput:
        return WhatsAppOutput(self.client, self.describe_user, self.config.charts)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = WebhookBlueprint("whatsapp_webhook", __name__)
        on_new_message = with_request_id(on_new_message)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            challenge = verification_challenge(request.args, self.config.verify_token)
            if challenge is None:
                logger.warning("WhatsApp webhook verification refused (wrong token or mode, or no challenge)")
                return response.text("Forbidden", status=403)
            logger.info("WhatsApp webhook verified by Meta")
            return response.text(challenge)

        @webhook.route("/charts/<name:str>", methods=["GET"])
        async def chart(_: Request, name: str) -> HTTPResponse:
            """A spending chart, for Meta to fetch when its upload failed; only names the store makes."""
            png = await read_chart(self.config.charts, name)
            if png is None:
                return response.text("Not found", status=404, headers={"Cache-Control": "no-store"})
            return response.raw(png, content_type=CHART_MIME_TYPE, headers={"Cache-Control": "no-store"})

        @webhook.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request) -> HTTPResponse:
            body = await read_body(request, MAX_WEBHOOK_BYTES)
            if body is None:
                logger.warning("WhatsApp webhook POST over %d bytes refused unread", MAX_WEBHOOK_BYTES)
                return response.json({"status": "rejected"}, status=413)
            status = self.accept(body, request.headers.get(SIGNATURE_HEADER), on_new_message)
            return response.json({"status": "ok" if status == 200 else "rejected"}, status=status)

        from connectors.bank_webhooks import register_bank_webhooks  # Mono and Plaid: /bank/<provider>

        register_bank_webhooks(webhook, self)

        @webhook.listener("before_server_start")
        async def redact_late_handlers(*_: Any) -> None:
            """Sanic adds its own log handlers when it starts ("<Request: ...> body not consumed"
            quotes the path): they get the number redaction too."""
            log_redaction.install()

        @webhook.listener("before_server_start")
        async def refuse_side_doors(app: Any, *_: Any) -> None:
            """In production nothing else of this server may take a sender id on trust."""
            if environment_from_env() != "production":
                return
            problems = exposure_problems((route.path for route in app.router.routes), sys.argv)
            if problems:
                raise ConfigError("refusing to start in production: " + "; ".join(problems))

        @webhook.listener("after_server_start")
        async def compare_model_with_domain(app: Any, *_: Any) -> None:
            """Rasa has loaded the model by now: its responses must be domain/'s (production refuses)."""
            agent = getattr(app.ctx, "agent", None)
            domain = getattr(agent, "domain", None)
            check_model_domain(getattr(domain, "responses", None), environment_from_env() == "production")

        @webhook.listener("after_server_stop")
        async def close(*_: Any) -> None:
            await self.aclose()

        return webhook

    def accept(
        self, body: bytes, signature: str | None, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> int:
        """Check, read and queue one webhook delivery; the HTTP status to answer.

        Synchronous on purpose: nothing can interleave between reading a delivery
        and queueing its messages, so queue order is arrival order.
        """
        if len(body) > MAX_WEBHOOK_BYTES:  # an HMAC over an attacker's megabytes is work we need not do
            logger.warning("WhatsApp webhook POST of %d bytes refused: over %d", len(body), MAX_WEBHOOK_BYTES)
            return 413
        if signature is None:
            logger.warning("WhatsApp webhook POST without %s refused", SIGNATURE_HEADER)
            return 401
        if not is_valid_signature(self.config.app_secret, body, signature):
            logger.warning("WhatsApp webhook POST with a wrong %s refused", SIGNATURE_HEADER)
            return 403
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            logger.warning("WhatsApp webhook POST with a body that is not JSON (%d bytes) ignored", len(body))
            return 400
        try:
            batch = parse_webhook(payload)
        except UnexpectedPayload as exc:
            logger.warning("WhatsApp webhook POST of an unexpected shape ignored: %s", exc)
            return 200
        self._queue(batch, on_new_message)
        return 200

    def _queue(self, batch: WebhookBatch, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        for problem in batch.problems:
            logger.warning("Skipped part of a WhatsApp webhook: %s", problem)
        statuses = [status for status in batch.statuses if self._is_ours(status.phone_number_id)]
        if statuses:
            self._lanes.spawn(self._record_statuses(statuses))
        for message in batch.messages:
            if not self._is_ours(message.phone_number_id):
                continue
            try:
                key = user_key(message.sender, self.config.user_id_salt)
            except ValueError:
                logger.warning("Skipped a WhatsApp message whose sender id is not a usable number")
                continue
            # Counted here, in arrival order, so a burst is judged by when it came, not by how fast Rasa is.
            verdict = self.rate_limiter.check(key, message.message_id)

            async def job(message: InboundMessage = message, verdict: Verdict = verdict) -> None:
                await self._process(message, on_new_message, verdict)

            self._lanes.submit(message.sender, job)

    def _is_ours(self, phone_number_id: str | None) -> bool:
        if phone_number_id is None or phone_number_id == self.config.phone_number_id:
            return True
        logger.warning("Ignored a WhatsApp webhook item for another business phone number")
        return False

    async def _process(self, message: InboundMessage, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                       verdict: Verdict = Verdict.ALLOW) -> None:
        who = self.describe_user(message.sender)
        store = await self._get_store()
        if not await store.claim(message):
            logger.info("Duplicate WhatsApp message %s from %s ignored", _reference(message.message_id), who)
            return
        if verdict is not Verdict.ALLOW:
            await self._rate_limited(message, verdict)
            return
        logger.info("WhatsApp %s message %s from %s", message.kind, _reference(message.message_id), who)
        output = self.get_output_channel()
        self._side_calls.submit("read receipt", lambda: self._mark_read(message, output))
        await asyncio.sleep(0)  # the receipt's request starts first; its answer is not waited for
        if message.handling == FOR_RASA and message.text is not None:
            await self._hand_to_rasa(message, message.text, output, on_new_message)
        elif message.handling == VOICE:
            await self._handle_voice(message, output, on_new_message)
        else:
            await output.send_text_message(message.sender, unsupported_reply(message.kind))

    async def _mark_read(self, message: InboundMessage, output: WhatsAppOutput) -> None:
        """Blue ticks, with the typing indicator unless the answer already went (it would outlast it)."""
        try:
            await self.client.mark_read(message.message_id, typing=not output.replied)
        except WhatsAppApiError:
            logger.info("Read receipt for %s not sent; the message is handled anyway",
                        self.describe_user(message.sender))

    async def _rate_limited(self, message: InboundMessage, verdict: Verdict) -> None:
        """Drop a message over the user's limit (it stays claimed, so a redelivery is dropped too)."""
        who = self.describe_user(message.sender)
        limit = self.rate_limiter.config
        if verdict is Verdict.NOTIFY:
            logger.warning(
                "WhatsApp message %s from %s rate-limited: over %d messages in %g s; told to wait, "
                "further messages are dropped until the window has room",
                _reference(message.message_id), who, limit.messages, limit.window_seconds,
            )
            await self.get_output_channel().send_text_message(message.sender, rate_limited_reply(limit.window_seconds))
        else:
            logger.info("WhatsApp message %s from %s rate-limited and dropped", _reference(message.message_id), who)

    async def _handle_voice(
        self,
        message: InboundMessage,
        output: WhatsAppOutput,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ) -> None:
        who = self.describe_user(message.sender)
        transcript: Transcript | None = None
        try:
            media = await self.client.download_media(message.media_id or "")
            transcript = await self.transcriber.transcribe(media.content, media.mime_type)
        except WhatsAppApiError:
            logger.warning("Voice note from %s could not be downloaded", who)
        except Exception as exc:  # a transcriber's failure must not cost the user an answer
            logger.error("Transcribing a voice note from %s failed (%s)", who, type(exc).__name__, exc_info=exc)
        text = transcript.text.strip() if transcript is not None and isinstance(transcript.text, str) else ""
        if not text:
            await output.send_text_message(message.sender, VOICE_NOT_SUPPORTED)
            return
        low_confidence = bool(getattr(transcript, "low_confidence", False))
        if low_confidence:
            await output.send_text_message(message.sender, heard_message(text, getattr(transcript, "language", None)))
        await self._hand_to_rasa(
            message, text, output, on_new_message, transcribed=True, low_confidence=low_confidence
        )

    async def _hand_to_rasa(
        self,
        message: InboundMessage,
        text: str,
        output: WhatsAppOutput,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        *,
        transcribed: bool = False,
        low_confidence: bool = False,
    ) -> None:
        metadata = {
            "whatsapp": {
                "message_id": message.message_id,
                "type": message.kind,
                "timestamp": message.timestamp,
                "reply_to": message.reply_to,
                "transcribed": transcribed,
                "low_confidence": low_confidence,
            }
        }
        user_message = UserMessage(
            text,
            output,
            message.sender,
            input_channel=self.name(),
            message_id=message.message_id,
            metadata=metadata,
        )
        try:
            await on_new_message(user_message)
        except Exception as exc:
            logger.error(
                "Rasa failed on a WhatsApp message from %s (%s)",
                self.describe_user(message.sender),
                type(exc).__name__,
                exc_info=exc,
            )
            await output.send_text_message(message.sender, SOMETHING_WENT_WRONG)

    async def _record_statuses(self, statuses: list[StatusUpdate]) -> None:
        store = await self._get_store()
        for status in statuses:
            who = self.describe_user(status.recipient) if status.recipient else "a user"
            codes = [error.code for error in status.errors]
            if REENGAGEMENT_REQUIRED in codes:
                logger.warning(
                    "A WhatsApp message to %s failed (code %s): the 24-hour customer service window is closed; "
                    "a re-engagement template message is required",
                    who,
                    REENGAGEMENT_REQUIRED,
                )
            elif status.status == "failed":
                titles = "; ".join(redact(error.title or "no title") for error in status.errors) or "no details"
                logger.warning("A WhatsApp message to %s failed (codes %s): %s", who, codes, titles)
            else:
                logger.debug("A WhatsApp message to %s is %s", who, status.status)
            try:
                await store.record_status(status)
            except (ValueError, OverflowError, OSError) as exc:  # e.g. a timestamp no datetime can hold
                logger.warning("A WhatsApp delivery status for %s could not be stored (%s)", who, type(exc).__name__)

    async def _get_store(self) -> WhatsAppStore:
        if self._store is not None:
            return self._store
        if self._store_lock is None:
            self._store_lock = asyncio.Lock()
        async with self._store_lock:
            if self._store is None:
                database = self._database
                if database is None:  # building a client may resolve DNS: keep it off the loop
                    database = await asyncio.get_running_loop().run_in_executor(None, _connect, self.config)
                store = WhatsAppStore(database, self.config.user_id_salt)
                try:
                    await store.ensure_indexes()
                except Exception as exc:
                    logger.error("Could not create the WhatsApp collections' indexes (%s)", type(exc).__name__)
                self._store = store
        return self._store

    async def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued message and status is handled; False if ``timeout`` ran out."""
        return await self._lanes.join(timeout)

    async def aclose(self) -> None:
        """Finish (or, after a grace period, cancel) background work and close the HTTP session."""
        if not await self._lanes.join(SHUTDOWN_GRACE_SECONDS):
            logger.warning("WhatsApp work still running at shutdown was cancelled")
            await self._lanes.cancel()
        await self.client.close()


def _connect(config: WhatsAppConfig) -> Any:
    """The banking database (MONGODB_URI), or an in-memory one when it is unset or unusable."""
    from pymongo.errors import PyMongoError

    from banking.config import Settings
    from banking.store import connect_database, in_memory_database

    try:
        return connect_database(Settings(mongodb_uri=config.mongodb_uri, user_id_salt=config.user_id_salt))
    except PyMongoError as exc:
        logger.error("MONGODB_URI is unusable (%s); WhatsApp deduplication uses an in-memory database",
                     type(exc).__name__)
        return in_memory_database()


def load_transcriber(path: Any) -> Transcriber | None:
    """An instance of the class at dotted ``path`` (built with ``from_env()`` if it has one)."""
    if not path:
        return None
    if not isinstance(path, str):
        raise WhatsAppConfigError("credentials.yml 'transcriber' must be a dotted class path")
    from rasa.shared.utils.common import class_from_module_path

    try:
        transcriber_class = class_from_module_path(path)
    except (ImportError, AttributeError) as exc:
        raise WhatsAppConfigError(f"transcriber {path!r} cannot be imported") from exc
    factory = getattr(transcriber_class, "from_env", None)
    instance = factory() if callable(factory) else transcriber_class()
    if not isinstance(instance, Transcriber) or not inspect.iscoroutinefunction(instance.transcribe):
        raise WhatsAppConfigError(f"transcriber {path!r} has no async transcribe(audio, mime_type) method")
    return instance
