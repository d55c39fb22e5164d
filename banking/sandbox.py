"""A pretend bank, deterministic per customer, for development and demos.

Everything is derived from the customer's user key (and the date), so the same
customer sees the same accounts and the same history on every run, and tests
can assert exact figures. Magic account numbers for rehearsing failures:
"000…" fails name enquiry, "999…" behaves as if NIP were down.
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from banking.catalog import BILLERS, canonical_bank, canonical_biller
from banking.errors import InvalidDetails, NameEnquiryFailed, ProviderUnavailable
from banking.periods import LAGOS
from banking.providers import AccountSeed

HISTORY_DAYS = 90
CHECKING_OPENING_KOBO = 4_532_050  # ₦45,320.50
SAVINGS_OPENING_KOBO = 12_545_000  # ₦125,450.00
CATEGORIES = ("food", "transport", "airtime", "bills", "shopping", "entertainment",
              "transfers", "health", "salary", "savings")

FIRST_NAMES = (
    "ADAEZE", "CHIDI", "TUNDE", "FUNMILAYO", "IBRAHIM", "AISHA", "EMEKA", "NGOZI",
    "OLUWASEUN", "YETUNDE", "MUSA", "HALIMA", "CHIOMA", "KEHINDE", "TAIWO", "BOLA",
    "UCHE", "AMAKA", "SEGUN", "ZAINAB", "OBINNA", "FOLAKE", "SANI", "BLESSING",
)
SURNAMES = (
    "OKONKWO", "ADEYEMI", "BELLO", "OKAFOR", "ADEBAYO", "EZE", "OGUNLEYE", "MOHAMMED",
    "NWOSU", "BALOGUN", "ABUBAKAR", "OKORO", "ADELEKE", "IBRAHIM", "OLADIPO", "CHUKWU",
    "AFOLABI", "DANJUMA", "OBI", "ADEWALE", "USMAN", "NWANKWO", "OYELARAN", "EKWUEME",
)
EMPLOYERS = ("ANDELA NIGERIA LTD", "FLUTTERWAVE TECH", "DANGOTE CEMENT PLC", "MTN NIGERIA COMM",
             "LAGOS STATE GOVT", "NESTLE NIGERIA PLC", "INTERSWITCH LTD")


@dataclass(frozen=True)
class _Spend:
    """A kind of everyday purchase: where, which category, how it is paid, and its price range in naira."""

    merchant: str
    category: str
    channel: str  # "POS" | "WEB" | "TRF"
    low: int
    high: int
    chance: float  # probability on any given day


_EVERYDAY: tuple[_Spend, ...] = (
    _Spend("CHICKEN REPUBLIC", "food", "POS", 3_500, 9_500, 0.20),
    _Spend("CHOWDECK", "food", "WEB", 5_500, 16_000, 0.15),
    _Spend("GLOVO", "food", "WEB", 4_500, 14_000, 0.08),
    _Spend("SHOPRITE", "shopping", "POS", 12_000, 65_000, 0.06),
    _Spend("SPAR", "shopping", "POS", 8_000, 45_000, 0.04),
    _Spend("JUMIA", "shopping", "WEB", 6_000, 85_000, 0.03),
    _Spend("UBER", "transport", "WEB", 2_500, 9_500, 0.12),
    _Spend("BOLT", "transport", "WEB", 2_000, 8_500, 0.12),
    _Spend("TOTALENERGIES FUEL", "transport", "POS", 18_000, 60_000, 0.04),
    _Spend("HEALTHPLUS PHARMACY", "health", "POS", 2_500, 18_000, 0.05),
)


class SandboxProvider:
    """BankProvider with invented but realistic Nigerian data and no network calls."""

    name = "sandbox"

    def access_token(self, user: str, bank: str) -> str:
        """A fresh opaque token per link, as Mono or Plaid would issue."""
        _require_bank(bank)
        return "sbx_live_" + secrets.token_urlsafe(24)

    def connect(self, user: str, bank: str) -> list[AccountSeed]:
        """Two accounts per customer, with fixed opening balances."""
        _require_bank(bank)
        rng = random.Random(f"sandbox-accounts:{user}")
        checking = _account_number(rng)
        savings = _account_number(rng)
        while savings == checking:
            savings = _account_number(rng)
        return [
            AccountSeed("checking", "Checking", checking, CHECKING_OPENING_KOBO),
            AccountSeed("savings", "Savings", savings, SAVINGS_OPENING_KOBO),
        ]

    def seed_transactions(self, user: str, bank: str, now: datetime) -> list[dict[str, Any]]:
        """About 90 days of history ending at ``now``, newest last."""
        _require_bank(bank)
        habits = _Habits.for_user(user)
        today = now.astimezone(LAGOS).date()
        days = (today - timedelta(days=offset) for offset in range(HISTORY_DAYS - 1, -1, -1))
        history = [entry for day in days for entry in _day_history(user, habits, day)]
        return [entry for entry in history if entry["posted_at"] <= now]

    def name_enquiry(self, account_number: str, bank: str) -> str:
        """A stable holder name for any well-formed NUBAN."""
        _require_bank(bank)
        number = _digits_only(account_number)
        if not re.fullmatch(r"\d{10}", number):
            raise InvalidDetails("an account number has exactly 10 digits")
        if number.startswith("000"):
            raise NameEnquiryFailed("the receiving bank could not confirm this account")
        if number.startswith("999"):
            raise ProviderUnavailable("name enquiry is not answering; try again shortly")
        return _person_name(f"nuban:{number}")

    def validate_biller_ref(self, biller: str, ref: str) -> str:
        """The customer name on a meter (11/13 digits), smartcard (10 digits) or other account."""
        canonical = canonical_biller(biller)
        if canonical is None:
            raise InvalidDetails("unknown biller")
        category = BILLERS[canonical][0]
        cleaned = re.sub(r"[\s-]", "", ref)
        if not _valid_biller_ref(category, cleaned):
            raise InvalidDetails(f"that is not a valid {_ref_kind(category)}")
        return _person_name(f"biller:{canonical}:{cleaned.upper()}")


@dataclass(frozen=True)
class _Habits:
    """What stays the same month to month for one customer."""

    salary_naira: int
    employer: str
    dstv_day: int
    netflix_day: int
    electricity_days: tuple[int, int]
    savings_naira: int
    friends: tuple[str, ...]
    network: str

    @classmethod
    def for_user(cls, user: str) -> _Habits:
        rng = random.Random(f"sandbox-habits:{user}")
        salary = rng.choice((450_000, 550_000, 650_000, 780_000, 900_000))
        return cls(
            salary_naira=salary,
            employer=rng.choice(EMPLOYERS),
            dstv_day=rng.randint(2, 8),
            netflix_day=rng.randint(10, 20),
            electricity_days=(rng.randint(1, 12), rng.randint(14, 27)),
            savings_naira=salary // 10 // 1000 * 1000,
            friends=tuple(_person_name(f"friend:{user}:{index}") for index in range(5)),
            network=rng.choice(("MTN", "Airtel")),
        )


def _day_history(user: str, habits: _Habits, day: date) -> Iterator[dict[str, Any]]:
    """One day's transactions, from an RNG seeded by (user, date) so each date is stable."""
    rng = random.Random(f"sandbox-day:{user}:{day.isoformat()}")
    make = _Maker(user, day, rng)
    if day == _payday(day):
        yield make.entry("checking", habits.salary_naira * 100, "credit", "salary", habits.employer,
                         f"SALARY {day:%b %Y}".upper(), hour=8)
    if day == _payday(day) + timedelta(days=1):
        amount = habits.savings_naira * 100
        yield make.entry("checking", amount, "debit", "savings", "SAVINGS", "TRF TO OWN SAVINGS ACCOUNT", hour=9)
        yield make.entry("savings", amount, "credit", "savings", "CHECKING", "TRF FROM OWN CHECKING ACCOUNT", hour=9)
    if day.day == habits.dstv_day:
        yield make.entry("checking", 19_000 * 100, "debit", "bills", "DSTV", "DSTV COMPACT RENEWAL")
    if day.day == habits.netflix_day:
        yield make.entry("checking", 7_000 * 100, "debit", "entertainment", "NETFLIX", "WEB NETFLIX.COM")
    if day.day in habits.electricity_days:
        naira = rng.randrange(15_000, 40_001, 1_000)
        yield make.entry("checking", naira * 100, "debit", "bills", "IKEJA ELECTRIC", "IKEDC PREPAID TOKEN")
    if rng.random() < 0.15:
        naira = rng.choice((1_000, 1_500, 2_000, 3_000, 5_000))
        yield make.entry("checking", naira * 100, "debit", "airtime", habits.network.upper(),
                         f"{habits.network.upper()} AIRTIME TOPUP")
    if rng.random() < 0.08:
        friend = rng.choice(habits.friends)
        naira = rng.randrange(5_000, 30_001, 500)
        yield make.entry("checking", naira * 100, "debit", "transfers", friend, f"NIP TRF TO {friend}")
    for spend in _EVERYDAY:
        if rng.random() < spend.chance:
            naira = rng.randrange(spend.low, spend.high + 1, 50)
            kobo = naira * 100 + (50 if spend.channel == "WEB" and rng.random() < 0.3 else 0)
            yield make.entry("checking", kobo, "debit", spend.category, spend.merchant,
                             f"{spend.channel} {spend.merchant}")


