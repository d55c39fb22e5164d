"""Which number in a money message is which: decided by shape and context, never guessed.

Customers put several numbers in one message ("send 2500 to 0123456789 access bank",
"pay my dstv 19000 smartcard 7023456789"). A learned model labels them by example and
mixes them up; here each number gets its role from what it looks like and what the
message is about:

- 10 digits: an account number (NUBAN), or a smartcard/IUC number when the message is
  about cable TV (a DStv/GOtv/StarTimes biller or the words smartcard, IUC, decoder);
- a Nigerian mobile number (0803 123 4567, 2348031234567, +234 803 123 4567): a phone
  number, or a meter number when the message is about electricity;
- 11 or 13 digits in a bill message, or a code after "meter", "customer id", "account
  id", "ref": the biller's reference;
- every other number, in digits ("5,000", "N5000", "₦2.5k", "1.5m", "5 thousand") or in
  words ("twenty five thousand naira", "one point five million", read by text2num), is
  an amount candidate.

A message with two different amount candidates has no amount: the caller asks.

    read_numbers(text, about_bills=..., cable_tv=..., electricity=...) -> NumberRoles
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from text_to_num import find_numbers

from banking.money import MAX_AMOUNT_KOBO, kobo_to_naira_str


@dataclass(frozen=True)
class Found:
    """One number and the role it was given, with where it stands in the text."""

    role: str  # "amount" | "account_number" | "phone_number" | "customer_ref"
    value: str  # amount: plain naira ("2500.5"); numbers: digits (or the reference as written, no spaces)
    start: int
    end: int


@dataclass(frozen=True)
class NumberRoles:
    found: tuple[Found, ...]

    def of(self, role: str) -> list[Found]:
        return [item for item in self.found if item.role == role]

    @property
    def amounts(self) -> list[Found]:
        return self.of("amount")

    @property
    def distinct_amounts(self) -> set[str]:
        return {item.value for item in self.amounts}


_SCALES = {"k": 1_000, "thousand": 1_000, "m": 1_000_000, "million": 1_000_000, "mil": 1_000_000,
           "b": 1_000_000_000, "bn": 1_000_000_000, "billion": 1_000_000_000}
# A phone number written in groups, as people do: 0803 123 4567, +234 803-123-4567.
_GROUPED_PHONE = re.compile(r"(?<![\w+])(?:\+?234[\s-]?|0)[789][01]\d[\s-]\d{3}[\s-]?\d{4}(?!\w)"
                            r"|(?<![\w+])(?:\+?234[\s-]?|0)[789][01]\d\d{3}[\s-]\d{4}(?!\w)"
                            r"|(?<![\w+])\+234[\s-]?[789][01]\d{8}(?!\w)")
_AMOUNT = re.compile(
    r"(?<![\w.,/:-])(?P<prefix>₦|ngn\s?|n(?=\s?\d)|#(?=\d))?\s?"
    r"(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d+)?)"
    r"(?:\s?(?P<scale>k|m|mil|bn|b|thousand|million|billion)(?![a-z]))?"
    r"(?P<suffix>\s?(?:naira|ngn)(?![a-z]))?"
    r"(?!\.?\w)",
    re.IGNORECASE,
)
_REFERENCE_CUE = re.compile(
    r"\b(?:meter|metre|smart\s?card|iuc|decoder|customer\s?(?:id|no|number|ref)|account\s?(?:id|no|number)|"
    r"ref(?:erence)?|acct\s?id|user\s?id|id|card\s?no)\b[\s:#.-]*(?:no\.?|number|is|na)?[\s:#.-]*$",
    re.IGNORECASE,
)
_ALNUM_REFERENCE = re.compile(r"(?<![\w-])(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9-]{6,20}(?![\w-])")
_CABLE_WORDS = re.compile(r"\b(?:dstv|gotv|startimes|smart\s?card|iuc|decoder|cable)\b", re.IGNORECASE)
_POWER_WORDS = re.compile(r"\b(?:meter|metre|light|nepa|phcn|electric\w*|prepaid|token|disco|ekedc|ikedc|aedc)\b",
                          re.IGNORECASE)
# What follows a number that is no amount: a time, a date, an ordinal, a share, data, a network.
_TIME_OR_DATE = re.compile(r"\s?(?::\d|(?:am|pm)\b|(?:st|nd|rd|th)\b|/\d|%|(?:gb|mb|g)\b|mobile\b"
                           r"|(?:days?|weeks?|months?|years?|yrs?|hours?|hrs?|mins?|minutes?)\b)",
                           re.IGNORECASE)
_BILL_CUE = re.compile(r"\b(?:meter|metre|smart\s?card|iuc|decoder|customer\s?(?:id|no|number|ref))\b", re.IGNORECASE)
# Not a reference though letters and digits: a network, a quantity, a time, an amount ("N15000", "NGN5000").
_NOT_A_REFERENCE = re.compile(r"9mobile|\d+(?:gb|mb|k|m|bn|am|pm|st|nd|rd|th)|(?:n|ngn)\d+", re.IGNORECASE)
_WORD_TOKEN = re.compile(r"[^\W\d_]+|\d+|[^\w\s]")
_WORD_SCALES = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000, "k": 1_000}
_HALF_BEFORE = re.compile(r"\bhalf\s+(?:a\s+|an\s+)?$", re.IGNORECASE)
_NAIRA_AFTER = re.compile(r"\s?(?:naira|ngn)(?![a-z])", re.IGNORECASE)


def read_numbers(text: str, *, about_bills: bool = False, cable_tv: bool | None = None,
                 electricity: bool | None = None, codes: bool | None = None) -> NumberRoles:
    """Every number of ``text`` with its role. ``about_bills``: the message pays a bill (the
    intent or a biller named in it); ``cable_tv``/``electricity``: which kind of bill, when known
    (else read from the words of the message); ``codes``: whether a code of letters and digits
    ("LW-0056781") is a biller's reference (by default, in a bill message; an answer to a
    form's question may be one too)."""
    cable = bool(_CABLE_WORDS.search(text)) if cable_tv is None else cable_tv
    power = bool(_POWER_WORDS.search(text)) if electricity is None else electricity
    bills = about_bills or cable or power or _BILL_CUE.search(text) is not None
    found: list[Found] = []
    taken: list[tuple[int, int]] = []

    def take(role: str, value: str, start: int, end: int) -> None:
        found.append(Found(role, value, start, end))
        taken.append((start, end))

    for match in _GROUPED_PHONE.finditer(text):
        digits = _local_phone(re.sub(r"\D", "", match.group()))
        if digits is not None:
            role = "customer_ref" if bills and power else "phone_number"
            take(role, digits if role == "phone_number" else re.sub(r"\D", "", match.group()), *match.span())
    for match in re.finditer(r"(?<![\w.,-])\+?\d{7,}(?![\w.,]\d)(?!\w)", text):
        if _inside(match.span(), taken):
            continue
        long_role = _long_number_role(match.group().lstrip("+"), text[:match.start()], bills, cable, power)
        if long_role is None:
            continue
        value = match.group().lstrip("+")
        if long_role == "phone_number":
            value = _local_phone(value) or value
        take(long_role, value, *match.span())
    # "LW-0056781", "SPEC12345": letters and digits, after a cue or with four digits or more
    if bills if codes is None else codes:
        for match in _ALNUM_REFERENCE.finditer(text):
            if _inside(match.span(), taken) or _NOT_A_REFERENCE.fullmatch(match.group()):
                continue
            if _REFERENCE_CUE.search(text[:match.start()]) or sum(c.isdigit() for c in match.group()) >= 4:
                take("customer_ref", match.group().replace("-", ""), *match.span())
    for match in _AMOUNT.finditer(text):
        span = (match.start("prefix") if match.group("prefix") else match.start("number"), match.end())
        if _inside(span, taken) or _TIME_OR_DATE.match(text, match.end("number")):
            continue
        amount = _amount_value(match.group("number"), match.group("scale"))
        if amount is not None:
            take("amount", amount, *span)
    for start, end, value in _amounts_in_words(text, taken):
        take("amount", value, start, end)
    return NumberRoles(tuple(sorted(found, key=lambda item: item.start)))


