"""Mono DirectPay collects a customer's payment into the operator's own Mono account: Mono's
initiate call names no recipient and nothing pays the recipient on. So money moves through Mono
only with MONO_DIRECTPAY=on (the fake-Mono demo and tests), production refuses to start with it,
and when it is on the customer is told where the money really goes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rasa_sdk.endpoint import create_app
from rasa_sdk.plugin import plugin_manager
from sanic import Sanic

from actions.forms import ValidateAirtimeForm, ValidateTransferForm
from actions.payments import ActionConfirmPending, ActionPrepareAirtime, ActionPrepareTransfer
from banking import errors
from banking.config import Settings
from banking.providers import provider_setting_problems, require_provider_settings
from banking.service import BankingService
from checks.action_runner import DOMAIN, entity, make_tracker, reply_to_confirmation, run
from checks.clock import Clock
from sandbox.fake_mono import FakeMono
from tests.provider_customers import mono_services

TRANSFER_OUT = {"amount": "10000", "source_account": "savings", "destination_account": "0123456780",
                "bank": "Zenith Bank"}
PRODUCTION_MONO = {"ENVIRONMENT": "production", "BANK_PROVIDER": "mono", "MONO_SECRET_KEY": "live_sk_" + "b2" * 12,
                   "MONO_WEBHOOK_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
                   "BANK_LINK_REDIRECT_URL": "https://bank.example/webhooks/whatsapp/bank/done"}


Customer = Callable[[BankingService], BankingService]


def linked(db: Any, clock: Clock, mono: FakeMono, mono_customer: Customer, directpay: bool) -> Iterator[BankingService]:
    with mono_services(db, clock, mono, "directpay-tests", directpay=directpay) as build:
        yield mono_customer(build())


@pytest.fixture
def off(db: Any, clock: Clock, mono: FakeMono, mono_customer: Customer) -> Iterator[BankingService]:
    yield from linked(db, clock, mono, mono_customer, directpay=False)


@pytest.fixture
def on(db: Any, clock: Clock, mono: FakeMono, mono_customer: Customer) -> Iterator[BankingService]:
    yield from linked(db, clock, mono, mono_customer, directpay=True)


def test_the_setting_is_off_unless_turned_on() -> None:
    assert Settings().mono_directpay is False and Settings.from_env({}).mono_directpay is False
    assert Settings.from_env({"MONO_DIRECTPAY": "on"}).mono_directpay is True
    assert Settings.from_env({"MONO_DIRECTPAY": "off"}).mono_directpay is False
    with pytest.raises(errors.ConfigError, match="MONO_DIRECTPAY"):
        Settings.from_env({"MONO_DIRECTPAY": "maybe"})


@pytest.mark.parametrize(("form", "intent", "entities"), [
    (ValidateTransferForm, "transfer_money", [entity("amount", "5000")]),
    (ValidateAirtimeForm, "buy_airtime", [entity("amount", "1000")]),
])
async def test_by_default_a_mono_link_moves_no_money_and_the_form_ends(
        off: BankingService, mono: FakeMono, form: Any, intent: str, entities: list[dict[str, Any]]) -> None:
    outcome = await run(form(), make_tracker("send money", intent, entities))
    assert outcome.responses == ["utter_refuse_read_only_link"]
    assert {"event": "active_loop", "name": None} in [{"event": e["event"], "name": e.get("name")}
                                                      for e in outcome.events]
    assert not off.provider_moves_money and not mono.payments


async def test_by_default_no_mono_payment_can_be_prepared(off: BankingService) -> None:
    outcome = await run(ActionPrepareTransfer(), make_tracker(slots=TRANSFER_OUT))
    assert outcome.responses == ["utter_refuse_read_only_link"]


def test_production_refuses_to_start_with_directpay_on(monkeypatch: pytest.MonkeyPatch) -> None:
    assert provider_setting_problems(PRODUCTION_MONO) == []
    environ = {**PRODUCTION_MONO, "MONO_DIRECTPAY": "on"}
    assert any("MONO_DIRECTPAY" in problem for problem in provider_setting_problems(environ))
    with pytest.raises(errors.ConfigError, match="MONO_DIRECTPAY"):
        require_provider_settings(environ)
    require_provider_settings({**environ, "ENVIRONMENT": "development"})  # the demo and tests
    for name, value in {**environ, "ACTION_SERVER_TOKEN": uuid.uuid4().hex + uuid.uuid4().hex,
                        "ACTION_SERVER_HOST": "127.0.0.1", "SUPPORT_PHONE": "+234 1 800 1234",
                        "SUPPORT_EMAIL": "help@bank.ng"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(Sanic, "test_mode", True)
    with pytest.raises(errors.ConfigError, match="MONO_DIRECTPAY"):
        plugin_manager().hook.attach_sanic_app_extensions(app=create_app("actions"))


async def test_with_directpay_on_the_confirmation_says_where_the_money_goes(on: BankingService) -> None:
    shown = await run(ActionPrepareTransfer(), make_tracker(slots=TRANSFER_OUT))
    assert shown.responses == ["utter_confirm_transfer_directpay"]
    assert "Mono DirectPay" in shown.text and "into our account, to be paid on to" in shown.text
    assert "Send " not in shown.text
    op_id = shown.slot("pending_op_id")
    yes = reply_to_confirmation(op_id, "Yes", entities=[entity("op_ref", op_id)])
    pending = await run(ActionConfirmPending(), yes)
    assert pending.responses == ["utter_payment_pending"] and "into our account" in pending.text


async def test_with_directpay_on_airtime_is_said_to_be_collected_by_us(on: BankingService) -> None:
    slots = {"amount": "1000", "source_account": "savings", "phone_number": "08031234567", "network": "MTN"}
    shown = await run(ActionPrepareAirtime(), make_tracker(slots=slots))
    assert shown.responses == ["utter_confirm_airtime_directpay"]
    assert "Mono DirectPay" in shown.text and "into our account" in shown.text


def test_every_directpay_text_says_the_money_goes_to_our_account_in_both_languages() -> None:
    for name in ("utter_confirm_transfer_directpay", "utter_confirm_airtime_directpay",
                 "utter_payment_pending", "utter_payment_done"):
        variants = DOMAIN["responses"][name]
        assert len(variants) == 2 and all("our account" in v["text"] for v in variants), name