class _Maker:
    """Builds transaction documents for one day, drawing times and references from its RNG."""

    def __init__(self, user: str, day: date, rng: random.Random) -> None:
        self._user, self._day, self._rng = user, day, rng

    def entry(self, account: str, amount_kobo: int, direction: str, category: str, merchant: str,
              narration: str, hour: int | None = None) -> dict[str, Any]:
        at_hour = hour if hour is not None else self._rng.randint(7, 21)
        local = datetime.combine(self._day, time(at_hour, self._rng.randint(0, 59)), tzinfo=LAGOS)
        reference = f"SBX-{self._rng.getrandbits(64):016X}"
        return {
            "_id": reference,
            "reference": reference,
            "user": self._user,
            "account": account,
            "posted_at": local,
            "amount_kobo": amount_kobo,
            "direction": direction,
            "category": category,
            "merchant": merchant,
            "narration": narration,
        }


def _payday(day: date) -> date:
    """The 25th, or the Friday before it when it falls on a weekend."""
    payday = day.replace(day=25)
    while payday.weekday() >= 5:
        payday -= timedelta(days=1)
    return payday


def _account_number(rng: random.Random) -> str:
    """Ten digits that never start with the magic "000"/"999" prefixes."""
    return f"{rng.randint(1, 8)}{rng.randrange(10**8, 10**9)}"


def _person_name(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return f"{FIRST_NAMES[digest[0] % len(FIRST_NAMES)]} {SURNAMES[digest[1] % len(SURNAMES)]}"


def _digits_only(text: str) -> str:
    return re.sub(r"[\s-]", "", text)


def _require_bank(bank: str) -> str:
    canonical = canonical_bank(bank)
    if canonical is None:
        raise InvalidDetails("unknown bank")
    return canonical


def _valid_biller_ref(category: str, ref: str) -> bool:
    if category == "electricity":
        return bool(re.fullmatch(r"\d{11}|\d{13}", ref))
    if category == "cable_tv":
        return bool(re.fullmatch(r"\d{10}", ref))
    return bool(re.fullmatch(r"[A-Za-z0-9]{6,20}", ref))


def _ref_kind(category: str) -> str:
    return {"electricity": "meter number (11 or 13 digits)",
            "cable_tv": "smartcard number (10 digits)"}.get(category, "customer reference (6-20 letters or digits)")
