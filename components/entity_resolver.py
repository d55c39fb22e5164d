"""Merges the entities of the trained and the rule-based extractors into the one
set that slots, forms and `rasa test` see, and normalises their values.

DIET learns every entity from the training data; the spaCy entity ruler knows the
exact names of banks, billers, networks and the shape of account and phone numbers.
DIET's entity wins where both found one; the ruler fills what DIET missed. Values
become canonical ("gtb" -> "GTBank") and amounts numeric ("10k" -> "10000").
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from banking import catalog
from banking.money import amount_entity_value

EXTRACTOR_NAME = "EntityResolver"

CANONICAL: Dict[str, Callable[[str], str | None]] = {
    "bank": catalog.canonical_bank,
    "biller": catalog.canonical_biller,
    "network": catalog.canonical_network,
    "account_type": catalog.canonical_account_type,
}

# Amounts that carry an unmistakable money marker, for when DIET missed one.
MARKED_AMOUNT = re.compile(
    r"(?<![\w.])(?:(?:₦|ngn|n)\s?\d[\d,]*(?:\.\d+)?\s?(?:k|m)?"
    r"|\d[\d,]*(?:\.\d+)?\s?(?:k|m|naira)|\d[\d,]*(?:\.\d+)?\s(?:thousand|million))(?![\w])",
    re.IGNORECASE,
)


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
            entities = resolve_entities(message.get(TEXT) or "", message.get(ENTITIES, []))
            message.set(ENTITIES, entities, add_to_output=True)
        return messages


def resolve_entities(text: str, entities: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The merged, normalised entities of one message, in text order."""
    learned = [e for e in entities if e.get("extractor") != "SpacyEntityExtractor"]
    ruled = [e for e in entities if e.get("extractor") == "SpacyEntityExtractor"]
    merged = list(learned)
    for entity in ruled:
        if not any(_overlaps(entity, other) for other in merged):
            merged.append(entity)
    if not any(e.get("entity") == "amount" for e in merged):
        merged.extend(_marked_amounts(text, merged))

    resolved = []
    for entity in sorted(merged, key=lambda e: e.get("start", 0)):
        normalised = _normalise(text, entity)
        if normalised is not None:
            resolved.append(normalised)
    return resolved


def _normalise(text: str, entity: Dict[str, Any]) -> Dict[str, Any] | None:
    entity = {**entity, "source": entity.get("extractor"), "extractor": EXTRACTOR_NAME}
    label = entity.get("entity")
    raw = _surface(text, entity)
    if label == "amount":
        value = amount_entity_value(raw)
        if value is None:
            return None  # "the 2nd one" is not money; never guess an amount
        entity["value"] = value
        entity["additional_info"] = {"currency": "NGN"}
    elif label in CANONICAL:
        entity["value"] = CANONICAL[label](raw) or CANONICAL[label](str(entity.get("value"))) or raw
    elif label in ("account_number", "customer_ref", "phone_number"):
        entity["value"] = re.sub(r"[\s-]", "", raw)
    return entity


def _surface(text: str, entity: Dict[str, Any]) -> str:
    if "start" in entity and "end" in entity:
        return text[entity["start"] : entity["end"]]
    return str(entity.get("value", ""))


def _overlaps(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    return a.get("start", -1) < b.get("end", -1) and b.get("start", -1) < a.get("end", -1)


def _marked_amounts(text: str, taken: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    found = []
    for match in MARKED_AMOUNT.finditer(text):
        candidate = {"entity": "amount", "start": match.start(), "end": match.end(),
                     "value": match.group(0), "extractor": "MarkedAmount"}
        if not any(_overlaps(candidate, other) for other in taken):
            found.append(candidate)
    return found
