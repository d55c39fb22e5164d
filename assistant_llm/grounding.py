"""The grounding check: the model may only state figures the banking core gave it.

Every amount in the final answer must equal, within the rounding the answer itself
shows, an amount from a tool result, or the sum or difference of two of them (two
entries: ₦38,000 is "twice ₦19,000" only if ₦19,000 was returned twice). A bare
number may also be a count a tool returned ("12 payments"). Every percentage must be
one a tool result implies: a category's share of that result's total, or the change
between the two periods of a comparison. Anything else is an invented figure, and the
caller answers with the deterministic summary instead.

What counts as an amount: a number with a currency mark (₦, N, NGN, naira; $, USD,
dollars; €, EUR, euros; £, GBP, pounds) or a scale (10k, 1.5m, 5 thousand), and any other
number of 100 or more. A Plaid customer's figures are dollars, euros or pounds: the mark
says which currency a figure claims, so an answer in the wrong one can be refused. Small bare numbers
("3 transactions", "15 March") and times are left alone, and so is a year after a
month name or "in". A figure is read with the precision it was written in ("₦12,345"
within 50 kobo, "₦64k" within ₦500), never looser than 1%.

Numbers written in words count the same ("forty thousand naira", "one point five
million", "twenty-five thousand"): text2num's ``find_numbers`` reads them, so an
invented figure cannot pass by being spelled out. "Forty thousand" is read like
"40 thousand" (within ₦400 here, 1%); ordinals ("third") and vague plurals
("thousands of naira") are not figures.

Pure functions over integer kobo: each figure is checked with binary searches over
the sorted tool amounts, O(n log n) per figure.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from text_to_num import find_numbers

from banking.money import format_money
from banking.number_roles import WordToken

_SCALES = {
    "k": Decimal(1_000), "thousand": Decimal(1_000), "grand": Decimal(1_000),
    "m": Decimal(1_000_000), "mil": Decimal(1_000_000), "million": Decimal(1_000_000),
    "bn": Decimal(1_000_000_000), "b": Decimal(1_000_000_000), "billion": Decimal(1_000_000_000),
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_FIGURE = re.compile(
    r"(?P<prefix>₦|\$|€|£|\b(?:NGN|USD|EUR|GBP)\s?|(?<![A-Za-z0-9])N(?=\s?\d)|#(?=\d))?\s?"
    rf"(?P<number>(?<![\d.,])(?:{_NUMBER}))"
    r"(?:\s?(?P<scale>k|m|bn|b|mil|thousand|million|billion|grand)\b)?"
    r"(?P<suffix>\s?(?:naira|ngn|usd|eur|gbp|dollars?|euros?|pounds?)\b)?"
    r"(?P<percent>\s?(?:%|percent\b|per\s?cent\b))?",
    re.IGNORECASE,
)
_SMALL = Decimal(100)
_HUNDRED = Decimal(100)
_WORD_TOKEN = re.compile(r"[^\W\d_]+|\d+|[^\w\s]")  # words, digit runs and punctuation, as text2num reads them
_WORD_SCALES = {"thousand": Decimal(1_000), "million": Decimal(1_000_000), "billion": Decimal(1_000_000_000)}
_VAGUE = frozenset({"hundreds", "thousands", "millions", "billions"})
_WORD_MARK_BEFORE = re.compile(r"(?:₦|\$|€|£|\b(?:NGN|USD|EUR|GBP))\s?$", re.IGNORECASE)
_WORD_MARK_AFTER = re.compile(
    r"(?P<suffix>\s?(?:naira|ngn|usd|eur|gbp|dollars?|euros?|pounds?)\b)?(?P<percent>\s?(?:%|percent\b|per\s?cent\b))?",
    re.IGNORECASE)
_MARKS = {"₦": "NGN", "n": "NGN", "#": "NGN", "ngn": "NGN", "naira": "NGN",
          "$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD",
          "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR",
          "£": "GBP", "gbp": "GBP", "pound": "GBP", "pounds": "GBP"}


@dataclass(frozen=True)
class Figure:
    """One figure read from the answer: its value, how precisely it was written, and where."""

    value: Decimal
    tolerance: Decimal
    is_percent: bool
    start: int
    end: int
    naira_marked: bool  # written with a currency mark (any currency; see ``currency``)
    in_words: bool = False
    currency: str | None = None  # the currency its mark names ("NGN", "USD", ...); None when unmarked


@dataclass
class Evidence:
    """What the tools returned: amounts (naira), counts, and the percentages their results imply."""

    amounts: list[Decimal] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    percentages: list[Decimal] = field(default_factory=list)

    def add_result_amounts(self, values: Iterable[Decimal]) -> None:
        """One tool result's amounts. A value already known counts again only as often as one result
        repeats it: food's total from two tools is one figure, two ₦19,000 renewals in one list are two."""
        wanted = Counter(abs(v) for v in values)
        have = Counter(abs(v) for v in self.amounts)
        for value, times in wanted.items():
            self.amounts.extend([value] * max(0, times - have[value]))

    def add_share(self, part: Decimal, whole: Decimal) -> None:
        if whole > 0:
            self.percentages.append(abs(part) * _HUNDRED / whole)

    def add_change(self, now: Decimal, before: Decimal) -> None:
        if before > 0:
            self.percentages.append(abs(now - before) * _HUNDRED / before)


