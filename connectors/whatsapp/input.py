"""Meta's webhook into Rasa (``WhatsAppInput``): verify, read, queue, hand over.

A POST is checked against ``X-Hub-Signature-256`` before anything is parsed (a body
over Meta's 3 MB maximum is refused with 413 before its signature is computed),
answered at once, and handled in the background: deduplicated by message id in
MongoDB, one user's messages in arrival order, different users side by side.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from assistant_llm.transcriber import Transcript
from banking import log_redaction
from banking.config import ConfigError, environment_from_env
from banking.identity import user_key
from connectors.health import register_health
from connectors.rasa_server import exposure_problems
from connectors.request_ids import send_request_ids, with_request_id
from connectors.sanic_guard import guard_app
from connectors.whatsapp.body import MAX_WEBHOOK_BYTES, read_body
from connectors.whatsapp.charts import CHART_MIME_TYPE, read_chart
from connectors.whatsapp.config import WhatsAppConfig
from connectors.whatsapp.graph import (
    DEFAULT_TIMEOUT,
    REENGAGEMENT_REQUIRED,
    GraphApiClient,
    RetryPolicy,
    WhatsAppApiError,
    redact,
)
from connectors.whatsapp.inbound import (
    FOR_RASA,
    VOICE,
    InboundMessage,
    StatusUpdate,
    UnexpectedPayload,
    WebhookBatch,
    parse_webhook,
)
from connectors.whatsapp.lanes import SenderLanes, SideCalls
from connectors.whatsapp.model_domain import check_model_domain
from connectors.whatsapp.output import WhatsAppOutput
from connectors.whatsapp.ratelimit import RateLimiter, Verdict
from connectors.whatsapp.signature import SIGNATURE_HEADER, is_valid_signature, verification_challenge
from connectors.whatsapp.store import WhatsAppStore
from connectors.whatsapp.texts import ENGLISH, LANGUAGES, heard, rate_limited, say, unsupported
from connectors.whatsapp.transcriber import NoTranscriber, Transcriber, load_transcriber

__all__ = ["WhatsAppInput"]

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0

class WebhookBlueprint(Blueprint):
    """The channel's routes; registering them also guards the whole server (every route, Rasa's
    own included) against a malformed Content-Length, the one place a channel reaches the app."""

    def register(self, app: Any, options: Any) -> None:
        super().register(app, options)
        guard_app(app)
        register_health(app)  # GET /health for operators (connectors/health.py)
        send_request_ids()  # one request id per message, through Rasa to the action server

def _reference(message_id: str) -> str:
    """A log-safe handle on a message id (a wamid encodes the sender's phone number)."""
    return hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:10]
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
        self._app: Any = None  # the server, once started
        if not self.rate_limiter.config.enabled:
            logger.warning("WhatsApp per-user rate limit is off (RATE_LIMIT_MESSAGES=0)")
        if config.uses_development_salt:
            logger.warning("USER_ID_SALT is unset: user keys in logs and records use the development salt")

    async def language_of(self, sender: str) -> str:
        """The conversation's ``language`` slot, for the channel's own replies (connectors/whatsapp/texts.py).

        Read only when the channel speaks for itself, which is rare; English when there is no
        conversation yet or its tracker cannot be read.
        """
        agent = getattr(getattr(self._app, "ctx", None), "agent", None)
        tracker_store = getattr(agent, "tracker_store", None)
        if tracker_store is None:
            return ENGLISH
        try:
            tracker = await tracker_store.retrieve(sender)
        except Exception as exc:  # the reply matters more than its language
            logger.warning("The language of %s could not be read (%s); answering in English",
                           self.describe_user(sender), type(exc).__name__)
            return ENGLISH
        language = tracker.get_slot("language") if tracker is not None else None
        return language if isinstance(language, str) and language in LANGUAGES else ENGLISH

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
            self._app = app  # its agent reads the conversation's language (language_of)
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
            language = await self.language_of(message.sender)
            await output.send_text_message(message.sender, unsupported(message.kind, language))

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
            reply = rate_limited(limit.window_seconds, await self.language_of(message.sender))
            await self.get_output_channel().send_text_message(message.sender, reply)
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
            language = await self.language_of(message.sender)
            await output.send_text_message(message.sender, say("voice_not_understood", language))
            return
        low_confidence = bool(getattr(transcript, "low_confidence", False))
        if low_confidence:
            await output.send_text_message(message.sender, heard(text, getattr(transcript, "language", None)))
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
            language = await self.language_of(message.sender)
            await output.send_text_message(message.sender, say("something_went_wrong", language))

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
