"""Naira amounts as customers type them, held as integer kobo.

Floats never touch money: text is parsed with Decimal and the result is an int
number of kobo (₦1 = 100 kobo).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

KOBO_PER_NAIRA = 100
MAX_AMOUNT_KOBO = 100_000_000_000 * KOBO_PER_NAIRA  # ₦100 billion: beyond this it is a typo
_MASKED_NUMBER = re.compile(r"\*{6}\d{4}")  # how profiles keep the customer's own account numbers

_UNITS: dict[str, int] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9,
}
_TEENS: dict[str, int] = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS: dict[str, int] = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}
_SCALES: dict[str, int] = {
    "thousand": 1_000, "k": 1_000, "grand": 1_000,
    "million": 1_000_000, "m": 1_000_000, "mil": 1_000_000, "milli": 1_000_000,
    "billion": 1_000_000_000, "b": 1_000_000_000, "bn": 1_000_000_000,
}

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
    """Spelled-out amounts: "one hundred and fifty thousand", "half a million", "5 thousand"."""
    tokens = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text).split()
    if len(tokens) >= 3 and tokens[0] == "half" and tokens[1] in {"a", "an"} and tokens[2] in _SCALES:
        tokens = ["0.5", *tokens[2:]]
    elif len(tokens) >= 2 and tokens[0] == "half" and tokens[1] in _SCALES:
        tokens = ["0.5", *tokens[1:]]
    return _sum_word_tokens(tokens)


def _sum_word_tokens(tokens: list[str]) -> Decimal | None:
    """Fold number words left to right, rejecting orders no one writes ("ten ten")."""
    total = Decimal(0)
    group = Decimal(0)
    last = "start"  # kind of the previous token
    last_scale = None
    for index, token in enumerate(tokens):
        kind, value = _word_kind(token, tokens[index + 1] if index + 1 < len(tokens) else None)
        if kind is None or not _follows(last, kind):
            return None
        if kind == "and":
            pass
        elif kind == "hundred":
            if group >= 100:
                return None
            group = (group or Decimal(1)) * 100
        elif kind == "scale":
            if last_scale is not None and value >= last_scale:
                return None
            total += (group or Decimal(1)) * value
            group, last_scale = Decimal(0), value
        else:
            group += value
        last = kind
    if last in {"start", "and"}:
        return None
    return total + group


def _word_kind(token: str, following: str | None) -> tuple[str | None, Decimal]:
    """Classify one token of a spelled amount and give its value."""
    if token in _UNITS:
        return "unit", Decimal(_UNITS[token])
    if token in _TEENS:
        return "teen", Decimal(_TEENS[token])
    if token in _TENS:
        return "tens", Decimal(_TENS[token])
    if token == "hundred":
        return "hundred", Decimal(100)
    if token in _SCALES and token != "b":
        return "scale", Decimal(_SCALES[token])
    if token in {"a", "an"} and (following in _SCALES or following == "hundred"):
        return "unit", Decimal(1)
    if token == "and":
        return "and", Decimal(0)
    if _DIGITS.match(token) and not (len(token) > 1 and token[0] == "0" and token[1] != "."):
        value = _decimal(token)
        return ("digits", value) if value is not None else (None, Decimal(0))
    return None, Decimal(0)


_ALLOWED_AFTER: dict[str, set[str]] = {
    "start": {"unit", "teen", "tens", "digits"},
    "unit": {"hundred", "scale"},
    "teen": {"hundred", "scale"},
    "tens": {"unit", "hundred", "scale"},
    "digits": {"hundred", "scale"},
    "hundred": {"and", "unit", "teen", "tens", "scale"},
    "scale": {"and", "unit", "teen", "tens", "digits"},
    "and": {"unit", "teen", "tens"},
}


def _follows(previous: str, kind: str) -> bool:
    return kind in _ALLOWED_AFTER[previous]
