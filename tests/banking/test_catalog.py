"""One vocabulary: the banking core and the NLU read a customer's words for banks, billers,
networks, account types and spending categories from banking/catalog.py alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from banking import catalog, sandbox, service
from banking.errors import InvalidDetails
from scripts import generate_nlu_catalog

NLU = Path(__file__).resolve().parents[2] / "data" / "nlu"


def nlu_synonyms() -> dict[str, str]:
    """Every synonym in the training data: lower-cased word -> the value the model gives."""
    found: dict[str, str] = {}
    for path in sorted(NLU.glob("*.yml")):
        for item in (yaml.safe_load(path.read_text()) or {}).get("nlu") or []:
            if "synonym" in item:
                for line in item["examples"].splitlines():
                    word = line.strip().removeprefix("- ").lower()
                    assert found.setdefault(word, item["synonym"]) == item["synonym"], f"'{word}' means two things"
    return found


def test_the_generated_lookups_and_synonyms_are_up_to_date():
    assert generate_nlu_catalog.stale_files() == [], "run .venv/bin/python scripts/generate_nlu_catalog.py"


@pytest.mark.parametrize("word, category", [
    ("groceries", "shopping"),  # supermarkets are booked as shopping
    ("Groceries", "shopping"),
    ("chop", "food"),
    ("foodstuff", "food"),
    ("movement", "transport"),
    ("light bills", "bills"),
    ("electricity", "bills"),
    ("subscriptions", "entertainment"),
    ("income", "salary"),
    ("savings", "savings"),
])
def test_a_word_means_one_category_to_the_core_and_to_the_model(word: str, category: str):
    assert service._category(word) == category
    value = nlu_synonyms().get(word.lower(), word)  # what reaches the core from the model
    assert service._category(value) == category


def test_the_model_and_the_core_agree_on_every_category_word():
    synonyms = nlu_synonyms()
    for category, words in catalog.SPENDING_CATEGORIES.items():
        for word in (category, *words):
            assert catalog.canonical_category(synonyms.get(word, word)) == category, word
    for word, value in synonyms.items():  # no word the core reads as another category than the model
        assert catalog.canonical_category(word) in (None, catalog.canonical_category(value)), word


def test_an_unknown_category_is_refused_with_the_list():
    with pytest.raises(InvalidDetails, match="use one of food, transport"):
        service._category("lottery")


def test_the_ledger_books_only_catalog_categories():
    assert service.CATEGORIES == tuple(catalog.SPENDING_CATEGORIES)
    assert set(sandbox.CATEGORIES) == set(service.CATEGORIES)


def test_a_word_claimed_by_two_categories_stops_the_generator(monkeypatch: pytest.MonkeyPatch):
    categories = {**catalog.SPENDING_CATEGORIES, "health": ("chop",)}
    monkeypatch.setattr(generate_nlu_catalog, "SPENDING_CATEGORIES", categories)
    with pytest.raises(generate_nlu_catalog.CatalogConflict, match="'chop'"):
        generate_nlu_catalog.render_synonyms()


def test_a_category_word_that_is_a_biller_leads_to_the_same_category():
    synonyms = generate_nlu_catalog.render_synonyms()
    assert "      - electricity\n" in synonyms.split("# spending categories")[0]  # the biller's synonym
    assert "      - electricity\n" not in synonyms.split("# spending categories")[1]
    assert catalog.canonical_category(catalog.canonical_biller("electricity")) == "bills"


def test_every_bank_has_one_six_digit_nip_institution_code():
    """Account-number look-ups (Mono's nip_code) need the NIBSS institution code of every bank offered."""
    assert set(catalog.NIP_CODES) == set(catalog.BANKS)
    codes = list(catalog.NIP_CODES.values())
    assert all(len(code) == 6 and code.isdigit() for code in codes) and len(set(codes)) == len(codes)
    assert catalog.nip_code("GTBank") == "000013" and catalog.nip_code("Access Bank") == "000014"
    commercial = set(catalog.BANKS) - {"Opay", "Moniepoint", "Kuda", "PalmPay"}
    assert all(catalog.NIP_CODES[bank].startswith("0000") for bank in commercial)
