"""Writes the NLU lookups and synonyms from banking/catalog.py, so the model, the spaCy
entity ruler and the banking core know the same banks, billers, networks, account types
and spending categories.

    python scripts/generate_nlu_catalog.py           # rewrite data/nlu/lookups.yml and synonyms.yml
    python scripts/generate_nlu_catalog.py --check   # exit 1 if either differs from the catalog

Rasa keeps one synonym table for every entity: a word can be the synonym of one value
only. A category word that is also a bank, biller or network spelling ("electricity")
is left to that entity's synonym, and is checked to lead to the same category
through the value it becomes ("Electricity" -> bills).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from banking.catalog import (  # noqa: E402
    ACCOUNT_TYPES,
    BANKS,
    BILLERS,
    NETWORKS,
    SPENDING_CATEGORIES,
    canonical_category,
)

LOOKUPS = ROOT / "data" / "nlu" / "lookups.yml"
SYNONYMS = ROOT / "data" / "nlu" / "synonyms.yml"

HEADER = """\
# Generated from banking/catalog.py by scripts/generate_nlu_catalog.py: do not edit.
# Change the catalog, then run `.venv/bin/python scripts/generate_nlu_catalog.py`;
# `make validate` fails while this file and the catalog disagree.
"""


class CatalogConflict(Exception):
    """One word would mean two different things to the model."""


def _tables() -> list[tuple[str, dict[str, tuple[str, ...]]]]:
    """(comment, canonical name -> spellings) for each entity the catalog names."""
    return [
        ("banks", {name: spellings for name, (_, spellings) in BANKS.items()}),
        ("billers", {name: spellings for name, (_, spellings) in BILLERS.items()}),
        ("networks", dict(NETWORKS)),
        ("account types", dict(ACCOUNT_TYPES)),
    ]


def _others(spellings: tuple[str, ...], canonical: str) -> list[str]:
    return [spelling for spelling in spellings if spelling != canonical]


def _examples(words: Iterable[str]) -> list[str]:
    return [f"      - {word}" for word in words]


def render_lookups() -> str:
    """One lookup table per entity the spaCy ruler also knows: the name, then its spellings."""
    lines = [HEADER, 'version: "3.1"', "", "nlu:"]
    for entity, table in zip(("bank", "biller", "network"), _tables()[:3], strict=True):
        lines += [f"  - lookup: {entity}", "    examples: |"]
        for name, spellings in table[1].items():
            lines += _examples([name, *_others(spellings, name)])
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def render_synonyms() -> str:
    """Each spelling maps to its canonical name, as the banking core names it."""
    meaning: dict[str, str] = {}  # lower-cased word -> the value it becomes

    def claim(word: str, value: str) -> None:
        taken = meaning.setdefault(word.lower(), value)
        if taken != value:
            raise CatalogConflict(f"'{word}' would mean both '{taken}' and '{value}'")

    lines = [HEADER, 'version: "3.1"', "", "nlu:"]
    for comment, table in _tables():
        lines.append(f"  # {comment}")
        for name, spellings in table.items():
            claim(name, name)
            words = _others(spellings, name)
            for word in words:
                claim(word, name)
            if words:
                lines += [f"  - synonym: {name}", "    examples: |", *_examples(words), ""]

    lines.append("  # spending categories")
    for category, spellings in SPENDING_CATEGORIES.items():
        claim(category, category)
        words = []
        for word in _others(spellings, category):
            value = meaning.get(word.lower())
            if value is None:
                claim(word, category)
                words.append(word)
            elif canonical_category(value) != category:
                raise CatalogConflict(f"'{word}' would mean both '{value}' and the category '{category}'")
        if words:
            lines += [f"  - synonym: {category}", "    examples: |", *_examples(words), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def stale_files() -> list[Path]:
    """The generated files whose content is not what the catalog gives today."""
    wanted = {LOOKUPS: render_lookups(), SYNONYMS: render_synonyms()}
    return [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        stale = stale_files()
        for path in stale:
            print(f"{path.relative_to(ROOT)} differs from banking/catalog.py: "
                  "run .venv/bin/python scripts/generate_nlu_catalog.py", file=sys.stderr)
        return 1 if stale else 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    LOOKUPS.write_text(render_lookups())
    SYNONYMS.write_text(render_synonyms())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
