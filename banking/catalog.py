"""Names customers use for banks, billers, mobile networks, account types and spending categories.

One list feeds the spaCy entity-ruler patterns, the NLU lookups and synonyms
(data/nlu/lookups.yml and synonyms.yml, written by scripts/generate_nlu_catalog.py)
and the banking core, so a bank added here is recognised, offered in the connect list
and payable, and a word added to a category means the same to the model and the ledger.
"""

from __future__ import annotations

# canonical name -> (CBN bank code, spellings customers type); the code is the 3-digit CBN code
# (or, for a fintech, the code payment gateways list), stored as a link's bank_code
BANKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "GTBank": ("058", ("gtbank", "gtb", "guaranty trust", "guaranty trust bank", "gt bank", "gtco")),
    "Access Bank": ("044", ("access", "access bank", "diamond", "access diamond")),
    "Zenith Bank": ("057", ("zenith", "zenith bank")),
    "UBA": ("033", ("uba", "united bank for africa")),
    "First Bank": ("011", ("first bank", "firstbank", "fbn", "first bank of nigeria")),
    "Fidelity Bank": ("070", ("fidelity", "fidelity bank")),
    "Union Bank": ("032", ("union bank", "union")),
    "Sterling Bank": ("232", ("sterling", "sterling bank")),
    "Stanbic IBTC": ("221", ("stanbic", "stanbic ibtc", "ibtc")),
    "Wema Bank": ("035", ("wema", "wema bank", "alat")),
    "FCMB": ("214", ("fcmb", "first city monument bank")),
    "Ecobank": ("050", ("ecobank", "eco bank")),
    "Polaris Bank": ("076", ("polaris", "polaris bank")),
    "Keystone Bank": ("082", ("keystone", "keystone bank")),
    "Opay": ("999992", ("opay", "o pay")),
    "Moniepoint": ("50515", ("moniepoint", "monie point")),
    "Kuda": ("50211", ("kuda", "kuda bank")),
    "PalmPay": ("999991", ("palmpay", "palm pay")),
}

# canonical name -> NIBSS Instant Payment (NIP) institution code: six digits, "0000xx" for a commercial
# bank, "09xxxx" for a microfinance bank, "10xxxx" for a mobile money operator. Account-number look-ups
# take this code, not the 3-digit one (Mono's POST /v3/lookup/account-number names it nip_code).
NIP_CODES: dict[str, str] = {
    "GTBank": "000013",
    "Access Bank": "000014",
    "Zenith Bank": "000015",
    "UBA": "000004",
    "First Bank": "000016",
    "Fidelity Bank": "000007",
    "Union Bank": "000018",
    "Sterling Bank": "000001",
    "Stanbic IBTC": "000012",
    "Wema Bank": "000017",
    "FCMB": "000003",
    "Ecobank": "000010",
    "Polaris Bank": "000008",
    "Keystone Bank": "000002",
    "Opay": "100004",
    "Moniepoint": "090405",
    "Kuda": "090267",
    "PalmPay": "100033",
}


def nip_code(bank: str) -> str:
    """The NIP institution code of a catalogue bank (canonical name); KeyError for any other."""
    return NIP_CODES[bank]


# canonical biller -> (category, spellings customers type)
BILLERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Ikeja Electric": ("electricity", ("ikeja electric", "ikedc", "ie", "ikeja disco")),
    "Eko Electric": ("electricity", ("eko electric", "ekedc", "eko disco")),
    "Abuja Electric": ("electricity", ("abuja electric", "aedc", "abuja disco")),
    "Ibadan Electric": ("electricity", ("ibadan electric", "ibedc")),
    "PHED": ("electricity", ("phed", "port harcourt electric", "ph electric")),
    "Electricity": ("electricity", ("electricity", "light bill", "nepa", "phcn", "prepaid meter", "light")),
    "DStv": ("cable_tv", ("dstv", "ds tv")),
    "GOtv": ("cable_tv", ("gotv", "go tv")),
    "StarTimes": ("cable_tv", ("startimes", "star times")),
    "Spectranet": ("internet", ("spectranet",)),
    "Smile": ("internet", ("smile", "smile internet")),
    "Lagos Water": ("water", ("lagos water", "water corporation", "water bill")),
    "LAWMA": ("waste", ("lawma", "waste bill")),
}

