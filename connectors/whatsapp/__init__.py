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
once, and is never waited for (``lanes.SideCalls``). A user who sends faster than
RATE_LIMIT_MESSAGES per RATE_LIMIT_WINDOW_SECONDS is told once to slow down and the
excess is dropped (``ratelimit``). A spending chart the action server wrote under
CHART_DIR is uploaded to Meta and sent by media id; if the upload fails it goes by its
CHART_BASE_URL link, which ``/webhooks/whatsapp/charts/<name>`` serves (``charts``).
With ENVIRONMENT=production the channel refuses to start on missing or default
secrets (banking.crypto.require_production_secrets).

The parts, in the order a message meets them::

    config        WhatsAppConfig: every setting, read once, failing fast
    body          read_body: a webhook's body with Meta's 3 MB cap
    signature     is_valid_signature, verification_challenge: is this Meta?
    inbound       webhook JSON -> InboundMessage / StatusUpdate (pure)
    input         WhatsAppInput: the routes; dedup, per-user order, hand to Rasa
    lanes         per-user ordering of background work, bounded side calls
    ratelimit     per-user message rate limit
    store         MongoDB deduplication and delivery statuses
    transcriber   the speech-to-text protocol voice notes go through
    output        WhatsAppOutput: Rasa's responses out
    outbound      Rasa response -> Graph API message bodies (pure)
    graph         the Graph API HTTP client (timeouts, retries)
    charts        spending charts: upload, or serve by link
    model_domain  the model's responses against domain/; unfilled placeholders
    texts         what the channel itself says, in English and Pidgin (a designer edits it)

Nothing happens at import time: the Graph API session and the database are made
on first use. Logs never carry a phone number, a message id or a message text;
users appear as a short prefix of their ``user_key`` hash. Every part logs under
``connectors.whatsapp``.

    WhatsAppConfigError(ConfigError)  a missing or unusable setting, raised at start-up
    WhatsAppApiError                  a Graph API call failed (see ``graph``)
"""

from connectors.whatsapp.body import MAX_WEBHOOK_BYTES, read_body
from connectors.whatsapp.config import DEFAULT_API_URL, WhatsAppConfig, WhatsAppConfigError
from connectors.whatsapp.graph import WhatsAppApiError
from connectors.whatsapp.input import WhatsAppInput
from connectors.whatsapp.output import WhatsAppOutput
from connectors.whatsapp.ratelimit import RateLimitConfig
from connectors.whatsapp.signature import is_valid_signature, verification_challenge
from connectors.whatsapp.transcriber import NoTranscriber, Transcriber, Transcript, load_transcriber

__all__ = [
    "DEFAULT_API_URL",
    "MAX_WEBHOOK_BYTES",
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
    "load_transcriber",
    "read_body",
    "verification_challenge",
]
