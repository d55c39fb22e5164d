"""Connecting a bank, language, human handoff and the fallback for unclear messages."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SlotSet, UserUtteranceReverted, UserUttered
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import ValidationAction
from rasa_sdk.types import DomainDict

from actions.accounts import balance_lines
from actions.runtime import banking, call, customer, latest_entity, latest_intent, local_time, utter_refusal
from assistant_llm.fallback import merge_entities
from assistant_llm.runtime import assistant
from banking import errors
from banking.language import reply_language


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
        if banking().links_by_webhook:
            return await send_link_page(dispatcher, tracker, bank)
        try:
            profile = await call(banking().connect_bank, customer(tracker), bank)
        except errors.BankingError as error:
            utter_refusal(dispatcher, error)
            return [SlotSet("bank", None)]
        accounts = await call(banking().balances, customer(tracker), None)
        dispatcher.utter_message(response="utter_bank_connected", bank=profile.bank, lines=balance_lines(accounts))
        return [SlotSet("bank", None)]


async def send_link_page(dispatcher: CollectingDispatcher, tracker: Tracker, bank: str) -> List[EventType]:
    """Mono or Plaid: the provider's page goes in the chat; its webhook finishes the link."""
    try:
        invitation = await call(banking().start_bank_link, customer(tracker), tracker.sender_id, bank)
    except errors.BankingError as error:
        utter_refusal(dispatcher, error)
        return [SlotSet("bank", None)]
    if invitation.already_connected:
        profile = await call(banking().find_profile, customer(tracker))
        dispatcher.utter_message(response="utter_already_connected", bank=profile.bank if profile else bank)
        return [SlotSet("bank", None)]
    assert invitation.expires_at is not None, "a page to open always has an expiry"
    minutes = max(1, round((invitation.expires_at - datetime.now(timezone.utc)).total_seconds() / 60))
    dispatcher.utter_message(response="utter_bank_link_sent", bank=bank, url=invitation.url, minutes=minutes)
    return [SlotSet("bank", None)]


class ActionBankLinked(Action):
    """EXTERNAL_bank_linked: the provider's webhook says the customer finished on its page."""

    def name(self) -> str:
        return "action_bank_linked"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        user = customer(tracker)
        try:
            outcome = await call(banking().complete_bank_link, user)
            if outcome.kind == "nothing":
                return []  # a retried webhook, or a link already finished: the customer was told once
            if outcome.kind == "reauthorised":
                dispatcher.utter_message(response="utter_bank_reauthorised")
                return []
            accounts = await call(banking().balances, user, None)
        except errors.BankingError as error:
            utter_refusal(dispatcher, error)
            return []
        bank = outcome.profile.bank if outcome.profile else ""
        dispatcher.utter_message(response="utter_bank_connected", bank=bank, lines=balance_lines(accounts))
        if not outcome.data_ready:
            dispatcher.utter_message(response="utter_bank_data_syncing")
        if not banking().provider_moves_money:
            dispatcher.utter_message(response="utter_read_only_link_note")
        return []


class ActionBankUpdated(Action):
    """EXTERNAL_bank_updated: data finished syncing, failed to, or the bank wants a fresh login."""

    def name(self) -> str:
        return "action_bank_updated"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        user = customer(tracker)
        news = latest_entity(tracker, "bank_event")
        try:
            if news == "synced":
                await call(banking().sync_bank_data, user)
                dispatcher.utter_message(response="utter_bank_data_ready")
            elif news == "sync_failed":
                dispatcher.utter_message(response="utter_bank_data_failed")
            elif news == "reauth_required":
                invitation = await call(banking().start_bank_reauth, user, tracker.sender_id)
                dispatcher.utter_message(response="utter_bank_reauth_link", url=invitation.url)
            elif news == "link_replaced":
                await tell_link_replaced(dispatcher, user)
            elif news == "link_expired":
                dispatcher.utter_message(response="utter_expired_link_finished")
        except errors.BankingError as error:
            utter_refusal(dispatcher, error)
        return []


async def tell_link_replaced(dispatcher: CollectingDispatcher, user: str) -> None:
    """The customer finished an older link page they had asked to replace: nothing was linked from it.
    They hear what to do now: nothing (a bank is linked), the newest link (until when), or ask again."""
    profile = await call(banking().find_profile, user)
    if profile is not None:
        dispatcher.utter_message(response="utter_old_link_already_connected", bank=profile.bank)
        return
    until = await call(banking().open_link_until, user)
    if until is not None:
        dispatcher.utter_message(response="utter_old_link_use_newest", until=local_time(until))
    else:
        dispatcher.utter_message(response="utter_old_link_connect_again")


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
    """Messages the NLU is unsure about. With Groq configured, the model may name one of the
    domain's intents (which then goes through Rasa again, as Rasa's two-stage fallback does,
    so forms and the YES confirmation still apply) or answer a general question briefly;
    otherwise, and whenever the model's output does not fit, the menu of what the assistant does."""

    def name(self) -> str:
        return "action_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        router = assistant().fallback
        text = tracker.latest_message.get("text") or ""
        if not router.enabled or latest_intent(tracker) != "nlu_fallback":
            dispatcher.utter_message(response="utter_fallback")
            return []
        decision = await router.route(
            text=text,
            language=tracker.get_slot("language") or "english",
            intents=domain_names(domain.get("intents")),
            entities=domain_names(domain.get("entities")),
            user=customer(tracker),
            active_form=tracker.active_loop_name,
        )
        if decision.action == "intent" and decision.intent:
            return rephrased(tracker, text, decision.intent, decision.entities)
        if decision.action == "answer" and decision.answer:
            dispatcher.utter_message(text=decision.answer)
            return []
        dispatcher.utter_message(response="utter_fallback")
        return []


def domain_names(items: Any) -> List[str]:
    """Intent or entity names from the domain (plain names or {name: {...}} entries)."""
    names: List[str] = []
    for item in items or []:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict):
            names.extend(str(key) for key in item)
    return names


def rephrased(tracker: Tracker, text: str, intent: str, entities: Any) -> List[EventType]:
    """Forget the unclear message and replay it with the intent the model named (as two-stage fallback does)."""
    merged = merge_entities(tracker.latest_message.get("entities") or [], entities)
    parse_data = {
        "text": text,
        "intent": {"name": intent, "confidence": 1.0},
        "intent_ranking": [{"name": intent, "confidence": 1.0}],
        "entities": merged,
    }
    return [
        UserUtteranceReverted(),
        ActionExecuted("action_listen"),
        UserUttered(text, parse_data=parse_data, input_channel=tracker.get_latest_input_channel()),
    ]


class ValidatePredefinedSlots(ValidationAction):
    """Runs after every user message: keeps the reply language in step with the customer, and the
    menus in step with what the deployment's bank connection can do (``bank_moves_money``).

    Rasa works out the same two slots in its own process without calling here
    (connectors/rasa_patches.py); this is what it would be told if it called.
    """

    def name(self) -> str:
        return "action_validate_slot_mappings"

    async def extract_bank_moves_money(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """Picks the menus' read-only variations (domain/social.yml) where the bank connection only reads
        (Plaid, Mono without DirectPay): no transfers, bills or airtime offered. Said only when it changes."""
        moves_money = banking().provider_moves_money
        return {} if tracker.get_slot("bank_moves_money") == moves_money else {"bank_moves_money": moves_money}

    async def extract_language(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        language = reply_language(
            latest_intent(tracker),
            latest_entity(tracker, "language"),
            tracker.latest_message.get("text") or "",
            tracker.get_slot("language"),
        )
        return {"language": language} if language is not None else {}