# canonical network -> spellings customers type
NETWORKS: dict[str, tuple[str, ...]] = {
    "MTN": ("mtn",),
    "Airtel": ("airtel",),
    "Glo": ("glo", "globacom"),
    "9mobile": ("9mobile", "etisalat", "9 mobile"),
}

ACCOUNT_TYPES: dict[str, tuple[str, ...]] = {
    "checking": ("checking", "current", "current account", "current acct", "current acc", "checking account",
                 "main account", "main acct"),
    "savings": ("savings", "saving", "savings account", "savings acct", "savings acc", "saving acct", "save account"),
}

# spending category -> what customers call it. Every ledger entry is booked under one of
# these (banking/customers.py, banking/sandbox.py), in this order of listing. Supermarkets
# (Shoprite, Spar) are booked as shopping, so groceries are shopping; food is meals,
# eating out and foodstuff.
SPENDING_CATEGORIES: dict[str, tuple[str, ...]] = {
    "food": ("chop", "foodstuff", "food stuff", "eating out", "restaurants", "feeding"),
    "transport": ("movement", "fuel", "petrol", "transportation", "transport fare", "rides", "okada", "keke"),
    "airtime": ("data", "airtime and data", "data and airtime", "recharge"),
    "bills": ("utilities", "utility bills", "light bills", "electricity bills", "house bills", "bill", "electricity"),
    "shopping": ("groceries", "clothes", "online shopping", "shoes and clothes"),
    "entertainment": ("enjoyment", "fun", "outings", "movies", "betting", "owambe", "hangouts", "subscriptions"),
    "transfers": ("money transfers", "sending money", "transfer"),
    "health": ("medical", "hospital", "drugs", "pharmacy", "medicine"),
    "salary": ("wages", "paycheck", "monthly pay", "salo", "income"),
    "savings": (),
}


def canonical_bank(text: str) -> str | None:
    """The canonical bank for anything a customer typed, or None."""
    return _lookup(text, {name: spellings for name, (_, spellings) in BANKS.items()})


def canonical_biller(text: str) -> str | None:
    return _lookup(text, {name: spellings for name, (_, spellings) in BILLERS.items()})


def canonical_network(text: str) -> str | None:
    return _lookup(text, NETWORKS)


def canonical_account_type(text: str) -> str | None:
    return _lookup(text, ACCOUNT_TYPES)


def canonical_category(text: str) -> str | None:
    """The spending category for a customer's word ("chop" -> "food"), or None."""
    return _lookup(text, SPENDING_CATEGORIES)


def _lookup(text: str, table: dict[str, tuple[str, ...]]) -> str | None:
    needle = " ".join(text.lower().split())
    for name, spellings in table.items():
        if needle == name.lower() or needle in spellings:
            return name
    return None


# A 👍/👎 rating as typed: any skin tone, the words the NLU data teaches. Anything else is no rating.
_GOOD, _BAD = "\U0001F44D", "\U0001F44E"
_EMOJI_MODIFIERS = dict.fromkeys([*range(0x1F3FB, 0x1F400), 0xFE0E, 0xFE0F, 0x200D])
_RATING_WORDS = {
    "good": "good", "thumbs up": "good", "thumb up": "good", "5 stars": "good", "5 star": "good",
    "five stars": "good", "bad": "bad", "thumbs down": "bad", "thumb down": "bad", "1 star": "bad",
    "1 stars": "bad", "one star": "bad",
}


def canonical_rating(text: str) -> str | None:
    """"good" or "bad" for a rating as typed ("👍🏿", "thumbs down", "👍👍"), else None ("yes", "👍👎")."""
    cleaned = " ".join(str(text).translate(_EMOJI_MODIFIERS).lower().split()).strip(" .!,")
    if cleaned in _RATING_WORDS:
        return _RATING_WORDS[cleaned]
    thumbs = {_GOOD: "good", _BAD: "bad"}
    found = {thumbs[c] for c in cleaned if c in thumbs}
    if len(found) == 1 and not cleaned.replace(_GOOD, "").replace(_BAD, "").strip():
        return found.pop()
    return None


def rating_in_message(text: str) -> str | None:
    """The one direction of thumb in a message ("👍 yes" -> good); None when none or both."""
    found = {"good" if c == _GOOD else "bad" for c in str(text) if c in (_GOOD, _BAD)}
    return found.pop() if len(found) == 1 else None
