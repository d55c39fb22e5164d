"""A customer who asked to connect twice and then finished the first (replaced) link at the
provider: nothing is linked from it, and the same conversation hears what to do, once, however
often the provider sends its webhook. Real HTTP to the fake Mono and Plaid on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from actions.runtime import local_time
from actions.support import ActionBankUpdated
from banking import errors
from banking.config import Settings
from banking.identity import user_key
from banking.linking import LINK_TTL
from banking.plaid_provider import PlaidConfig, PlaidProvider
from banking.provider_webhooks import ProviderWebhooks
from banking.service import BankingService
from checks.action_runner import DOMAIN, SENDER, entity, make_tracker, run
from checks.clock import Clock
from sandbox.fake_mono import FakeMono
from sandbox.fake_plaid import CLIENT_ID, SECRET, FakePlaid
from tests.provider_customers import MONO_ACCOUNT, mono_services, mono_webhook

SALT = "action-tests"
USER = user_key(SENDER, SALT)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(timezone.utc).replace(microsecond=0))


@pytest.fixture
def service(db: Any, clock: Clock, mono: FakeMono, serve: Any) -> Iterator[BankingService]:
    with mono_services(db, clock, mono, SALT) as build:
        yield serve(build())


def asked_twice(service: BankingService, mono: FakeMono, clock: Clock) -> tuple[str, str]:
    """The customer asks to connect GTBank, then a minute later asks again: the first link is replaced."""
    service.start_bank_link(USER, SENDER, "GTBank")
    clock.advance(minutes=1)
    service.start_bank_link(USER, SENDER, "GTBank")
    first, newest = list(mono.sessions)
    return first, newest


async def told(delivery: Any) -> Any:
    """The conversation's turn for the delivery's external intent (the rule runs action_bank_updated)."""
    entities = [entity(name, value) for name, value in delivery.entities.items()]
    return await run(ActionBankUpdated(), make_tracker(intent=delivery.intent, entities=entities,
                                                       sender=delivery.sender))


def pidgin(message: dict[str, Any]) -> str:
    variant = next(v for v in DOMAIN["responses"][message["response"]] if "condition" in v)
    return str(variant["text"]).format(**{k: v for k, v in message.items() if k != "response"})


async def test_finishing_the_replaced_link_links_nothing_and_says_use_the_newest(
        service: BankingService, mono: FakeMono, clock: Clock) -> None:
    first, _ = asked_twice(service, mono, clock)
    newest_expires = service.open_link_until(USER)

    result = mono_webhook(ProviderWebhooks(service), mono.connected_webhook(first, MONO_ACCOUNT))

    assert result.status == 200 and result.delivery is not None
    assert result.delivery.sender == SENDER and result.delivery.intent == "EXTERNAL_bank_updated"
    assert service.find_profile(USER) is None  # nothing linked from the old page
    with pytest.raises(errors.LinkPending):  # the newest link is still the one to finish
        service.complete_bank_link(USER)
    reply = await told(result.delivery)
    assert newest_expires is not None
    assert reply.text == ("That bank page was from an older link I had already replaced with a newer one, so "
                          "nothing was connected from it. Please open the newest link I sent you "
                          f"(it works until {local_time(newest_expires)}).")
    assert pidgin(reply.messages[0]).startswith("That bank page na from old link wey I don replace with new one")
    assert SENDER not in reply.text and first not in reply.text


async def test_the_customer_is_told_once_however_often_the_provider_sends_it(
        service: BankingService, mono: FakeMono, clock: Clock) -> None:
    first, _ = asked_twice(service, mono, clock)
    hooks = ProviderWebhooks(service)
    body = mono.connected_webhook(first, MONO_ACCOUNT)

    assert mono_webhook(hooks, body).delivery is not None
    retry = mono_webhook(hooks, body)  # the same delivery again
    another = mono_webhook(hooks, {**body, "event_id": "evt-again"})  # a new delivery of the same news
    assert retry.status == 200 and retry.delivery is None
    assert another.status == 200 and another.delivery is None


async def test_the_old_link_finished_after_the_newest_one_changes_nothing(
        service: BankingService, mono: FakeMono, clock: Clock) -> None:
    first, newest = asked_twice(service, mono, clock)
    hooks = ProviderWebhooks(service)
    assert mono_webhook(hooks, mono.connected_webhook(newest, MONO_ACCOUNT)).delivery.intent == "EXTERNAL_bank_linked"
    assert service.complete_bank_link(USER).kind == "connected"
    accounts = service.find_profile(USER).accounts

    late = mono_webhook(hooks, mono.connected_webhook(first, MONO_ACCOUNT))
    reply = await told(late.delivery)

    assert reply.text == ("That bank page was from an older link I had already replaced, so nothing more was "
                          "connected from it. GTBank is already connected here.")
    assert service.complete_bank_link(USER).kind == "nothing"  # never linked twice
    assert service.find_profile(USER).accounts == accounts


async def test_when_the_newest_link_expired_too_the_customer_is_asked_to_connect_again(
        service: BankingService, mono: FakeMono, clock: Clock) -> None:
    first, _ = asked_twice(service, mono, clock)
    result = mono_webhook(ProviderWebhooks(service), mono.connected_webhook(first, MONO_ACCOUNT))
    clock.advance(seconds=LINK_TTL.total_seconds() + 1)

    reply = await told(result.delivery)

    assert reply.text == ("That bank page was from an older link I had already replaced, so nothing was "
                          "connected from it. Say \"connect bank\" and I'll send you a fresh link.")


async def test_a_replaced_plaid_link_finished_is_said_too(db: Any, serve: Any) -> None:
    plaid = FakePlaid().start()
    try:
        config = PlaidConfig.from_env({"PLAID_CLIENT_ID": CLIENT_ID, "PLAID_SECRET": SECRET, "PLAID_ENV": "sandbox",
                                       "PLAID_BASE_URL": plaid.base_url,
                                       "PLAID_WEBHOOK_URL": "https://bank.example/webhooks/whatsapp/bank/plaid"})
        service = serve(BankingService(db, PlaidProvider(config), Settings(user_id_salt=SALT, bank_provider="plaid"),
                                       clock=Clock(datetime.now(timezone.utc))))
        service.start_bank_link(USER, SENDER, None)
        service.start_bank_link(USER, SENDER, None)
        first = list(plaid.link_tokens)[0]
        plaid.finish(first)
        body, signature = plaid.signed(plaid.session_finished(first))

        result = ProviderWebhooks(service).handle("plaid", body, {"plaid-verification": signature})

        assert result.status == 200 and result.delivery is not None
        assert service.find_profile(USER) is None
        assert (await told(result.delivery)).text.startswith(
            "That bank page was from an older link I had already replaced with a newer one")
    finally:
        plaid.stop()


# ---------------------------------------------------------------- a link finished after it expired


async def test_finishing_an_expired_link_links_nothing_and_says_ask_for_a_fresh_one(
        service: BankingService, mono: FakeMono, clock: Clock) -> None:
    service.start_bank_link(USER, SENDER, "GTBank")
    (reference,) = list(mono.sessions)
    clock.advance(seconds=LINK_TTL.total_seconds() + 60)  # the customer comes back to the page too late
    hooks = ProviderWebhooks(service)
    body = mono.connected_webhook(reference, MONO_ACCOUNT)

    result = mono_webhook(hooks, body)

    assert result.status == 200 and result.delivery is not None
    assert result.delivery.sender == SENDER and result.delivery.intent == "EXTERNAL_bank_updated"
    assert service.find_profile(USER) is None
    reply = await told(result.delivery)
    assert reply.text == ("That bank page was from a link that had expired, so nothing was connected from it. "
                          "Say \"connect bank\" and I'll send you a fresh link.")
    assert pidgin(reply.messages[0]).startswith("That bank page na from link wey don expire")
    assert mono_webhook(hooks, body).delivery is None  # the provider's retry: said once
    assert mono_webhook(hooks, {**body, "event_id": "evt-again"}).delivery is None


async def test_a_link_finished_in_time_still_connects(service: BankingService, mono: FakeMono, clock: Clock) -> None:
    service.start_bank_link(USER, SENDER, "GTBank")
    (reference,) = list(mono.sessions)
    clock.advance(seconds=LINK_TTL.total_seconds() - 60)

    result = mono_webhook(ProviderWebhooks(service), mono.connected_webhook(reference, MONO_ACCOUNT))

    assert result.delivery is not None and result.delivery.intent == "EXTERNAL_bank_linked"
    assert service.complete_bank_link(USER).kind == "connected"
