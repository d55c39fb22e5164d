"""A question about moving money goes to the unclear-message path; a request, or a question
that names a figure, is left as the classifier read it."""

from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.message import Message

from components.entity_resolver import resolve_entities
from components.money_questions import MoneyQuestionGuard, is_money_question


@pytest.mark.parametrize("text, intent", [
    ("how do i pay school fees online", "pay_bill"),
    ("what's the fastest way to send money to the uk", "transfer_money"),
    ("which network get the cheapest data", "buy_airtime"),
    ("wetin be the charge to send money", "transfer_money"),
    ("is it possible to pay gotv from here?", "pay_bill"),
    ("  Why is airtime so expensive", "buy_airtime"),
])
def test_questions_that_name_no_figure_do_not_move_money(text: str, intent: str) -> None:
    assert is_money_question(text, intent, resolve_entities(text, [], intent))


@pytest.mark.parametrize("text, intent", [
    ("pay my dstv", "pay_bill"),
    ("abeg send money give my brother", "transfer_money"),
    ("can you buy airtime for me", "buy_airtime"),
    ("could you send 5k to savings", "transfer_money"),
    ("what if i send 5k to 0123456789 gtb", "transfer_money"),  # a figure: a request in question form
    ("how i go buy 1k airtime for 08031234567", "buy_airtime"),
    ("how much is in my savings", "check_balance"),  # not a money-moving intent
])
def test_requests_and_questions_with_figures_are_left_alone(text: str, intent: str) -> None:
    assert not is_money_question(text, intent, resolve_entities(text, [], intent))


def test_the_guard_zeroes_the_confidence_so_the_fallback_classifier_answers() -> None:
    question = Message(data={"text": "how do i pay for exam registration",
                             "intent": {"name": "pay_bill", "confidence": 0.97},
                             "intent_ranking": [{"name": "pay_bill", "confidence": 0.97},
                                                {"name": "out_of_scope", "confidence": 0.02}],
                             "entities": []})
    request = Message(data={"text": "pay my light bill", "intent": {"name": "pay_bill", "confidence": 0.97},
                            "entities": []})
    MoneyQuestionGuard().process([question, request])
    assert question.get("intent") == {"name": "pay_bill", "confidence": 0.0}
    assert [item["confidence"] for item in question.get("intent_ranking")] == [0.0, 0.0]
    assert request.get("intent")["confidence"] == 0.97
