"""Scripted conversations as Rasa would log them, fed through the analytics broker.

Every conversation is written as the tracker events Rasa's processor produces for it
(action, then the action's bot messages and events), with explicit timestamps, so the
KPIs computed from them can be checked against figures counted by hand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    Event,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)

from analytics.broker import AnalyticsEventBroker
from analytics.kpis import LAGOS
from analytics.store import MemoryAnalyticsStore

SALT = "analytics-kpi-test-salt-1a2b3c4d"
A, B, C, D = "2348030000001", "2348030000002", "2348030000003", "2348030000004"
# What customers typed: it must never reach the analytics store.
SECRETS = ["0123456789", "08031234567", "25,000", "gtbank", "ikeja electric", "mtn"]


def at(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2026, 3, day, hour, minute, tzinfo=LAGOS).timestamp()


class Script:
    """One conversation of one customer, written event by event."""

    def __init__(self, sender: str, start: float) -> None:
        self.sender, self.start = sender, start
        self.events: list[Event] = []

    def _add(self, event: Event, offset: float) -> None:
        event.timestamp = self.start + offset
        self.events.append(event)

    def session(self) -> Script:
        for event in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
            self._add(event, 0)
        return self

    def user(self, offset: float, intent: str, confidence: float = 0.95, text: str = "send 25,000 to 0123456789 "
             "gtbank or 08031234567", **entities: str) -> Script:
        parse = {
            "text": text,
            "intent": {"name": intent, "confidence": confidence},
            "intent_ranking": [{"name": intent, "confidence": confidence}],
            "entities": [{"entity": name, "value": value} for name, value in entities.items()],
        }
        self._add(UserUttered(text, parse_data=parse, input_channel="whatsapp"), offset)
        return self

    def act(self, offset: float, name: str, *responses: str | None, form: str | None = "", step: str | None = "",
            listen: bool = True, close: bool = False) -> Script:
        """An action, its bot messages (a name, or None for free text), then its events."""
        self._add(ActionExecuted(name, policy="RulePolicy", confidence=1.0), offset)
        for response in responses:
            metadata: dict[str, Any] = {"utter_action": response} if response else {}
            self._add(BotUttered("Sent ₦25,000 to 0123456789", metadata={**metadata, "amount": "₦25,000"}), offset)
        if form:
            self._add(ActiveLoop(form), offset)
        if step != "":
            self._add(SlotSet("requested_slot", step), offset)
        if close:  # a form activated and closed in the same run (all slots given, or refused at once)
            self._add(SlotSet("requested_slot", None), offset)
        if form is None or close:
            self._add(ActiveLoop(None), offset)
        if listen:
            self._add(ActionExecuted("action_listen"), offset)
        return self

    def rewind_to(self, offset: float, intent: str) -> Script:
        """The LLM fallback named an intent: the message is taken back and replayed."""
        self._add(UserUtteranceReverted(), offset)
        self._add(ActionExecuted("action_listen"), offset)
        return self.user(offset, intent, 1.0)


def conversations() -> list[Script]:
    a1 = (Script(A, at(2, 9)).session()
          .user(0, "greet", text="hi").act(0.25, "utter_greet", "utter_greet")
          .user(10, "connect_bank").act(10.4, "connect_bank_form", "utter_ask_bank", form="connect_bank_form",
                                        step="bank")
          .user(20, "inform", text='/inform{"bank":"GTBank"}', bank="GTBank")
          .act(20.1, "connect_bank_form", step=None, form=None, listen=False)
          .act(20.5, "action_connect_bank", "utter_bank_connected")
          .user(40, "transfer_money", amount="25000", account_number="0123456789")
          .act(40.3, "transfer_form", "utter_ask_source_account", form="transfer_form", step="source_account")
          .user(50, "inform").act(50.1, "transfer_form", step=None, form=None, listen=False)
          .act(50.6, "action_prepare_transfer", "utter_confirm_transfer")
          .user(60, "affirm").act(60.8, "action_confirm_pending", "utter_transfer_done", "utter_ask_feedback")
          .user(70, "rate_experience", 1.0, text='/rate_experience{"rating":"good"}', rating="good")
          .act(70.1, "action_record_feedback", "utter_feedback_thanks"))
    a2 = (Script(A, at(2, 13)).session()
          .user(0, "pay_bill").act(0.3, "bill_form", "utter_ask_biller", form="bill_form", step="biller")
          .user(15, "inform", text="ikeja electric").act(15.2, "bill_form", "utter_ask_customer_ref",
                                                        step="customer_ref")
          .user(30, "cancel").act(30.2, "action_cancel_flow", "utter_cancelled", step=None, form=None)
          .user(45, "nlu_fallback", 0.31).act(46.0, "action_fallback", None))
    b1 = (Script(B, at(2, 10)).session()
          .user(0, "check_balance").act(0.3, "action_check_balance", "utter_balances")
          .user(20, "buy_airtime").act(20.3, "airtime_form", "utter_ask_network", form="airtime_form",
                                       step="network")
          .user(30, "inform", text="mtn").act(30.3, "airtime_form", "utter_ask_phone_number", step="phone_number")
          .user(40, "inform").act(40.3, "airtime_form", "utter_ask_amount", step="amount")
          .user(50, "inform").act(50.3, "airtime_form", "utter_ask_source_account", step="source_account")
          .user(60, "inform").act(60.1, "airtime_form", step=None, form=None, listen=False)
          .act(60.5, "action_prepare_airtime", "utter_confirm_airtime")
          .user(70, "deny").act(70.3, "action_cancel_pending", "utter_cancelled")
          .user(80, "human_handoff").act(80.4, "action_human_handoff", "utter_handoff"))
    b2 = (Script(B, at(3, 9)).session()
          .user(0, "nlu_fallback", 0.22).act(1.5, "action_fallback", listen=False).rewind_to(1.5, "transfer_money")
          .act(1.8, "transfer_form", "utter_ask_amount", form="transfer_form", step="amount")
          .user(20, "inform").act(20.3, "transfer_form", "utter_ask_source_account", step="source_account"))
    c1 = (Script(C, at(3, 11)).session()
          .user(0, "transfer_money").act(0.4, "transfer_form", "utter_not_connected", form="transfer_form",
                                         close=True, listen=False)
          .act(0.5, "action_prepare_transfer")
          .user(30, "greet").act(30.2, "utter_greet", "utter_greet"))
    a3 = (Script(A, at(3, 15)).session()
          .user(0, "pay_bill").act(0.3, "bill_form", "utter_ask_biller", form="bill_form", step="biller")
          .user(10, "inform").act(10.3, "bill_form", "utter_ask_customer_ref", step="customer_ref")
          .user(20, "inform").act(20.3, "bill_form", "utter_ask_amount", step="amount")
          .user(30, "inform").act(30.3, "bill_form", "utter_ask_source_account", step="source_account")
          .user(40, "inform").act(40.1, "bill_form", step=None, form=None, listen=False)
          .act(40.7, "action_prepare_bill_payment", "utter_confirm_bill")
          .user(50, "affirm").act(50.9, "action_confirm_pending", "utter_refuse_insufficient_funds")
          .user(60, "transfer_money").act(60.1, "transfer_form", form="transfer_form", close=True, listen=False)
          .act(60.6, "action_prepare_transfer", "utter_confirm_transfer")
          .user(660, "affirm").act(660.3, "action_confirm_pending", "utter_confirmation_expired")
          .user(670, "rate_experience", 1.0, text='/rate_experience{"rating":"good"}', rating="good")
          .act(670.1, "action_record_feedback", "utter_feedback_already"))
    d1 = (Script(D, at(3, 12)).session()
          .user(0, "transfer_money").act(0.2, "transfer_form", form="transfer_form", close=True, listen=False)
          .act(0.4, "action_prepare_transfer", "utter_confirm_transfer")
          .user(10, "affirm").act(10.6, "action_confirm_pending", "utter_transfer_done", "utter_ask_feedback")
          .user(20, "rate_experience", 1.0, text='/rate_experience{"rating":"bad"}', rating="bad")
          .act(20.1, "action_record_feedback", "utter_feedback_thanks")
          .user(25, "rate_experience", 1.0, text='/rate_experience{"rating":"good"}', rating="good")
          .act(25.1, "action_record_feedback", "utter_feedback_already"))
    return [a1, a2, b1, b2, c1, a3, d1]


def recorded(scripts: list[Script] | None = None) -> MemoryAnalyticsStore:
    """The store after the broker received every scripted event (in conversation order)."""
    store = MemoryAnalyticsStore()
    broker = AnalyticsEventBroker(store, SALT)
    for script in scripts or conversations():
        for event in script.events:
            broker.publish({"sender_id": script.sender, **event.as_dict()})
    assert broker.flush()
    return store
