"""`rasa data validate`, failing on errors and on every warning but one kind, and on NLU
lookups or synonyms that no longer match banking/catalog.py.

Rasa warns about each response that no story or rule names; that is every form
question (`utter_ask_<slot>`, asked by the form itself) and every response a custom
action sends. Such a warning passes only when the response really is a form
question for a slot in domain/, or is named by an action in actions/; a response
that nothing sends still fails the build. Rasa's own fallback response counts as sent.

Rasa is run without --domain, as `rasa train` is: its default path, domain.yml, is a
link to domain/.

    python scripts/validate_data.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

# Responses Rasa's own default actions send (action_default_fallback -> utter_default).
RASA_DEFAULT_RESPONSES = {"utter_default"}
DOMAIN_DIR = Path("domain")
UNUSED = re.compile(r"The utterance '(\w+)' is not used in any story or rule")
WARNING = re.compile(r"UserWarning|WARNING|ERROR")
# Intents only the server sends (Rasa's external events: a provider's webhook) have no training examples.
EXTERNAL_WITHOUT_EXAMPLES = re.compile(r"The intent 'EXTERNAL_\w+' is listed in the domain file, but is not found in "
                                       r"the NLU training data")


def main() -> int:
    # SQLAlchemy's 2.0 notice (printed when Rasa imports it) names a variable with WARNING in it.
    env = {**os.environ, "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    run = subprocess.run([".venv/bin/rasa", "data", "validate"], capture_output=True, text=True, env=env)
    output = run.stdout + run.stderr
    print(output)
    problems: list[str] = []

    slots: set[str] = set()
    forms: set[str] = set()
    for path in sorted(DOMAIN_DIR.rglob("*.yml")):
        part = yaml.safe_load(path.read_text()) or {}
        slots |= set(part.get("slots") or {})
        forms |= set(part.get("forms") or {})
    actions_source = "\n".join(p.read_text() for p in Path("actions").rglob("*.py"))

    for line in output.splitlines():
        unused = UNUSED.search(line)
        if unused:
            response = unused.group(1)
            sent_by_rasa = response in RASA_DEFAULT_RESPONSES
            if not (sent_by_rasa or _is_form_question(response, slots, forms) or f'"{response}"' in actions_source):
                problems.append(f"response '{response}' is sent by no story, rule, form or action")
        elif EXTERNAL_WITHOUT_EXAMPLES.search(line):
            continue
        elif WARNING.search(line):
            problems.append(line.strip())

    if run.returncode != 0 and not any(UNUSED.search(line) for line in output.splitlines()):
        problems.append(f"rasa data validate exited with {run.returncode}")
    catalog = subprocess.run([sys.executable, "scripts/generate_nlu_catalog.py", "--check"],
                             capture_output=True, text=True)
    problems += [line for line in catalog.stderr.splitlines() if line.strip()]
    if catalog.returncode != 0 and not catalog.stderr.strip():
        problems.append(f"scripts/generate_nlu_catalog.py --check exited with {catalog.returncode}")
    for problem in problems:
        print(f"validate: {problem}", file=sys.stderr)
    print(f"validate: {'FAILED' if problems else 'ok'} ({len(problems)} problems)")
    return 1 if problems else 0


def _is_form_question(response: str, slots: set[str], forms: set[str]) -> bool:
    if not response.startswith("utter_ask_"):
        return False
    asked = response.removeprefix("utter_ask_")
    for form in forms:
        asked = asked.removeprefix(f"{form}_")
    return asked in slots


if __name__ == "__main__":
    sys.exit(main())
