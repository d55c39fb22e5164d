"""Fails the build when held-out NLU quality drops, and prints the figures.

    python scripts/check_nlu_results.py results/nlu --min-intent-f1 0.95 [--nlu tests/nlu]

With --nlu (and `rasa test nlu --successes`, so every prediction is on disk) the intent
figures are also printed per held-out file: accuracy, and macro-F1 over that file's
own messages and intents.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("--min-intent-f1", type=float, required=True)
    parser.add_argument("--nlu", type=Path, help="the held-out data, for figures per file")
    args = parser.parse_args()

    intents = json.loads((args.results / "intent_report.json").read_text())
    macro_f1 = intents["macro avg"]["f1-score"]
    print(f"held-out intent macro-F1: {macro_f1:.3f} (accuracy {intents['accuracy']:.3f})")
    for report in sorted(args.results.glob("*_report.json")):
        if report.name in ("intent_report.json", "response_selection_report.json"):
            continue
        entities = json.loads(report.read_text())
        name = report.name.removesuffix("_report.json")
        print(f"held-out entity F1 ({name}): micro {entities['micro avg']['f1-score']:.3f}, "
              f"macro {entities['macro avg']['f1-score']:.3f}")
    if args.nlu:
        print_per_file(args.results, args.nlu)

    weak = {k: v["f1-score"] for k, v in intents.items()
            if isinstance(v, dict) and "support" in v and k not in ("macro avg", "weighted avg", "micro avg")
            and v["f1-score"] < args.min_intent_f1}
    for intent, f1 in sorted(weak.items(), key=lambda kv: kv[1]):
        print(f"  below {args.min_intent_f1:.2f}: {intent} {f1:.3f}")
    if macro_f1 < args.min_intent_f1:
        print(f"FAIL: intent macro-F1 {macro_f1:.3f} < {args.min_intent_f1:.2f}", file=sys.stderr)
        return 1
    return 0


def print_per_file(results: Path, nlu: Path) -> None:
    """Intent accuracy and in-file macro-F1 for each held-out file."""
    from rasa.shared.nlu.training_data.loading import load_data

    predictions = {}
    for name in ("intent_successes.json", "intent_errors.json"):
        path = results / name
        if not path.exists():
            print(f"per-file figures need {path} (rasa test nlu --successes)")
            return
        for row in json.loads(path.read_text()):
            predictions[(row["text"], row["intent"])] = (row.get("intent_prediction") or {}).get("name")
    files = [nlu] if nlu.is_file() else sorted(nlu.rglob("*.yml"))
    for file in files:
        pairs = [(m.get("intent"), predictions.get((m.get("text"), m.get("intent"))))
                 for m in load_data(str(file)).intent_examples]
        if not pairs:
            continue
        right = sum(gold == predicted for gold, predicted in pairs)
        print(f"  {file}: {len(pairs)} messages, intent accuracy {right / len(pairs):.3f}, "
              f"in-file macro-F1 {in_file_macro_f1(pairs):.3f}")


def in_file_macro_f1(pairs: list[tuple[str, str | None]]) -> float:
    """Macro-F1 over the gold intents of one file, counting only that file's predictions."""
    scores = []
    for intent in sorted({gold for gold, _ in pairs}):
        tp = sum(g == intent and p == intent for g, p in pairs)
        fp = sum(g != intent and p == intent for g, p in pairs)
        fn = sum(g == intent and p != intent for g, p in pairs)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


if __name__ == "__main__":
    sys.exit(main())