def _long_number_role(digits: str, before: str, bills: bool, cable: bool, power: bool) -> str | None:
    """The role of a run of seven or more digits, or None when it is an amount."""
    cue = _REFERENCE_CUE.search(before) is not None
    phone = _local_phone(digits) is not None
    if len(digits) == 10:  # a NUBAN, unless the message pays a bill (smartcards, internet ids)
        return "customer_ref" if (bills and (cable or cue or not power)) else "account_number"
    if phone:
        return "customer_ref" if (bills and (power or cue)) else "phone_number"
    if bills and (len(digits) in (11, 13) or cue):
        return "customer_ref"
    if digits.startswith("0") or len(digits) >= 11:
        return "customer_ref"  # no amount is written with a leading 0 or has 11 digits and more
    if len(digits) <= 9 and not cue:
        return None  # ₦1,500,000 written without commas
    return "customer_ref" if bills else None


def _local_phone(digits: str) -> str | None:
    """A Nigerian mobile number as 0XXXXXXXXXX, or None."""
    if re.fullmatch(r"0[789][01]\d{8}", digits):
        return digits
    if re.fullmatch(r"234[789][01]\d{8}", digits):
        return "0" + digits[3:]
    return None


def _amount_value(number: str, scale: str | None) -> str | None:
    try:
        naira = Decimal(number.replace(",", "")) * _SCALES.get((scale or "").lower(), 1)
    except InvalidOperation:
        return None
    return _naira(naira)


