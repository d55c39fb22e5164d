"""Provider webhooks, from raw request to "tell this customer": verified before parsing, handled once.

The channel's server (connectors.bank_webhooks) hands each POST here with its raw body
and headers and gets back the HTTP status to answer and, at most, one Delivery: which
conversation to send which external intent. Nothing here knows Rasa or Sanic.

    401  no signature header          403  a wrong one          400  verified, but not JSON
    200  handled, ignored, or a retry of a delivery already handled (providers retry until 2xx)
    503  our database failed: nothing was recorded, so the provider's retry is handled afresh
    500  anything else failed: not recorded either
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pymongo.errors import PyMongoError

from banking.errors import BankingError
from banking.linking import Delivery
from banking.mono import SECRET_HEADER, MonoEvent, MonoProvider, event_key, is_valid_mono_secret, parse_mono_event
from banking.service import BankingService

logger = logging.getLogger(__name__)

UPDATED_INTENT = "EXTERNAL_bank_updated"
PAYMENT_INTENT = "EXTERNAL_payment_updated"


@dataclass(frozen=True)
class WebhookResult:
    status: int
    delivery: Delivery | None = None


class ProviderWebhooks:
    """Turns verified provider webhooks into deliveries for the service's provider."""

    def __init__(self, service: BankingService) -> None:
        self._service = service

    @property
    def provider(self) -> Any:
        return self._service.provider

    def handle(self, provider: str, body: bytes, headers: Mapping[str, str]) -> WebhookResult:
        """One webhook POST for ``provider`` ("mono" or "plaid"): check, parse, record once, deliver."""
        if provider != self._service.provider_name:
            return WebhookResult(404)
        if provider == "mono":
            return self._mono(body, headers.get(SECRET_HEADER))
        if provider == "plaid":
            return self._plaid(body, headers)
        return WebhookResult(404)

    # ----------------------------------------------------------------- Mono

    def _mono(self, body: bytes, secret: str | None) -> WebhookResult:
        mono: MonoProvider = self.provider
        if secret is None:
            logger.warning("Mono webhook without %s refused", SECRET_HEADER)
            return WebhookResult(401)
        if not is_valid_mono_secret(mono.config.webhook_secret, secret):
            logger.warning("Mono webhook with a wrong %s refused", SECRET_HEADER)
            return WebhookResult(403)
        payload = _json(body)
        if payload is None:
            return WebhookResult(400)
        event = parse_mono_event(payload)
        return self._once("mono", event_key(payload, body), lambda: self._mono_delivery(event))

    def _mono_delivery(self, event: MonoEvent) -> Delivery | None:
        links = self._service.links
        if event.kind == "connected" and event.reference and event.account_id:
            return links.authorise("mono", reference=event.reference, credential=event.account_id,
                                   data_status=event.data_status)
        if event.kind in ("updated", "reauth_required") and event.account_id:
            user = self._service.user_for_provider_key(event.account_id)
            if user is None:
                logger.info("a Mono %s webhook for an account no customer has linked; ignored", event.kind)
                return None
            news = _mono_news(event)
            return None if news is None else links.delivery_for_user(user, "mono", UPDATED_INTENT,
                                                                     {"bank_event": news})
        if event.kind == "payment" and event.reference:
            return self._payment_delivery(event)
        logger.info("Mono webhook %s needs nothing from us", event.event or "of no event")
        return None

    def _payment_delivery(self, event: MonoEvent) -> Delivery | None:
        """A DirectPay payment's news goes to its customer's conversation; what it says is not trusted:
        the action the rule runs asks Mono (verify by reference) before the customer is told anything."""
        user = self._service.payment_owner(event.reference or "")
        if user is None:
            logger.info("a Mono payment webhook for no payment of ours; ignored")
            return None
        return self._service.links.delivery_for_user(user, "mono", PAYMENT_INTENT,
                                                     {"payment_ref": event.reference or ""})

    # ----------------------------------------------------------------- Plaid

    def _plaid(self, body: bytes, headers: Mapping[str, str]) -> WebhookResult:
        from banking.plaid_provider import VERIFICATION_HEADER, PlaidEvent, parse_plaid_event

        header = headers.get(VERIFICATION_HEADER)
        if header is None:
            logger.warning("Plaid webhook without %s refused", VERIFICATION_HEADER)
            return WebhookResult(401)
        try:
            verified = self.provider.verify_webhook(body, header)
        except BankingError:
            logger.warning("Plaid webhook could not be verified now (the verification key is unavailable)")
            return WebhookResult(503)
        if not verified:
            logger.warning("Plaid webhook with a wrong %s refused", VERIFICATION_HEADER)
            return WebhookResult(403)
        payload = _json(body)
        if payload is None:
            return WebhookResult(400)
        event: PlaidEvent = parse_plaid_event(payload)
        return self._once("plaid", event.key, lambda: self._plaid_delivery(event))

    def _plaid_delivery(self, event: Any) -> Delivery | None:
        links = self._service.links
        if event.kind == "session_finished":
            if not event.public_token:
                logger.info("Plaid Link session ended without a bank linked (%s)", event.status or "no status")
                return None
            return links.authorise("plaid", handle=event.link_token, credential=event.public_token)
        if event.kind in ("login_required", "synced") and event.item_id:
            user = self._service.user_for_provider_key(event.item_id)
            if user is None:
                logger.info("a Plaid %s webhook for an item no customer has linked; ignored", event.kind)
                return None
            news = "reauth_required" if event.kind == "login_required" else "synced"
            return links.delivery_for_user(user, "plaid", UPDATED_INTENT, {"bank_event": news})
        return None

    # ----------------------------------------------------------------- shared

    def _once(self, provider: str, key: str, deliver: Any) -> WebhookResult:
        links = self._service.links
        try:
            if not links.first_delivery(provider, key):
                logger.info("%s webhook delivered again; already handled", provider)
                return WebhookResult(200)
            try:
                return WebhookResult(200, deliver())
            except Exception:  # not handled: forgotten, so the provider's retry is handled afresh
                links.forget_delivery(provider, key)
                raise
        except (PyMongoError, BankingError) as error:
            logger.error("%s webhook could not be recorded (%s); the provider will retry", provider,
                         type(error).__name__)
            return WebhookResult(503)
        except Exception as error:
            logger.error("%s webhook failed unexpectedly (%s); not recorded, the provider will retry", provider,
                         type(error).__name__)  # no traceback: its values could be the customer's
            return WebhookResult(500)


def _mono_news(event: MonoEvent) -> str | None:
    if event.kind == "reauth_required":
        return "reauth_required"
    if event.data_status == "AVAILABLE":
        return "synced"
    if event.data_status in ("FAILED", "UNAVAILABLE"):
        return "sync_failed"
    return None  # still processing: the customer was told it is syncing


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        logger.warning("provider webhook with a body that is not JSON (%d bytes) ignored", len(body))
        return None
