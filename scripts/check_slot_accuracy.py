"""Exact slot accuracy on the held-out money messages, and how often an out-of-scope
message would start a money movement. Fails the build below the gates.

    .venv/bin/python scripts/check_slot_accuracy.py models/banking.tar.gz \\
        --min-slot-accuracy 0.99 --max-oos-money-rate 0.005 --out results/nlu/slot_accuracy.json

Every message of tests/nlu/held_out_money.yml is parsed by the trained model (Rasa's
own Agent, the whole NLU pipeline). For each of amount, account_number, phone_number
and customer_ref, a message is right when the set of values the model's final entities
give for that type (what the form sees) equals the annotated set, values normalised
alike: amounts as Decimal naira, numbers as digits, phone numbers in the 11-digit 0XX
form, references as upper-case letters and digits. "None annotated, none found" is
right too. A type's accuracy counts the messages where it was annotated or found.

The out-of-scope → money-moving rate is the share of tests/nlu/held_out_out_of_scope.yml
predicted as transfer_money, pay_bill or buy_airtime (the final intent, after the
FallbackClassifier; the rate of the model's own top intent, as `rasa test nlu` scores
it, is reported beside it). Parse latency (p50/p95) is
measured on the same messages after a warm-up.

The same figures are given, separately, for tests/nlu/fresh_money.yml and
fresh_out_of_scope.yml when they exist: a second held-out pair written after the first
had been used to find the model's errors, by someone who saw neither the training data
nor those errors. The gates apply to each pair.

No held-out text may equal a training example (case and spacing ignored): the script
refuses to measure a model on data it was trained on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import re
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence, Set

SLOT_ENTITIES = ("amount", "account_number", "phone_number", "customer_ref")
MONEY_INTENTS = ("transfer_money", "pay_bill", "buy_airtime")
DEFAULT_MONEY = Path("tests/nlu/held_out_money.yml")
DEFAULT_OUT_OF_SCOPE = Path("tests/nlu/held_out_out_of_scope.yml")
DEFAULT_TRAINING = Path("data/nlu")
# Written later, by someone who never saw the training data or the model's errors on the first
# sets: a figure nobody has tuned for.
DEFAULT_FRESH_MONEY = Path("tests/nlu/fresh_money.yml")
DEFAULT_FRESH_OUT_OF_SCOPE = Path("tests/nlu/fresh_out_of_scope.yml")
SET_TITLES = {"held_out": "held_out_money.yml and held_out_out_of_scope.yml",
              "fresh": "fresh_money.yml and fresh_out_of_scope.yml (never looked at while tuning)"}
WARM_UP_MESSAGES = 20

# Words (and word pairs) that only Nigerian Pidgin uses; a message with one counts as Pidgin.
PIDGIN_WORDS = frozenset({
    "abeg", "dey", "wetin", "una", "oya", "wan", "don", "na", "pikin", "abi", "sef", "jare",
    "biko", "comot", "commot", "wey", "dem", "sabi", "oga", "nawa",
})
PIDGIN_PAIRS = frozenset({
    ("make", "i"), ("make", "u"), ("make", "you"), ("make", "e"), ("make", "una"),
    ("sharp", "sharp"), ("e", "be"), ("e", "go"), ("e", "na"),
})


# --- values as the form sees them --------------------------------------------------------

def normalise_value(entity_type: str, value: Any) -> str:
    """One comparable spelling of an entity value. A value that is not a valid amount
    stays as written (prefixed "invalid:"), so it never equals an annotated one."""
    text = str(value).strip()
    if entity_type == "amount":
        amount = _amount(text)
        return f"invalid:{text}" if amount is None else _plain_decimal(amount)
    if entity_type == "account_number":
        return re.sub(r"\D", "", text)
    if entity_type == "phone_number":
        digits = re.sub(r"\D", "", text)
        if len(digits) == 13 and digits.startswith("234"):
            digits = "0" + digits[3:]
        return digits
    if entity_type == "customer_ref":
        return re.sub(r"[^0-9A-Za-z]", "", text).upper()
    return text


def _amount(text: str) -> Decimal | None:
    """Naira as a Decimal: plain digits as they are, anything else the way the form reads it."""
    if re.match(r"0\d", text):
        return None  # "0803..." is a phone or account number; the form refuses it as an amount
    try:
        amount = Decimal(text.replace(",", ""))
    except InvalidOperation:
        from banking.money import amount_entity_value  # what validate_amount applies to a slot value

        parsed = amount_entity_value(text)
        return None if parsed is None else Decimal(parsed)
    return amount if amount.is_finite() else None


def _plain_decimal(amount: Decimal) -> str:
    return format(amount.normalize(), "f")  # Decimal("5000.50") -> "5000.5", Decimal("5E+3") -> "5000"


def slot_values(entities: Iterable[Dict[str, Any]]) -> Dict[str, Set[str]]:
    """The normalised values per slot entity type of one message's entity list."""
    values: Dict[str, Set[str]] = {name: set() for name in SLOT_ENTITIES}
    for entity in entities:
        name = entity.get("entity")
        if name in values and entity.get("value") is not None:
            values[name].add(normalise_value(name, entity["value"]))
    return values


