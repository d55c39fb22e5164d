"""Naira amounts as customers type them, held as integer kobo.

Floats never touch money: text is parsed with Decimal and the result is an int
number of kobo (₦1 = 100 kobo).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from text_to_num import alpha2digit

KOBO_PER_NAIRA = 100
MAX_AMOUNT_KOBO = 100_000_000_000 * KOBO_PER_NAIRA  # ₦100 billion: beyond this it is a typo
_MASKED_NUMBER = re.compile(r"\*{6}\d{4}")  # how profiles keep the customer's own account numbers

_SCALES: dict[str, int] = {
    "thousand": 1_000, "k": 1_000, "grand": 1_000,
    "million": 1_000_000, "m": 1_000_000, "mil": 1_000_000, "milli": 1_000_000,
    "billion": 1_000_000_000, "b": 1_000_000_000, "bn": 1_000_000_000,
}

# text2num writes "million" as 1000000 when it cannot join it to what comes before.
_WORD_SCALE_VALUES = {"1000": "thousand", "1000000": "million", "1000000000": "billion",
                      "thousand": "thousand", "million": "million", "billion": "billion"}

_CURRENCY_PREFIX = re.compile(r"^(?:₦|#|ngn|naira|n)\s*(?=[\d.])")
_CURRENCY_SUFFIX = re.compile(r"(?<=[\w.])\s*(?:₦|ngn|naira|nairas)$")
_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_NUMERIC = re.compile(rf"^(?P<number>{_NUMBER})\s*(?P<scale>[a-z]+)?$")
_DIGITS = re.compile(rf"^(?:{_NUMBER})$")


def parse_amount_kobo(text: str) -> int | None:
    """Kobo for a typed naira amount ("10k", "₦2.5m", "ten thousand"), else None.

    None also covers zero, negatives, fractions of a kobo and anything above
    ₦100 billion, so a caller never has to re-check the sign or size.
    """
    naira = _parse_naira(text)
    if naira is None:
        return None
    kobo = naira * KOBO_PER_NAIRA
    if kobo != kobo.to_integral_value() or kobo <= 0 or kobo > MAX_AMOUNT_KOBO:
        return None
    return int(kobo)


def amount_entity_value(text: str) -> str | None:
    """The naira value as a plain decimal string ("10k" -> "10000"), for NLU entities."""
    kobo = parse_amount_kobo(text)
    return None if kobo is None else kobo_to_naira_str(kobo)


def kobo_to_naira_str(kobo: int) -> str:
    """Plain naira digits without grouping or trailing zeros: 250050 -> "2500.5"."""
    sign = "-" if kobo < 0 else ""
    naira, rest = divmod(abs(kobo), KOBO_PER_NAIRA)
    if not rest:
        return f"{sign}{naira}"
    return f"{sign}{naira}.{rest:02d}".rstrip("0")


def format_naira(kobo: int) -> str:
    """Display form: "₦45,320.50", "₦10,000", "-₦500" (kobo shown only when present)."""
    sign = "-" if kobo < 0 else ""
    naira, rest = divmod(abs(kobo), KOBO_PER_NAIRA)
    cents = f".{rest:02d}" if rest else ""
    return f"{sign}₦{naira:,}{cents}"


CURRENCY_SYMBOLS = {"NGN": "₦", "USD": "$", "EUR": "€", "GBP": "£"}


def format_money(minor: int, currency: str = "NGN") -> str:
    """An amount in its own currency: "₦45,320.50", "$1,204.10", "€80.00", "£12.34"; naira as format_naira."""
    if currency == "NGN":
        return format_naira(minor)
    sign = "-" if minor < 0 else ""
    units, rest = divmod(abs(minor), 100)
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{sign}{symbol}{units:,}.{rest:02d}" if symbol else f"{sign}{units:,}.{rest:02d} {currency}"


def mask_account_number(number: str) -> str:
    """Hide all but the last four digits, so logs and replies never hold a full NUBAN.

    A number that is already masked ("******6789", as profiles store them) stays as it is.
    """
    if _MASKED_NUMBER.fullmatch(str(number).strip()):
        return str(number).strip()
    digits = "".join(ch for ch in str(number) if ch.isdigit())
    return "******" + (digits[-4:] if len(digits) > 4 else "")


def _parse_naira(text: str) -> Decimal | None:
    """The naira value written in ``text`` (digits, shorthand or words), or None."""
    if not isinstance(text, str):
        return None
    cleaned = _strip_currency(text)
    if not cleaned:
        return None
    return _parse_numeric(cleaned) if cleaned[0].isdigit() or cleaned[0] == "." else _parse_words(cleaned)


def _strip_currency(text: str) -> str:
    """Lower-case, squeeze spaces, drop end punctuation, "only" and the naira sign/word at either end."""
    cleaned = " ".join(text.lower().replace("₦", " ₦ ").split()).rstrip(".!?,;:")
    cleaned = re.sub(r"\s+only$", "", cleaned)
    cleaned = _CURRENCY_PREFIX.sub("", cleaned).strip()
    cleaned = _CURRENCY_SUFFIX.sub("", cleaned).strip()
    return cleaned


def _parse_numeric(text: str) -> Decimal | None:
    """Digits with an optional shorthand or word scale: "2,500.50", "1.5m", "5 thousand"."""
    match = _NUMERIC.match(text)
    if match is None:
        return _parse_words(text)
    number, scale = match.group("number"), match.group("scale")
    if len(number) > 1 and number[0] == "0" and number[1] != ".":
        return None  # "0803..." is a phone or account number, not an amount
    value = _decimal(number)
    if value is None:
        return None
    if scale is None:
        return value
    multiplier = _SCALES.get(scale)
    return None if multiplier is None else value * multiplier


def _decimal(number: str) -> Decimal | None:
    try:
        return Decimal(number.replace(",", ""))
    except InvalidOperation:
        return None


def _parse_words(text: str) -> Decimal | None:
    """Spelled-out amounts ("one hundred and fifty thousand", "one point five million",
    "half a million", "5 thousand", "10 thousand 500"), the words read by text2num; anything
    else in the text is no amount."""
    words = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text).split()
    if not words or all(word in _SCALES or word == "and" for word in words):
        return None  # "thousand", "thousand million": no number at all
    tokens = alpha2digit(" ".join(words), "en", threshold=0).split()
    multiplier = Decimal(1)
    if tokens[:1] == ["half"]:
        tokens, multiplier = tokens[1:], Decimal("0.5")
    if tokens[:1] in (["a"], ["an"]):
        tokens = ["1", *tokens[1:]]
    total, group, last_scale = Decimal(0), None, None
    for token in tokens:
        scale = _scale_of(token) if group is not None else None
        if scale is not None:
            if last_scale is not None and scale >= last_scale:
                return None  # "ten million thousand"
            total, group, last_scale = total + group * scale, None, scale
        elif group is None and _DIGITS.match(token):
            group = _decimal(token)
        else:
            return None  # "ten ten", or words that are no number
    return (total + (group or 0)) * multiplier


def _scale_of(token: str) -> Decimal | None:
    """"k", "thousand", or the 1000 text2num writes for a "thousand" it could not join."""
    name = _WORD_SCALE_VALUES.get(token, token)
    return Decimal(_SCALES[name]) if name in _SCALES else None
