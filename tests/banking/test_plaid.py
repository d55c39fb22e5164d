"""Plaid through plaid-python against the fake Plaid on 127.0.0.1: Hosted Link, the signed
SESSION_FINISHED webhook, token exchange, balances in dollars, /transactions/sync with its
restart, update mode on ITEM_LOGIN_REQUIRED, read-only money, and /item/remove."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from banking import errors
from banking.config import Settings
from banking.crypto import is_sealed
from banking.plaid_provider import PlaidConfig, PlaidProvider, VerificationKeys, verify_plaid_webhook
from banking.provider_webhooks import ProviderWebhooks
from banking.service import BankingService
from checks.action_runner import SENDER
from checks.clock import Clock
from sandbox.fake_plaid import CLIENT_ID, SECRET, FakePlaid

USER = "c9" * 32


@pytest.fixture
def plaid() -> Iterator[FakePlaid]:
    fake = FakePlaid(page_size=10).start()
    yield fake
    fake.stop()


@pytest.fixture
def service(db: Any, plaid: FakePlaid) -> BankingService:
    config = PlaidConfig.from_env({"PLAID_CLIENT_ID": CLIENT_ID, "PLAID_SECRET": SECRET, "PLAID_ENV": "sandbox",
                                   "PLAID_BASE_URL": plaid.base_url,
                                   "PLAID_WEBHOOK_URL": "https://bank.example/webhooks/whatsapp/bank/plaid"})
    return BankingService(db, PlaidProvider(config), Settings(user_id_salt="test-salt", bank_provider="plaid"),
                          clock=Clock(datetime.now(timezone.utc)))


@pytest.fixture
def hooks(service: BankingService) -> ProviderWebhooks:
    return ProviderWebhooks(service)


def send(hooks: ProviderWebhooks, plaid: FakePlaid, payload: dict[str, Any], **signing: Any) -> Any:
    body, token = plaid.signed(payload, **signing)
    return hooks.handle("plaid", body, {"plaid-verification": token})


def link(service: BankingService, plaid: FakePlaid, hooks: ProviderWebhooks) -> Any:
    service.start_bank_link(USER, SENDER, None)
    token = list(plaid.link_tokens)[-1]
    plaid.finish(token)
    return send(hooks, plaid, plaid.session_finished(token))


def test_hosted_link_page_is_asked_for_with_our_webhook_and_no_phone_number(
        service: BankingService, plaid: FakePlaid) -> None:
    invitation = service.start_bank_link(USER, SENDER, None)
    assert invitation.url.startswith(f"{plaid.base_url}/hl/")  # the fake serves its own page
    ((path, body),) = plaid.requests
    assert path == "/link/token/create" and body["products"] == ["transactions"]
    assert body["webhook"].endswith("/bank/plaid") and "url_lifetime_seconds" in body["hosted_link"]
    assert body["user"]["client_user_id"] == USER[:32] and SENDER not in str(body)


def test_session_finished_reaches_the_customer_and_completes_with_dollar_balances_and_history(
        service: BankingService, plaid: FakePlaid, hooks: ProviderWebhooks, db: Any) -> None:
    result = link(service, plaid, hooks)
    assert result.status == 200 and result.delivery.sender == SENDER
    assert result.delivery.intent == "EXTERNAL_bank_linked"
    outcome = service.complete_bank_link(USER)
    assert outcome.kind == "connected" and not service.provider_moves_money
    accounts = {a.key: (a.type, a.name, a.balance_kobo, a.currency, a.number) for a in outcome.profile.accounts}
    assert accounts == {  # every depository account, the second of a type too; the credit card is not one
        "checking": ("checking", "Plaid Checking", 120410, "USD", "******0000"),
        "savings_1": ("savings", "Plaid Saving", 21050, "USD", "******1111"),
        "savings_2": ("savings", "Plaid CD", 100000, "USD", "******2222"),
    }
    history = db["transactions"].find({"user": USER})
    assert len(history) == 26  # 25 on the checking account and the CD's interest, kept on the CD
    assert {t["account"] for t in history if t["category"] == "savings"} == {"savings_2"}
    assert {t["category"] for t in history if t["direction"] == "credit"} == {"salary", "savings"}
    assert {t["category"] for t in history if t["direction"] == "debit"} == {"food"}
    assert is_sealed(db["connections"].find_one({"_id": USER})["token"])


def test_sync_restarts_when_plaid_mutates_during_pagination(
        service: BankingService, plaid: FakePlaid, hooks: ProviderWebhooks, db: Any) -> None:
    plaid.mutate_once = True
    link(service, plaid, hooks)
    service.complete_bank_link(USER)
    cursors = [body.get("cursor") for path, body in plaid.requests if path == "/transactions/sync"]
    assert cursors == [None, "10", None, "10", "20"]
    assert db["transactions"].count_documents({"user": USER}) == 26


def test_forged_stale_or_tampered_webhooks_are_refused(
        service: BankingService, plaid: FakePlaid, hooks: ProviderWebhooks) -> None:
    service.start_bank_link(USER, SENDER, None)
    token = list(plaid.link_tokens)[-1]
    plaid.finish(token)
    payload = plaid.session_finished(token)
    assert hooks.handle("plaid", b"{}", {}).status == 401
    assert send(hooks, plaid, payload, iat=time.time() - 6 * 60).status == 403
    assert send(hooks, plaid, payload, key=ec.generate_private_key(ec.SECP256R1())).status == 403
    body, jwt_header = plaid.signed(payload)
    assert hooks.handle("plaid", body.replace(b"SUCCESS", b"success"), {"plaid-verification": jwt_header}).status == 403
    assert hooks.handle("plaid", body, {"plaid-verification": jwt_header}).delivery is not None


def test_verification_vectors_without_a_server(plaid: FakePlaid) -> None:
    body, header = plaid.signed({"webhook_type": "ITEM"})
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(plaid.key.public_key()))
    key = {"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "k", "expired_at": None,
           "x": public["x"], "y": public["y"]}
    assert verify_plaid_webhook(body, header, lambda kid: key)
    assert not verify_plaid_webhook(body + b" ", header, lambda kid: key)
    assert not verify_plaid_webhook(body, header, lambda kid: None)
    assert not verify_plaid_webhook(body, header, lambda kid: {**key, "expired_at": 1})
    assert not verify_plaid_webhook(body, None, lambda kid: key)
    assert not verify_plaid_webhook(body, "not.a.jwt", lambda kid: key)


def test_login_required_sends_an_update_mode_link_and_money_stays_put(
        service: BankingService, plaid: FakePlaid, hooks: ProviderWebhooks) -> None:
    link(service, plaid, hooks)
    service.complete_bank_link(USER)
    item_id = next(iter(plaid.items.values()))["item_id"]
    news = send(hooks, plaid, plaid.login_required(item_id)).delivery
    assert news.entities == {"bank_event": "reauth_required"} and news.sender == SENDER
    service.start_bank_reauth(USER, SENDER)
    path, body = plaid.requests[-1]
    assert path == "/link/token/create" and body["access_token"].startswith("access-sandbox-")
    assert "products" not in body
    with pytest.raises(errors.ReadOnlyLink):
        service.prepare_transfer(USER, 1000, "checking", to_account_type="savings")


def test_plaid_errors_become_provider_errors(service: BankingService, plaid: FakePlaid,
                                             hooks: ProviderWebhooks) -> None:
    link(service, plaid, hooks)
    service.complete_bank_link(USER)
    plaid.fail_next["/accounts/balance/get"] = [(400, "ITEM_ERROR", "ITEM_LOGIN_REQUIRED"),
                                                (429, "RATE_LIMIT_EXCEEDED", "ACCOUNTS_BALANCE_GET_LIMIT")]
    with pytest.raises(errors.ProviderUnavailable) as first:
        service.balances(USER)
    with pytest.raises(errors.ProviderUnavailable) as second:
        service.balances(USER)
    assert (first.value.reason, second.value.reason) == ("login_required", "rate_limited")


def test_disconnect_removes_the_item_at_plaid(service: BankingService, plaid: FakePlaid,
                                              hooks: ProviderWebhooks) -> None:
    link(service, plaid, hooks)
    service.complete_bank_link(USER)
    service.disconnect_bank(USER)
    assert all(item["removed"] for item in plaid.items.values())


# --------------------------------------------------------------------- forged webhooks cost no key fetches


def key_fetches(plaid: FakePlaid) -> int:
    return sum(1 for path, _ in plaid.requests if path == "/webhook_verification_key/get")


def forged(payload: dict[str, Any], *, kid: Any = "kid-1", alg: str = "ES256", key: Any = None,
           iat: float | None = None) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    claims = {"iat": int(time.time() if iat is None else iat), "request_body_sha256": hashlib.sha256(body).hexdigest()}
    headers = {} if kid is None else {"kid": kid}
    signing_key = key if key is not None else ("x" * 32 if alg.startswith("HS") else ec.generate_private_key(
        ec.SECP256R1()))
    return body, jwt.encode(claims, signing_key, algorithm=alg, headers=headers)


def test_malformed_forged_jwts_are_refused_without_asking_plaid_for_a_key(
        hooks: ProviderWebhooks, plaid: FakePlaid) -> None:
    payload = {"webhook_type": "ITEM", "webhook_code": "WEBHOOK_UPDATE_ACKNOWLEDGED", "item_id": "i"}
    attempts = [forged(payload, alg="HS256"), forged(payload, kid=None),
                forged(payload, kid="../../etc"), forged(payload, iat=time.time() - 3600)]
    body, token = forged(payload)
    attempts += [(body, token + ".extra"), (body, "e30.e30"), (body, "a" * 9000), (body + b" ", token)]
    for body, token in attempts:
        assert hooks.handle("plaid", body, {"plaid-verification": token}).status == 403
    assert key_fetches(plaid) == 0


def test_a_flood_of_random_kids_makes_a_bounded_number_of_key_fetches_and_plaid_still_gets_through(
        service: BankingService, plaid: FakePlaid, hooks: ProviderWebhooks) -> None:
    link(service, plaid, hooks)  # Plaid's own key is fetched and cached
    assert key_fetches(plaid) == 1
    payload = {"webhook_type": "ITEM", "webhook_code": "WEBHOOK_UPDATE_ACKNOWLEDGED", "item_id": "i"}
    statuses = [hooks.handle("plaid", body, {"plaid-verification": token}).status
                for body, token in (forged(payload, kid=secrets.token_hex(8)) for _ in range(40))]
    assert set(statuses) <= {403, 503} and key_fetches(plaid) <= 1 + 5
    repeated = key_fetches(plaid)
    for _ in range(10):  # one unknown kid, over and over: asked about at most once
        body, token = forged(payload, kid="not-a-plaid-kid")
        hooks.handle("plaid", body, {"plaid-verification": token})
    assert key_fetches(plaid) <= repeated + 1
    item_id = next(iter(plaid.items.values()))["item_id"]
    assert send(hooks, plaid, plaid.login_required(item_id)).status == 200


def test_concurrent_webhooks_naming_one_kid_share_one_fetch() -> None:
    calls: list[str] = []
    release = threading.Event()

    def fetch(kid: str) -> dict[str, Any]:
        calls.append(kid)
        release.wait(5)
        return {"kid": kid, "expired_at": None}

    keys = VerificationKeys(fetch)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(keys.get, "k") for _ in range(8)]
        time.sleep(0.2)
        release.set()
        assert all(f.result(5) == {"kid": "k", "expired_at": None} for f in futures)
    assert calls == ["k"]


def test_a_cached_key_plaid_has_since_expired_stops_verifying(plaid: FakePlaid) -> None:
    body, header = plaid.signed({"webhook_type": "ITEM"})
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(plaid.key.public_key()))
    key = {"kty": "EC", "crv": "P-256", "alg": "ES256", "x": public["x"], "y": public["y"], "expired_at": None}
    answers = [key, {**key, "expired_at": 1700000000}]
    now = [0.0]
    keys = VerificationKeys(lambda kid: answers.pop(0), clock=lambda: now[0], refresh_after=600)
    assert verify_plaid_webhook(body, header, keys.get)
    now[0] = 601.0
    assert not verify_plaid_webhook(body, header, keys.get)
    assert answers == []


# --------------------------------------------------------------------- clock skew and body shape


def test_a_plaid_clock_a_little_ahead_of_ours_is_accepted_but_not_minutes_ahead_or_stale(
        service: BankingService, plaid: FakePlaid, hooks: ProviderWebhooks) -> None:
    link(service, plaid, hooks)
    item_id = next(iter(plaid.items.values()))["item_id"]
    assert send(hooks, plaid, plaid.login_required(item_id), iat=time.time() + 20).status == 200
    assert send(hooks, plaid, {**plaid.login_required(item_id), "n": 1}, iat=time.time() + 120).status == 403
    assert send(hooks, plaid, {**plaid.login_required(item_id), "n": 2}, iat=time.time() - 301).status == 403


def test_a_signed_session_finished_with_a_non_text_link_token_is_ignored_not_a_crash(
        service: BankingService, plaid: FakePlaid, hooks: ProviderWebhooks) -> None:
    service.start_bank_link(USER, SENDER, None)
    token = list(plaid.link_tokens)[-1]
    plaid.finish(token)
    for link_token in (123, ["x"], {"a": 1}, None):
        result = send(hooks, plaid, {**plaid.session_finished(token), "link_token": link_token})
        assert result.status == 200 and result.delivery is None
    assert send(hooks, plaid, plaid.session_finished(token)).delivery is not None


def test_an_unexpected_failure_is_not_recorded_so_plaids_retry_is_delivered(
        service: BankingService, plaid: FakePlaid, hooks: ProviderWebhooks, monkeypatch: pytest.MonkeyPatch) -> None:
    service.start_bank_link(USER, SENDER, None)
    token = list(plaid.link_tokens)[-1]
    plaid.finish(token)
    body, header = plaid.signed(plaid.session_finished(token))

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug")

    with monkeypatch.context() as patch:
        patch.setattr(service.links, "authorise", broken)
        assert hooks.handle("plaid", body, {"plaid-verification": header}).status == 500
    retry = hooks.handle("plaid", body, {"plaid-verification": header})
    assert retry.status == 200 and retry.delivery is not None and retry.delivery.sender == SENDER