@dataclass(frozen=True)
class GroundingResult:
    grounded: bool
    figures: tuple[Figure, ...]
    invented: tuple[Figure, ...]


def extract_figures(text: str) -> list[Figure]:
    """Amounts and percentages stated in ``text``, in digits or in words (see the module docstring)."""
    figures: list[Figure] = []
    read: list[tuple[int, int]] = []  # what the digit reading took, "million" of "1.5 million" included
    for match in _FIGURE.finditer(text):
        read.append((match.start(), match.end()))
        number, scale = match.group("number"), (match.group("scale") or "").lower()
        prefix, suffix, percent = match.group("prefix"), match.group("suffix"), match.group("percent")
        start, end = match.start("number"), match.end()
        if _is_time_or_date_part(text, match.start("number"), match.end("number")):
            continue
        try:
            base = Decimal(number.replace(",", ""))
        except InvalidOperation:  # pragma: no cover - the pattern only matches digits
            continue
        decimals = len(number.split(".", 1)[1]) if "." in number else 0
        multiplier = _SCALES.get(scale, Decimal(1))
        value = base * multiplier
        unit = Decimal(1).scaleb(-decimals) * multiplier
        if not percent and not (prefix or suffix) and not scale and (
                value < _SMALL or _is_year(text, match.start("number"), number, value)):
            continue
        if prefix and not percent:
            start = match.start("prefix")
        figures.append(_figure(value, unit, bool(percent), bool(prefix or suffix), start, end,
                               currency=_currency_of(prefix or suffix)))
    figures += _figures_in_words(text, read)
    return sorted(figures, key=lambda figure: figure.start)


def _figures_in_words(text: str, read: Sequence[tuple[int, int]]) -> list[Figure]:
    """Numbers written in words ("forty thousand naira"), read by text2num, with their marks and precision."""
    words = [WordToken(m.group(), m.start(), m.end(), m.group().isdigit() or any(a <= m.start() < b for a, b in read))
             for m in _WORD_TOKEN.finditer(text)]
    if all(word.taken for word in words):
        return []
    occurrences = find_numbers(words, "en")
    figures: list[Figure] = []
    skip_next = False
    for index, occurrence in enumerate(occurrences):
        if skip_next or occurrence.is_ordinal:
            skip_next = False
            continue
        first, last = words[occurrence.start], words[occurrence.end - 1]
        if occurrence.end - occurrence.start == 1 and first.word.lower() in _VAGUE:
            continue
        try:
            value = abs(Decimal(occurrence.text))
        except InvalidOperation:
            continue
        decimals = len(occurrence.text.split(".", 1)[1]) if "." in occurrence.text else 0
        scale = _WORD_SCALES.get(last.word.lower(), Decimal(1)) if not decimals else Decimal(1)
        following = occurrences[index + 1] if index + 1 < len(occurrences) else None
        if (decimals and following is not None and following.start == occurrence.end
                and following.end == following.start + 1 and words[following.start].word.lower() in _WORD_SCALES):
            # text2num reads "one point five million" as 1.5 and then a million
            scale = _WORD_SCALES[words[following.start].word.lower()]
            value *= scale
            last = words[following.start]
            skip_next = True
        unit = Decimal(1).scaleb(-decimals) * scale
        marks = _WORD_MARK_AFTER.match(text, last.end)
        assert marks is not None  # every part of the pattern is optional: it always matches
        percent = bool(marks.group("percent"))
        mark = _WORD_MARK_BEFORE.search(text, 0, first.start)
        prefixed = mark is not None
        marked = prefixed or bool(marks.group("suffix"))
        if not percent and not marked and (value < _SMALL or _is_year(text, first.start, occurrence.text, value)):
            continue
        start = mark.start() if mark is not None and not percent else first.start
        figures.append(_figure(value, unit, percent, marked, start, marks.end(), in_words=True,
                               currency=_currency_of(mark.group() if mark else marks.group("suffix"))))
    return figures


def _currency_of(mark: str | None) -> str | None:
    """The ISO code a written mark names ("$" -> "USD", " naira" -> "NGN"), None without one."""
    return _MARKS.get(mark.strip().lower()) if mark else None


