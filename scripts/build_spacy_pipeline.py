"""Builds the project's spaCy pipeline: a blank English tokenizer plus an entity
ruler that knows Nigerian banks, billers, networks, account and phone numbers.

Hub models cannot be downloaded on our machines, and Rasa's SpacyNLP needs a
pipeline directory with a meta.json, so we build our own from banking/catalog.py.

    python scripts/build_spacy_pipeline.py build/spacy_banking
"""

from __future__ import annotations

import sys
from pathlib import Path

import spacy
from spacy.pipeline import EntityRuler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from banking.catalog import BANKS, BILLERS, NETWORKS  # noqa: E402

ACCOUNT_NUMBER = r"^\d{10}$"
PHONE_NUMBER = r"^(\+?234|0)[789][01]\d{8}$"


def ruler_patterns() -> list[dict]:
    """Phrase patterns from the catalogue, token patterns for numbers."""
    patterns: list[dict] = []

    def phrases(label: str, canonical: str, spellings: tuple[str, ...]) -> None:
        for spelling in {canonical.lower(), *spellings}:
            patterns.append({"label": label, "pattern": spelling, "id": canonical})

    for bank, (_, spellings) in BANKS.items():
        phrases("bank", bank, spellings)
    for biller, (_, spellings) in BILLERS.items():
        # one-letter and very generic spellings ("ie", "light") would fire on
        # ordinary words; the trained extractor handles those in context.
        phrases("biller", biller, tuple(s for s in spellings if len(s) > 2 and s != "light"))
    for network, spellings in NETWORKS.items():
        phrases("network", network, spellings)
    patterns.append({"label": "account_number", "pattern": [{"TEXT": {"REGEX": ACCOUNT_NUMBER}}]})
    patterns.append({"label": "phone_number", "pattern": [{"TEXT": {"REGEX": PHONE_NUMBER}}]})
    return patterns


def build(target: Path) -> None:
    nlp = spacy.blank("en")
    nlp.meta["name"] = "banking"
    nlp.meta["version"] = "1.0.0"
    nlp.meta["description"] = "Tokenizer and entity ruler for the banking assistant"
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    assert isinstance(ruler, EntityRuler)
    ruler.add_patterns(ruler_patterns())
    target.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(target)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: build_spacy_pipeline.py TARGET_DIR")
    build(Path(sys.argv[1]))
    print(f"spaCy pipeline written to {sys.argv[1]}")
