"""The held-out NLU sets stay held out and keep their shape: no message is also a
training example, the money set keeps its size, its Pidgin and its two-number
messages, and every annotation carries the value the form should get."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from rasa.shared.nlu.training_data.loading import load_data

from banking import catalog
from scripts.check_slot_accuracy import (
    DEFAULT_MONEY,
    DEFAULT_OUT_OF_SCOPE,
    DEFAULT_TRAINING,
    MONEY_INTENTS,
    comparable_text,
    composition_of,
    load_examples,
    training_overlap,
)

# Rasa's YAML reader validates with pykwalify, which loads its extensions the old way.
pytestmark = pytest.mark.filterwarnings("ignore:the load_module\\(\\) method is deprecated:DeprecationWarning")

HELD_OUT_DIR = Path("tests/nlu")
CANONICAL = {
    "bank": catalog.canonical_bank,
    "biller": catalog.canonical_biller,
    "network": catalog.canonical_network,
    "account_type": catalog.canonical_account_type,
}
VALUE_SHAPES = {
    "amount": re.compile(r"[1-9]\d*(?:\.\d*[1-9])?|0\.\d*[1-9]"),  # plain naira, no trailing zeros
    "account_number": re.compile(r"\d{10}"),
    "phone_number": re.compile(r"0[789][01]\d{8}"),
    "customer_ref": re.compile(r"[0-9A-Z]+"),
}


@pytest.fixture(scope="module")
def money() -> list:
    return load_examples(DEFAULT_MONEY)


@pytest.fixture(scope="module")
def out_of_scope() -> list:
    return load_examples(DEFAULT_OUT_OF_SCOPE)


def test_no_held_out_message_is_a_training_example() -> None:
    held_out = [m.get("text") for m in load_data(str(HELD_OUT_DIR)).intent_examples]
    training = [m.get("text") for m in load_data(str(DEFAULT_TRAINING)).intent_examples]
    assert training_overlap(held_out, training) == []


def test_no_message_is_held_out_twice() -> None:
    counts = Counter(comparable_text(m.get("text")) for m in load_data(str(HELD_OUT_DIR)).intent_examples)
    assert [text for text, n in counts.items() if n > 1] == []


def test_the_money_set_has_its_size_pidgin_and_two_number_messages(money: list) -> None:
    composition = composition_of(money)
    assert composition["messages"] >= 330
    assert composition["pidgin"] * 3 >= composition["messages"]
    assert composition["two_or_more_numbers"] * 3 >= composition["messages"]
    assert set(composition["per_intent"]) == {*MONEY_INTENTS, "inform"}


def test_the_out_of_scope_set_has_its_size(out_of_scope: list) -> None:
    assert len(out_of_scope) >= 200
    assert {e.intent for e in out_of_scope} == {"out_of_scope"}


def test_every_slot_value_is_annotated_in_its_normal_form(money: list, out_of_scope: list) -> None:
    bad = []
    for example in money + out_of_scope:
        for entity in example.entities:
            shape = VALUE_SHAPES.get(entity["entity"])
            if shape and not shape.fullmatch(str(entity["value"])):
                bad.append((example.text, entity["entity"], entity["value"]))
    assert bad == []


def test_numbers_are_annotated_with_their_own_digits(money: list) -> None:
    bad = []
    for example in money:
        for entity in example.entities:
            written = example.text[entity["start"]:entity["end"]]
            if entity["entity"] == "account_number" and re.sub(r"\D", "", written) != entity["value"]:
                bad.append((example.text, written))
            if entity["entity"] == "phone_number" and re.sub(r"\D", "", written)[-10:] != entity["value"][1:]:
                bad.append((example.text, written))
            if entity["entity"] == "customer_ref" and re.sub(r"\W", "", written).upper() != entity["value"]:
                bad.append((example.text, written))
    assert bad == []


def test_names_are_annotated_as_the_catalog_spells_them(money: list, out_of_scope: list) -> None:
    bad = []
    for example in money + out_of_scope:
        for entity in example.entities:
            canonical = CANONICAL.get(entity["entity"])
            written = example.text[entity["start"]:entity["end"]]
            if canonical and canonical(written) != entity["value"]:
                bad.append((example.text, entity["entity"], written, entity["value"]))
    assert bad == []
