"""A message made only of words the assistant never saw in training is not understood.

DIET always names some intent, and for a keyboard mash ("kjhgf lkjh") it can be sure of
one it has no reason for. This component learns the vocabulary of the training data
(examples, synonyms, lookup tables) and, when not one word of a message is in it and no
number or known name was found, or when the message is symbols alone ("❌", "🤔", "!!")
that no training example is, sets the intent's confidence to 0, so the
FallbackClassifier after it answers ``nlu_fallback`` (the unclear-message path) instead
of acting on a guess. Messages with numbers or known words are left as DIET read them.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Set

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

WORD = re.compile(r"[^\W\d_]+")
VOCABULARY_FILE = "vocabulary.json"


def words_of(text: str) -> List[str]:
    return [word.lower() for word in WORD.findall(text)]


def symbols_only(text: str) -> str | None:
    """A message of neither letters nor digits ("👍", "!!", "❌"), without its spaces; else None."""
    if not text.strip() or WORD.search(text) or any(c.isdigit() for c in text):
        return None
    return "".join(text.split())


def training_vocabulary(training_data: TrainingData) -> Set[str]:
    """Every word of the examples, synonyms and lookup tables, and every example made of
    symbols alone (a "👍" taught as a rating)."""
    vocabulary: Set[str] = set()
    for example in training_data.training_examples:
        vocabulary.update(words_of(example.get(TEXT) or ""))
        symbols = symbols_only(example.get(TEXT) or "")
        if symbols:
            vocabulary.add(symbols)
    for synonym, value in training_data.entity_synonyms.items():
        vocabulary.update(words_of(f"{synonym} {value}"))
    for table in training_data.lookup_tables:
        for element in table.get("elements", []):
            vocabulary.update(words_of(str(element)))
    return vocabulary


def is_unknown(text: str, entities: List[Dict[str, Any]], vocabulary: Set[str]) -> bool:
    """True when the message has words, none of them known, and nothing was recognised in it;
    or when it is symbols alone ("❌", "🤔", "!!") that no training example is."""
    if entities:
        return False
    symbols = symbols_only(text)
    if symbols is not None:
        return symbols not in vocabulary
    words = words_of(text)
    return bool(words) and not any(word in vocabulary for word in words)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class UnknownWordsGuard(GraphComponent):
    """Runs after the intent classifier and the entity resolver, before FallbackClassifier."""

    def __init__(self, model_storage: ModelStorage, resource: Resource, vocabulary: Set[str]) -> None:
        self._model_storage = model_storage
        self._resource = resource
        self._vocabulary = vocabulary

    @classmethod
    def create(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> UnknownWordsGuard:
        return cls(model_storage, resource, set())

    @classmethod
    def load(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> UnknownWordsGuard:
        try:
            with model_storage.read_from(resource) as directory:
                vocabulary = set(json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8")))
        except (ValueError, FileNotFoundError):
            vocabulary = set()
        return cls(model_storage, resource, vocabulary)

    def train(self, training_data: TrainingData) -> Resource:
        self._vocabulary = training_vocabulary(training_data)
        with self._model_storage.write_to(self._resource) as directory:
            (directory / VOCABULARY_FILE).write_text(json.dumps(sorted(self._vocabulary)), encoding="utf-8")
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        if not self._vocabulary:
            return messages
        for message in messages:
            intent = message.get(INTENT) or {}
            if intent and is_unknown(message.get(TEXT) or "", message.get(ENTITIES, []), self._vocabulary):
                not_understood(message)
        return messages


def not_understood(message: Message) -> None:
    """Zero the intent's confidence (and its ranking's), so the FallbackClassifier answers nlu_fallback."""
    message.set(INTENT, {**(message.get(INTENT) or {}), "confidence": 0.0}, add_to_output=True)
    ranking = message.get(INTENT_RANKING_KEY) or []
    message.set(INTENT_RANKING_KEY, [{**item, "confidence": 0.0} for item in ranking], add_to_output=True)
