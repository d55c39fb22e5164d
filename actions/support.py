"""Connecting a bank, language, human handoff and the fallback for unclear messages."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import ValidationAction
from rasa_sdk.types import DomainDict

from actions.accounts import balance_lines
from actions.runtime import banking, call, customer, latest_entity, latest_intent, utter_refusal
from banking import errors
from banking.language import detect_language


class ActionConnectBank(Action):
    """Links the bank chosen in connect_bank_form (the sandbox completes at once)."""

    def name(self) -> str:
        return "action_connect_bank"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        bank = tracker.get_slot("bank")
        if not bank:
            return []  # the form stopped early and already said why
        try:
            profile = await call(banking().connect_bank, customer(tracker), bank)
        except errors.BankingError as error:
            utter_refusal(dispatcher, error)
            return [SlotSet("bank", None)]
        accounts = await call(banking().balances, customer(tracker), None)
        dispatcher.utter_message(response="utter_bank_connected", bank=profile.bank, lines=balance_lines(accounts))
        return [SlotSet("bank", None)]


class ActionHumanHandoff(Action):
    """Gives the bank's support contact and flags the conversation for an agent."""

    def name(self) -> str:
        return "action_human_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        service = banking()
        ticket = await call(service.request_handoff, customer(tracker), "customer asked for a person")
        dispatcher.utter_message(
            response="utter_handoff",
            ticket=ticket,
            support_phone=service.settings.support_phone,
            support_email=service.settings.support_email,
            support_hours=service.settings.support_hours,
        )
        return [SlotSet("handoff_requested", True)]


class ActionChangeLanguage(Action):
    def name(self) -> str:
        return "action_change_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        # the `language` slot was already switched by action_validate_slot_mappings
        dispatcher.utter_message(response="utter_language_changed")
        return []


class ActionFallback(Action):
    """Messages the NLU is unsure about: for now, the menu of what the assistant does."""

    def name(self) -> str:
        return "action_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        dispatcher.utter_message(response="utter_fallback")
        return []


class ValidatePredefinedSlots(ValidationAction):
    """Runs after every user message: keeps the reply language in step with the customer."""

    def name(self) -> str:
        return "action_validate_slot_mappings"

    async def extract_language(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        current: str | None = tracker.get_slot("language")
        if latest_intent(tracker) == "change_language":
            asked = latest_entity(tracker, "language")
            if asked in ("english", "pidgin"):
                return {"language": asked}
            return {"language": "english" if current == "pidgin" else "pidgin"}
        detected = detect_language(tracker.latest_message.get("text") or "", current or "english")
        return {"language": detected} if detected != current else {}
