"""The linear intent classifier: what it learns from examples, and that a saved model
reads back to the same answers without running code from the archive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.intent_classifier import BIASES_FILE, WEIGHTS_FILE, LinearIntentClassifier, masked

EXAMPLES = {
    "check_balance": ["what is my balance", "wetin be my balance", "how much i get for my account",
                      "show my account balance", "balance abeg", "check my balance pls"],
    "transfer_money": ["send 5k to my savings", "transfer 2000 to tunde", "abeg send money to my sister",
                       "move 10000 from checking to savings", "i want to send money", "pay tunde 3k"],
    "out_of_scope": ["how do i apply for a loan", "what is the dollar rate today", "tell me a joke",
                     "who won the match yesterday", "i forgot my atm pin", "how do i reset my password"],
}


def training_data() -> TrainingData:
    return TrainingData(training_examples=[Message(data={"text": text, "intent": intent})
                                           for intent, texts in EXAMPLES.items() for text in texts])


def context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "test")


def parse(classifier: LinearIntentClassifier, text: str) -> Message:
    message = Message(data={"text": text})
    classifier.process([message])
    return message


@pytest.fixture
def storage(tmp_path: Path) -> LocalModelStorage:
    return LocalModelStorage(tmp_path)


def trained(storage: LocalModelStorage, **config: object) -> LinearIntentClassifier:
    classifier = LinearIntentClassifier.create({**LinearIntentClassifier.get_default_config(), **config},
                                               storage, Resource("intents"), context())
    classifier.train(training_data())
    return classifier


def test_it_names_the_intent_of_messages_it_never_saw(storage: LocalModelStorage) -> None:
    classifier = trained(storage)
    assert parse(classifier, "wetin be my account balance").get("intent")["name"] == "check_balance"
    assert parse(classifier, "pls send 3k to my savings").get("intent")["name"] == "transfer_money"
    assert parse(classifier, "what is the rate of dollar to naira").get("intent")["name"] == "out_of_scope"


def test_the_ranking_is_sorted_holds_probabilities_and_is_cut_to_its_length(storage: LocalModelStorage) -> None:
    message = parse(trained(storage, ranking_length=2), "balance")
    ranking = message.get("intent_ranking")
    assert [item["name"] for item in ranking][0] == message.get("intent")["name"] == "check_balance"
    assert len(ranking) == 2 and ranking[0]["confidence"] >= ranking[1]["confidence"]
    full = parse(trained(storage), "balance").get("intent_ranking")
    assert sum(item["confidence"] for item in full) == pytest.approx(1.0)


def test_a_keyboard_mash_gets_no_confident_intent(storage: LocalModelStorage) -> None:
    assert parse(trained(storage), "qzxv wpty").get("intent")["confidence"] < 0.55


def test_a_saved_model_reads_back_to_the_same_answers(storage: LocalModelStorage) -> None:
    classifier = trained(storage)
    loaded = LinearIntentClassifier.load(LinearIntentClassifier.get_default_config(), storage,
                                         Resource("intents"), context())
    texts = ["abeg how much i get", "send 2k to tunde", "i lost my card", ""]
    assert np.allclose(classifier.probabilities(texts), loaded.probabilities(texts), atol=1e-5)
    for text in texts:
        assert parse(loaded, text).get("intent")["name"] == parse(classifier, text).get("intent")["name"]


def test_the_saved_weights_are_plain_arrays_not_pickles(storage: LocalModelStorage) -> None:
    trained(storage)
    with storage.read_from(Resource("intents")) as directory:
        for name in (WEIGHTS_FILE, BIASES_FILE):
            np.load(Path(directory) / name, allow_pickle=False)  # raises on a pickled object


def test_with_a_single_intent_it_leaves_messages_alone(storage: LocalModelStorage) -> None:
    classifier = LinearIntentClassifier.create(LinearIntentClassifier.get_default_config(), storage,
                                               Resource("intents"), context())
    classifier.train(TrainingData(training_examples=[Message(data={"text": "hi", "intent": "greet"})]))
    message = Message(data={"text": "hello", "intent": {"name": "greet", "confidence": 0.9}})
    classifier.process([message])
    assert message.get("intent") == {"name": "greet", "confidence": 0.9}
    loaded = LinearIntentClassifier.load(LinearIntentClassifier.get_default_config(), storage,
                                         Resource("intents"), context())
    assert parse(loaded, "hello").get("intent") is None


def test_which_digits_a_number_has_does_not_change_the_intent(storage: LocalModelStorage) -> None:
    classifier = trained(storage)
    assert np.allclose(classifier.probabilities(["send 5k to 0123456789"]),
                       classifier.probabilities(["SEND 9K TO 0987654321"]))


def test_bank_biller_and_network_names_are_read_as_their_kind() -> None:
    entities = [{"entity": "bank", "start": 5, "end": 12, "value": "PalmPay"},
                {"entity": "amount", "start": 0, "end": 2, "value": "5000"}]
    assert masked("5k e palmpay", entities).split() == ["5k", "e", "bankname"]
    # overlapping spans (DIET's and the ruler's) are replaced once
    twice = [{"entity": "biller", "start": 4, "end": 8}, {"entity": "biller", "start": 4, "end": 12}]
    assert masked("pay dstv sub now", twice).split() == ["pay", "billername", "now"]
    assert masked("hello", [{"entity": "bank", "start": "x", "end": 3}]) == "hello"


def test_a_name_never_seen_in_training_reads_like_one_that_was(storage: LocalModelStorage) -> None:
    classifier = LinearIntentClassifier.create(LinearIntentClassifier.get_default_config(), storage,
                                               Resource("intents"), context())
    answers = [Message(data={"text": text, "intent": "inform",
                             "entities": [{"entity": "bank", "start": text.index(bank), "end": len(text)}]})
               for text, bank in (("e dey gtb", "gtb"), ("na zenith", "zenith"), ("my bank na access", "access"))]
    classifier.train(TrainingData(training_examples=answers + [Message(data={"text": t, "intent": i})
                                                               for i, ts in EXAMPLES.items() for t in ts]))
    unseen = Message(data={"text": "e dey palmpay", "entities": [{"entity": "bank", "start": 6, "end": 13}]})
    classifier.process([unseen])
    assert unseen.get("intent")["name"] == "inform"
