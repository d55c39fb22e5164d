"""Validation of the transfer, bill, airtime and connect-bank forms.

Slots are filled by Rasa's mappings (domain.yml) or, where a value depends on the
question being asked, by the `extract_<slot>` methods here. Each `validate_<slot>`
either accepts a canonical value or answers with the reason and asks again.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from decimal import Decimal
from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.runtime import FLOW_SLOTS, account_label, banking, call, customer, latest_intent, utter_refusal
from banking import catalog, errors
from banking.models import ACCOUNT_ORDER, Account
from banking.money import amount_entity_value, format_naira, parse_amount_kobo
from banking.number_roles import read_numbers
from banking.phone import normalise_phone_number

FROM_WORDS = {"from", "frm", "fr", "out", "of", "comot"}
TO_WORDS = {"to", "into", "2", "enter", "inside", "for", "go"}
SELF_PHONE_WORDS = re.compile(r"\b(my (own )?(number|line|phone|sim)|myself|me)\b", re.I)
TEN_DIGITS = re.compile(r"(?<!\d)\d{10}(?!\d)")


def _latest_text(tracker: Tracker) -> str:
    return tracker.latest_message.get("text") or ""


def _entities(tracker: Tracker, name: str) -> List[Dict[str, Any]]:
    return [e for e in tracker.latest_message.get("entities", []) if e.get("entity") == name]


# nlu_fallback too: an unsure intent with the very entity the form asked for is still an answer
FORM_INTENTS = {"inform", "transfer_money", "pay_bill", "buy_airtime", "connect_bank", "nlu_fallback"}


def _answers_form(tracker: Tracker) -> bool:
    """Only a form answer fills form slots; "what's my savings balance?" mid-form does not."""
    return latest_intent(tracker) in FORM_INTENTS


FILLER_WORDS = {"my", "own", "the", "our", "mi", "me", "am", "d"}


def _word_before(text: str, entity: Dict[str, Any]) -> str | None:
    """The word that governs an entity: "to my savings" -> "to"."""
    if "start" not in entity:
        return None
    words = [w for w in re.findall(r"[\w']+", text[: entity["start"]].lower()) if w not in FILLER_WORDS]
    return words[-1] if words else None


def _account_type_after(text: str, entities: List[Dict[str, Any]], words: set) -> str | None:
    for entity in entities:
        if _word_before(text, entity) in words:
            return catalog.canonical_account_type(str(entity.get("value")))
    return None


class MoneyForm(FormValidationAction, ABC):
    """What every money form does when it starts: refuse early, and forget stale answers.

    At the start (see `form_is_starting`) a
    customer who has no bank or whose accounts are frozen is told so before any
    question, and every flow slot the triggering message did not set is cleared, so an
    amount typed for an abandoned transfer can never slip into a bill payment.
    """

    kind: str = ""  # the money movement: "transfer", "bill" or "airtime"

    @abstractmethod
    def name(self) -> str:
        """validate_<form>"""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """A refusal that no answer can change (a read-only link, at the start or met by a look-up
        mid-form) ends the form with its one message, as no bank or a freeze does."""
        try:
            return await self._validate(dispatcher, tracker, domain)
        except errors.ReadOnlyLink as refusal:
            utter_refusal(dispatcher, refusal)
            return end_form()

    async def _validate(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        if not form_is_starting(tracker, self.form_name()):
            return await answered_or_asked_again(super(), dispatcher, tracker, domain)
        profile = await call(banking().find_profile, customer(tracker))
        if profile is None:
            dispatcher.utter_message(response="utter_not_connected")
            return end_form()
        banking().check_can_pay(self.kind)  # before a question the customer could never usefully answer
        if profile.frozen:
            dispatcher.utter_message(response="utter_refuse_frozen")
            return end_form()
        fresh = slots_set_this_turn(tracker)
        stale = [s for s in FLOW_SLOTS if s not in fresh and tracker.get_slot(s) is not None]
        for name in stale:
            tracker.slots[name] = None  # extract and validate below against the fresh state
        tracker.slots["requested_slot"] = None  # a question of the previous form is not ours
        return [SlotSet(name, None) for name in stale] + await super().run(dispatcher, tracker, domain)


def end_form() -> List[EventType]:
    """Stops the money form under way: its answers forgotten, no question pending, the loop closed."""
    return [*(SlotSet(s, None) for s in FLOW_SLOTS), SlotSet("requested_slot", None), ActiveLoop(None)]


def form_is_starting(tracker: Tracker, form: str) -> bool:
    """True on the turn a form is activated, also when it replaces another form.

    Depending on the path, Rasa hands the validation action a tracker where the form
    is not active yet, or where its activation is among this turn's events.
    """
    if tracker.active_loop.get("name") != form:
        return True
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return False
        if event.get("event") == "active_loop" and event.get("name") == form:
            return True
    return False


def slots_set_this_turn(tracker: Tracker) -> set:
    names = set()
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            break
        if event.get("event") == "slot":
            names.add(event.get("name"))
    return names | set(tracker.slots_to_validate())


# Intents that answer a form's question; anything else mid-form (a balance question,
# help, cancel) is left to the rules in data/rules/digressions.yml.
ANSWER_INTENTS = {"inform", "nlu_fallback"}


async def answered_or_asked_again(
    form: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
) -> List[EventType]:
    """Runs a form's validation; an answer that fills nothing gets the question again.

    Without this Rasa rejects the form, and for an answer no rule covers ("checking"
    when asked for a phone number) nothing recovers the conversation.
    """
    events = await form.run(dispatcher, tracker, domain)
    requested = tracker.get_slot("requested_slot")
    filled = any(e.get("event") == "slot" and e.get("name") != "requested_slot" for e in events)
    if requested and not filled and latest_intent(tracker) in ANSWER_INTENTS:
        dispatcher.utter_message(response="utter_not_an_answer")
        events.append(SlotSet(requested, None))  # a validated slot: Rasa asks the question again
    return events


# ---------------------------------------------------------------- the customer's own accounts
# The sandbox opens Checking and Savings, which the domain's fixed questions and buttons name.
# A provider's link (Mono, Plaid) holds whatever accounts the customer really has: often one.
FIXED_ACCOUNTS = {("checking", "Checking"), ("savings", "Savings")}


async def own_accounts(tracker: Tracker) -> List[Account]:
    """The customer's linked accounts (none when no bank is linked); read from our records, no provider call."""
    profile = await call(banking().find_profile, customer(tracker))
    return list(profile.accounts) if profile is not None else []


