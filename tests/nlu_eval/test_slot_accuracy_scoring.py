"""Exact slot accuracy as the held-out report computes it, on hand-made parse results
(no model): a message is right for an entity type when the values the form would see
equal the annotated ones, none annotated and none found included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import check_slot_accuracy as slots
from scripts.check_slot_accuracy import MoneyExample, normalise_value, score_money

# Rasa's YAML reader validates with pykwalify, which loads its extensions the old way.
pytestmark = pytest.mark.filterwarnings("ignore:the load_module\\(\\) method is deprecated:DeprecationWarning")


def ent(entity: str, value: str) -> dict:
    return {"entity": entity, "value": value}


def parse(intent: str, *entities: dict) -> dict:
    return {"intent": {"name": intent, "confidence": 0.9}, "entities": list(entities)}


@pytest.mark.parametrize(
    ("entity", "value", "expected"),
    [
        ("amount", "5000", "5000"),
        ("amount", "5000.50", "5000.5"),
        ("amount", "2500.5", "2500.5"),
        ("amount", "1500000.00", "1500000"),
        ("amount", "1,500", "1500"),
        ("amount", "5k", "5000"),  # not normalised by the pipeline: read as the form reads it
        ("amount", "0803", "invalid:0803"),  # the form refuses it, so it matches nothing
        ("amount", "NaN", "invalid:NaN"),
        ("account_number", "0123 456 789", "0123456789"),
        ("phone_number", "+234 803 123 4567", "08031234567"),
        ("phone_number", "2348031234567", "08031234567"),
        ("phone_number", "0803-123-4567", "08031234567"),
        ("phone_number", "08031234567", "08031234567"),
        ("customer_ref", "lw-0034567", "LW0034567"),
        ("customer_ref", "7023 456 789", "7023456789"),
    ],
)
def test_values_are_compared_in_one_normal_form(entity: str, value: str, expected: str) -> None:
    assert normalise_value(entity, value) == expected


def test_a_message_is_right_per_type_when_the_value_sets_are_equal() -> None:
    example = MoneyExample("send 5k to 0123456789 gtb", "transfer_money",
                           [ent("amount", "5000"), ent("account_number", "0123456789"), ent("bank", "GTBank")])
    report = score_money([example], [parse("transfer_money", ent("amount", "5000.00"),
                                           ent("account_number", "0123456789"), ent("bank", "GTBank"))])
    assert report.per_entity["amount"].accuracy == 1.0
    assert report.per_entity["account_number"].accuracy == 1.0
    assert report.per_entity["phone_number"].counted == 0  # none annotated, none found: not counted
    assert report.all_slots.correct == 1
    assert report.errors == []


def test_a_number_in_the_wrong_role_is_wrong_for_both_types() -> None:
    example = MoneyExample("send 2500 to 0123456789 access bank", "transfer_money",
                           [ent("amount", "2500"), ent("account_number", "0123456789")])
    report = score_money([example], [parse("transfer_money", ent("account_number", "2500"),
                                           ent("account_number", "0123456789"))])
    assert report.per_entity["amount"].correct == 0
    assert report.per_entity["account_number"].correct == 0
    assert report.errors[0]["slots"]["account_number"] == {"expected": ["0123456789"],
                                                            "found": ["0123456789", "2500"]}


def test_a_value_found_where_none_is_annotated_counts_against_that_type() -> None:
    example = MoneyExample("pay phcn 3000", "pay_bill", [ent("amount", "3000")])
    report = score_money([example], [parse("pay_bill", ent("amount", "3000"), ent("customer_ref", "3000"))])
    assert report.per_entity["amount"].accuracy == 1.0
    assert (report.per_entity["customer_ref"].counted, report.per_entity["customer_ref"].correct) == (1, 0)
    assert report.all_slots.correct == 0


def test_a_missed_value_and_a_split_amount_are_wrong() -> None:
    examples = [
        MoneyExample("transfer three thousand to Ngozi", "transfer_money", [ent("amount", "3000")]),
        MoneyExample("send twenty five thousand naira", "transfer_money", [ent("amount", "25000")]),
    ]
    report = score_money(examples, [parse("transfer_money"),
                                    parse("transfer_money", ent("amount", "20"), ent("amount", "5000"))])
    assert (report.per_entity["amount"].counted, report.per_entity["amount"].correct) == (2, 0)


def test_two_annotated_values_of_one_type_must_both_be_found() -> None:
    example = MoneyExample("move 5k from savings, and 5k more", "transfer_money", [ent("amount", "5000")])
    same_value_twice = parse("transfer_money", ent("amount", "5000"), ent("amount", "5000"))
    assert score_money([example], [same_value_twice]).per_entity["amount"].accuracy == 1.0  # a set: 5000 once


def test_phone_numbers_in_any_written_form_match_the_local_form() -> None:
    example = MoneyExample("recharge +234 803 123 4567 with 1k", "buy_airtime",
                           [ent("phone_number", "08031234567"), ent("amount", "1000")])
    report = score_money([example], [parse("buy_airtime", ent("phone_number", "+2348031234567"),
                                           ent("amount", "1000"))])
    assert report.per_entity["phone_number"].accuracy == 1.0


def test_entities_other_than_the_four_slots_do_not_count() -> None:
    example = MoneyExample("my savings", "inform", [ent("account_type", "savings")])
    report = score_money([example], [parse("inform", ent("account_type", "checking"), ent("bank", "UBA"))])
    assert all(score.counted == 0 for score in report.per_entity.values())
    assert report.all_slots.correct == 1


def test_intent_accuracy_and_subsets_are_counted() -> None:
    examples = [
        MoneyExample("abeg send 5k give 0123456789 gtb", "transfer_money",
                     [ent("amount", "5000"), ent("account_number", "0123456789")]),
        MoneyExample("2500", "inform", [ent("amount", "2500")]),
    ]
    report = score_money(examples, [
        parse("transfer_money", ent("amount", "5000"), ent("account_number", "0123456789")),
        parse("nlu_fallback", ent("amount", "2500")),
    ])
    assert (report.intent.counted, report.intent.correct) == (2, 1)
    assert report.subsets["pidgin"].counted == 1
    assert report.subsets["two_or_more_numbers"].counted == 1
    assert report.subsets["english"].counted == report.subsets["at_most_one_number"].counted == 1


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        score_money([MoneyExample("2500", "inform", [])], [])


def test_out_of_scope_money_rate_counts_only_money_moving_intents() -> None:
    parses = [parse("out_of_scope"), parse("nlu_fallback"), parse("transfer_money"), parse("pay_bill"),
              parse("check_balance"), {"intent": None, "entities": []}, parse("buy_airtime"), parse("out_of_scope")]
    rate = slots.out_of_scope_money_rate(parses)
    assert rate["money_moving"] == 3
    assert rate["money_moving_rate"] == 3 / 8
    assert rate["predicted_out_of_scope"] == 2
    assert rate["predicted_intents"]["none"] == 1
    texts = [f"message {n}" for n in range(8)]
    listed = slots.out_of_scope_money_rate(parses, texts)["money_moving_messages"]
    assert [m["text"] for m in listed] == ["message 2", "message 3", "message 6"]


def test_the_rate_before_the_fallback_reads_the_top_intent_below_nlu_fallback() -> None:
    unsure = {"intent": {"name": "nlu_fallback", "confidence": 0.55},
              "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.55},
                                 {"name": "pay_bill", "confidence": 0.4}, {"name": "out_of_scope", "confidence": 0.3}],
              "entities": []}
    rate = slots.out_of_scope_money_rate([unsure, parse("out_of_scope")])
    assert (rate["money_moving"], rate["money_moving_before_fallback"]) == (0, 1)
    assert rate["money_moving_rate_before_fallback"] == 0.5


def test_gates() -> None:
    report = score_money(
        [MoneyExample("2500", "inform", [ent("amount", "2500")]) for _ in range(100)],
        [parse("inform", ent("amount", "2500"))] * 99 + [parse("inform")],
    )
    oos_ok = slots.out_of_scope_money_rate([parse("out_of_scope")] * 200)
    assert slots.gate_failures(report, oos_ok, 0.99, 0.005) == []
    assert slots.gate_failures(report, oos_ok, 0.995, 0.005) == ["amount slot accuracy 0.990 < 0.995"]
    oos_bad = slots.out_of_scope_money_rate([parse("out_of_scope")] * 198 + [parse("transfer_money")] * 2)
    assert slots.gate_failures(report, oos_bad, 0.99, 0.005) == ["out-of-scope → money-moving rate 0.010 > 0.005"]


def test_percentiles_are_nearest_rank() -> None:
    timings = [float(ms) for ms in range(1, 101)]
    assert slots.percentile(timings, 0.50) == 50.0
    assert slots.percentile(timings, 0.95) == 95.0
    assert slots.percentile([7.0], 0.95) == 7.0


def test_overlap_ignores_case_and_spacing() -> None:
    assert slots.training_overlap(["Send  5K to savings ", "pay dstv"], ["send 5k to SAVINGS"]) == [
        "Send  5K to savings "
    ]
    assert slots.training_overlap(["send 5k to savings"], ["send 5k to my savings"]) == []


def test_pidgin_is_told_by_its_own_words() -> None:
    assert slots.is_pidgin("abeg send 5k give tunde")
    assert slots.is_pidgin("make i pay my dstv")
    assert not slots.is_pidgin("send 5k to tunde")
    assert not slots.is_pidgin("make a transfer of 5k")


def test_the_report_is_written_and_the_build_fails_below_the_gates(tmp_path: Path, monkeypatch) -> None:
    money = tmp_path / "money.yml"
    money.write_text('version: "3.1"\nnlu:\n  - intent: inform\n    examples: |\n'
                     '      - [2.5k]{"entity": "amount", "value": "2500"}\n'
                     '      - abeg na [0123456789]{"entity": "account_number", "value": "0123456789"}\n')
    oos = tmp_path / "oos.yml"
    oos.write_text('version: "3.1"\nnlu:\n  - intent: out_of_scope\n    examples: |\n      - tell me a story\n')
    training = tmp_path / "training.yml"
    training.write_text('version: "3.1"\nnlu:\n  - intent: greet\n    examples: |\n      - hello\n')
    answers = {
        "2.5k": parse("inform", ent("amount", "2500")),
        "abeg na 0123456789": parse("inform", ent("phone_number", "0123456789")),
        "tell me a story": parse("transfer_money"),
    }

    async def fake_parse_all(model: str, texts: list[str]) -> tuple[list[dict], list[float]]:
        return [answers[t] for t in texts], [5.0, 6.0, 7.0]

    monkeypatch.setattr(slots, "parse_all", fake_parse_all)
    out = tmp_path / "slot_accuracy.json"
    args = ["model.tar.gz", "--money", str(money), "--out-of-scope", str(oos), "--training-data", str(training),
            "--fresh-money", str(tmp_path / "absent.yml"),
            "--out", str(out)]
    assert slots.main(args) == 1
    result = json.loads(out.read_text())
    assert result["slot_accuracy"]["amount"] == {"messages": 1, "correct": 1, "accuracy": 1.0}
    assert result["slot_accuracy"]["account_number"]["accuracy"] == 0.0
    assert result["out_of_scope"]["money_moving_rate"] == 1.0
    assert result["held_out_money"]["pidgin"] == 1
    assert result["parse_latency_ms"]["p95"] == 7.0
    assert len(result["gates"]["failures"]) == 3


def test_held_out_text_that_is_a_training_example_is_refused(tmp_path: Path, monkeypatch) -> None:
    money = tmp_path / "money.yml"
    money.write_text('version: "3.1"\nnlu:\n  - intent: inform\n    examples: |\n'
                     '      - [2.5k]{"entity": "amount", "value": "2500"}\n')
    training = tmp_path / "training.yml"
    training.write_text('version: "3.1"\nnlu:\n  - intent: inform\n    examples: |\n'
                        '      - [2.5K](amount)\n')

    async def must_not_parse(model: str, texts: list[str]) -> None:
        raise AssertionError("a model was run on data it was trained on")

    monkeypatch.setattr(slots, "parse_all", must_not_parse)
    assert slots.main(["model.tar.gz", "--money", str(money), "--out-of-scope", str(money),
                       "--fresh-money", str(tmp_path / "absent.yml"),
                       "--training-data", str(training), "--out", str(tmp_path / "r.json")]) == 1
