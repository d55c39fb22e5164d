"""Fails the build unless every conversation test in the stories file was run and passed.

`rasa test core` quietly evaluates other stories when the file it was given is
missing, so the number it ran is checked against the file itself.

    python scripts/check_core_results.py tests/test_stories.yml results/core
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def main() -> int:
    stories_file, results = Path(sys.argv[1]), Path(sys.argv[2])
    expected = len(yaml.safe_load(stories_file.read_text())["stories"])
    report = json.loads((results / "story_report.json").read_text())["conversation_accuracy"]
    print(f"conversation tests: {report['correct']} of {report['total']} passed "
          f"({expected} in {stories_file})")
    if report["total"] != expected or report["correct"] != expected:
        print("FAIL: not every conversation test ran and passed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
