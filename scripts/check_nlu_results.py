"""Fails the build when held-out NLU quality drops, and prints the figures.

    python scripts/check_nlu_results.py results/nlu --min-intent-f1 0.90
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

    weak = {k: v["f1-score"] for k, v in intents.items()
            if isinstance(v, dict) and "support" in v and k not in ("macro avg", "weighted avg", "micro avg")
            and v["f1-score"] < args.min_intent_f1}
    for intent, f1 in sorted(weak.items(), key=lambda kv: kv[1]):
        print(f"  below {args.min_intent_f1:.2f}: {intent} {f1:.3f}")
    if macro_f1 < args.min_intent_f1:
        print(f"FAIL: intent macro-F1 {macro_f1:.3f} < {args.min_intent_f1:.2f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
