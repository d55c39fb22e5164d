"""Merges the entities of the trained and the rule-based extractors into the one
set that slots, forms and `rasa test` see, and normalises their values.

DIET learns names and words from the training data; the spaCy entity ruler knows the
exact names of banks, billers and networks. DIET's entity wins where both found one;
the ruler fills what DIET missed; values become canonical ("gtb" -> "GTBank"). Every
number's role (amount, account number, phone number, biller reference) is decided here
by shape and context (``banking.number_roles``), whatever the models said; amounts
become plain naira ("10k" -> "10000").
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from banking import catalog
from banking.number_roles import Found, read_numbers

EXTRACTOR_NAME = "EntityResolver"

CANONICAL: Dict[str, Callable[[str], str | None]] = {
    "bank": catalog.canonical_bank,
    "biller": catalog.canonical_biller,
    "network": catalog.canonical_network,
    "account_type": catalog.canonical_account_type,
}

# Entities whose role is decided by banking.number_roles, never by a model's guess.
NUMBER_ROLES = frozenset({"amount", "account_number", "phone_number", "customer_ref"})
# Messages that move money (or answer a money form): one amount, or none.
AMOUNT_MUST_BE_ONE = frozenset({"transfer_money", "pay_bill", "buy_airtime", "inform"})


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False
)
class EntityResolver(GraphComponent):
    """Runs after DIETClassifier and SpacyEntityExtractor, before EntitySynonymMapper."""

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> EntityResolver:
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = (message.get(INTENT) or {}).get("name")
            entities = resolve_entities(message.get(TEXT) or "", message.get(ENTITIES, []), intent)
            message.set(ENTITIES, entities, add_to_output=True)
        return messages


def resolve_entities(text: str, entities: List[Dict[str, Any]], intent: str | None = None) -> List[Dict[str, Any]]:
    """The merged, normalised entities of one message, in text order.

    Numbers never keep the role a model gave them: amount, account number, phone number
    and biller reference come from ``banking.number_roles`` (by shape and context), and in
    a money message two different amounts give no amount at all, so the form asks.
    """
    learned = [e for e in entities if e.get("extractor") != "SpacyEntityExtractor"]
    ruled = [e for e in entities if e.get("extractor") == "SpacyEntityExtractor"]
    merged = [e for e in learned if e.get("entity") not in NUMBER_ROLES]
    for entity in ruled:
        if entity.get("entity") not in NUMBER_ROLES and not any(_overlaps(entity, other) for other in merged):
            merged.append(entity)
    biller = next((catalog.canonical_biller(_surface(text, e)) or catalog.canonical_biller(str(e.get("value")))
                   for e in merged if e.get("entity") == "biller"), None)
    category = catalog.BILLERS[biller][0] if biller else None
    # "pay Aisha 8k for her kuda 2018273645": a bank and no biller named, so ten digits are a NUBAN
    # even if the classifier heard a bill in "pay".
    bank_named = any(e.get("entity") == "bank" for e in merged)
    roles = read_numbers(
        text, about_bills=biller is not None or (intent == "pay_bill" and not bank_named),
        cable_tv=category == "cable_tv" if category else None,
        electricity=category == "electricity" if category else None,
        codes=True if intent == "inform" else None,
    )
    numbers = [item for item in roles.found if item.role != "amount"]
    amounts = roles.amounts
    if intent in AMOUNT_MUST_BE_ONE and len(roles.distinct_amounts) > 1:
        amounts = []  # "send 5k or 3k": two amounts, so none; the form asks how much
    first_of_each = {item.value: item for item in reversed(amounts)}  # "5k (5,000 naira)" is one amount
    for item in [*numbers, *sorted(first_of_each.values(), key=lambda found: found.start)]:
        merged = [e for e in merged if not _overlaps(e, {"start": item.start, "end": item.end})]
        merged.append(_number_entity(item))

    resolved = []
    for entity in sorted(merged, key=lambda e: e.get("start", 0)):
        normalised = entity if entity.get("extractor") == EXTRACTOR_NAME else _normalise(text, entity)
        if normalised is not None:
            resolved.append(normalised)
    return resolved


def _number_entity(item: Found) -> Dict[str, Any]:
    entity: Dict[str, Any] = {"entity": item.role, "value": item.value, "start": item.start, "end": item.end,
                              "extractor": EXTRACTOR_NAME, "source": "NumberRoles"}
    if item.role == "amount":
        entity["additional_info"] = {"currency": "NGN"}
    return entity


def _normalise(text: str, entity: Dict[str, Any]) -> Dict[str, Any] | None:
    entity = {**entity, "source": entity.get("extractor"), "extractor": EXTRACTOR_NAME}
    label = entity.get("entity")
    raw = _surface(text, entity)
    if label in CANONICAL:
        entity["value"] = CANONICAL[label](raw) or CANONICAL[label](str(entity.get("value"))) or raw
    if label == "rating":  # good or bad, whatever the skin tone; a word that is no rating is dropped
        rating = (catalog.canonical_rating(raw) or catalog.canonical_rating(str(entity.get("value")))
                  or catalog.rating_in_message(text))
        if rating is None:
            return None
        entity["value"] = rating
    return entity


def _surface(text: str, entity: Dict[str, Any]) -> str:
    if "start" in entity and "end" in entity:
        return text[entity["start"] : entity["end"]]
    return str(entity.get("value", ""))


def _overlaps(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    return a.get("start", -1) < b.get("end", -1) and b.get("start", -1) < a.get("end", -1)
