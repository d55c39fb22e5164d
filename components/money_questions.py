"""A question about moving money does not start a money movement.

"how do i pay for my exam registration", "what's the cheapest way to send money abroad",
"which data plan is best for streaming": DIET hears the words of a transfer, a bill or
airtime and names that intent, although the customer asked for information, not for the
money to move. A request is worded as one ("pay my dstv", "abeg send 5k", "can you buy
airtime for me"); a question opens with a question word ("how", "what", "which", "is",
"wetin") and carries no figures of its own.

So when the intent is transfer_money, pay_bill or buy_airtime, the message opens like a
question, and no amount, account number, phone number or biller reference was found in
it, this component sets the intent's confidence to 0: the FallbackClassifier after it
answers ``nlu_fallback``, and the fallback action (the LLM, or the menu) answers the
question or names the intent it really is, which then goes through Rasa again, forms and
confirmations included. A question with a figure in it ("what if i send 5k to
0123456789 gtb") is left as DIET read it.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.unknown_words import not_understood

MONEY_INTENTS = frozenset({"transfer_money", "pay_bill", "buy_airtime"})
FIGURES = frozenset({"amount", "account_number", "phone_number", "customer_ref"})
# How questions open, in English and Pidgin. Not "can"/"could"/"would": "can you send 5k" is
# a request worded politely.
QUESTION = re.compile(
    r"^\W*(?:how|what|what's|whats|wats|which|why|where|when|who|whose|is|are|was|were|does|do|did|"
    r"should|shall|wetin|weda|abi)\b",
    re.IGNORECASE,
)


def is_money_question(text: str, intent: str | None, entities: List[Dict[str, Any]]) -> bool:
    """True for a money intent read from a question that names no figure."""
    return (intent in MONEY_INTENTS and QUESTION.match(text) is not None
            and not any(entity.get("entity") in FIGURES for entity in entities))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class MoneyQuestionGuard(GraphComponent):
    """Runs after the intent classifier and the entity resolver, before FallbackClassifier."""

    @classmethod
    def create(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> MoneyQuestionGuard:
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            if intent and is_money_question(message.get(TEXT) or "", intent.get("name"), message.get(ENTITIES, [])):
                not_understood(message)
        return messages
