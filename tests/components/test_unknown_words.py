"""A message of words never seen in training is not acted on; anything with a known word,
a number or a recognised name is left as the classifier read it."""

from __future__ import annotations

from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.unknown_words import is_unknown, training_vocabulary

DATA = TrainingData(
    training_examples=[Message(data={"text": "send 5k to my savings", "intent": "transfer_money"}),
                       Message(data={"text": "👍", "intent": "rate_experience"}),
                       Message(data={"text": "wetin be my balance", "intent": "check_balance"})],
    entity_synonyms={"gtb": "GTBank"},
    lookup_tables=[{"name": "bank", "elements": ["access bank", "zenith"]}],
)


def test_the_vocabulary_holds_examples_synonyms_and_lookups() -> None:
    assert {"send", "savings", "wetin", "gtb", "gtbank", "access", "zenith"} <= training_vocabulary(DATA)


def test_a_keyboard_mash_is_unknown() -> None:
    vocabulary = training_vocabulary(DATA)
    assert is_unknown("kjhgf lkjh", [], vocabulary)
    assert is_unknown("asdf qwer!!", [], vocabulary)


def test_one_known_word_a_number_or_an_entity_is_enough() -> None:
    vocabulary = training_vocabulary(DATA)
    assert not is_unknown("balance abeg", [], vocabulary)
    assert not is_unknown("12345", [], vocabulary)  # no words: left to the classifier and the number roles
    assert not is_unknown("kjhgf 5000", [{"entity": "amount", "value": "5000"}], vocabulary)


def test_symbols_alone_are_unknown_unless_a_training_example_is_exactly_them() -> None:
    vocabulary = training_vocabulary(DATA)
    for symbols in ("❌", "🛑", "🤔", "!!", "...", "@@", "👌🔥", "?"):
        assert is_unknown(symbols, [], vocabulary), symbols
    assert not is_unknown("👍", [], vocabulary)
    assert not is_unknown(" 👍 ", [], vocabulary)
    assert is_unknown("👍👍", [], vocabulary)