def named_by_fixed_question(accounts: List[Account]) -> bool:
    """True when the domain's fixed Checking / Savings question is exactly right for these accounts."""
    return not accounts or {(account.key, account.name) for account in accounts} == FIXED_ACCOUNTS


def accounts_meant(value: str, accounts: List[Account]) -> List[Account]:
    """The accounts a slot value names: one by its key (what a button sends, "checking_2"), else every
    account of the type named ("my current account" is each checking account)."""
    exact = [account for account in accounts if account.key == value]
    if exact:
        return exact
    kind = catalog.canonical_account_type(value)
    return [account for account in accounts if account.type == kind] if kind else []


# "2222" alone, or "the one ending (in) 2222", "last four 2222" (and no other four digits after):
# never any four digits in a message, which may be an amount, a phone number or part of someone
# else's account number.
LAST_DIGITS = re.compile(r"^\W*(\d{4})\W*$"
                         r"|\b(?:ending|ends|end|last\s+(?:4|four)(?:\s+digits)?)\b\D*?(?<!\d)(\d{4})(?!\d)(?!.*\d{4})",
                         re.IGNORECASE)


def account_in_text(text: str, accounts: List[Account]) -> Account | None:
    """The one account a typed answer names by its last four digits or its own name ("the one ending
    0000", "Plaid Saving"); None when it names none, or more than one. A name counts as whole words;
    where one name is part of another ("Gold", "Gold Saving"), the longer one said is meant."""
    digits = LAST_DIGITS.search(text.strip())
    if digits:
        by_digits = [a for a in accounts if a.masked_number[-4:] == (digits.group(1) or digits.group(2))]
        return by_digits[0] if len(by_digits) == 1 else None
    said = [a for a in accounts if a.name.strip()
            and re.search(rf"(?<!\w){re.escape(a.name.strip())}(?!\w)", text, re.IGNORECASE)]
    longest = [a for a in said if not any(a.name.lower() in b.name.lower() and a.name != b.name for b in said)]
    return longest[0] if len(longest) == 1 else None


def account_lines(accounts: List[Account]) -> str:
    return "\n".join(f"• {account.name} ({account.masked_number})" for account in accounts)


BUTTON_TITLE = 20  # WhatsApp's limit for a reply button's title


def account_button_title(account: Account) -> str:
    """The account's name and last four digits within a button's 20 characters ("Plaid Checking 0000"):
    the digits, which tell two accounts apart, are never the part cut off."""
    digits = account.masked_number[-4:]
    return f"{account.name[:BUTTON_TITLE - len(digits) - 1].rstrip()} {digits}"


