"""The domain is split by topic in domain/, and Rasa sees all of it, once.

Rasa merges every YAML file under a domain directory; a name defined in two files is
merged silently by some commands and only warned about by others, so each intent,
entity, slot, form, action and response must live in exactly one file.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from checks.action_runner import DOMAIN, ROOT

DOMAIN_DIR = ROOT / "domain"
FILES = sorted(DOMAIN_DIR.rglob("*.yml"))
SECTIONS = ("intents", "entities", "slots", "forms", "actions", "responses")


def names(section: Any) -> list[str]:
    """Names in a domain section: a mapping's keys, or a list of names and {name: {...}} entries."""
    if isinstance(section, dict):
        return list(section)
    return [next(iter(item)) if isinstance(item, dict) else item for item in section or []]


def test_rasa_finds_the_directory_at_its_default_path():
    # `rasa train`, `rasa data validate`, `rasa test` and `rasa interactive` look for
    # domain.yml unless told otherwise; it points at domain/.
    link = ROOT / "domain.yml"
    assert link.is_symlink() and os.readlink(link) == "domain"


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_every_file_is_a_domain_file_of_this_version(path: Path):
    content = yaml.safe_load(path.read_text())
    assert content.get("version") == "3.1"
    assert set(content) - {"version"} <= {"session_config", *SECTIONS}, "only domain sections"


@pytest.mark.parametrize("section", SECTIONS)
def test_every_name_is_defined_in_exactly_one_file(section: str):
    where: dict[str, list[str]] = {}
    for path in FILES:
        for name in names(yaml.safe_load(path.read_text()).get(section)):
            where.setdefault(name, []).append(path.name)
    twice = {name: files for name, files in where.items() if len(files) > 1}
    assert not twice, f"{section} defined more than once: {twice}"
    assert where, f"no {section} at all"


def test_one_file_holds_the_session_config():
    holders = [p.name for p in FILES if "session_config" in yaml.safe_load(p.read_text())]
    assert holders == ["social.yml"]


# pykwalify, which checks each file against Rasa's domain schema, loads its extensions
# with importlib's deprecated load_module().
@pytest.mark.filterwarnings("ignore:the load_module\\(\\) method is deprecated:DeprecationWarning")
def test_rasa_merges_the_files_into_the_same_domain_the_tests_use():
    from rasa.shared.core.domain import Domain

    domain = Domain.load(str(DOMAIN_DIR))
    assert set(domain.intents) >= set(names(DOMAIN["intents"]))
    assert Counter(domain.entities) == Counter(names(DOMAIN["entities"]))
    assert set(domain.responses) == set(DOMAIN["responses"])
    assert domain.responses == DOMAIN["responses"]
    assert {slot.name for slot in domain.slots} >= set(DOMAIN["slots"])
    assert domain.forms == {name: {"required_slots": form["required_slots"]} for name, form in DOMAIN["forms"].items()}
    custom = [name for name in domain.user_actions if not name.startswith("utter_")]
    assert Counter(custom) == Counter(DOMAIN["actions"])
    assert domain.session_config.session_expiration_time == DOMAIN["session_config"]["session_expiration_time"]
    assert domain.session_config.carry_over_slots == DOMAIN["session_config"]["carry_over_slots_to_new_session"]


def test_every_form_slot_is_a_slot_of_the_domain():
    for form, spec in DOMAIN["forms"].items():
        missing = set(spec["required_slots"]) - set(DOMAIN["slots"])
        assert not missing, f"{form} requires slots no file defines: {missing}"