# --- scoring -------------------------------------------------------------------------------

@dataclass
class MoneyExample:
    text: str
    intent: str
    entities: List[Dict[str, Any]]


@dataclass
class SlotScore:
    counted: int = 0
    correct: int = 0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.counted if self.counted else None


@dataclass
class MoneyReport:
    per_entity: Dict[str, SlotScore] = field(default_factory=lambda: {n: SlotScore() for n in SLOT_ENTITIES})
    all_slots: SlotScore = field(default_factory=SlotScore)  # every message, all four types right
    subsets: Dict[str, SlotScore] = field(default_factory=dict)  # all four right, per kind of message
    intent: SlotScore = field(default_factory=SlotScore)
    errors: List[Dict[str, Any]] = field(default_factory=list)


def score_money(examples: Sequence[MoneyExample], parses: Sequence[Dict[str, Any]]) -> MoneyReport:
    """Compare each parse's final entities with the annotations of the same message."""
    if len(examples) != len(parses):
        raise ValueError(f"{len(examples)} examples but {len(parses)} parse results")
    report = MoneyReport()
    for example, parse in zip(examples, parses, strict=True):
        gold = slot_values(example.entities)
        found = slot_values(parse.get("entities") or [])
        wrong = {}
        for name in SLOT_ENTITIES:
            if not gold[name] and not found[name]:
                continue
            score = report.per_entity[name]
            score.counted += 1
            if gold[name] == found[name]:
                score.correct += 1
            else:
                wrong[name] = {"expected": sorted(gold[name]), "found": sorted(found[name])}
        _count(report.all_slots, not wrong)
        for subset in message_kinds(example):
            _count(report.subsets.setdefault(subset, SlotScore()), not wrong)
        predicted_intent = (parse.get("intent") or {}).get("name")
        _count(report.intent, predicted_intent == example.intent)
        if wrong:
            report.errors.append({"text": example.text, "intent": example.intent,
                                  "predicted_intent": predicted_intent, "slots": wrong})
    return report


def _count(score: SlotScore, right: bool) -> None:
    score.counted += 1
    score.correct += int(right)


def message_kinds(example: MoneyExample) -> List[str]:
    """The subsets a money message belongs to, for the breakdown."""
    kinds = ["pidgin" if is_pidgin(example.text) else "english"]
    numbers = sum(1 for e in example.entities if e.get("entity") in SLOT_ENTITIES)
    kinds.append("two_or_more_numbers" if numbers >= 2 else "at_most_one_number")
    return kinds


def is_pidgin(text: str) -> bool:
    words = re.findall(r"[a-z]+", text.lower())
    pairs = zip(words, words[1:], strict=False)
    return bool(PIDGIN_WORDS.intersection(words)) or any(pair in PIDGIN_PAIRS for pair in pairs)


def out_of_scope_money_rate(parses: Sequence[Dict[str, Any]],
                            texts: Sequence[str] | None = None) -> Dict[str, Any]:
    """Share of out-of-scope messages predicted as an intent that starts a money movement."""
    predicted: Dict[str, int] = {}
    money_moving_messages = []
    for index, parse in enumerate(parses):
        name = (parse.get("intent") or {}).get("name") or "none"
        predicted[name] = predicted.get(name, 0) + 1
        if name in MONEY_INTENTS and texts is not None:
            money_moving_messages.append({"text": texts[index], "predicted_intent": name})
    money = sum(predicted.get(name, 0) for name in MONEY_INTENTS)
    # The model's own top intent, as `rasa test nlu` scores it (the fallback undone).
    money_before_fallback = sum(_top_intent(parse) in MONEY_INTENTS for parse in parses)
    total = len(parses)
    return {
        "messages": total,
        "money_moving": money,
        "money_moving_rate": money / total if total else None,
        "money_moving_before_fallback": money_before_fallback,
        "money_moving_rate_before_fallback": money_before_fallback / total if total else None,
        "predicted_out_of_scope": predicted.get("out_of_scope", 0),
        "predicted_intents": dict(sorted(predicted.items(), key=lambda kv: (-kv[1], kv[0]))),
        "money_moving_messages": money_moving_messages,
    }


