"""Plaid (US and Europe), through the official plaid-python: Hosted Link, balances, transactions.

Read-only: Plaid accounts show balances and history; money never moves from them in chat.
Endpoints used (host from PLAID_ENV, or PLAID_BASE_URL for a local fake)::

    /link/token/create                   hosted_link -> hosted_link_url; with access_token: update mode
    /item/public_token/exchange          the SESSION_FINISHED webhook's public token -> access_token
    /accounts/balance/get                balances in the account's iso_currency_code
    /transactions/sync                   cursor pages (has_more); restarted from the first cursor on
                                         TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION
    /item/remove                         on disconnect
    /webhook_verification_key/get        the ES256 key (by the JWT's kid) that signs Plaid-Verification

Responses are read as JSON (``_preload_content=False``) so a field Plaid adds later never
breaks us; requests, authentication and the host stay the SDK's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import jwt
import plaid
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from plaid.api import plaid_api

from banking.config import bank_link_redirect_url_from_env
from banking.crypto import secret_weakness
from banking.errors import ConfigError
from banking.hosted import LinkedAccount, LinkPage, LinkResult, ProviderError, ProviderTransaction
from banking.provider_categories import from_plaid

logger = logging.getLogger(__name__)

VERIFICATION_HEADER = "plaid-verification"
MAX_WEBHOOK_AGE_SECONDS = 5 * 60
HOSTS = {"sandbox": plaid.Environment.Sandbox, "production": plaid.Environment.Production}
COUNTRY_CODES = ("US", "GB", "IE", "FR", "ES", "NL", "DE")
MAX_SYNC_PAGES = 100
MAX_SYNC_RESTARTS = 3
REQUIRED_SETTINGS = ("PLAID_CLIENT_ID", "PLAID_SECRET", "PLAID_WEBHOOK_URL")
MIN_SECRET_LENGTH = 24  # Plaid's secrets are 30 characters
# A Plaid-Verification header is a compact JWS (three base64url parts) naming its key by kid.
MAX_JWT_LENGTH = 4096
JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,1024}\.[A-Za-z0-9_-]{1,2048}\.[A-Za-z0-9_-]{1,1024}")
KID_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,128}")
CLOCK_SKEW_SECONDS = 30
# Verification keys: a known key is asked for again after KEY_REFRESH_SECONDS (Plaid may have
# expired it since); a kid Plaid does not know is not asked about again for UNKNOWN_KID_SECONDS;
# fetches of keys not in the cache are rate limited (a token bucket), so forged webhooks naming
# random kids cannot make us call Plaid once per request.
KEY_REFRESH_SECONDS = 15 * 60
UNKNOWN_KID_SECONDS = 10 * 60
MAX_UNKNOWN_KIDS = 4096
KEY_FETCH_BURST = 5
KEY_FETCHES_PER_MINUTE = 10
KEY_FETCH_WAIT_SECONDS = 20.0


@dataclass(frozen=True)
class PlaidConfig:
    client_id: str
    secret: str = field(repr=False)
    env: str
    host: str
    webhook_url: str
    completion_url: str | None = None
    client_name: str = "Example Bank Assistant"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, *, production: bool = False) -> PlaidConfig:
        values = _settings(environ)
        missing = [name for name in REQUIRED_SETTINGS if not values[name]]
        if missing:
            raise ConfigError(f"BANK_PROVIDER=plaid needs {', '.join(missing)}")
        env = (values["PLAID_ENV"] or "sandbox").lower()
        if env not in HOSTS:
            raise ConfigError(f"PLAID_ENV={env!r} is unknown; use sandbox or production")
        problems = setting_problems(environ, production=production)
        if problems:
            raise ConfigError("refusing to start in production: " + "; ".join(problems))
        return cls(client_id=values["PLAID_CLIENT_ID"], secret=values["PLAID_SECRET"], env=env,
                   host=(values["PLAID_BASE_URL"] or HOSTS[env]).rstrip("/"), webhook_url=values["PLAID_WEBHOOK_URL"],
                   completion_url=values["BANK_LINK_REDIRECT_URL"] or None)


def setting_problems(environ: Mapping[str, str] = os.environ, *, production: bool = False) -> list[str]:
    """Every missing or unknown setting, and in production every unsafe one; values never quoted."""
    from banking.mono import is_https_url

    values = _settings(environ)
    problems = [f"{name} is missing" for name in REQUIRED_SETTINGS if not values[name]]
    env = (values["PLAID_ENV"] or "sandbox").lower()
    if env not in HOSTS:
        problems.append("PLAID_ENV is neither sandbox nor production")
    if not production:
        return problems
    if env in HOSTS and env != "production":
        problems.append("PLAID_ENV is not production")
    if values["PLAID_BASE_URL"]:
        problems.append("PLAID_BASE_URL overrides Plaid's host")
    weakness = values["PLAID_SECRET"] and secret_weakness(values["PLAID_SECRET"], MIN_SECRET_LENGTH)
    if weakness:
        problems.append(f"PLAID_SECRET {weakness}")
    for name in ("PLAID_WEBHOOK_URL", "BANK_LINK_REDIRECT_URL"):
        if values[name] and not is_https_url(values[name]):
            problems.append(f"{name} is not an https URL")
    return problems


def _settings(environ: Mapping[str, str]) -> dict[str, str]:
    values = {name: environ.get(name, "").strip() for name in
              ("PLAID_CLIENT_ID", "PLAID_SECRET", "PLAID_ENV", "PLAID_BASE_URL", "PLAID_WEBHOOK_URL")}
    return {**values, "BANK_LINK_REDIRECT_URL": bank_link_redirect_url_from_env(environ) or ""}


# --------------------------------------------------------------------- webhook verification


def verify_plaid_webhook(body: bytes, header: str | None, key_for: Callable[[str], Mapping[str, Any] | None],
                         now: float | None = None) -> bool:
    """Plaid's documented check: an ES256 JWT whose key (by ``kid``) Plaid gives us, issued within
    five minutes, whose ``request_body_sha256`` is the SHA-256 of this very body.

    Everything that can be checked without the key is checked first (shape, algorithm, kid,
    issue time, body hash), so a malformed or replayed-elsewhere token never costs a key fetch."""
    if not header or len(header) > MAX_JWT_LENGTH or not JWT_SHAPE.fullmatch(header):
        return False
    moment = time.time() if now is None else now
    try:
        unverified = jwt.get_unverified_header(header)
        unverified_claims = jwt.decode(header, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError):
        return False
    kid = unverified.get("kid")
    if unverified.get("alg") != "ES256" or not isinstance(kid, str) or not KID_SHAPE.fullmatch(kid):
        return False
    if not _fresh(unverified_claims, moment) or not _matches_body(unverified_claims, body):
        return False
    key = key_for(kid)
    if key is None or key_expired(key):
        return False
    try:
        public_key = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(dict(key)))
        if not isinstance(public_key, EllipticCurvePublicKey):  # a JWK with a private part is no verification key
            return False
        # leeway: PyJWT refuses an iat in the future itself; a clock a few seconds ahead of ours is fine
        claims = jwt.decode(header, public_key, algorithms=["ES256"], leeway=CLOCK_SKEW_SECONDS,
                            options={"verify_exp": False, "require": ["iat"]})
    except (jwt.PyJWTError, ValueError, TypeError):
        return False
    return _fresh(claims, moment) and _matches_body(claims, body)


def key_expired(key: Mapping[str, Any]) -> bool:
    """Plaid sets ``expired_at`` on a key it has retired; such a key verifies nothing."""
    return key.get("expired_at") is not None


def _fresh(claims: Any, moment: float) -> bool:
    issued = claims.get("iat") if isinstance(claims, dict) else None
    return (isinstance(issued, (int, float)) and not isinstance(issued, bool)
            and -CLOCK_SKEW_SECONDS <= moment - issued <= MAX_WEBHOOK_AGE_SECONDS)


def _matches_body(claims: Any, body: bytes) -> bool:
    claimed = claims.get("request_body_sha256") if isinstance(claims, dict) else None
    return isinstance(claimed, str) and hmac.compare_digest(claimed, hashlib.sha256(body).hexdigest())


class VerificationKeys:
    """Plaid's webhook verification keys by kid: cached, refreshed, fetched once at a time, rate limited.

    ``fetch(kid)`` asks Plaid (None: Plaid knows no such key; ProviderError: Plaid did not
    answer). Concurrent requests for one kid share one fetch; a kid Plaid refused is refused
    from memory for a while; fetches beyond the budget raise ProviderError("rate_limited"),
    which the webhook answers with 503 (a genuine Plaid delivery is retried)."""

    def __init__(self, fetch: Callable[[str], Mapping[str, Any] | None], *,
                 clock: Callable[[], float] = time.monotonic, refresh_after: float = KEY_REFRESH_SECONDS,
                 unknown_for: float = UNKNOWN_KID_SECONDS, burst: int = KEY_FETCH_BURST,
                 per_minute: float = KEY_FETCHES_PER_MINUTE, wait: float = KEY_FETCH_WAIT_SECONDS) -> None:
        self._fetch = fetch
        self._clock = clock
        self._refresh_after = refresh_after
        self._unknown_for = unknown_for
        self._burst = float(burst)
        self._rate = per_minute / 60.0
        self._wait = wait
        self._lock = threading.Lock()
        self._known: dict[str, tuple[float, dict[str, Any]]] = {}
        self._unknown: dict[str, float] = {}
        self._inflight: dict[str, threading.Event] = {}
        self._tokens = float(burst)
        self._filled_at = clock()

    def get(self, kid: str) -> Mapping[str, Any] | None:
        for _ in range(3):
            with self._lock:
                now = self._clock()
                known = self._known.get(kid)
                if known is not None and now - known[0] < self._refresh_after:
                    return known[1]
                refused_at = self._unknown.get(kid)
                if refused_at is not None and now - refused_at < self._unknown_for:
                    return None
                waiter = self._inflight.get(kid)
                if waiter is None:
                    if not self._take_token(now):
                        if known is not None:
                            return known[1]  # due a refresh, but still the key Plaid gave us
                        raise ProviderError("too many webhook verification key fetches", reason="rate_limited")
                    waiter = self._inflight[kid] = threading.Event()
                    leader = True
                else:
                    leader = False
            if not leader:
                waiter.wait(self._wait)
                continue
            try:
                key = self._fetch(kid)
            finally:
                with self._lock:
                    self._inflight.pop(kid, None)
                waiter.set()
            self._remember(kid, key)
            return key
        raise ProviderError("the webhook verification key is not available yet", reason="unavailable")

    def _remember(self, kid: str, key: Mapping[str, Any] | None) -> None:
        with self._lock:
            now = self._clock()
            if key is None:
                self._known.pop(kid, None)
                if len(self._unknown) >= MAX_UNKNOWN_KIDS:
                    self._unknown = {k: t for k, t in self._unknown.items() if now - t < self._unknown_for}
                    while len(self._unknown) >= MAX_UNKNOWN_KIDS:
                        self._unknown.pop(next(iter(self._unknown)))
                self._unknown[kid] = now
            else:
                self._known[kid] = (now, dict(key))
                self._unknown.pop(kid, None)

    def _take_token(self, now: float) -> bool:
        self._tokens = min(self._burst, self._tokens + (now - self._filled_at) * self._rate)
        self._filled_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


@dataclass(frozen=True)
class PlaidEvent:
    kind: str  # session_finished | login_required | synced | other
    key: str
    link_token: str | None = None
    public_token: str | None = None
    status: str | None = None
    item_id: str | None = None


def parse_plaid_event(payload: Any) -> PlaidEvent:
    """Reduce a verified Plaid webhook to what the assistant acts on."""
    if not isinstance(payload, dict):
        return PlaidEvent(kind="other", key="")
    kind, code = str(payload.get("webhook_type") or ""), str(payload.get("webhook_code") or "")
    item_id = payload.get("item_id") if isinstance(payload.get("item_id"), str) else None
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    if (kind, code) == ("LINK", "SESSION_FINISHED"):
        link_token, tokens = payload.get("link_token"), payload.get("public_tokens") or []
        if not isinstance(link_token, str) or not link_token or not isinstance(tokens, list):
            logger.warning("Plaid SESSION_FINISHED webhook of an unexpected shape; ignored")
            return PlaidEvent(kind="other", key=key, item_id=item_id)
        tokens = [t for t in tokens if isinstance(t, str)]
        status = str(payload.get("status") or "").lower()
        session = payload.get("link_session_id")
        return PlaidEvent(kind="session_finished", key=session if isinstance(session, str) and session else key,
                          link_token=link_token, status=status,
                          public_token=tokens[0] if tokens and status == "success" else None)
    error = payload["error"] if isinstance(payload.get("error"), dict) else {}
    if kind == "ITEM" and (code == "PENDING_EXPIRATION" or error.get("error_code") == "ITEM_LOGIN_REQUIRED"):
        return PlaidEvent(kind="login_required", key=key, item_id=item_id)
    if (kind, code) == ("TRANSACTIONS", "SYNC_UPDATES_AVAILABLE") and payload.get("historical_update_complete"):
        return PlaidEvent(kind="synced", key=key, item_id=item_id)
    return PlaidEvent(kind="other", key=key, item_id=item_id)


# --------------------------------------------------------------------- the provider


class PlaidProvider:
    """HostedLinkProvider for Plaid; blocking (plaid-python uses urllib3), called in worker threads."""

    name = "plaid"
    moves_money = False

    def __init__(self, config: PlaidConfig, *, timeout: float = 15.0) -> None:
        self.config = config
        configuration = plaid.Configuration(host=config.host,
                                            api_key={"clientId": config.client_id, "secret": config.secret})
        self._api = plaid_api.PlaidApi(plaid.ApiClient(configuration))
        self._timeout = timeout
        self._keys = VerificationKeys(self._fetch_verification_key)

    # ----------------------------------------------------------------- linking

    def start_link(self, reference: str, user: str, bank: str | None) -> LinkPage:
        return self._link_token(user, reference, access_token=None)

    def start_reauth(self, reference: str, token: str, user: str) -> LinkPage:
        return self._link_token(user, reference, access_token=token)

    def finish_link(self, credential: str) -> LinkResult:
        from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest

        exchanged = self._call("item_public_token_exchange", ItemPublicTokenExchangeRequest(public_token=credential))
        token = exchanged["access_token"]
        return LinkResult(token=token, accounts=self.accounts(token), data_ready=True, item_id=exchanged.get("item_id"))

    def accounts(self, token: str) -> tuple[LinkedAccount, ...]:
        from plaid.model.accounts_balance_get_request import AccountsBalanceGetRequest

        answer = self._call("accounts_balance_get", AccountsBalanceGetRequest(access_token=token))
        return tuple(_account(raw) for raw in answer.get("accounts") or []
                     if isinstance(raw, dict) and raw.get("type") == "depository")

    def transactions(self, token: str, since: datetime) -> list[ProviderTransaction]:
        """Every added transaction via /transactions/sync, restarting when Plaid's data changed mid-way."""
        from plaid.model.transactions_sync_request import TransactionsSyncRequest

        for _ in range(MAX_SYNC_RESTARTS):
            cursor: str | None = None
            added: list[dict[str, Any]] = []
            try:
                for _page in range(MAX_SYNC_PAGES):
                    request = (TransactionsSyncRequest(access_token=token, cursor=cursor) if cursor
                               else TransactionsSyncRequest(access_token=token))
                    page = self._call("transactions_sync", request)
                    added += [t for t in page.get("added") or [] if isinstance(t, dict)]
                    cursor = page.get("next_cursor")
                    if not page.get("has_more"):
                        break
            except ProviderError as error:
                if error.provider_code == "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION":
                    logger.info("Plaid transactions changed during pagination; syncing again from the start")
                    continue
                raise
            found = [t for t in (_transaction(raw) for raw in added) if t is not None]
            return [t for t in found if t.posted_at >= since]
        raise ProviderError("Plaid kept changing the transactions", reason="unavailable",
                            provider_code="TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION")

    def revoke(self, token: str) -> None:
        from plaid.model.item_remove_request import ItemRemoveRequest

        self._call("item_remove", ItemRemoveRequest(access_token=token))

    # ----------------------------------------------------------------- webhooks

    def verify_webhook(self, body: bytes, header: str) -> bool:
        return verify_plaid_webhook(body, header, self._keys.get)

    def _fetch_verification_key(self, kid: str) -> Mapping[str, Any] | None:
        from plaid.model.webhook_verification_key_get_request import WebhookVerificationKeyGetRequest

        try:
            key = self._call("webhook_verification_key_get", WebhookVerificationKeyGetRequest(key_id=kid)).get("key")
        except ProviderError as error:
            if error.reason == "refused":
                return None  # Plaid knows no such key: the JWT is not Plaid's
            raise
        return key if isinstance(key, dict) else None

    # ----------------------------------------------------------------- internals

    def _link_token(self, user: str, reference: str, access_token: str | None) -> LinkPage:
        from plaid.model.country_code import CountryCode
        from plaid.model.link_token_create_hosted_link import LinkTokenCreateHostedLink
        from plaid.model.link_token_create_request import LinkTokenCreateRequest
        from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
        from plaid.model.products import Products

        page: dict[str, Any] = {"url_lifetime_seconds": 1800}
        if self.config.completion_url:
            page["completion_redirect_uri"] = self.config.completion_url
        hosted = LinkTokenCreateHostedLink(**page)
        options: dict[str, Any] = {
            "client_name": self.config.client_name, "language": "en",
            "country_codes": [CountryCode(code) for code in COUNTRY_CODES],
            "user": LinkTokenCreateRequestUser(client_user_id=user[:32]),
            "webhook": self.config.webhook_url, "hosted_link": hosted, "client_id": self.config.client_id,
        }
        if access_token:
            options["access_token"] = access_token
        else:
            options["products"] = [Products("transactions")]
        answer = self._call("link_token_create", LinkTokenCreateRequest(**options))
        url = answer.get("hosted_link_url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ProviderError("Plaid did not return a page for the customer", reason="unavailable")
        return LinkPage(url=url, handle=answer.get("link_token"))

    def _call(self, method: str, request: Any) -> dict[str, Any]:
        try:
            response = getattr(self._api, method)(request, _preload_content=False, _request_timeout=self._timeout)
        except plaid.ApiException as error:
            raise _plaid_error(error) from None
        except Exception as error:  # urllib3's timeouts and connection errors
            logger.warning("Plaid %s failed: %s", method, type(error).__name__)
            raise ProviderError("Plaid could not be reached", reason="unavailable") from None
        try:
            answer = json.loads(response.data)
        except ValueError:
            raise ProviderError("Plaid answered with something that is not JSON", reason="unavailable") from None
        if not isinstance(answer, dict):
            raise ProviderError("Plaid answered with an unexpected shape", reason="unavailable")
        return answer


def _plaid_error(error: Any) -> ProviderError:
    try:
        body = json.loads(error.body or b"{}")
    except (ValueError, TypeError):
        body = {}
    code = str(body.get("error_code") or f"http_{error.status}") if isinstance(body, dict) else f"http_{error.status}"
    kind = str(body.get("error_type") or "") if isinstance(body, dict) else ""
    logger.warning("Plaid refused a request: %s %s", kind or "error", code)
    if error.status == 429 or kind == "RATE_LIMIT_EXCEEDED":
        return ProviderError("Plaid is rate limiting us", reason="rate_limited", provider_code=code)
    if code in ("ITEM_LOGIN_REQUIRED", "PENDING_EXPIRATION"):
        return ProviderError("the bank needs the customer to log in again", reason="login_required",
                             provider_code=code)
    if (error.status or 500) >= 500 or kind in ("API_ERROR", "INSTITUTION_ERROR"):
        return ProviderError("Plaid is not answering", reason="unavailable", provider_code=code)
    return ProviderError("Plaid refused the request", reason="refused", provider_code=code)


# Depository subtypes that hold savings (Plaid's sandbox has Plaid Saving, Plaid CD and Plaid Money
# Market); the rest (checking, prepaid, paypal, cash management) are what money is spent from.
SAVINGS_SUBTYPES = frozenset({"savings", "cd", "money market", "hsa"})


def _minor(amount: Any) -> int:
    """Plaid amounts are decimal units; minor units without float drift."""
    return int(round(float(amount) * 100))


def _account(raw: dict[str, Any]) -> LinkedAccount:
    balances = raw.get("balances") or {}
    current = balances.get("available") if balances.get("available") is not None else balances.get("current")
    subtype = str(raw.get("subtype") or "")
    return LinkedAccount(
        provider_id=str(raw.get("account_id")), type="savings" if subtype in SAVINGS_SUBTYPES else "checking",
        name=str(raw.get("name") or subtype.title() or "Account")[:40], mask="******" + str(raw.get("mask") or "")[-4:],
        balance_minor=_minor(current or 0),
        currency=str(balances.get("iso_currency_code") or balances.get("unofficial_currency_code") or "USD").upper(),
    )


def _transaction(raw: dict[str, Any]) -> ProviderTransaction | None:
    amount = raw.get("amount")
    if not isinstance(amount, (int, float)) or amount == 0 or raw.get("pending"):
        return None
    try:
        day = date.fromisoformat(str(raw.get("date")))
    except ValueError:
        return None
    direction = "debit" if amount > 0 else "credit"  # Plaid: positive is money leaving the account
    category = raw.get("personal_finance_category") or {}
    name = str(raw.get("merchant_name") or raw.get("name") or "")
    return ProviderTransaction(
        provider_id=str(raw.get("transaction_id") or ""), account_id=str(raw.get("account_id") or ""),
        posted_at=datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc), amount_minor=abs(_minor(amount)),
        direction=direction, category=from_plaid(category.get("primary"), category.get("detailed"), direction),
        merchant=name[:60], narration=str(raw.get("name") or name), currency=str(raw.get("iso_currency_code") or "USD"),
    )
