"""Fails the build unless every conversation test in the stories directory was run and passed.

`rasa test core` quietly evaluates other stories when the path it was given is
missing, and skips without a word any file whose name lacks the `test_` prefix, so the
number it ran is checked against the files themselves.

    python scripts/check_core_results.py tests/stories results/core
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import yaml

# What Rasa reads as conversation tests (rasa.shared.constants.TEST_STORIES_FILE_PREFIX).
TEST_PREFIX = "test_"


def story_files(path: Path) -> list[Path]:
    """The YAML files under ``path`` (or ``path`` itself), as Rasa walks a --stories path."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def expected_stories(path: Path) -> tuple[list[str], list[str]]:
    """(the story names Rasa should run, problems that would make it run fewer)."""
    names: list[str] = []
    problems: list[str] = []
    files = story_files(path)
    if not files:
        problems.append(f"no conversation tests in {path}")
    for file in files:
        content = yaml.safe_load(file.read_text()) or {}
        if not file.name.startswith(TEST_PREFIX):
            problems.append(f"{file}: Rasa skips it, a conversation test file's name starts with {TEST_PREFIX}")
            continue
        names += [story["story"] for story in content.get("stories") or []]
    for name, count in Counter(names).items():
        if count > 1:
            problems.append(f"story name used {count} times: {name!r}")
    return names, problems


def main() -> int:
    stories, results = Path(sys.argv[1]), Path(sys.argv[2])
    names, problems = expected_stories(stories)
    expected = len(names)
    report = json.loads((results / "story_report.json").read_text())["conversation_accuracy"]
    print(f"conversation tests: {report['correct']} of {report['total']} passed "
          f"({expected} in {stories})")
    if report["total"] != expected or report["correct"] != expected:
        problems.append("not every conversation test ran and passed")
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
