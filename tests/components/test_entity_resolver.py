"""The merged entities that slots and forms see: DIET first, the ruler fills gaps, values
canonical; every number's role decided by shape and context, amounts numeric."""

from __future__ import annotations

from components.entity_resolver import resolve_entities


def entity(label: str, text: str, sentence: str, extractor: str = "DIETClassifier", value: str | None = None) -> dict:
    start = sentence.index(text)
    return {"entity": label, "start": start, "end": start + len(text), "value": value or text, "extractor": extractor}


def test_amounts_get_a_numeric_value() -> None:
    sentence = "show spending between 10k and ₦2.5m, or ten thousand naira"
    values = [e["value"] for e in resolve_entities(sentence, [], "search_transactions")]
    assert values == ["10000", "2500000"]  # "ten thousand naira" is the 10k again


def test_two_amounts_in_a_money_message_give_none() -> None:
    sentence = "send 5k or 3k to my savings"
    diet = [entity("amount", "5k", sentence)]
    assert [e["entity"] for e in resolve_entities(sentence, diet, "transfer_money")] == []


def test_an_amount_that_is_not_money_is_dropped() -> None:
    sentence = "pay the second one"
    assert resolve_entities(sentence, [entity("amount", "second one", sentence)]) == []


def test_numbers_get_their_role_by_shape_whatever_the_models_said() -> None:
    sentence = "send 2500 to 0123456789 gtb"
    diet = [entity("account_number", "2500", sentence), entity("customer_ref", "0123456789", sentence)]
    ruler = [entity("account_number", "0123456789", sentence, "SpacyEntityExtractor"),
             entity("bank", "gtb", sentence, "SpacyEntityExtractor")]
    resolved = resolve_entities(sentence, diet + ruler, "transfer_money")
    assert [(e["entity"], e["value"]) for e in resolved] == [
        ("amount", "2500"), ("account_number", "0123456789"), ("bank", "GTBank")]
    assert {e["extractor"] for e in resolved} == {"EntityResolver"}
    assert [e["source"] for e in resolved] == ["NumberRoles", "NumberRoles", "SpacyEntityExtractor"]


def test_a_biller_named_in_the_message_decides_what_ten_digits_are() -> None:
    sentence = "pay my dstv 19000 smartcard 7023456789"
    resolved = resolve_entities(sentence, [entity("biller", "dstv", sentence)], "pay_bill")
    assert [(e["entity"], e["value"]) for e in resolved] == [
        ("biller", "DStv"), ("amount", "19000"), ("customer_ref", "7023456789")]


def test_names_become_canonical() -> None:
    sentence = "move from current to my savings acct via first bank, pay ikedc, mtn"
    entities = [entity("account_type", "current", sentence), entity("account_type", "savings acct", sentence),
                entity("bank", "first bank", sentence), entity("biller", "ikedc", sentence),
                entity("network", "mtn", sentence)]
    assert [e["value"] for e in resolve_entities(sentence, entities)] == [
        "checking", "savings", "First Bank", "Ikeja Electric", "MTN"]


def test_a_marked_amount_is_found_when_diet_found_none() -> None:
    sentence = "abeg send N5,000 give am"
    resolved = resolve_entities(sentence, [], "transfer_money")
    assert [(e["entity"], e["value"], sentence[e["start"]:e["end"]]) for e in resolved] == [
        ("amount", "5000", "N5,000")]


def test_a_meter_number_is_a_reference_not_an_amount() -> None:
    resolved = resolve_entities("my meter is 45012345678", [], "inform")
    assert [(e["entity"], e["value"]) for e in resolved] == [("customer_ref", "45012345678")]


def _rating(text: str, value: str, start: int, end: int) -> list[dict]:
    found = resolve_entities(text, [{"entity": "rating", "value": value, "start": start, "end": end,
                                     "extractor": "DIETClassifier"}], "rate_experience")
    return [e["value"] for e in found if e["entity"] == "rating"]


def test_a_typed_thumb_of_any_skin_tone_is_a_good_or_bad_rating() -> None:
    assert _rating("👍🏿", "👍🏿", 0, 2) == ["good"]
    assert _rating("👍🏻", "👍🏻", 0, 2) == ["good"]
    assert _rating("👎🏼", "👎🏼", 0, 2) == ["bad"]
    assert _rating("thumbs down", "thumbs down", 0, 11) == ["bad"]


def test_a_word_beside_a_thumb_is_never_the_rating() -> None:
    assert _rating("👍 yes", "yes", 2, 5) == ["good"]
    assert _rating("yes", "yes", 0, 3) == []
    assert _rating("👍 👎", "👍 👎", 0, 3) == []


def test_a_bank_named_without_a_biller_makes_ten_digits_an_account_even_in_a_bill_message() -> None:
    text = "pay Tunde 6k to his opay 4019283746"
    bank = {"entity": "bank", "value": "opay", "start": text.index("opay"), "end": text.index("opay") + 4,
            "extractor": "SpacyEntityExtractor"}
    found = {(e["entity"], e["value"]) for e in resolve_entities(text, [bank], "pay_bill")}
    assert ("account_number", "4019283746") in found and ("amount", "6000") in found
    dstv = "pay dstv 7023456789 from my gtb"
    biller = {"entity": "biller", "value": "dstv", "start": 4, "end": 8, "extractor": "SpacyEntityExtractor"}
    gtb = {"entity": "bank", "value": "gtb", "start": dstv.index("gtb"), "end": dstv.index("gtb") + 3,
           "extractor": "SpacyEntityExtractor"}
    assert ("customer_ref", "7023456789") in {(e["entity"], e["value"])
                                              for e in resolve_entities(dstv, [biller, gtb], "pay_bill")}
