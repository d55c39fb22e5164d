"""Money moved through Mono DirectPay, against the fake Mono on 127.0.0.1: the same confirmation,
then one payment started under the operation's reference, approved on Mono's page, and done only
once Mono's verify says so; every refusal, failure and replay leaves nothing done twice."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from banking import errors
from banking.crypto import is_sealed
from banking.hosted import ProviderError
from banking.models import ProviderPayment, Receipt
from banking.provider_webhooks import ProviderWebhooks
from banking.service import BankingService
from checks.action_runner import SENDER
from checks.clock import Clock
from sandbox.fake_mono import FakeMono, MonoAccount, sample_transactions
from tests.provider_customers import fake_mono, link_at_mono, mono_services, mono_webhook

USER = "c8" * 32
ACCOUNT = "65aa7935564a694c67123456"
PAYEE = {"account_number": "0123456780", "bank": "Zenith Bank"}


@pytest.fixture
def mono() -> Iterator[FakeMono]:
    with fake_mono(MonoAccount(ACCOUNT, transactions=sample_transactions(3))) as fake:
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(timezone.utc).replace(microsecond=0))


@pytest.fixture
def make_service(db: Any, clock: Clock, mono: FakeMono) -> Iterator[Callable[..., BankingService]]:
    """A banking service on the fake Mono; ``client`` options (timeout, retries) for its Mono client."""
    with mono_services(db, clock, mono, "test-salt") as build:
        yield build


@pytest.fixture
def service(make_service: Callable[..., BankingService], mono: FakeMono) -> BankingService:
    """A customer who linked their GTBank account through Mono."""
    return link_at_mono(make_service(), mono, USER, ACCOUNT)


@pytest.fixture
def hooks(service: BankingService) -> ProviderWebhooks:
    return ProviderWebhooks(service)


def initiated(mono: FakeMono) -> list[dict[str, Any]]:
    return [r for r in mono.requests if r["path"] == "/v2/payments/initiate"]


def verified(mono: FakeMono) -> list[dict[str, Any]]:
    return [r for r in mono.requests if r["path"].startswith("/v2/payments/verify/")]


def audit_trail(db: Any, op_id: str) -> list[str]:
    return [r["outcome"] for r in db["audit"].find({"op_id": op_id}, sort=[("seq", 1)])]


def spent_today(db: Any) -> int:
    return sum(db["profiles"].find_one({"_id": USER}).get("spent", {}).values())


def pay_out(service: BankingService, amount_kobo: int = 1_000_000) -> ProviderPayment:
    """A transfer to another bank, confirmed with YES: handed to Mono."""
    operation = service.prepare_transfer(USER, amount_kobo, "savings", **PAYEE)
    started = service.confirm(USER, operation.op_id)
    assert isinstance(started, ProviderPayment)
    return started


# --------------------------------------------------------------------- YES: one payment at Mono, pending


def test_a_transfer_is_confirmed_as_usual_then_started_at_mono_under_its_reference_and_left_pending(
        service: BankingService, mono: FakeMono, db: Any) -> None:
    operation = service.prepare_transfer(USER, 1_000_000, "savings", **PAYEE)
    assert not initiated(mono), "nothing is started before the YES"
    assert "Zenith Bank ******6780" in operation.destination_label  # the holder's name came from Mono's lookup
    assert operation.holder_name and operation.holder_name != "0123456780"

    started = service.confirm(USER, operation.op_id)

    assert isinstance(started, ProviderPayment) and started.status == "at_provider"
    assert started.url == mono.payment_page_url(operation.op_id)
    (body,) = mono.payments.values()
    assert (body["reference"], body["amount"], body["type"], body["account"]) == (
        operation.op_id, 1_000_000, "onetime-debit", ACCOUNT)
    assert "0123456780" not in json.dumps(body) and SENDER not in json.dumps(body)
    assert service.operation_status(USER, operation.op_id) == "at_provider"
    assert service.receipt(USER).reference != f"SBX-{operation.op_id[:16].upper()}", "not done before Mono says"
    assert spent_today(db) == 1_000_000, "counted against today's limit while it waits"
    assert audit_trail(db, operation.op_id) == ["requested", "confirmed", "initiated"]


def test_mono_confirms_by_webhook_and_verify_before_it_is_done_once(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks, db: Any) -> None:
    started = pay_out(service)
    mono.payments[started.op_id]["status"] = "successful"  # the customer approved on Mono's page

    news = mono_webhook(hooks, mono.payment_webhook(started.op_id, "successful")).delivery
    assert (news.intent, news.entities, news.sender) == (
        "EXTERNAL_payment_updated", {"payment_ref": started.op_id}, SENDER)
    assert service.operation_status(USER, started.op_id) == "at_provider", "a webhook alone settles nothing"

    settled = service.settle_payment(USER, started.op_id)

    assert len(verified(mono)) == 1
    assert settled.status == "executed" and settled.changed
    assert isinstance(settled.receipt, Receipt) and settled.receipt.amount_kobo == 1_000_000
    assert service.receipt(USER).reference == settled.receipt.reference
    assert service.profile(USER).account("savings").balance_kobo == 8_765_432 - 1_000_000
    again = service.settle_payment(USER, started.op_id)
    assert again.status == "executed" and not again.changed, "the customer is told once"
    assert spent_today(db) == 1_000_000
    assert audit_trail(db, started.op_id) == ["requested", "confirmed", "initiated", "executed"]


def test_a_double_or_retried_yes_never_starts_a_second_payment(service: BankingService, mono: FakeMono) -> None:
    started = pay_out(service)
    for _ in range(3):
        with pytest.raises(errors.PaymentAtProvider) as waiting:
            service.confirm(USER, started.op_id)
        assert waiting.value.payment.url == started.url
    assert len(initiated(mono)) == 1 and len(mono.payments) == 1


def test_a_replayed_webhook_delivers_nothing_new(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks) -> None:
    started = pay_out(service)
    mono.payments[started.op_id]["status"] = "successful"
    payload = mono.payment_webhook(started.op_id, "successful")
    assert mono_webhook(hooks, payload).delivery is not None
    for _ in range(2):  # Mono retries the same event
        replay = mono_webhook(hooks, payload)
        assert replay.status == 200 and replay.delivery is None


def test_forged_payment_webhooks_are_refused_before_reading(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks) -> None:
    started = pay_out(service)
    payload = mono.payment_webhook(started.op_id, "successful")
    assert mono_webhook(hooks, payload, secret=None).status == 401
    assert mono_webhook(hooks, payload, secret="guessed").status == 403
    assert not verified(mono) and service.operation_status(USER, started.op_id) == "at_provider"


def test_a_payment_webhook_for_a_reference_that_is_not_ours_reaches_no_one(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks) -> None:
    started = pay_out(service)
    payload = mono.payment_webhook(started.op_id, "successful")
    payload["data"]["object"]["reference"] = "0" * 32
    assert mono_webhook(hooks, payload).delivery is None


# --------------------------------------------------------------------- not paid: said honestly


def test_a_webhook_that_says_successful_is_not_believed_when_verify_says_failed(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks, db: Any) -> None:
    started = pay_out(service)
    mono.payments[started.op_id]["status"] = "failed"  # what Mono's own record says
    assert mono_webhook(hooks, mono.payment_webhook(started.op_id, "successful")).delivery is not None

    settled = service.settle_payment(USER, started.op_id)

    assert (settled.status, settled.reason, settled.receipt) == ("failed", "failed", None)
    assert service.profile(USER).account("savings").balance_kobo == 8_765_432
    assert spent_today(db) == 0, "the reservation is released"
    assert audit_trail(db, started.op_id)[-1] == "failed"


@pytest.mark.parametrize("status", ["abandoned", "cancelled", "failed"])
def test_an_unpaid_payment_is_failed_once_with_mono_s_word(
        service: BankingService, mono: FakeMono, db: Any, status: str) -> None:
    started = pay_out(service)
    mono.payments[started.op_id]["status"] = status
    first, second = service.settle_payment(USER, started.op_id), service.settle_payment(USER, started.op_id)
    assert (first.status, first.reason, first.changed) == ("failed", status, True)
    assert (second.status, second.changed) == ("failed", False)
    assert [r["reason"] for r in db["audit"].find({"op_id": started.op_id, "outcome": "failed"})] == [status]


def test_a_payment_of_another_amount_is_never_done(service: BankingService, mono: FakeMono, db: Any) -> None:
    started = pay_out(service)
    mono.payments[started.op_id].update(status="successful", amount=5_000)
    assert service.settle_payment(USER, started.op_id).status == "at_provider"
    assert audit_trail(db, started.op_id)[-1] == "verify_mismatch"


def test_still_pending_at_mono_stays_pending_and_asking_again_settles_it(
        service: BankingService, mono: FakeMono) -> None:
    started = pay_out(service)
    (waiting,) = service.settle_payments(USER)
    assert (waiting.status, waiting.url, waiting.changed) == ("at_provider", started.url, False)
    mono.payments[started.op_id]["status"] = "successful"  # approved; its webhook never arrived
    (done,) = service.settle_payments(USER)
    assert done.status == "executed" and done.changed
    assert service.settle_payments(USER) == []


# --------------------------------------------------------------------- expiry, checks, provider trouble


def test_an_expired_confirmation_never_starts_a_payment(
        service: BankingService, mono: FakeMono, clock: Clock, db: Any) -> None:
    operation = service.prepare_transfer(USER, 1_000_000, "savings", **PAYEE)
    clock.advance(seconds=service.settings.confirmation_ttl_seconds + 1)
    with pytest.raises(errors.ConfirmationExpired):
        service.confirm(USER, operation.op_id)
    assert not initiated(mono) and spent_today(db) == 0


def test_two_payments_waiting_at_mono_cannot_together_pass_the_daily_limit(
        service: BankingService, mono: FakeMono) -> None:
    service.confirm(USER, service.prepare_set_limit(USER, 2_000_000).op_id)  # ₦20,000 a day, at once
    pay_out(service, 1_500_000)
    with pytest.raises(errors.LimitExceeded):
        service.prepare_transfer(USER, 1_000_000, "savings", **PAYEE)
    assert len(mono.payments) == 1


def test_a_freeze_after_the_confirmation_stops_the_payment_before_mono(
        service: BankingService, mono: FakeMono) -> None:
    operation = service.prepare_transfer(USER, 1_000_000, "savings", **PAYEE)
    service.confirm(USER, service.prepare_freeze(USER).op_id)
    with pytest.raises((errors.AccountFrozen, errors.ConfirmationSuperseded)):
        service.confirm(USER, operation.op_id)
    assert not initiated(mono)


def test_mono_not_answering_in_time_is_a_clear_failure_and_nothing_is_left_waiting(
        make_service: Callable[..., BankingService], mono: FakeMono, service: BankingService, db: Any) -> None:
    impatient = make_service(timeout=httpx.Timeout(0.3))
    mono.slow["/v2/payments/initiate"] = 1.5
    operation = impatient.prepare_transfer(USER, 1_000_000, "savings", **PAYEE)
    with pytest.raises(ProviderError) as raised:
        impatient.confirm(USER, operation.op_id)
    assert raised.value.reason == "unavailable"
    assert impatient.operation_status(USER, operation.op_id) == "refused"
    assert spent_today(db) == 0
    refused = db["audit"].find_one({"op_id": operation.op_id, "outcome": "refused"})
    assert refused["reason"] == "provider_unavailable"
    with pytest.raises(errors.NothingPending):  # a YES again starts nothing: the customer asks anew
        impatient.confirm(USER, operation.op_id)
    assert len(initiated(mono)) == 1


def test_mono_rate_limiting_the_payment_is_refused_with_its_reason(
        service: BankingService, mono: FakeMono, db: Any) -> None:
    mono.fail_next["/v2/payments/initiate"] = [429]
    operation = service.prepare_transfer(USER, 1_000_000, "savings", **PAYEE)
    with pytest.raises(ProviderError) as raised:
        service.confirm(USER, operation.op_id)
    assert raised.value.reason == "rate_limited" and not mono.payments
    assert db["audit"].find_one({"op_id": operation.op_id, "outcome": "refused"})["reason"] == "provider_rate_limited"


def test_mono_failing_to_verify_keeps_the_payment_waiting_and_is_audited(
        service: BankingService, mono: FakeMono, db: Any) -> None:
    started = pay_out(service)
    mono.fail_next["/v2/payments/verify/"] = [503, 503, 503]
    with pytest.raises(ProviderError):
        service.settle_payment(USER, started.op_id)
    assert service.operation_status(USER, started.op_id) == "at_provider"
    assert db["audit"].find_one({"user": USER, "outcome": "verify_failed"})["reason"] == "unavailable"


def test_the_payment_page_and_the_payee_are_sealed_at_rest(service: BankingService, db: Any) -> None:
    started = pay_out(service)
    stored = db["operations"].find_one({"_id": started.op_id})
    assert is_sealed(stored["payment_url"]) and all(is_sealed(value) for value in stored["params"].values())
    assert started.url and started.url not in json.dumps(stored, default=str)
    assert "0123456780" not in json.dumps(stored, default=str)


def test_a_payee_mono_cannot_find_is_said_so(service: BankingService) -> None:
    with pytest.raises(errors.NameEnquiryFailed):
        service.name_enquiry("0001234567", "GTBank")


@pytest.mark.parametrize(("bank", "code"), [("GTBank", "000013"), ("Zenith Bank", "000015"), ("Kuda", "090267")])
def test_monos_account_lookup_is_sent_the_banks_nip_institution_code(service: BankingService, mono: FakeMono,
                                                                       bank: str, code: str) -> None:
    """Mono's lookup names the bank by its 6-digit NIP code; a 3-digit bank code would be refused and the
    customer told the account could not be confirmed."""
    assert service.name_enquiry("0123456780", bank)
    assert mono.lookups[-1] == {"nip_code": code}


def test_a_refused_start_mono_cannot_be_asked_about_stays_unsettled(service: BankingService, mono: FakeMono,
                                                                     db: Any) -> None:
    """Mono refused to start it and its verify is down: whether a payment exists under the reference is not
    known, so nothing is released or called refused; the claim lapses and a later YES asks again."""
    operation = service.prepare_transfer(USER, 1_000_000, "savings", **PAYEE)
    mono.fail_next["/v2/payments/initiate"] = [400]
    mono.fail_next["/v2/payments/verify/"] = [503, 503, 503]
    with pytest.raises(errors.OutcomeUnknown):
        service.confirm(USER, operation.op_id)
    assert service.operation_status(USER, operation.op_id) == "executing"
    assert "refused" not in audit_trail(db, operation.op_id) and spent_today(db) == 1_000_000  # still reserved
