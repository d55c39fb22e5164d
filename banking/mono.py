"""Mono (Nigeria): accounts linked on Mono's hosted page, read over Mono's v2 API.

Mono has no official Python SDK; this is a small client on httpx (already pinned, as
Groq's transport), synchronous because the banking core runs in worker threads.
Endpoints used (base ``MONO_BASE_URL``, header ``mono-sec-key``)::

    POST /v2/accounts/initiate          {customer, meta: {ref}, scope: "auth", redirect_url} -> data.mono_url
                                        {account, meta: {ref}, scope: "reauth", redirect_url} -> data.mono_url
    GET  /v2/accounts/{id}              data.account (type, balance, currency, institution), data.meta.data_status
    GET  /v2/accounts/{id}/balance      data.balance, data.currency           (x-real-time: true for a fresh pull)
    GET  /v2/accounts/{id}/transactions data[], meta.next                      (paginated; x-real-time)
    POST /v2/accounts/{id}/unlink
    POST /v2/payments/initiate          {amount (kobo), type: "onetime-debit", method: "account", account,
                                         reference, description, redirect_url, customer} -> data.mono_url
    GET  /v2/payments/verify/{reference} data.status: successful | failed | pending | abandoned | ...
    POST /v3/lookup/account-number      {nip_code (6-digit NIP institution code), account_number} -> data.name

DirectPay's outcome arrives by webhook (``direct_debit.payment_successful``, ``_failed``,
``_cancelled``, ``_abandoned``; ``data.object.reference`` is ours) and is always checked
with ``GET /v2/payments/verify/{reference}`` before the customer is told.

Webhooks (``/webhooks/whatsapp/bank/mono``) carry the ``mono-webhook-secret`` header,
compared in constant time before the body is read (``is_valid_mono_secret``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx

from banking.catalog import nip_code
from banking.config import bank_link_redirect_url_from_env
from banking.crypto import secret_weakness
from banking.errors import ConfigError, NameEnquiryFailed
from banking.hosted import LinkedAccount, LinkPage, LinkResult, ProviderError, ProviderTransaction
from banking.money import mask_account_number
from banking.provider_categories import from_mono

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.withmono.com"
SECRET_HEADER = "mono-webhook-secret"
MONO_HOSTS = ("api.withmono.com",)
REQUIRED_SETTINGS = ("MONO_SECRET_KEY", "MONO_WEBHOOK_SECRET", "BANK_LINK_REDIRECT_URL")
TEST_KEY_PREFIXES = ("test_", "sk_test_")
MIN_WEBHOOK_SECRET_LENGTH = 32
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
MAX_PAGES = 50
HISTORY_DAYS = 90
SAVINGS_TYPES = ("SAVINGS", "DIGITAL_SAVINGS")
READY_STATUSES = ("AVAILABLE",)
# data_status values that say Mono gave up (anything else but READY_STATUSES: still fetching).
FAILED_STATUSES = ("FAILED", "UNAVAILABLE")


@dataclass(frozen=True)
class MonoConfig:
    """Mono settings, read once; production refuses a missing or test key."""

    secret_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    redirect_url: str
    base_url: str = DEFAULT_BASE_URL
    customer_email_domain: str = "customers.example-bank.ng"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, *, production: bool = False) -> MonoConfig:
        values = _settings(environ)
        missing = [name for name in REQUIRED_SETTINGS if not values[name]]
        if missing:
            raise ConfigError(f"BANK_PROVIDER=mono needs {', '.join(missing)}")
        problems = setting_problems(environ, production=production)
        if problems:
            raise ConfigError("refusing to start in production: " + "; ".join(problems))
        return cls(secret_key=values["MONO_SECRET_KEY"], webhook_secret=values["MONO_WEBHOOK_SECRET"],
                   redirect_url=values["BANK_LINK_REDIRECT_URL"],
                   base_url=(values["MONO_BASE_URL"] or DEFAULT_BASE_URL).rstrip("/"),
                   customer_email_domain=values["MONO_CUSTOMER_EMAIL_DOMAIN"] or cls.customer_email_domain)


def setting_problems(environ: Mapping[str, str] = os.environ, *, production: bool = False) -> list[str]:
    """Every missing setting, and in production every unsafe one; variables named, values never quoted."""
    values = _settings(environ)
    problems = [f"{name} is missing" for name in REQUIRED_SETTINGS if not values[name]]
    if not production:
        return problems
    if values["MONO_SECRET_KEY"].lower().startswith(TEST_KEY_PREFIXES):
        problems.append("MONO_SECRET_KEY is a Mono test key")
    weakness = values["MONO_WEBHOOK_SECRET"] and secret_weakness(values["MONO_WEBHOOK_SECRET"],
                                                                 MIN_WEBHOOK_SECRET_LENGTH)
    if weakness:
        problems.append(f"MONO_WEBHOOK_SECRET {weakness}")
    if values["MONO_BASE_URL"] and not is_mono_url(values["MONO_BASE_URL"]):
        problems.append("MONO_BASE_URL is not an https URL on Mono's host (our secret key would be sent there)")
    if values["BANK_LINK_REDIRECT_URL"] and not is_https_url(values["BANK_LINK_REDIRECT_URL"]):
        problems.append("BANK_LINK_REDIRECT_URL is not an https URL")
    return problems


def is_mono_url(url: str) -> bool:
    """An https URL on withmono.com (Mono's API host), with no credentials or odd port in it."""
    if not is_https_url(url):
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return host in MONO_HOSTS and parts.port in (None, 443)


def is_https_url(url: str) -> bool:
    """An https URL with a host and no user:password in it."""
    try:
        parts = urlsplit(url.strip())
        _ = parts.port
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname) and not parts.username and not parts.password


