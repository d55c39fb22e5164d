"""Time windows customers ask about ("last month", "dis week", "in march").

Day boundaries are Lagos days (West Africa Time, a fixed UTC+01:00 with no
daylight saving), because "today" means the customer's today, not UTC's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

LAGOS = timezone(timedelta(hours=1), "WAT")
DEFAULT_DAYS = 30

_MONTHS: dict[str, int] = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3,
    "april": 4, "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7,
    "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10,
    "november": 11, "nov": 11, "december": 12, "dec": 12,
}
_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July",
                "August", "September", "October", "November", "December")
_COUNTS: dict[str, int] = {
    "one": 1, "a": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14,
    "thirty": 30, "sixty": 60, "ninety": 90, "few": 3, "couple": 2,
}
# Pidgin and typing shortcuts folded onto standard words before matching.
_SPELLINGS: dict[str, str] = {
    "dis": "this", "dhis": "this", "tis": "this", "dat": "last",
    "mont": "month", "monts": "months", "mnth": "month", "mth": "month", "mths": "months",
    "wk": "week", "wks": "weeks", "wek": "week", "yr": "year", "yrs": "years",
    "yestaday": "yesterday", "yesterdae": "yesterday", "yday": "yesterday", "tday": "today",
    "2day": "today", "tdy": "today", "previous": "last", "prev": "last",
}
_FILLER = {"in", "for", "the", "of", "during", "over", "within", "so", "far", "only", "o", "oh", "abeg", "my"}
_UNITS = {"day": "day", "days": "day", "week": "week", "weeks": "week", "month": "month",
          "months": "month", "year": "year", "years": "year"}


@dataclass(frozen=True)
class Period:
    """A half-open window [start, end) with a label that reads after a verb ("spent ₦X last month")."""

    start: datetime
    end: datetime
    label: str

    def contains(self, moment: datetime) -> bool:
        return self.start <= _aware(moment) < self.end


def parse_period(text: str | None, now: datetime) -> Period:
    """Understand a customer's period; anything unrecognised means the last 30 days."""
    local_now = _aware(now).astimezone(LAGOS)
    words = _words(text)
    return _match(words, local_now) or _last_days(DEFAULT_DAYS, local_now)


def previous_period(period: Period) -> Period:
    """The window right before ``period``: the previous calendar month/year, else the same length."""
    start = period.start.astimezone(LAGOS)
    end = period.end.astimezone(LAGOS)
    if _is_calendar_month(start, end):
        previous = _add_months(start, -1)
        return Period(previous, start, f"in {_month_label(previous)}")
    if _is_calendar_year(start, end):
        return Period(start.replace(year=start.year - 1), start, f"in {start.year - 1}")
    length = end - start
    return Period(start - length, start, _before_label(length))


def _before_label(length: timedelta) -> str:
    if length % timedelta(days=1):
        return "in the period before"
    return "the day before" if length.days == 1 else f"in the {length.days} days before"


def _words(text: str | None) -> list[str]:
    if not text:
        return []
    raw = re.findall(r"[a-z0-9]+", text.lower())
    return [_SPELLINGS.get(word, word) for word in raw if _SPELLINGS.get(word, word) not in _FILLER]


def _match(words: list[str], now: datetime) -> Period | None:
    """Try each recogniser in turn; the first that fits wins."""
    if not words:
        return None
    phrase = " ".join(words)
    fixed = _fixed_phrase(phrase, now)
    if fixed is not None:
        return fixed
    return _rolling(words, now) or _named_month(words, now)


def _fixed_phrase(phrase: str, now: datetime) -> Period | None:
    today = _midnight(now)
    monday = today - timedelta(days=today.weekday())
    month = today.replace(day=1)
    year = today.replace(month=1, day=1)
    table: dict[str, tuple[datetime, datetime, str]] = {
        "today": (today, today + timedelta(days=1), "today"),
        "yesterday": (today - timedelta(days=1), today, "yesterday"),
        "this week": (monday, monday + timedelta(days=7), "this week"),
        "week": (monday, monday + timedelta(days=7), "this week"),
        "last week": (monday - timedelta(days=7), monday, "last week"),
        "this month": (month, _add_months(month, 1), "this month"),
        "month": (month, _add_months(month, 1), "this month"),
        "last month": (_add_months(month, -1), month, "last month"),
        "this year": (year, year.replace(year=year.year + 1), "this year"),
        "year": (year, year.replace(year=year.year + 1), "this year"),
        "last year": (year.replace(year=year.year - 1), year, "last year"),
    }
    found = table.get(phrase)
    return Period(*found) if found else None


def _rolling(words: list[str], now: datetime) -> Period | None:
    """"last 30 days", "past 3 months", "last two weeks", "past week" (the last 7 days)."""
    if len(words) == 2 and words[0] == "past":
        words = ["past", "1", words[1]]
    if len(words) != 3 or words[0] not in {"last", "past"} or words[2] not in _UNITS:
        return None
    count = int(words[1]) if words[1].isdigit() else _COUNTS.get(words[1])
    if not count or count > 3660:
        return None
    unit = _UNITS[words[2]]
    end = _midnight(now) + timedelta(days=1)
    if unit == "day":
        start = end - timedelta(days=count)
    elif unit == "week":
        start = end - timedelta(weeks=count)
    else:
        months = count * (12 if unit == "year" else 1)
        start = _add_months(_midnight(now), -months) + timedelta(days=1)
    plural = words[2] if words[2].endswith("s") or count == 1 else words[2] + "s"
    label = f"in the last {count} {plural}" if count > 1 else f"in the last {unit}"
    return Period(start, end, label)


def _named_month(words: list[str], now: datetime) -> Period | None:
    """"march", "in jan", "march 2024": the latest such month not in the future."""
    if not words or words[0] not in _MONTHS or len(words) > 2:
        return None
    month = _MONTHS[words[0]]
    if len(words) == 2:
        if not (words[1].isdigit() and len(words[1]) == 4):
            return None
        year = int(words[1])
    else:
        year = now.year if month <= now.month else now.year - 1
    start = datetime(year, month, 1, tzinfo=LAGOS)
    if start > now:
        return None
    return Period(start, _add_months(start, 1), f"in {_month_label(start)}")


def _last_days(days: int, now: datetime) -> Period:
    end = _midnight(now) + timedelta(days=1)
    return Period(end - timedelta(days=days), end, f"in the last {days} days")


def _midnight(moment: datetime) -> datetime:
    return moment.astimezone(LAGOS).replace(hour=0, minute=0, second=0, microsecond=0)


def _add_months(moment: datetime, months: int) -> datetime:
    """Shift by whole months, clamping the day (31 March - 1 month = 28/29 February)."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, _days_in_month(year, month + 1))
    return moment.replace(year=year, month=month + 1, day=day)


def _days_in_month(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def _is_calendar_month(start: datetime, end: datetime) -> bool:
    return _is_month_start(start) and end == _add_months(start, 1)


def _is_calendar_year(start: datetime, end: datetime) -> bool:
    return _is_month_start(start) and start.month == 1 and end == start.replace(year=start.year + 1)


def _is_month_start(moment: datetime) -> bool:
    return moment.day == 1 and moment.time() == datetime.min.time()


def _month_label(moment: datetime) -> str:
    return f"{_MONTH_NAMES[moment.month - 1]} {moment.year}"


def _aware(moment: datetime) -> datetime:
    """Treat naive datetimes as UTC, which is what MongoDB hands back."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
