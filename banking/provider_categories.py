"""Provider transaction categories on the assistant's own vocabulary (banking.catalog.SPENDING_CATEGORIES).

Spending insights, charts and the model's read-only tools group by our categories, so a
Mono or Plaid transaction must land on one of them whatever the provider called it.
Anything unknown is "shopping" for money out and "transfers" for money in: the
buckets a customer would look in for an unlabelled card payment or an incoming credit.
"""

from __future__ import annotations

from banking.catalog import SPENDING_CATEGORIES

# Plaid personal_finance_category.primary (Plaid's taxonomy, version 1 and 2 names).
PLAID_PRIMARY = {
    "FOOD_AND_DRINK": "food",
    "TRANSPORTATION": "transport",
    "TRAVEL": "transport",
    "RENT_AND_UTILITIES": "bills",
    "LOAN_PAYMENTS": "bills",
    "BANK_FEES": "bills",
    "GENERAL_SERVICES": "bills",
    "GOVERNMENT_AND_NON_PROFIT": "bills",
    "GENERAL_MERCHANDISE": "shopping",
    "HOME_IMPROVEMENT": "shopping",
    "PERSONAL_CARE": "health",
    "MEDICAL": "health",
    "ENTERTAINMENT": "entertainment",
    "TRANSFER_OUT": "transfers",
    "TRANSFER_IN": "transfers",
    "INCOME": "salary",
}
# Plaid detailed categories that mean something more specific to us than their primary.
PLAID_DETAILED = {
    "TRANSFER_OUT_SAVINGS": "savings",
    "TRANSFER_IN_SAVINGS": "savings",
    "RENT_AND_UTILITIES_TELEPHONE": "airtime",
    "FOOD_AND_DRINK_GROCERIES": "shopping",
    "INCOME_WAGES": "salary",
    "INCOME_INTEREST_EARNED": "savings",  # what a savings account or CD earns
}
# Mono transaction categories (lower-cased); Mono's enrichment names and the banks' channel codes.
MONO = {
    "food": "food", "food_and_drinks": "food", "restaurants": "food", "groceries": "shopping",
    "transport": "transport", "transportation": "transport", "fuel": "transport",
    "airtime": "airtime", "data": "airtime", "airtime_and_data": "airtime", "mobile_data": "airtime",
    "bills": "bills", "utilities": "bills", "electricity": "bills", "cable_tv": "bills", "bank_charges": "bills",
    "shopping": "shopping", "online_shopping": "shopping", "pos": "shopping",
    "entertainment": "entertainment", "betting": "entertainment", "subscriptions": "entertainment",
    "transfer": "transfers", "transfers": "transfers", "e-channels": "transfers", "nip": "transfers",
    "health": "health", "medical": "health",
    "salary": "salary", "income": "salary", "savings": "savings", "investment": "savings",
}


def from_plaid(primary: str | None, detailed: str | None, direction: str) -> str:
    category = PLAID_DETAILED.get((detailed or "").upper()) or PLAID_PRIMARY.get((primary or "").upper())
    return _known(category, direction)


def from_mono(category: str | None, direction: str) -> str:
    return _known(MONO.get((category or "").strip().lower()), direction)


def _known(category: str | None, direction: str) -> str:
    if category in SPENDING_CATEGORIES:
        return category
    return "shopping" if direction == "debit" else "transfers"
