"""The merged entities that slots and forms see: DIET first, the ruler fills gaps,
values canonical and amounts numeric."""

from __future__ import annotations

from components.entity_resolver import resolve_entities


def entity(label: str, text: str, sentence: str, extractor: str = "DIETClassifier", value: str | None = None) -> dict:
    start = sentence.index(text)
    return {"entity": label, "start": start, "end": start + len(text), "value": value or text, "extractor": extractor}


def test_amounts_get_a_numeric_value() -> None:
    sentence = "send 10k to tunde and ₦2.5m later, ten thousand naira too"
    entities = [entity("amount", "10k", sentence), entity("amount", "₦2.5m", sentence),
                entity("amount", "ten thousand naira", sentence)]
    values = [e["value"] for e in resolve_entities(sentence, entities)]
    assert values == ["10000", "2500000", "10000"]


def test_an_amount_that_is_not_money_is_dropped() -> None:
    sentence = "pay the second one"
    assert resolve_entities(sentence, [entity("amount", "second one", sentence)]) == []


def test_ruler_fills_what_diet_missed_and_diet_wins_on_overlap() -> None:
    sentence = "send 5k to 0123456789 gtb"
    diet = [entity("amount", "5k", sentence), entity("customer_ref", "0123456789", sentence)]
    ruler = [entity("account_number", "0123456789", sentence, "SpacyEntityExtractor"),
             entity("bank", "gtb", sentence, "SpacyEntityExtractor")]
    resolved = resolve_entities(sentence, diet + ruler)
    assert [(e["entity"], e["value"]) for e in resolved] == [
        ("amount", "5000"), ("customer_ref", "0123456789"), ("bank", "GTBank")]
    assert {e["extractor"] for e in resolved} == {"EntityResolver"}
    assert [e["source"] for e in resolved] == ["DIETClassifier", "DIETClassifier", "SpacyEntityExtractor"]


def test_names_become_canonical() -> None:
    sentence = "move from current to my savings acct via first bank, pay ikedc, mtn"
    entities = [entity("account_type", "current", sentence), entity("account_type", "savings acct", sentence),
                entity("bank", "first bank", sentence), entity("biller", "ikedc", sentence),
                entity("network", "mtn", sentence)]
    assert [e["value"] for e in resolve_entities(sentence, entities)] == [
        "checking", "savings", "First Bank", "Ikeja Electric", "MTN"]


def test_a_marked_amount_is_found_when_diet_found_none() -> None:
    sentence = "abeg send N5,000 give am"
    resolved = resolve_entities(sentence, [])
    assert [(e["entity"], e["value"], sentence[e["start"]:e["end"]]) for e in resolved] == [
        ("amount", "5000", "N5,000")]


def test_unmarked_numbers_are_not_guessed_as_amounts() -> None:
    assert resolve_entities("my meter is 45012345678 and i am 30", []) == []