def account_buttons(accounts: List[Account]) -> List[Dict[str, str]]:
    """One reply button per account; the payload is the one NLU, stories and the fixed buttons use."""
    return [{"title": account_button_title(account),
             "payload": "/inform" + json.dumps({"account_type": account.key}, separators=(",", ":"))}
            for account in accounts]


def account_named(account: Account) -> str:
    return f"{account.name} ({account.masked_number})"


def utter_which_of_type(dispatcher: CollectingDispatcher, same_type: List[Account]) -> None:
    """A type the customer holds more than once ("from my checking"): which one, never a guess."""
    dispatcher.utter_message(response="utter_which_account", kind=account_label(same_type[0].type),
                             count=len(same_type), accounts=account_lines(same_type),
                             buttons=account_buttons(same_type))


def utter_unknown_account(dispatcher: CollectingDispatcher, accounts: List[Account]) -> None:
    """An account the customer does not have: the accounts they do have, to pick from."""
    if named_by_fixed_question(accounts):
        dispatcher.utter_message(response="utter_unknown_account_type")
    else:
        dispatcher.utter_message(response="utter_unknown_account_listed", accounts=account_lines(accounts),
                                 buttons=account_buttons(accounts))


class ActionAskSourceAccount(Action):
    """The money forms' question for the source account, with the customer's real accounts as buttons."""

    def name(self) -> str:
        return "action_ask_source_account"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        accounts = await own_accounts(tracker)
        if named_by_fixed_question(accounts):
            dispatcher.utter_message(response="utter_ask_source_account")
        else:
            dispatcher.utter_message(response="utter_ask_source_account_listed", accounts=account_lines(accounts),
                                     buttons=account_buttons(accounts))
        return []


class ActionAskDestinationAccount(Action):
    """Where a transfer goes: an account number, or one of the customer's other own accounts."""

    def name(self) -> str:
        return "action_ask_destination_account"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        accounts = await own_accounts(tracker)
        if named_by_fixed_question(accounts):
            dispatcher.utter_message(response="utter_ask_destination_account")
            return []
        others = [account for account in accounts if account.key != tracker.get_slot("source_account")]
        if others:
            dispatcher.utter_message(response="utter_ask_destination_account_listed", accounts=account_lines(others),
                                     buttons=account_buttons(others))
        else:  # one account: the money can only go to someone else's
            dispatcher.utter_message(response="utter_ask_destination_account_number")
        return []