def _settings(environ: Mapping[str, str]) -> dict[str, str]:
    values = {name: environ.get(name, "").strip() for name in
              ("MONO_SECRET_KEY", "MONO_WEBHOOK_SECRET", "MONO_BASE_URL", "MONO_CUSTOMER_EMAIL_DOMAIN")}
    return {**values, "BANK_LINK_REDIRECT_URL": bank_link_redirect_url_from_env(environ) or ""}


def is_valid_mono_secret(secret: str, header: str | None) -> bool:
    """Whether the ``mono-webhook-secret`` header is our webhook secret (constant time)."""
    if not secret or not header:
        return False
    return hmac.compare_digest(secret.encode(), header.strip().encode())


@dataclass(frozen=True)
class MonoEvent:
    """What a Mono webhook says, reduced to what the assistant acts on."""

    kind: str  # connected | updated | reauth_required | payment | unlinked | other
    event: str
    reference: str | None = None  # our meta.ref (connected) or payment reference (payment)
    account_id: str | None = None
    data_status: str | None = None
    payment_status: str | None = None


def parse_mono_event(payload: Any) -> MonoEvent:
    """Reduce a Mono webhook body (already verified) to a MonoEvent; unknown shapes are "other"."""
    if not isinstance(payload, dict):
        return MonoEvent(kind="other", event="")
    event = str(payload.get("event") or "")
    data = _dict(payload.get("data"))
    meta = _dict(data.get("meta"))
    account = data.get("account")
    account_id = account.get("_id") or account.get("id") if isinstance(account, dict) else account
    status = meta.get("data_status")
    if event == "mono.events.account_connected":
        return MonoEvent(kind="connected", event=event, reference=_text(meta.get("ref")),
                         account_id=_text(data.get("id")), data_status=_upper(status))
    if event in ("mono.events.account_updated", "mono.events.account_reauthorized"):
        return MonoEvent(kind="updated", event=event, account_id=_text(account_id) or _text(data.get("id")),
                         data_status=_upper(status) or ("AVAILABLE" if event.endswith("reauthorized") else None))
    if event == "mono.events.reauthorisation_required":
        return MonoEvent(kind="reauth_required", event=event, account_id=_text(account_id) or _text(data.get("id")))
    if event == "mono.events.account_unlinked":
        return MonoEvent(kind="unlinked", event=event, account_id=_text(account_id) or _text(data.get("id")))
    if event.startswith("direct_debit.payment_"):
        payment = data["object"] if isinstance(data.get("object"), dict) else data
        return MonoEvent(kind="payment", event=event, reference=_text(payment.get("reference")),
                         payment_status=_text(payment.get("status")))
    return MonoEvent(kind="other", event=event)


