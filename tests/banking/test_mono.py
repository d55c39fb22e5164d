"""Mono end to end against the fake Mono on 127.0.0.1: link page, webhook, accounts, history,
sync status, re-auth, errors, unlink; and the link references that tie it to one customer."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import pytest

from banking import errors
from banking.crypto import is_sealed
from banking.hosted import ProviderError
from banking.linking import LINK_TTL, reference_key
from banking.mono import is_valid_mono_secret, parse_mono_event
from banking.provider_webhooks import ProviderWebhooks
from banking.service import BankingService
from checks.action_runner import SENDER
from checks.clock import Clock
from sandbox.fake_mono import WEBHOOK_SECRET, FakeMono, MonoAccount, sample_transactions
from tests.provider_customers import connect_at_mono, fake_mono, mono_services, mono_webhook

USER = "b7" * 32
ACCOUNT = "65aa7935564a694c67123456"


@pytest.fixture
def mono() -> Iterator[FakeMono]:
    with fake_mono(MonoAccount(ACCOUNT, transactions=sample_transactions(45)), page_size=20) as fake:
        yield fake


@pytest.fixture
def now_clock() -> Clock:
    return Clock(datetime.now(timezone.utc).replace(microsecond=0))


@pytest.fixture
def service(db: Any, now_clock: Clock, mono: FakeMono) -> Iterator[BankingService]:
    with mono_services(db, now_clock, mono, "test-salt") as build:
        yield build(retries=2)


@pytest.fixture
def hooks(service: BankingService) -> ProviderWebhooks:
    return ProviderWebhooks(service)


def linked(service: BankingService, mono: FakeMono) -> str:
    return connect_at_mono(service, mono, USER, ACCOUNT)


# --------------------------------------------------------------------- the link page


def test_connect_sends_monos_page_with_an_opaque_reference_and_no_phone_number(
        service: BankingService, mono: FakeMono, db: Any) -> None:
    invitation = service.start_bank_link(USER, SENDER, "gtb")
    assert invitation.url.startswith(f"{mono.base_url}/connect/")  # the fake serves its own page
    (reference, body), = mono.sessions.items()
    assert body["scope"] == "auth" and body["redirect_url"].endswith("/bank/done")
    assert reference.startswith("lnk_") and len(reference) > 40
    assert SENDER not in json.dumps(body) and USER not in json.dumps(body)
    stored = db["bank_links"].find_one({"_id": reference_key(reference)})
    assert stored["user"] == USER and stored["bank"] == "GTBank" and stored["status"] == "open"
    assert is_sealed(stored["sender"]) and SENDER not in json.dumps(stored, default=str)
    assert reference not in json.dumps(db["bank_links"].find(), default=str)


def test_a_provider_that_will_not_open_the_page_leaves_no_usable_reference(
        service: BankingService, mono: FakeMono, db: Any) -> None:
    mono.fail_next["/v2/accounts/initiate"] = [500]
    with pytest.raises(ProviderError) as raised:
        service.start_bank_link(USER, SENDER, "GTBank")
    assert raised.value.reason == "unavailable"
    assert db["bank_links"].find_one({"user": USER})["status"] == "failed"
    assert [r["outcome"] for r in db["audit"].find({"user": USER, "action": "connect"})] == ["failed"]


# --------------------------------------------------------------------- the webhook


def test_secret_header_is_checked_before_the_body_is_read(hooks: ProviderWebhooks) -> None:
    assert hooks.handle("mono", b"not json at all", {}).status == 401
    assert hooks.handle("mono", b"not json at all", {"mono-webhook-secret": "wrong"}).status == 403
    assert hooks.handle("mono", b"not json at all", {"mono-webhook-secret": WEBHOOK_SECRET}).status == 400
    assert hooks.handle("plaid", b"{}", {}).status == 404  # not the configured provider


def test_is_valid_mono_secret_vectors() -> None:
    assert is_valid_mono_secret("s3cret", "s3cret")
    assert is_valid_mono_secret("s3cret", "s3cret\n")  # a trailing newline from a proxy is trimmed
    assert not is_valid_mono_secret("s3cret", "S3CRET")
    assert not is_valid_mono_secret("s3cret", None)
    assert not is_valid_mono_secret("", "")


def test_account_connected_reaches_the_customers_conversation_once(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks) -> None:
    service.start_bank_link(USER, SENDER, "GTBank")
    reference = next(iter(mono.sessions))
    result = mono_webhook(hooks, mono.connected_webhook(reference, ACCOUNT))
    assert result.status == 200
    assert result.delivery.sender == SENDER and result.delivery.user == USER
    assert result.delivery.intent == "EXTERNAL_bank_linked"
    again = mono_webhook(hooks, mono.connected_webhook(reference, ACCOUNT))  # Mono retries the same delivery
    assert again.status == 200 and again.delivery is None


def test_a_forged_or_foreign_reference_reaches_no_one(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks) -> None:
    service.start_bank_link(USER, SENDER, "GTBank")
    assert mono_webhook(hooks, mono.connected_webhook("lnk_made_up", ACCOUNT)).delivery is None
    assert mono_webhook(hooks, mono.connected_webhook(SENDER, ACCOUNT)).delivery is None


def test_an_expired_link_is_never_authorised(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks, now_clock: Clock) -> None:
    service.start_bank_link(USER, SENDER, "GTBank")
    reference = next(iter(mono.sessions))
    now_clock.advance(seconds=LINK_TTL.total_seconds() + 1)
    late = mono_webhook(hooks, mono.connected_webhook(reference, ACCOUNT)).delivery
    assert late is not None and late.intent == "EXTERNAL_bank_updated"  # told, not linked
    assert late.entities == {"bank_event": "link_expired"}
    assert service.complete_bank_link(USER).kind == "nothing"
    assert service.find_profile(USER) is None


def test_a_reference_is_used_once_even_for_another_account(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks) -> None:
    reference = linked(service, mono)
    service.complete_bank_link(USER)
    other = {**mono.connected_webhook(reference, "another_account"), "event_id": "evt-2"}
    assert mono_webhook(hooks, other).delivery is None


# --------------------------------------------------------------------- completing


def test_completing_links_accounts_balances_and_every_page_of_history(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks, db: Any) -> None:
    linked(service, mono)
    outcome = service.complete_bank_link(USER)
    assert outcome.kind == "connected" and outcome.data_ready
    (account,) = outcome.profile.accounts
    assert (account.type, account.balance_kobo, account.currency, account.number) == (
        "savings", 8_765_432, "NGN", "******6789")
    history = db["transactions"].find({"user": USER})
    assert len(history) == 45  # three pages of 20, 20 and 5, followed by meta.next
    pages = [r for r in mono.requests if r["path"].endswith("/transactions")]
    assert len(pages) == 3
    assert {t["category"] for t in history} <= {"food", "transport", "airtime", "bills", "transfers", "salary",
                                                "shopping"}
    assert {t["category"] for t in history if t["direction"] == "credit"} == {"salary"}
    assert all(is_sealed(t["merchant"]) and is_sealed(t["narration"]) for t in history)
    assert service.complete_bank_link(USER).kind == "nothing"  # a second delivery changes nothing


def test_tokens_and_account_ids_are_sealed_at_rest(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks, db: Any) -> None:
    linked(service, mono)
    service.complete_bank_link(USER)
    dump = json.dumps([list(db[name].find()) for name in ("connections", "profiles", "bank_links", "audit")],
                      default=str)
    assert ACCOUNT not in dump and SENDER not in dump and "0123456789" not in dump
    assert is_sealed(db["connections"].find_one({"_id": USER})["token"])


def test_still_syncing_is_said_honestly_and_the_history_follows_the_update(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks, db: Any) -> None:
    mono.accounts[ACCOUNT].data_status = "PROCESSING"
    linked(service, mono)
    outcome = service.complete_bank_link(USER)
    assert outcome.kind == "connected" and not outcome.data_ready
    assert db["transactions"].count_documents({"user": USER}) == 0
    assert mono_webhook(hooks, mono.updated_webhook(ACCOUNT, "PARTIAL")).delivery is None  # still syncing: no news
    mono.accounts[ACCOUNT].data_status = "AVAILABLE"
    news = mono_webhook(hooks, mono.updated_webhook(ACCOUNT, "AVAILABLE")).delivery
    assert (news.intent, news.entities, news.sender) == ("EXTERNAL_bank_updated", {"bank_event": "synced"}, SENDER)
    assert service.sync_bank_data(USER) == 45


def test_balance_is_pulled_fresh_from_mono(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks) -> None:
    linked(service, mono)
    service.complete_bank_link(USER)
    mono.accounts[ACCOUNT].balance = 1_000_000
    (account,) = service.balances(USER)
    assert account.balance_kobo == 1_000_000
    assert any(r["real_time"] == "true" and r["path"].endswith("/balance") for r in mono.requests)


def test_reauthorisation_required_sends_a_reauth_page(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks) -> None:
    linked(service, mono)
    service.complete_bank_link(USER)
    news = mono_webhook(hooks, mono.reauth_webhook(ACCOUNT)).delivery
    assert news.entities == {"bank_event": "reauth_required"} and news.sender == SENDER
    invitation = service.start_bank_reauth(USER, SENDER)
    reference, body = list(mono.sessions.items())[-1]
    assert body["scope"] == "reauth" and body["account"] == ACCOUNT and invitation.url
    assert mono_webhook(hooks, mono.connected_webhook(reference, ACCOUNT)).delivery is not None
    assert service.complete_bank_link(USER).kind == "reauthorised"


# --------------------------------------------------------------------- errors, money, unlinking


def test_rate_limits_and_outages_become_provider_errors_and_reads_are_retried(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks) -> None:
    linked(service, mono)
    service.complete_bank_link(USER)
    mono.fail_next["/v2/accounts/"] = [500]
    assert service.balances(USER)[0].balance_kobo == 8_765_432  # one 500, then the retry answers
    mono.fail_next["/v2/accounts/"] = [429, 429, 429]
    with pytest.raises(ProviderError) as raised:
        service.balances(USER)
    assert raised.value.reason == "rate_limited" and raised.value.retry_after == 3.0


def test_a_failure_while_completing_lets_the_next_delivery_finish_it(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks) -> None:
    linked(service, mono)
    mono.fail_next["/v2/accounts/"] = [503, 503, 503]
    with pytest.raises(errors.ProviderUnavailable):
        service.complete_bank_link(USER)
    assert service.complete_bank_link(USER).kind == "connected"


def test_bills_cannot_be_paid_through_mono_which_has_no_biller_look_up(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks) -> None:
    linked(service, mono)
    service.complete_bank_link(USER)
    with pytest.raises(errors.ReadOnlyLink):
        service.validate_biller_ref("Ikeja Electric", "45012345678")
    with pytest.raises(errors.ReadOnlyLink):
        service.prepare_bill(USER, 500_000, "savings", "Ikeja Electric", "45012345678")
    assert not mono.payments


def test_disconnect_unlinks_at_mono(service: BankingService, mono: FakeMono, hooks: ProviderWebhooks,
                                    db: Any) -> None:
    linked(service, mono)
    service.complete_bank_link(USER)
    service.disconnect_bank(USER)
    assert not mono.accounts[ACCOUNT].linked
    assert db["connections"].find_one({"_id": USER}) is None
    assert [r["outcome"] for r in db["audit"].find({"user": USER, "action": "revoke"})] == ["executed"]


def test_webhook_shapes_are_read_as_documented() -> None:
    connected = parse_mono_event({"event": "mono.events.account_connected",
                                  "data": {"id": "611d575feef5d3371ca9d0d8", "meta": {"ref": "lnk_x"}}})
    assert (connected.kind, connected.reference, connected.account_id) == ("connected", "lnk_x",
                                                                           "611d575feef5d3371ca9d0d8")
    paid = parse_mono_event({"event": "direct_debit.payment_successful",
                             "data": {"type": "onetime-debit", "object": {"reference": "R1", "status": "successful"}}})
    assert (paid.kind, paid.reference, paid.payment_status) == ("payment", "R1", "successful")
    assert parse_mono_event([1, 2]).kind == "other"


def test_one_mono_account_cannot_be_linked_by_a_second_customer_nor_unlinked_by_them(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks, db: Any) -> None:
    linked(service, mono)
    service.complete_bank_link(USER)
    other, other_sender = "d4" * 32, "2348099990000"
    service.start_bank_link(other, other_sender, "GTBank")  # say the first customer's page was forwarded
    reference = list(mono.sessions)[-1]
    assert mono_webhook(hooks, mono.connected_webhook(reference, ACCOUNT)).delivery.sender == other_sender
    with pytest.raises(errors.InvalidDetails, match="already connected to another WhatsApp number"):
        service.complete_bank_link(other)
    assert not service.is_connected(other)
    assert [r["reason"] for r in db["audit"].find({"user": other, "action": "connect", "outcome": "refused"})] == [
        "linked_to_another_customer"]
    with pytest.raises(errors.NotConnected):
        service.disconnect_bank(other)
    assert mono.accounts[ACCOUNT].linked and service.is_connected(USER)


def test_a_duplicate_link_from_before_never_unlinks_the_other_customers_account_at_mono(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks, db: Any) -> None:
    linked(service, mono)
    service.complete_bank_link(USER)
    record = db["connections"].find_one({"_id": USER})
    db["connections"].drop_index("lookup_1")  # as a database from before the unique index could hold
    db["connections"].insert_one({**record, "_id": "e5" * 32})  # a second holder recorded before then
    service.disconnect_bank(USER)
    assert mono.accounts[ACCOUNT].linked
    assert [r["outcome"] for r in db["audit"].find({"user": USER, "action": "revoke"})] == ["skipped"]


def test_two_customers_finishing_a_link_to_one_account_at_once_one_wins(
        service: BankingService, mono: FakeMono, hooks: ProviderWebhooks, db: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Both pass the early check before either is recorded: the unique index on the account's hash decides."""
    first, second = (USER, SENDER), ("d4" * 32, "2348099990000")
    for user, sender in (first, second):  # say the first customer's page was forwarded
        service.start_bank_link(user, sender, "GTBank")
        reference = list(mono.sessions)[-1]
        assert mono_webhook(hooks, mono.connected_webhook(reference, ACCOUNT)).delivery.sender == sender
    both_checked = threading.Barrier(2, timeout=10)
    check = service._held_by_another

    def check_then_wait(user: str, key: str | None) -> bool:
        held = check(user, key)
        both_checked.wait()
        return held

    monkeypatch.setattr(service, "_held_by_another", check_then_wait)

    def complete(user: str) -> str:
        try:
            return service.complete_bank_link(user).kind
        except errors.InvalidDetails as refusal:
            return str(refusal)

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = dict(zip((first[0], second[0]), pool.map(complete, (first[0], second[0])), strict=True))

    assert sorted(outcomes.values()) == sorted([
        "connected", "that bank account is already connected to another WhatsApp number, "
                     "so it can't be connected here too"])
    (winner,) = [user for user, outcome in outcomes.items() if outcome == "connected"]
    (loser,) = [user for user in outcomes if user != winner]
    assert service.is_connected(winner) and not service.is_connected(loser)
    assert [r["_id"] for r in db["connections"].find({})] == [winner]
    assert [r["reason"] for r in db["audit"].find({"user": loser, "action": "connect", "outcome": "refused"})] == [
        "linked_to_another_customer"]
    assert service.balances(winner) and mono.accounts[ACCOUNT].linked


def test_customers_linked_without_a_provider_account_key_do_not_collide(service: BankingService, db: Any) -> None:
    """Sandbox links keep no provider key: the unique index is sparse, so any number of them is fine."""
    for user in ("a1" * 32, "a2" * 32, "a3" * 32):
        db["connections"].insert_one({"_id": user, "provider": "sandbox", "bank": "GTBank"})
    assert db["connections"].count_documents({}) == 3