def _naira(naira: Decimal) -> str | None:
    kobo = naira * 100
    if kobo <= 0 or kobo != kobo.to_integral_value() or kobo > MAX_AMOUNT_KOBO:
        return None
    return kobo_to_naira_str(int(kobo))


class WordToken:
    """A token as text2num's find_numbers reads it (its token protocol); a token marked ``taken``
    (already read as part of a figure in digits) is no number part."""

    __slots__ = ("word", "start", "end", "taken")

    def __init__(self, word: str, start: int, end: int, taken: bool) -> None:
        self.word, self.start, self.end, self.taken = word, start, end, taken

    def text(self) -> str:
        return self.word

    def nt_separated(self, previous: WordToken) -> bool:
        return False

    def not_a_number_part(self) -> bool:
        return self.taken


def _amounts_in_words(text: str, taken: list[tuple[int, int]]) -> list[tuple[int, int, str]]:
    """Amounts in words: "twenty five thousand naira", "one point five million", "two k".

    text2num reads "one point five million" as 1.5 then a million, and "5 thousand" never
    reaches here (the digit reading took it). A lone small word ("one", "two") is no amount
    unless naira follows: "which one" is not ₦1.
    """
    words = [WordToken(m.group(), m.start(), m.end(), m.group().isdigit() or _inside(m.span(), taken))
             for m in _WORD_TOKEN.finditer(text)]
    if all(word.taken for word in words):
        return []
    occurrences = find_numbers(words, "en", threshold=0)  # "two k": small words count when a scale follows
    amounts = []
    skip = False
    for index, occurrence in enumerate(occurrences):
        if skip or occurrence.is_ordinal:
            skip = False
            continue
        try:
            value = Decimal(occurrence.text)
        except InvalidOperation:
            continue
        first, last = words[occurrence.start], words[occurrence.end - 1]
        following = occurrences[index + 1] if index + 1 < len(occurrences) else None
        if (following is not None and following.start == occurrence.end
                and words[following.start].word.lower() in _WORD_SCALES and "." in occurrence.text):
            value *= _WORD_SCALES[words[following.start].word.lower()]
            last = words[following.start]
            skip = True
        end = last.end
        start = first.start
        half = _HALF_BEFORE.search(text, 0, first.start)
        if half is not None and value in (1_000, 1_000_000, 1_000_000_000):  # "half a million"
            value, start = value / 2, half.start()
        next_word = words[occurrence.end] if occurrence.end < len(words) and not skip else None
        if next_word is not None and next_word.word.lower() == "k" and next_word.start <= end + 1:
            value *= 1_000
            end = next_word.end
        naira = _NAIRA_AFTER.match(text, end)
        if value < 100 and naira is None:
            continue
        amount = _naira(value)
        if amount is not None:
            amounts.append((start, naira.end() if naira else end, amount))
    return amounts


def _inside(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(start < span[1] and span[0] < end for start, end in taken)