def _figure(value: Decimal, unit: Decimal, percent: bool, marked: bool, start: int, end: int,
            in_words: bool = False, currency: str | None = None) -> Figure:
    """A figure with the tolerance its writing implies: half its last written unit, never looser than 1%."""
    if percent:
        return Figure(value, unit / 2 + Decimal("0.01"), True, start, end, False, in_words)  # no currency
    # "₦1.2m" is read as written (±₦50,000), but never looser than 1% of the amount
    tolerance = max(min(unit / 2, value / 100), Decimal("0.01")) if unit > 1 else max(unit / 2, Decimal("0.01"))
    return Figure(value, tolerance + Decimal("0.001"), False, start, end, marked, in_words, currency)


def check(answer: str, evidence: Evidence | Iterable[Decimal | int | float]) -> GroundingResult:
    """Whether every figure in ``answer`` is grounded in ``evidence`` (a plain iterable: amounts only)."""
    if not isinstance(evidence, Evidence):
        evidence = Evidence(amounts=[d for d in (_decimal(n) for n in evidence) if d is not None])
    kobo = sorted(_to_kobo(abs(amount)) for amount in evidence.amounts)
    counts = set(evidence.counts)
    percentages = sorted(evidence.percentages)
    figures = extract_figures(answer)
    invented = []
    for figure in figures:
        if figure.is_percent:
            grounded = _within(percentages, figure.value, figure.tolerance)
        else:
            grounded = _amount_supported(figure, kobo) or (
                not figure.naira_marked and figure.value == figure.value.to_integral_value()
                and int(figure.value) in counts)
        if not grounded:
            invented.append(figure)
    return GroundingResult(not invented, tuple(figures), tuple(invented))


def other_currencies(answer: str, currency: str) -> set[str]:
    """The currencies other than ``currency`` that the answer's marked figures claim."""
    return {figure.currency for figure in extract_figures(answer)
            if figure.currency is not None and figure.currency != currency}


def money_formatted(answer: str, currency: str) -> str:
    """Rewrite plainly written amounts marked with ``currency`` ("USD 12.5", "12.50 dollars") as the
    customer reads them ("$12.50"); figures in words or shorthand ("$1.2k") stay as written."""
    pieces: list[str] = []
    last = 0
    for figure in extract_figures(answer):
        segment = answer[figure.start:figure.end]
        if figure.is_percent or figure.currency != currency or figure.in_words or re.search(
                r"\d\s?(?:[kmb]|thousand|million|billion)", segment, re.IGNORECASE):
            continue
        kobo = int((figure.value * 100).to_integral_value())
        pieces.append(answer[last:figure.start])
        pieces.append(format_money(kobo, currency))
        last = figure.end
    pieces.append(answer[last:])
    return "".join(pieces)


def _amount_supported(figure: Figure, kobo: Sequence[int]) -> bool:
    target = _to_kobo(figure.value)
    tol = int((figure.tolerance * 100).to_integral_value(rounding=ROUND_FLOOR))
    if _any_in(kobo, target - tol, target + tol):
        return True
    for index, a in enumerate(kobo):
        # target = a + b, target = a - b, target = b - a, each b another entry than a
        if (_any_in(kobo, target - a - tol, target - a + tol, skip=index)
                or _any_in(kobo, a - target - tol, a - target + tol, skip=index)
                or _any_in(kobo, a + target - tol, a + target + tol, skip=index)):
            return True
    return False


def _any_in(values: Sequence[int], low: int, high: int, skip: int = -1) -> bool:
    """Whether some entry (other than index ``skip``) lies in [low, high]."""
    left, right = bisect_left(values, low), bisect_right(values, high)
    return right - left > (1 if left <= skip < right else 0)


def _within(values: Sequence[Decimal], target: Decimal, tol: Decimal) -> bool:
    index = bisect_left(values, target - tol)
    return index < len(values) and values[index] <= target + tol


def _to_kobo(naira: Decimal) -> int:
    return int((naira * 100).to_integral_value())


def _is_time_or_date_part(text: str, start: int, end: int) -> bool:
    """14:05, 2025-03-15, 15/03: parts of times and dates are not amounts."""
    joined_before = start >= 2 and text[start - 1] in ":/-" and text[start - 2].isdigit()
    joined_after = end + 1 < len(text) and text[end] in ":/-" and text[end + 1].isdigit()
    return joined_before or joined_after


def _is_year(text: str, start: int, literal: str, value: Decimal) -> bool:
    """"March 2025", "in 2024": a bare four-digit year, not an amount."""
    if not (1900 <= value <= 2100) or not literal.isdigit():
        return False
    words = re.findall(r"[A-Za-z]+", text[max(0, start - 14):start])
    return bool(words) and (words[-1][:3].lower() in _MONTHS or words[-1].lower() in {"in", "of", "since", "year"})


def _decimal(value: Decimal | int | float) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
