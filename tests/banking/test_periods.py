"""Periods customers ask about, on Lagos days."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from banking.periods import LAGOS, Period, parse_period, previous_period

# Saturday 15 March 2025, 10:30 Lagos (09:30 UTC).
NOW = datetime(2025, 3, 15, 9, 30, tzinfo=timezone.utc)


def lagos(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=LAGOS)


@pytest.mark.parametrize(
    ("text", "start", "end", "label"),
    [
        ("today", lagos(2025, 3, 15), lagos(2025, 3, 16), "today"),
        ("Today?", lagos(2025, 3, 15), lagos(2025, 3, 16), "today"),
        ("yesterday", lagos(2025, 3, 14), lagos(2025, 3, 15), "yesterday"),
        ("yestaday", lagos(2025, 3, 14), lagos(2025, 3, 15), "yesterday"),
        ("this week", lagos(2025, 3, 10), lagos(2025, 3, 17), "this week"),
        ("last week", lagos(2025, 3, 3), lagos(2025, 3, 10), "last week"),
        ("this month", lagos(2025, 3, 1), lagos(2025, 4, 1), "this month"),
        ("dis month", lagos(2025, 3, 1), lagos(2025, 4, 1), "this month"),
        ("this month so far", lagos(2025, 3, 1), lagos(2025, 4, 1), "this month"),
        ("last month", lagos(2025, 2, 1), lagos(2025, 3, 1), "last month"),
        ("last mont", lagos(2025, 2, 1), lagos(2025, 3, 1), "last month"),
        ("previous month", lagos(2025, 2, 1), lagos(2025, 3, 1), "last month"),
        ("last 30 days", lagos(2025, 2, 14), lagos(2025, 3, 16), "in the last 30 days"),
        ("last 7 days", lagos(2025, 3, 9), lagos(2025, 3, 16), "in the last 7 days"),
        ("past 3 months", lagos(2024, 12, 16), lagos(2025, 3, 16), "in the last 3 months"),
        ("past three months", lagos(2024, 12, 16), lagos(2025, 3, 16), "in the last 3 months"),
        ("last 2 weeks", lagos(2025, 3, 2), lagos(2025, 3, 16), "in the last 2 weeks"),
        ("past week", lagos(2025, 3, 9), lagos(2025, 3, 16), "in the last week"),
        ("previous week", lagos(2025, 3, 3), lagos(2025, 3, 10), "last week"),
        ("last two wks", lagos(2025, 3, 2), lagos(2025, 3, 16), "in the last 2 weeks"),
        ("january", lagos(2025, 1, 1), lagos(2025, 2, 1), "in January 2025"),
        ("in march", lagos(2025, 3, 1), lagos(2025, 4, 1), "in March 2025"),
        ("in Dec", lagos(2024, 12, 1), lagos(2025, 1, 1), "in December 2024"),
        ("april", lagos(2024, 4, 1), lagos(2024, 5, 1), "in April 2024"),
        ("march 2024", lagos(2024, 3, 1), lagos(2024, 4, 1), "in March 2024"),
        ("this year", lagos(2025, 1, 1), lagos(2026, 1, 1), "this year"),
        ("dis year", lagos(2025, 1, 1), lagos(2026, 1, 1), "this year"),
        ("last year", lagos(2024, 1, 1), lagos(2025, 1, 1), "last year"),
    ],
)
def test_parse_period(text: str, start: datetime, end: datetime, label: str) -> None:
    assert parse_period(text, NOW) == Period(start, end, label)


@pytest.mark.parametrize("text", [None, "", "whenever", "since forever", "last 0 days", "march 2030", "in blue"])
def test_unknown_period_means_last_30_days(text: str | None) -> None:
    period = parse_period(text, NOW)
    assert (period.start, period.end, period.label) == (lagos(2025, 2, 14), lagos(2025, 3, 16), "in the last 30 days")


def test_day_boundaries_are_lagos_days_not_utc() -> None:
    just_after_lagos_midnight = datetime(2025, 3, 14, 23, 30, tzinfo=timezone.utc)  # 00:30 on the 15th in Lagos
    today = parse_period("today", just_after_lagos_midnight)
    assert today.start == datetime(2025, 3, 14, 23, 0, tzinfo=timezone.utc)
    assert today.contains(just_after_lagos_midnight)
    assert not today.contains(datetime(2025, 3, 14, 22, 59, tzinfo=timezone.utc))


def test_naive_now_is_taken_as_utc() -> None:
    assert parse_period("today", NOW.replace(tzinfo=None)) == parse_period("today", NOW)


def test_month_arithmetic_clamps_short_months() -> None:
    on_31st = datetime(2025, 5, 31, 12, tzinfo=LAGOS)
    assert parse_period("past 3 months", on_31st).start == lagos(2025, 3, 1)  # 28 Feb + 1 day
    assert parse_period("last month", on_31st) == Period(lagos(2025, 4, 1), lagos(2025, 5, 1), "last month")


def test_previous_period_of_a_calendar_month_is_the_month_before() -> None:
    before = previous_period(parse_period("in march", NOW))
    assert before == Period(lagos(2025, 2, 1), lagos(2025, 3, 1), "in February 2025")


def test_previous_period_of_rolling_days_has_the_same_length() -> None:
    period = parse_period("last 30 days", NOW)
    before = previous_period(period)
    assert before.end == period.start
    assert before.end - before.start == timedelta(days=30)
    assert before.label == "in the 30 days before"


def test_previous_period_of_a_year_and_a_day() -> None:
    assert previous_period(parse_period("this year", NOW)) == Period(lagos(2024, 1, 1), lagos(2025, 1, 1), "in 2024")
    assert previous_period(parse_period("today", NOW)) == Period(lagos(2025, 3, 14), lagos(2025, 3, 15),
                                                                  "the day before")
