"""Amounts as Nigerians type them, and how naira is shown."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from banking.money import (
    MAX_AMOUNT_KOBO,
    amount_entity_value,
    format_naira,
    kobo_to_naira_str,
    mask_account_number,
    parse_amount_kobo,
)

PARSED = [
    ("10k", 1_000_000),
    ("10K", 1_000_000),
    ("10 k", 1_000_000),
    ("₦10,000", 1_000_000),
    ("₦ 10,000", 1_000_000),
    ("N10000", 1_000_000),
    ("n5000", 500_000),
    ("#5,000", 500_000),
    ("10,000 naira", 1_000_000),
    ("10000naira", 1_000_000),
    ("NGN 2,500.50", 250_050),
    ("ngn2500", 250_000),
    ("2,500.50", 250_050),
    ("1.5m", 150_000_000),
    ("1.5M", 150_000_000),
    ("2.5k", 250_000),
    ("₦2.5m", 250_000_000),
    ("5k naira", 500_000),
    ("500", 50_000),
    ("0.5", 50),
    ("1,000,000", 100_000_000),
    ("1 million", 100_000_000),
    ("1.5 million", 150_000_000),
    ("5 thousand", 500_000),
    ("ten thousand", 1_000_000),
    ("fifty naira", 5_000),
    ("one hundred and fifty thousand", 15_000_000),
    ("two million", 200_000_000),
    ("two million five hundred thousand", 250_000_000),
    ("twenty-five thousand naira only", 2_500_000),
    ("a thousand", 100_000),
    ("twelve hundred", 120_000),
    ("half a million", 50_000_000),
    ("10 thousand 500", 1_050_000),
    ("  ₦45,320.50  ", 4_532_050),
    ("10k.", 1_000_000),
    ("₦10,000.00!", 1_000_000),
    ("100000000000", MAX_AMOUNT_KOBO),
]

REJECTED = [
    "", "   ", "hello", "k", "m", "naira", "₦", "N", "thousand", "0", "₦0", "0.00", "-500", "-5k", "- 500",
    "10kg", "1e5", "2500.505", "1,00", "1 000", "100,000,000,001", "200bn", "ten ten", "five and ten",
    "one hundred two hundred", "thousand million", "one million two million", "0803123456",
    "send 5k to mum", "5k5", "₦₦",
]


@pytest.mark.parametrize(("text", "kobo"), PARSED)
def test_parse_amount_kobo_understands_nigerian_formats(text: str, kobo: int) -> None:
    assert parse_amount_kobo(text) == kobo


@pytest.mark.parametrize("text", REJECTED)
def test_parse_amount_kobo_rejects_non_amounts_zero_negative_and_absurd(text: str) -> None:
    assert parse_amount_kobo(text) is None


def test_parse_amount_kobo_rejects_non_strings() -> None:
    assert parse_amount_kobo(None) is None  # type: ignore[arg-type]
    assert parse_amount_kobo(5000) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "value"),
    [("10k", "10000"), ("₦2.5m", "2500000"), ("ten thousand", "10000"), ("2,500.50", "2500.5"),
     ("NGN 2,500.05", "2500.05"), ("0.5", "0.5"), ("half a million", "500000"), ("nonsense", None), ("0", None)],
)
def test_amount_entity_value_is_plain_naira(text: str, value: str | None) -> None:
    assert amount_entity_value(text) == value


@pytest.mark.parametrize(
    ("kobo", "shown"),
    [(4_532_050, "₦45,320.50"), (1_000_000, "₦10,000"), (0, "₦0"), (5, "₦0.05"), (99, "₦0.99"),
     (12_545_000, "₦125,450"), (-50_000, "-₦500"), (-4_532_050, "-₦45,320.50"), (100_000_000_000, "₦1,000,000,000")],
)
def test_format_naira(kobo: int, shown: str) -> None:
    assert format_naira(kobo) == shown


@pytest.mark.parametrize(
    ("number", "masked"),
    [("0123456789", "******6789"), ("012 345 6789", "******6789"), ("6789", "******"), ("", "******")],
)
def test_mask_account_number_shows_only_last_four(number: str, masked: str) -> None:
    assert mask_account_number(number) == masked


@given(st.integers(min_value=1, max_value=MAX_AMOUNT_KOBO))
def test_displayed_and_entity_amounts_parse_back_to_the_same_kobo(kobo: int) -> None:
    assert parse_amount_kobo(format_naira(kobo)) == kobo
    assert parse_amount_kobo(kobo_to_naira_str(kobo)) == kobo
    assert amount_entity_value(format_naira(kobo)) == kobo_to_naira_str(kobo)


@given(st.text(max_size=30))
def test_parse_amount_kobo_never_crashes_and_stays_in_range(text: str) -> None:
    kobo = parse_amount_kobo(text)
    assert kobo is None or (isinstance(kobo, int) and 0 < kobo <= MAX_AMOUNT_KOBO)