def _top_intent(parse: Dict[str, Any]) -> str | None:
    for ranked in parse.get("intent_ranking") or [parse.get("intent") or {}]:
        if ranked.get("name") != "nlu_fallback":
            return ranked.get("name")
    return None


def percentile(timings_ms: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p50 = median of the sorted list, p95 = 95th rank)."""
    ordered = sorted(timings_ms)
    if not ordered:
        raise ValueError("no timings")
    rank = max(1, math.ceil(len(ordered) * fraction))
    return ordered[rank - 1]


def gate_failures(report: MoneyReport, oos: Dict[str, Any], min_slot_accuracy: float,
                  max_oos_money_rate: float) -> List[str]:
    failures = []
    for name, score in report.per_entity.items():
        if score.accuracy is not None and score.accuracy < min_slot_accuracy:
            failures.append(f"{name} slot accuracy {score.accuracy:.3f} < {min_slot_accuracy:.3f}")
    rate = oos["money_moving_rate"]
    if rate is not None and rate > max_oos_money_rate:
        failures.append(f"out-of-scope → money-moving rate {rate:.3f} > {max_oos_money_rate:.3f}")
    return failures


# --- held-out data and training overlap ------------------------------------------------------

def comparable_text(text: str) -> str:
    """Case- and spacing-insensitive form of a message, for the overlap check."""
    return " ".join(text.casefold().split())


def training_overlap(held_out: Iterable[str], training: Iterable[str]) -> List[str]:
    seen = {comparable_text(t) for t in training}
    return sorted({t for t in held_out if comparable_text(t) in seen})


def load_examples(path: Path) -> List[MoneyExample]:
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    return [MoneyExample(m.get("text"), m.get("intent"), list(m.get("entities") or []))
            for m in data.intent_examples]


def load_training_texts(path: Path) -> List[str]:
    from rasa.shared.nlu.training_data.loading import load_data

    return [m.get("text") for m in load_data(str(path)).intent_examples]


# --- running the model ------------------------------------------------------------------------

async def parse_all(model: str, texts: Sequence[str]) -> tuple[List[Dict[str, Any]], List[float]]:
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # not a debug line per parsed message
    agent = Agent.load(model)
    for text in texts[:WARM_UP_MESSAGES]:  # the first calls build TensorFlow graphs
        await agent.parse_message(text)
    parses, timings = [], []
    for text in texts:
        start = time.perf_counter()
        parses.append(await agent.parse_message(text))
        timings.append((time.perf_counter() - start) * 1000)
    return parses, timings


def summary(report: MoneyReport, oos: Dict[str, Any], timings: Sequence[float],
            composition: Dict[str, Any]) -> Dict[str, Any]:
    def score(s: SlotScore) -> Dict[str, Any]:
        return {"messages": s.counted, "correct": s.correct, "accuracy": s.accuracy}

    return {
        "held_out_money": composition,
        "slot_accuracy": {name: score(s) for name, s in report.per_entity.items()},
        "all_slots_exact": score(report.all_slots),
        "all_slots_exact_by_kind": {k: score(s) for k, s in sorted(report.subsets.items())},
        "money_intent_accuracy": score(report.intent),
        "out_of_scope": oos,
        "parse_latency_ms": {
            "messages": len(timings),
            "p50": round(percentile(timings, 0.50), 2),
            "p95": round(percentile(timings, 0.95), 2),
            "max": round(max(timings), 2),
        },
        "errors": report.errors,
    }


def print_table(result: Dict[str, Any], shown_errors: int) -> None:
    def pct(value: float | None) -> str:
        return "   n/a" if value is None else f"{value * 100:6.2f}%"

    held = result["held_out_money"]
    print(f"held-out money messages: {held['messages']} ({held['pidgin']} Pidgin, "
          f"{held['two_or_more_numbers']} with two or more numbers)")
    print(f"{'slot':<16}{'messages':>9}{'correct':>9}{'accuracy':>10}")
    for name, score in result["slot_accuracy"].items():
        print(f"{name:<16}{score['messages']:>9}{score['correct']:>9}{pct(score['accuracy']):>10}")
    exact = result["all_slots_exact"]
    print(f"{'all four exact':<16}{exact['messages']:>9}{exact['correct']:>9}{pct(exact['accuracy']):>10}")
    for kind, score in result["all_slots_exact_by_kind"].items():
        print(f"  {kind:<22}{score['messages']:>5}{score['correct']:>9}{pct(score['accuracy']):>10}")
    intent = result["money_intent_accuracy"]
    print(f"money intent accuracy: {pct(intent['accuracy']).strip()} ({intent['correct']}/{intent['messages']})")
    oos = result["out_of_scope"]
    print(f"out-of-scope → money-moving: {pct(oos['money_moving_rate']).strip()} "
          f"({oos['money_moving']}/{oos['messages']}); without the fallback threshold "
          f"{pct(oos['money_moving_rate_before_fallback']).strip()}; predicted out_of_scope "
          f"{oos['predicted_out_of_scope']}; predictions {oos['predicted_intents']}")
    latency = result["parse_latency_ms"]
    print(f"parse latency over {latency['messages']} messages: p50 {latency['p50']:.1f} ms, "
          f"p95 {latency['p95']:.1f} ms, max {latency['max']:.1f} ms")
    for error in result["errors"][:shown_errors]:
        slots = "; ".join(f"{k} expected {v['expected']} found {v['found']}" for k, v in error["slots"].items())
        print(f"  wrong: {error['text']!r}: {slots}")
    if len(result["errors"]) > shown_errors:
        print(f"  ... {len(result['errors']) - shown_errors} more in the JSON")


def composition_of(examples: Sequence[MoneyExample]) -> Dict[str, Any]:
    kinds = [message_kinds(e) for e in examples]
    return {
        "messages": len(examples),
        "pidgin": sum("pidgin" in k for k in kinds),
        "two_or_more_numbers": sum("two_or_more_numbers" in k for k in kinds),
        "per_intent": {i: sum(e.intent == i for e in examples) for i in sorted({e.intent for e in examples})},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--money", type=Path, default=DEFAULT_MONEY)
    parser.add_argument("--out-of-scope", type=Path, default=DEFAULT_OUT_OF_SCOPE)
    parser.add_argument("--fresh-money", type=Path, default=DEFAULT_FRESH_MONEY,
                        help="a second held-out money set, written after the first was used (skipped if absent)")
    parser.add_argument("--fresh-out-of-scope", type=Path, default=DEFAULT_FRESH_OUT_OF_SCOPE)
    parser.add_argument("--training-data", type=Path, default=DEFAULT_TRAINING)
    parser.add_argument("--min-slot-accuracy", type=float, default=0.99)
    parser.add_argument("--max-oos-money-rate", type=float, default=0.005)
    parser.add_argument("--out", type=Path, default=Path("results/nlu/slot_accuracy.json"))
    parser.add_argument("--show-errors", type=int, default=25)
    args = parser.parse_args(argv)

    sets = {"held_out": (load_examples(args.money), load_examples(args.out_of_scope))}
    if args.fresh_money.is_file() and args.fresh_out_of_scope.is_file():
        sets["fresh"] = (load_examples(args.fresh_money), load_examples(args.fresh_out_of_scope))
    texts = [e.text for money, oos in sets.values() for e in money + oos]
    overlap = training_overlap(texts, load_training_texts(args.training_data))
    if overlap:
        for text in overlap:
            print(f"held-out message is also a training example: {text!r}", file=sys.stderr)
        print(f"FAIL: {len(overlap)} held-out messages are in {args.training_data}", file=sys.stderr)
        return 1

    parses, timings = asyncio.run(parse_all(args.model, texts))
    results, failures, offset = {}, [], 0
    for name, (money, out_of_scope) in sets.items():
        money_parses = parses[offset: offset + len(money)]
        oos_parses = parses[offset + len(money): offset + len(money) + len(out_of_scope)]
        offset += len(money) + len(out_of_scope)
        report = score_money(money, money_parses)
        oos = out_of_scope_money_rate(oos_parses, [e.text for e in out_of_scope])
        results[name] = summary(report, oos, timings, composition_of(money))
        failures += [f"{name}: {failure}" for failure in
                     gate_failures(report, oos, args.min_slot_accuracy, args.max_oos_money_rate)]
    result = {**results["held_out"], "fresh": results.get("fresh")}
    result["gates"] = {"min_slot_accuracy": args.min_slot_accuracy,
                       "max_oos_money_rate": args.max_oos_money_rate, "failures": failures}

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    for name, one in results.items():
        print(f"--- {name}: {SET_TITLES[name]}")
        print_table(one, args.show_errors)
    print(f"written: {args.out}")
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