class SourceAccountMixin:
    async def extract_source_account(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        if not _answers_form(tracker):
            return {}
        entities = _entities(tracker, "account_type")
        if tracker.get_slot("requested_slot") == "source_account":
            named = account_in_text(_latest_text(tracker), await own_accounts(tracker))
            if named is not None:  # "the one ending 0000"
                return {"source_account": named.key}
            if entities:
                return {"source_account": str(entities[0].get("value"))}
        source = _account_type_after(_latest_text(tracker), entities, FROM_WORDS) if entities else None
        if source:
            return {"source_account": source}
        if tracker.get_slot("source_account") is None:
            accounts = await own_accounts(tracker)
            if len(accounts) == 1:  # nothing to choose: the money can only come from it
                return {"source_account": accounts[0].key}
        return {}

    async def validate_source_account(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        accounts = await own_accounts(tracker)
        if not accounts:  # no bank linked yet: the form's start has said so; the type is kept as asked
            account = catalog.canonical_account_type(str(slot_value))
            if account is None:
                utter_unknown_account(dispatcher, accounts)
            return {"source_account": account}
        meant = accounts_meant(str(slot_value), accounts)
        if not meant:
            if len(accounts) == 1:  # named one they do not have: the only one is said, and shown again before YES
                only = accounts[0]
                asked = account_label(catalog.canonical_account_type(str(slot_value))) or str(slot_value)
                dispatcher.utter_message(response="utter_source_only_account", asked=asked,
                                         account=account_named(only))
                return {"source_account": only.key}
            utter_unknown_account(dispatcher, accounts)
            return {"source_account": None}
        if len(meant) > 1:
            utter_which_of_type(dispatcher, meant)
            return {"source_account": None}
        account = meant[0].key
        if account == tracker.get_slot("destination_account") and len(accounts) > 1:
            # (with one account, the destination's own check says it is their only one)
            dispatcher.utter_message(response="utter_same_account")
            return {"source_account": None}
        return {"source_account": account}


class AmountMixin:
    async def extract_amount(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """A bare "5000" answering "How much?" is an amount even if NLU missed it; two different
        amounts in one message ("5k or 3k") are never chosen between: the customer is asked."""
        if _entities(tracker, "amount") or not _answers_form(tracker):
            return {}
        seen = read_numbers(_latest_text(tracker)).distinct_amounts
        if len(seen) > 1 and not tracker.get_slot("amount"):
            dispatcher.utter_message(response="utter_two_amounts", amounts=" and ".join(
                format_naira(parse_amount_kobo(value) or 0) for value in sorted(seen, key=Decimal)))
            return {}
        if tracker.get_slot("requested_slot") != "amount":
            return {}
        value = amount_entity_value(_latest_text(tracker))
        return {"amount": value} if value else {}

    def validate_amount(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        value = amount_entity_value(str(slot_value))
        if value is None:
            dispatcher.utter_message(response="utter_invalid_amount")
        return {"amount": value}


class ValidateTransferForm(SourceAccountMixin, AmountMixin, MoneyForm):
    kind = "transfer"

    def name(self) -> str:
        return "validate_transfer_form"

    async def required_slots(
        self, domain_slots: List[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[str]:
        destination = tracker.get_slot("destination_account")
        if destination and not destination.isdigit():
            return [slot for slot in domain_slots if slot != "bank"]  # own account: no bank to ask
        return domain_slots

    async def extract_destination_account(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        if not _answers_form(tracker):
            return {}
        text = _latest_text(tracker)
        numbers = _entities(tracker, "account_number")
        if numbers:
            return {"destination_account": str(numbers[0].get("value"))}
        asked = tracker.get_slot("requested_slot") == "destination_account"
        account_types = _entities(tracker, "account_type")
        if asked:
            named = account_in_text(text, await own_accounts(tracker))
            if named is not None and not TEN_DIGITS.search(text):  # "my one ending 1111", not a number
                return {"destination_account": named.key}
            if account_types:
                return {"destination_account": str(account_types[0].get("value"))}
            match = TEN_DIGITS.search(text)
            return {"destination_account": match.group(0)} if match else {}
        own = _account_type_after(text, account_types, TO_WORDS)
        if own:
            return {"destination_account": own}
        return {}

    async def validate_destination_account(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        # An account number (spaces and dashes allowed); "savings_2" is an own account's key, not a number
        value = re.sub(r"\D", "", str(slot_value)) if re.fullmatch(r"[\d\s-]+", str(slot_value)) else None
        if value is not None:
            if len(value) != 10:
                dispatcher.utter_message(response="utter_invalid_account_number")
                return {"destination_account": None}
            return {"destination_account": value}
        accounts = await own_accounts(tracker)
        kind = catalog.canonical_account_type(str(slot_value))
        keys = [a.key for a in accounts] or list(ACCOUNT_ORDER)
        meant = ([a.key for a in accounts_meant(str(slot_value), accounts)] if accounts
                 else [key for key in keys if key == kind])
        if not meant:
            if kind is None and str(slot_value) not in keys:
                utter_unknown_account(dispatcher, accounts)
            else:
                dispatcher.utter_message(response="utter_no_such_own_account", asked=account_label(kind))
            return {"destination_account": None}
        if len(accounts) == 1:
            dispatcher.utter_message(response="utter_only_one_account", account=account_named(accounts[0]))
            return {"destination_account": None}
        source = tracker.get_slot("source_account")
        if len(meant) > 1:  # "to my checking" with two: which one (the source itself is not offered)
            same_type = [a for a in accounts if a.key in meant and a.key != source]
            if len(same_type) == 1:
                meant = [same_type[0].key]
            else:
                utter_which_of_type(dispatcher, same_type)
                return {"destination_account": None}
        account = meant[0]
        if source == account:
            dispatcher.utter_message(response="utter_same_account")
            return {"destination_account": None}
        # "send 10k to my savings" can only come from the other account, when there is just one other
        others = [key for key in keys if key != account]
        return {"destination_account": account, "source_account": source or (others[0] if len(others) == 1 else None)}

    async def validate_bank(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        bank = catalog.canonical_bank(str(slot_value))
        if bank is None:
            dispatcher.utter_message(response="utter_unknown_bank")
            return {"bank": None}
        number = tracker.get_slot("destination_account")
        try:  # a link that moves no money (errors.ReadOnlyLink) ends the form in run()
            holder = await call(banking().name_enquiry, number, bank)
        except (errors.NameEnquiryFailed, errors.InvalidDetails):
            dispatcher.utter_message(
                response="utter_name_enquiry_failed", account=number, bank=bank
            )
            return {"bank": None, "destination_account": None}
        except errors.ProviderUnavailable:
            dispatcher.utter_message(response="utter_provider_unavailable")
            return {"bank": None}
        dispatcher.utter_message(response="utter_account_holder", holder=holder, bank=bank)
        return {"bank": bank}


class ValidateBillForm(SourceAccountMixin, AmountMixin, MoneyForm):
    kind = "bill"

    def name(self) -> str:
        return "validate_bill_form"

    def validate_biller(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        biller = catalog.canonical_biller(str(slot_value))
        if biller is None:
            dispatcher.utter_message(response="utter_unknown_biller")
        return {"biller": biller}

    async def extract_customer_ref(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        if not _answers_form(tracker):
            return {}
        for entity in ("customer_ref", "account_number", "phone_number"):
            found = _entities(tracker, entity)
            if found:
                return {"customer_ref": str(found[0].get("value"))}
        if tracker.get_slot("requested_slot") == "customer_ref":
            match = re.search(r"\b[0-9A-Za-z-]{6,20}\b", _latest_text(tracker))
            if match and any(c.isdigit() for c in match.group(0)):
                return {"customer_ref": match.group(0)}
        return {}

    async def validate_customer_ref(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        biller = tracker.get_slot("biller")
        if biller is None:
            return {"customer_ref": None}  # asked again once the biller is known
        reference = re.sub(r"[\s-]", "", str(slot_value))
        try:  # no biller look-up at the provider (errors.BillsUnavailable) ends the form in run()
            holder = await call(banking().validate_biller_ref, biller, reference)
        except errors.InvalidDetails:
            dispatcher.utter_message(
                response="utter_invalid_customer_ref", ref_name=reference_name(biller), biller=biller
            )
            return {"customer_ref": None}
        except errors.ProviderUnavailable:
            dispatcher.utter_message(response="utter_provider_unavailable")
            return {"customer_ref": None}
        dispatcher.utter_message(
            response="utter_biller_customer", holder=holder, ref_name=reference_name(biller), biller=biller
        )
        return {"customer_ref": reference}


class ValidateAirtimeForm(SourceAccountMixin, AmountMixin, MoneyForm):
    kind = "airtime"

    def name(self) -> str:
        return "validate_airtime_form"

    def validate_network(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        network = catalog.canonical_network(str(slot_value))
        if network is None:
            dispatcher.utter_message(response="utter_unknown_network")
        return {"network": network}

    async def extract_phone_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        if not _answers_form(tracker):
            return {}
        found = _entities(tracker, "phone_number")
        if found:
            return {"phone_number": str(found[0].get("value"))}
        if tracker.get_slot("requested_slot") != "phone_number" and latest_intent(tracker) != "buy_airtime":
            return {}
        text = _latest_text(tracker)
        if SELF_PHONE_WORDS.search(text) and normalise_phone_number(tracker.sender_id):
            return {"phone_number": tracker.sender_id}
        if tracker.get_slot("requested_slot") == "phone_number":
            match = re.search(r"\+?\d[\d\s-]{9,15}\d", text)
            if match:
                return {"phone_number": match.group(0)}
        return {}

    def validate_phone_number(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        number = normalise_phone_number(str(slot_value))
        if number is None:
            dispatcher.utter_message(response="utter_invalid_phone_number")
        return {"phone_number": number}


class ValidateConnectBankForm(FormValidationAction):
    def name(self) -> str:
        return "validate_connect_bank_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        if not form_is_starting(tracker, self.form_name()):
            return await answered_or_asked_again(super(), dispatcher, tracker, domain)
        profile = await call(banking().find_profile, customer(tracker))
        if profile is not None:
            dispatcher.utter_message(response="utter_already_connected", bank=profile.bank)
            return [SlotSet("bank", None), SlotSet("requested_slot", None), ActiveLoop(None)]
        tracker.slots["requested_slot"] = None
        return await super().run(dispatcher, tracker, domain)

    def validate_bank(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        bank = catalog.canonical_bank(str(slot_value))
        if bank is None:
            dispatcher.utter_message(response="utter_unknown_bank")
        return {"bank": bank}


def reference_name(biller: str) -> str:
    """What the customer calls the number that identifies them to a biller."""
    category = catalog.BILLERS.get(biller, ("", ()))[0]
    return {
        "electricity": "meter number",
        "cable_tv": "smartcard (IUC) number",
        "internet": "account ID",
    }.get(category, "customer ID")