def event_key(payload: Any, body: bytes) -> str:
    """A delivery's identity: Mono's event id when it sends one, else the body's SHA-256."""
    if isinstance(payload, dict) and isinstance(payload.get("event_id"), str) and payload["event_id"]:
        return payload["event_id"][:128]
    return hashlib.sha256(body).hexdigest()


class MonoClient:
    """One httpx client for Mono, with timeouts and a retry for reads."""

    def __init__(self, config: MonoConfig, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT, retries: int = 2,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._config = config
        self._retries = retries
        self._http = httpx.Client(base_url=config.base_url, timeout=timeout, transport=transport,
                                  headers={"mono-sec-key": config.secret_key, "accept": "application/json"})
        self._host = urlsplit(config.base_url).netloc

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, *, params: Mapping[str, Any] | None = None, real_time: bool = False) -> dict[str, Any]:
        headers = {"x-real-time": "true"} if real_time else {}
        return self._send("GET", path, params=params, headers=headers, idempotent=True)

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self._send("POST", path, json=dict(body or {}), idempotent=False)

    def same_host_path(self, url: str) -> str | None:
        """A pagination link as a path on Mono's host; None for a link elsewhere (our key never goes there)."""
        parts = urlsplit(url)
        if parts.netloc and parts.netloc != self._host:
            logger.warning("Mono returned a pagination link to another host; not followed")
            return None
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def _send(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> dict[str, Any]:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TimeoutException as error:
                failure = ProviderError("Mono did not answer in time", reason="unavailable")
                retry = idempotent
                cause: Exception = error
            except httpx.TransportError as error:
                failure = ProviderError("Mono could not be reached", reason="unavailable")
                retry = idempotent or isinstance(error, httpx.ConnectError)
                cause = error
            else:
                if response.status_code < 400:
                    return _json(response)
                failure = _mono_error(response)
                retry = failure.reason == "unavailable" and idempotent
                cause = failure
            if not retry or attempt > self._retries:
                logger.warning("Mono %s %s failed: %s", method, _route(path), failure.provider_code or failure.reason)
                raise failure from cause
            time.sleep(min(2.0, 0.25 * 2 ** (attempt - 1)))


class MonoProvider:
    """HostedLinkProvider for Mono: link, balances, transactions, reauth, unlink, DirectPay."""

    name = "mono"
    moves_money = True
    currency = "NGN"

    def __init__(self, config: MonoConfig, client: MonoClient | None = None) -> None:
        self.config = config
        self._client = client or MonoClient(config)

    # ----------------------------------------------------------------- linking

    def start_link(self, reference: str, user: str, bank: str | None) -> LinkPage:
        body = {
            "customer": {"name": f"Customer {user[:8]}", "email": f"{user[:24]}@{self.config.customer_email_domain}"},
            "meta": {"ref": reference},
            "scope": "auth",
            "redirect_url": self.config.redirect_url,
        }
        return LinkPage(url=_mono_url(self._client.post("/v2/accounts/initiate", body)))

    def start_reauth(self, reference: str, token: str, user: str) -> LinkPage:
        body = {"account": token, "meta": {"ref": reference}, "scope": "reauth",
                "redirect_url": self.config.redirect_url}
        return LinkPage(url=_mono_url(self._client.post("/v2/accounts/initiate", body)))

    def finish_link(self, credential: str) -> LinkResult:
        details = self._client.get(f"/v2/accounts/{credential}")
        data = details.get("data") or {}
        status = _upper((data.get("meta") or {}).get("data_status")) or "PROCESSING"
        if status in FAILED_STATUSES:
            raise ProviderError("Mono could not read this account", reason="refused", provider_code=status)
        return LinkResult(token=credential, accounts=(_account(credential, data.get("account") or {}),),
                          data_ready=status in READY_STATUSES)

    def data_status(self, token: str) -> str:
        data = self._client.get(f"/v2/accounts/{token}").get("data") or {}
        return _upper((data.get("meta") or {}).get("data_status")) or "PROCESSING"

    def accounts(self, token: str) -> tuple[LinkedAccount, ...]:
        details = (self._client.get(f"/v2/accounts/{token}").get("data") or {}).get("account") or {}
        balance = self._client.get(f"/v2/accounts/{token}/balance", real_time=True).get("data") or {}
        merged = {**details, **{k: v for k, v in balance.items() if k in ("balance", "currency")}}
        return (_account(token, merged),)

    def transactions(self, token: str, since: datetime, *, real_time: bool = False) -> list[ProviderTransaction]:
        """Every page from ``since`` to now, following ``meta.next`` on Mono's host only."""
        now = datetime.now(timezone.utc)
        start = max(since, now - timedelta(days=HISTORY_DAYS))
        path = f"/v2/accounts/{token}/transactions"
        params: dict[str, Any] | None = {"paginate": "true", "start": f"{start:%d-%m-%Y}", "end": f"{now:%d-%m-%Y}"}
        found: list[ProviderTransaction] = []
        for page in range(MAX_PAGES):
            answer = self._client.get(path, params=params, real_time=real_time and page == 0)
            found += [t for t in (_transaction(token, raw) for raw in answer.get("data") or []) if t is not None]
            next_link = (answer.get("meta") or {}).get("next")
            if not next_link:
                break
            next_path = self._client.same_host_path(str(next_link))
            if next_path is None:
                break
            path, params = next_path, None
        return found

    def revoke(self, token: str) -> None:
        self._client.post(f"/v2/accounts/{token}/unlink")

    # ----------------------------------------------------------------- DirectPay

    def start_payment(self, *, reference: str, amount_kobo: int, account_token: str | None, description: str,
                      user: str) -> LinkPage:
        """A one-time debit the customer approves on Mono's page; nothing moves until they do."""
        body: dict[str, Any] = {
            "amount": amount_kobo, "type": "onetime-debit", "method": "account", "reference": reference,
            "description": description[:100], "redirect_url": self.config.redirect_url,
            "customer": {"name": f"Customer {user[:8]}", "email": f"{user[:24]}@{self.config.customer_email_domain}"},
        }
        if account_token:
            body["account"] = account_token
        return LinkPage(url=_mono_url(self._client.post("/v2/payments/initiate", body)))

    def name_enquiry(self, account_number: str, bank: str) -> str:
        """The holder's name for a NUBAN at a bank (Mono's account number lookup)."""
        try:
            answer = self._client.post("/v3/lookup/account-number",
                                       {"nip_code": nip_code(bank), "account_number": account_number})
        except ProviderError as error:
            if error.reason == "refused":
                raise NameEnquiryFailed("the receiving bank could not confirm this account") from error
            raise
        name = (answer.get("data") or {}).get("name")
        if not isinstance(name, str) or not name.strip():
            raise NameEnquiryFailed("the receiving bank could not confirm this account")
        return " ".join(name.split()).title()

    def payment_status(self, reference: str) -> tuple[str, int | None]:
        """Mono's word on a payment by our reference: (status, amount in kobo)."""
        status, amount, _ = _payment_found(self._client.get(f"/v2/payments/verify/{reference}"))
        return status, amount

    def find_payment(self, reference: str) -> tuple[str, int | None, str | None] | None:
        """The payment Mono holds under our reference, (status, kobo, its page when verify names one); None
        when Mono knows none (its refusal: 404). After Mono refused to start a payment under a reference,
        this tells a duplicate (ours, started before a failure) from a real refusal."""
        try:
            answer = self._client.get(f"/v2/payments/verify/{reference}")
        except ProviderError as error:
            if error.reason == "refused":
                return None
            raise
        return _payment_found(answer)


# --------------------------------------------------------------------- pure helpers


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        raise ProviderError("Mono answered with something that is not JSON", reason="unavailable") from None
    if not isinstance(answer, dict):
        raise ProviderError("Mono answered with an unexpected shape", reason="unavailable")
    return answer


def _mono_error(response: httpx.Response) -> ProviderError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = str((body or {}).get("message") or "") if isinstance(body, dict) else ""
    code = f"http_{status}"
    if status == 429:
        retry_after = response.headers.get("retry-after")
        return ProviderError("Mono is rate limiting us", reason="rate_limited", provider_code=code,
                             retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None)
    if status >= 500:
        return ProviderError("Mono is not answering", reason="unavailable", provider_code=code)
    if "reauth" in message.lower():
        return ProviderError("the bank needs the customer to log in again", reason="login_required",
                             provider_code=code)
    return ProviderError("Mono refused the request", reason="refused", provider_code=code)


def _payment_found(answer: dict[str, Any]) -> tuple[str, int | None, str | None]:
    data = answer.get("data") or {}
    amount, url = data.get("amount"), data.get("mono_url")
    return (str(data.get("status") or "pending").lower(), int(amount) if isinstance(amount, int) else None,
            url if isinstance(url, str) and url.startswith(("https://", "http://")) else None)


def _route(path: str) -> str:
    """A path fit for a log line: account ids and references replaced."""
    parts = path.split("?")[0].split("/")
    return "/".join(part if part in ("", "v2", "v3", "accounts", "payments", "initiate", "balance", "transactions",
                                     "unlink", "verify", "lookup", "account-number") else ":id" for part in parts)


def _mono_url(answer: dict[str, Any]) -> str:
    url = (answer.get("data") or {}).get("mono_url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ProviderError("Mono did not return a page for the customer", reason="unavailable")
    return url


def _account(account_id: str, account: dict[str, Any]) -> LinkedAccount:
    kind = str(account.get("type") or "").upper().replace(" ", "_")
    balance = account.get("balance")
    return LinkedAccount(
        provider_id=account_id,
        type="savings" if kind.startswith(SAVINGS_TYPES) else "checking",
        name="Savings" if kind.startswith(SAVINGS_TYPES) else "Current",
        mask=mask_account_number(str(account.get("account_number") or account.get("accountNumber") or "")),
        balance_minor=int(balance) if isinstance(balance, (int, float)) else 0,
        currency=str(account.get("currency") or "NGN").upper(),
    )


def _transaction(account_id: str, raw: Any) -> ProviderTransaction | None:
    if not isinstance(raw, dict):
        return None
    direction = str(raw.get("type") or "").lower()
    amount = raw.get("amount")
    when = _moment(raw.get("date"))
    if direction not in ("debit", "credit") or not isinstance(amount, (int, float)) or amount <= 0 or when is None:
        return None
    narration = str(raw.get("narration") or "")
    return ProviderTransaction(
        provider_id=str(raw.get("id") or raw.get("_id") or ""), account_id=account_id, posted_at=when,
        amount_minor=int(amount), direction=direction, category=from_mono(raw.get("category"), direction),
        merchant=narration[:60], narration=narration, currency=str(raw.get("currency") or "NGN").upper(),
    )


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _dict(value: Any) -> dict[str, Any]:
    """A field of a webhook body when it is an object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _upper(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) and value else None
